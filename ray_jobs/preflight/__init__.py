"""Before the search starts: every check the job runs before Ray starts, and the experiment it
would start or resume (:mod:`~ray_jobs.preflight.checks`); what ``--plan`` prints
(:mod:`~ray_jobs.preflight.search_plan`), with the measured step times it estimates from
(:mod:`~ray_jobs.preflight.step_times`, owner of the package data ``step_times.json``); and the
record of the source images held out as source-val (:mod:`~ray_jobs.preflight.source_holdout`).
"""

from ray_jobs.preflight.checks import (
    CONFIG_SNAPSHOT,
    Checks,
    JobError,
    Verdict,
    check_experiment,
    preflight,
    run_checks,
    save_config,
)
from ray_jobs.preflight.search_plan import SearchPlan, make_plan
from ray_jobs.preflight.source_holdout import (
    HOLDOUT_FORMAT,
    HoldoutError,
    HoldoutRecord,
    read_holdout,
    record_source_holdout,
    write_holdout,
)
from ray_jobs.preflight.step_times import (
    STEP_TIMES_FILE,
    StepTime,
    StepTimeError,
    load_step_times,
    measured_step,
    save_step_times,
    step_key,
)

__all__ = [
    "CONFIG_SNAPSHOT",
    "Checks",
    "JobError",
    "Verdict",
    "check_experiment",
    "preflight",
    "run_checks",
    "save_config",
    "SearchPlan",
    "make_plan",
    "HOLDOUT_FORMAT",
    "HoldoutError",
    "HoldoutRecord",
    "read_holdout",
    "record_source_holdout",
    "write_holdout",
    "STEP_TIMES_FILE",
    "StepTime",
    "StepTimeError",
    "load_step_times",
    "measured_step",
    "save_step_times",
    "step_key",
]
