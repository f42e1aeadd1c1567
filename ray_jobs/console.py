"""What ``python -m ray_jobs.select`` prints: a readable run at three verbosities.

* quiet: warnings, errors and the closing summary.
* normal (default): also one line per candidate event (started, round done, finished, failed) with
  candidates named by their parameters (``alpha=0.1``), and the configured rule's running pick
  after each provisional vote.
* verbose: also Ray's INFO logs, the workers' logs and Tune's own progress tables.

Ray's chatter is filtered by logger levels, never by matching text, so an error always gets
through. In the driver that is the ``ray`` logger (``ray.init(logging_level=...)``); in every other
process of the job a ``worker_process_setup_hook`` (Ray's documented way to configure worker
loggers) sets the same levels. Each candidate's Train run starts a placement-group cleaner that
asks the state API once a second whether the run's controller lives; the local cluster runs without
the dashboard that serves that API (it costs start-up time), so every answer is a WARNING about the
API being unavailable: that one logger is set to ERROR outside verbose runs.

The closing lines (stdout) are the choice, its confidence and where the outputs are.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import ray
import ray.tune
from ray.tune.experiment import Trial

from ray_jobs import ray_compat
from selection import format_value

__all__ = [
    "QUIET",
    "NORMAL",
    "VERBOSE",
    "log_levels",
    "configure_driver",
    "ray_init_options",
    "setup_worker_logging",
    "tune_verbosity",
    "train_log_level",
    "TrialNames",
    "ConsoleProgress",
    "provisional_line",
    "summary_lines",
]

QUIET, NORMAL, VERBOSE = 0, 1, 2
VERBOSITY_ENV = "HIAST_SELECT_VERBOSITY"
_OWN_LOGGERS = ("ray_jobs", "hiast", "selection")
# The state-API poll of Ray Train's placement-group cleaner (see the module docstring).
PG_CLEANER_LOGGER = ray_compat.train_pg_cleaner_logger()
# Ray's notice that token authentication is on: true of every Ray >= 2.59 cluster, nothing to act on.
_TOKEN_NOTICE_LOGGER = ray_compat.token_notice_logger()
# Ray Train's "Reporting training result ..." (INFO, per report) comes from a logger named by its
# module's file path rather than "ray.train...", so neither Train's level nor "ray"'s reaches it.
TRAIN_REPORT_LOGGER = ray_compat.train_report_logger()

log = logging.getLogger("ray_jobs")


def log_levels(verbosity: int, *, driver: bool) -> dict[str, int]:
    """Logger name -> level, in the driver or in the job's other processes."""
    verbose = verbosity >= VERBOSE
    levels = {"ray": logging.INFO if verbose else logging.WARNING}
    # Our own lines: the driver says what the job does; a worker's INFO (per-round losses, the
    # vote actor's steps) only in verbose runs. Warnings and errors always.
    own = logging.INFO if (verbose or (driver and verbosity > QUIET)) else logging.WARNING
    levels.update(dict.fromkeys(_OWN_LOGGERS, own))
    if not verbose:
        levels[PG_CLEANER_LOGGER] = logging.ERROR
        levels[_TOKEN_NOTICE_LOGGER] = logging.ERROR
        levels[TRAIN_REPORT_LOGGER] = logging.WARNING
    return levels


def configure_driver(verbosity: int) -> None:
    """Log levels, one handler (stderr) and Tune's output settings for the driver process; call
    before Ray starts."""
    # One handler, on the root (a no-op where one is there already); Ray's "ray" logger has its own.
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    for name, level in log_levels(verbosity, driver=True).items():
        logging.getLogger(name).setLevel(level)
    if verbosity < VERBOSE:
        # Tune's newer console output prints its experiment banner (and a TensorBoard path that
        # is not where our results are) even at verbose=0; its classic output prints nothing
        # there. Our progress lines take their place.
        os.environ.setdefault(ray_compat.tune_new_output_env(), "0")
        # Tune warns when one step of its event loop takes over 0.5 s, which on a loaded 2-core
        # machine is every few steps and says nothing about the search.
        os.environ.setdefault(ray_compat.tune_warn_threshold_env(), "30")


def setup_worker_logging() -> None:
    """Run by Ray in every worker process of the job (``worker_process_setup_hook``)."""
    for name, level in log_levels(_verbosity_of_job(), driver=False).items():
        logging.getLogger(name).setLevel(level)


def _verbosity_of_job() -> int:
    try:
        return int(os.environ.get(VERBOSITY_ENV, NORMAL))
    except ValueError:
        return NORMAL


def train_log_level() -> str:
    """Ray Train's own console level (``ray.train.LoggingConfig``), for the job's trial drivers.

    Train configures its loggers itself in its controller and workers, so the hook's levels do not
    reach them. Outside verbose runs only its errors: its warnings here are about its own
    resource requests on a busy machine ("safe to ignore"), and a failed run reaches the console
    anyway, as the trial's error.
    """
    return "INFO" if _verbosity_of_job() >= VERBOSE else "ERROR"


def ray_init_options(verbosity: int) -> dict[str, Any]:
    """Keyword arguments for ``ray.init`` that apply the verbosity to the whole job."""
    return {
        "logging_level": log_levels(verbosity, driver=True)["ray"],
        # Workers' output (tracebacks included) always reaches the driver; levels decide the rest.
        "log_to_driver": True,
        "runtime_env": {
            "worker_process_setup_hook": f"{__name__}.setup_worker_logging",
            "env_vars": {VERBOSITY_ENV: str(verbosity)},
        },
    }


def tune_verbosity(verbosity: int) -> int:
    """Tune's own progress output: its tables only in verbose runs (ours replace them otherwise)."""
    return 1 if verbosity >= VERBOSE else 0


def _candidate_label(spec: Mapping[str, Any], replicates: int) -> str:
    cid = str(spec["candidate_id"])
    return f"{cid} [rep {spec['replicate']}]" if replicates > 1 else cid


class TrialNames:
    """Tune's ``trial_name_creator``: a trial is named by its candidate (``alpha=0.1``), not a hash."""

    def __init__(self, replicates: int) -> None:
        self.replicates = replicates

    def __call__(self, trial: Trial) -> str:
        return _candidate_label(trial.config["candidate"], self.replicates)


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
        return _candidate_label(trial.config["candidate"], self.replicates)

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


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, int | float) else "n/a"


def provisional_line(choice: Mapping[str, Any]) -> str | None:
    """The configured rule's running pick after a provisional vote, in each vote group, with the
    pick's F-mIoU (the one number every rule's table has)."""
    per_sweep = choice.get("per_sweep") or {}
    if not per_sweep:
        return None
    picks = []
    for group, info in per_sweep.items():
        if info.get("candidate_id") is None:
            continue
        value = info.get("value")
        label = f"{group}={format_value(value)}" if value is not None else str(info["candidate_id"])
        picks.append(f"{label} (F-mIoU {_fmt(info.get('f_miou'))})")
    rule = (choice.get("rule") or {}).get("text") or choice.get("score_used") or "f_miou"
    return (
        f"running pick by {rule}, {choice.get('finished', '?')} of {choice.get('total', '?')} candidates "
        f"finished: {', '.join(picks) or 'none yet'}"
    )


def _confidence(choice: Mapping[str, Any]) -> str:
    given = choice.get("confidence")
    if isinstance(given, str):
        return given
    if isinstance(given, Mapping):
        level = given.get("level") or given.get("label")
        why = given.get("reason") or given.get("reasons") or given.get("summary")
        if isinstance(why, list):
            why = "; ".join(map(str, why))
        if level or why:
            return ": ".join(str(x) for x in (level, why) if x)
        return json.dumps(given, default=str)
    if given is not None:
        return str(given)
    # No confidence field yet: what the centre-bias diagnostic and the trimming found.
    bound = [str(p) for p in choice.get("centre_bound") or []]
    degenerate = [str(c) for c in choice.get("degenerate") or []]
    parts = []
    if bound:
        parts.append(
            f"weak: the pick follows the centre of the grid ({', '.join(bound)} centre-bound), "
            "which F-mIoU favours whatever the truth"
        )
    if degenerate:
        parts.append(f"degenerate candidates left out of the vote: {', '.join(degenerate)}")
    if not parts:
        return "no sweep is centre-bound and no candidate degenerate"
    return "; ".join(parts)


_SCORE_NAMES = {"f_miou": "F-mIoU", "f_miou_trimmed": "F-mIoU of the trimmed vote"}


def summary_lines(choice: Mapping[str, Any], experiment_root: str) -> list[str]:
    """The closing lines: the choice, its confidence, where the outputs are."""
    params = choice.get("parameters") or {}
    # The parameters the search chose (a sweep's); a grid chose them all.
    swept = [p for p in (choice.get("per_sweep") or {}) if p in params] or list(params)
    chosen = ", ".join(f"{p}={format_value(params[p])}" for p in swept) or "none"
    cid = choice.get("candidate_id")
    trained = f"candidate {cid!r}" if cid else "a combination not itself trained"
    score = choice.get("score_used", "f_miou")
    rule = (choice.get("rule") or {}).get("text")
    # choice.json 2 names the rule that picked; its f_miou is the picks' F-mIoU whatever the rule
    how = f"rule {rule}; F-mIoU" if rule else _SCORE_NAMES.get(score, score)
    lines = [f"Choice: {chosen} ({trained}; {how} {_fmt(choice.get('f_miou'))})"]
    failed = choice.get("failed") or []
    if failed:
        lines.append(f"Failed: {', '.join(map(str, failed))} (left out of the vote)")
    lines.append(f"Confidence: {_confidence(choice)}")
    lines.append(
        f"Outputs: {experiment_root} (choice.json, candidates.parquet, dashboard.html; "
        f"tensorboard --logdir {experiment_root})"
    )
    return lines
