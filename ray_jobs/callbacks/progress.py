"""The job's progress on the console: one line per candidate event, from Tune's callback API."""

from __future__ import annotations

import logging
import time
from typing import Any

import ray.tune
from ray.tune.experiment import Trial

from ray_jobs.console import candidate_label

__all__ = ["ConsoleProgress"]

log = logging.getLogger("ray_jobs")


class ConsoleProgress(ray.tune.Callback):
    """One line per candidate event: started, a round done (Tune's reported ``round``), finished,
    failed (with the error's last line; Tune logs the traceback as well)."""

    def __init__(self, total_trials: int, rounds: int, replicates: int) -> None:
        self.total_trials = total_trials
        self.rounds = rounds
        self.replicates = replicates
        self._reset()

    def _reset(self) -> None:
        self._finished = 0
        self._round: dict[str, int] = {}
        self._started: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with the experiment
        return {"total_trials": self.total_trials, "rounds": self.rounds, "replicates": self.replicates}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["total_trials"], state["rounds"], state["replicates"])

    def _name(self, trial: Trial) -> str:
        return candidate_label(trial.config["candidate"], self.replicates)

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._started[trial.trial_id] = time.monotonic()
        log.info("%s: training (%d of %d finished)", self._name(trial), self._finished, self.total_trials)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ) -> None:
        done = result.get("round")
        if isinstance(done, int) and done != self._round.get(trial.trial_id):
            self._round[trial.trial_id] = done
            log.info("%s: round %d of %d done", self._name(trial), done, self.rounds)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._finished += 1
        took = time.monotonic() - self._started.get(trial.trial_id, time.monotonic())
        if not trial.last_result.get("finished"):  # cut by label-free early stopping
            log.info(
                "%s: stopped early after round %s (%d of %d ended)",
                self._name(trial),
                trial.last_result.get("round", "?"),
                self._finished,
                self.total_trials,
            )
            return
        log.info(
            "%s: finished in %.0f s (%d of %d finished)",
            self._name(trial),
            took,
            self._finished,
            self.total_trials,
        )

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._finished += 1
        log.error("%s: FAILED: %s (details: %s)", self._name(trial), _last_line(trial), trial.error_file)

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        log.warning("%s: failed, restarting it: %s", self._name(trial), _last_line(trial))


def _last_line(trial: Trial) -> str:
    try:
        with open(trial.error_file, encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
    except (OSError, TypeError):
        return "see Tune's log above"
    return lines[-1] if lines else "see Tune's log above"
