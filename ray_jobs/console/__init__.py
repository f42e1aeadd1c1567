"""What ``python -m ray_jobs.select`` prints: a readable run at three verbosities.

* :mod:`~ray_jobs.console.logs`: log levels per verbosity, set in the driver (before Ray starts)
  and in every other process of the job (Ray's ``worker_process_setup_hook``).
* :mod:`~ray_jobs.console.formatting`: trial names, the running pick after a provisional vote and
  the closing lines (the choice, its confidence, where the outputs are).

The progress lines themselves come from a Tune callback: :class:`ray_jobs.callbacks.ConsoleProgress`.
"""

from ray_jobs.console.formatting import TrialNames, candidate_label, provisional_line, summary_lines
from ray_jobs.console.logs import (
    NORMAL,
    PG_CLEANER_LOGGER,
    QUIET,
    TRAIN_REPORT_LOGGER,
    VERBOSE,
    VERBOSITY_ENV,
    configure_driver,
    log_levels,
    ray_init_options,
    setup_worker_logging,
    train_log_level,
    tune_verbosity,
)

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
    "candidate_label",
    "TrialNames",
    "provisional_line",
    "summary_lines",
]
