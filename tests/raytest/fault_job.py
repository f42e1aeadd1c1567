"""The selection job with faults on: ``python -m raytest.fault_job`` + ``ray_jobs.select``'s arguments.

Needs :func:`raytest.faults.fault_env` in its environment. Before the job starts, in this driver
only: the job's Tune trainable becomes :func:`raytest.faults.candidate_trainable`, and the job's
Ray runtime environment also carries the faults and this package to every worker (the job's own
settings, its worker logging hook included, stay as they are).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ray_jobs import console, select
from ray_jobs.search import tune_grid
from raytest import faults

__all__ = ["with_faults_env", "main"]

_job_init_options = console.ray_init_options


def with_faults_env(verbosity: int) -> dict[str, Any]:
    """``console.ray_init_options`` plus the faults and this package, for every worker of the job."""
    options = _job_init_options(verbosity)
    env = dict(options.get("runtime_env") or {})
    env["env_vars"] = {**env.get("env_vars", {}), faults.FAULTS_ENV: os.environ[faults.FAULTS_ENV]}
    env["py_modules"] = [*env.get("py_modules", []), str(Path(faults.__file__).parent)]
    return {**options, "runtime_env": env}


def main() -> int:
    if faults.FAULTS_ENV not in os.environ:
        raise SystemExit(f"{faults.FAULTS_ENV} is not set: use raytest.faults.fault_env(...)")
    console.ray_init_options = with_faults_env
    tune_grid.candidate_trainable = faults.candidate_trainable
    return select.main()


if __name__ == "__main__":
    raise SystemExit(main())
