"""How loud the job is: log levels per verbosity, in the driver and in every other process of the job.

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
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from ray_jobs import ray_compat

__all__ = [
    "QUIET",
    "NORMAL",
    "VERBOSE",
    "VERBOSITY_ENV",
    "PG_CLEANER_LOGGER",
    "TRAIN_REPORT_LOGGER",
    "log_levels",
    "configure_driver",
    "ray_init_options",
    "setup_worker_logging",
    "tune_verbosity",
    "train_log_level",
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
