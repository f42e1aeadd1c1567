"""Provisional votes while the search runs: a Tune callback that asks the vote actor
(:class:`ray_jobs.vote.VoteActor`) for a vote over the candidates finished so far, and shows the
configured rule's running pick on the console. It never waits on the actor: Tune runs callbacks on
its event loop."""

from __future__ import annotations

import logging
from typing import Any

import ray
import ray.tune
from ray.tune.experiment import Trial

from ray_jobs.console import provisional_line
from ray_jobs.records import TrialStatus, outcome_record

__all__ = ["ProvisionalVote"]

log = logging.getLogger("ray_jobs")


class ProvisionalVote(ray.tune.Callback):
    """After each finished trial, a provisional vote over those finished so far (from 2 on).

    Holds the actor's name, not its handle: Tune pickles its callbacks with the experiment, and a
    resumed job creates a new actor under the same name. At most one request is in flight.
    """

    def __init__(self, actor_name: str, total_trials: int) -> None:
        self.actor_name = actor_name
        self.total_trials = total_trials
        self._pending: Any = None
        self._dirty = False
        self._finished: dict[str, dict[str, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"actor_name": self.actor_name, "total_trials": self.total_trials}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["actor_name"], state["total_trials"])

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if not trial.last_result.get("finished"):
            return  # stopped early (label-free early stopping): not a finished candidate
        spec = trial.config["candidate"]
        metrics = {
            k: trial.last_result.get(k) for k in ("true_miou", "source_miou") if k in trial.last_result
        }
        self._finished[trial.trial_id] = outcome_record(
            spec, TrialStatus.DONE, metrics=metrics, provisional=True
        )
        self._dirty = True
        self._maybe_send()

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self._dirty or self._pending is not None:
            self._maybe_send()

    def _maybe_send(self) -> None:
        if self._pending is not None:
            ready, _ = ray.wait([self._pending], timeout=0)
            if not ready:
                return
            self._show(self._pending)
            self._pending = None
        if not self._dirty or len(self._finished) < 2 or len(self._finished) >= self.total_trials:
            return  # nothing to vote yet; or everything is done and the final vote follows
        try:
            actor = ray.get_actor(self.actor_name)
        except ValueError:
            return
        self._pending = actor.provisional.remote(list(self._finished.values()))
        self._dirty = False

    @staticmethod
    def _show(ref: Any) -> None:
        """The rule's running pick on the driver's console; a failed provisional vote is said, not fatal."""
        try:
            line = provisional_line(ray.get(ref))
        except ray.exceptions.RayError as e:
            log.warning("provisional vote failed (the final vote will run regardless): %s", e)
            return
        if line:
            log.info("%s", line)
