"""The job's one opening for tests: ``HIAST_SELECT_TEST_*`` variables, handed to every Ray process.

A test that wants to reach inside a running job (inject a fault, hold a candidate at a round)
sets, in the driver's environment,

* ``HIAST_SELECT_TEST_LOOP_WRAPPER="module:function"``: the Train workers then run
  ``function(train_loop_per_worker)`` instead of the loop itself;
* any other ``HIAST_SELECT_TEST_*`` variable that wrapper reads (``ray_jobs.testing.faults``
  reads ``HIAST_SELECT_TEST_FAULTS``).

The driver puts these variables into the job's Ray runtime environment, so every process of the
job sees them on any node (a worker's own environment is its raylet's, not the driver's). Without
them the job runs exactly as it would with no test around: the loop is not wrapped and the runtime
environment is left alone.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

__all__ = ["PREFIX", "LOOP_WRAPPER_ENV", "runtime_env", "wrap_worker_loop"]

PREFIX = "HIAST_SELECT_TEST_"
LOOP_WRAPPER_ENV = PREFIX + "LOOP_WRAPPER"


def runtime_env() -> dict[str, Any] | None:
    """A runtime env carrying the driver's ``HIAST_SELECT_TEST_*`` variables, or None if it has none."""
    env = {k: v for k, v in os.environ.items() if k.startswith(PREFIX)}
    return {"env_vars": env} if env else None


def wrap_worker_loop(loop: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """``loop`` itself, or what the wrapper named by ``HIAST_SELECT_TEST_LOOP_WRAPPER`` makes of it."""
    spec = os.environ.get(LOOP_WRAPPER_ENV)
    if not spec:
        return loop
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"{LOOP_WRAPPER_ENV}={spec!r}: expected 'module:function'")
    return getattr(importlib.import_module(module), name)(loop)
