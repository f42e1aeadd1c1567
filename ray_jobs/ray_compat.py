"""Every private Ray API and internal Ray setting the product relies on, in one place.

Each of these breaks without warning when Ray changes it (none is covered by Ray's deprecation
policy), so each is reached through an accessor here that checks it against the installed Ray and
raises :class:`RayCompatError`, naming the Ray version and what is missing, instead of letting the
job fail later in some other way (or quietly do something else). ``RESOLVERS`` lists one check
per private item; ``check_installed_ray`` runs them all (tests do, for the pinned Ray).

What is private here, and why it is used:

* ``ray.train._internal.session`` and its ``_inter_actor_queue``: the Train-to-Tune report queue
  that :mod:`ray_jobs.search.tune_handoff` waits on (a Ray 2.60 race, no public API).
* ``ray._private.state.state.get_cluster_config``: the autoscaler's node groups, for sizing a job
  on a cluster whose nodes start on demand (:mod:`ray_jobs.cluster.connect`; Ray Data reads it the same way).
* Ray's logger names under ``_internal``/``_private`` that :mod:`ray_jobs.console.logs` quiets.
* ``tune_controller.search_alg``: the scheduler frees a paused trial's search slot through it
  (:mod:`ray_jobs.search.early_stop`); ``TuneController`` is not public API.
* ``ray._private.runtime_env.packaging._get_excludes``: how ``ray job submit`` matches a
  working_dir upload's ``excludes``; the test of docs/cluster.md's submit command applies it.
* Environment variables Ray reads but does not document as settings: Train's health-check interval
  and preemption watcher, Tune's classic console output and slow-loop warning threshold.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import ray

__all__ = [
    "RAY_VERSION",
    "RayCompatError",
    "RESOLVERS",
    "check_installed_ray",
    "train_to_tune_queue",
    "autoscaler_cluster_config",
    "train_pg_cleaner_logger",
    "token_notice_logger",
    "train_report_logger",
    "train_health_check_interval_env",
    "train_preemption_watcher_env",
    "tune_new_output_env",
    "tune_warn_threshold_env",
    "release_search_slot",
    "upload_excludes",
]

RAY_VERSION: str = ray.__version__
# The Ray these private names were read from (pyproject pins ray==2.60.*).
WRITTEN_FOR = "2.60"


class RayCompatError(RuntimeError):
    """A private Ray API or setting the job relies on is not there in the installed Ray."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(
            f"Ray {RAY_VERSION}: {what} is missing ({detail}); hiast-select uses it as Ray "
            f"{WRITTEN_FOR} has it (ray_jobs/ray_compat.py). "
            f"Install ray=={WRITTEN_FOR}.* or adapt that module."
        )
        self.what = what


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise RayCompatError(f"module {name}", str(e)) from e


def _attr(obj: Any, name: str, where: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError as e:
        raise RayCompatError(f"{where}.{name}", str(e)) from e


def _module_file(name: str) -> str:
    """The source file of a Ray module, found without importing it (a logger name is all we need)."""
    path = os.path.join(os.path.dirname(ray.__file__), *name.split(".")[1:]) + ".py"
    if not os.path.isfile(path):
        raise RayCompatError(f"module {name}", f"no file {path}")
    return path


def _env_var(module: str, constant: str | None, name: str, in_set: str | None = None) -> str:
    """``name``, once the Ray module that reads it is seen to still read it (a constant holding
    the name, or a set of the env vars Ray tracks)."""
    mod = _module(module)
    if constant is not None and _attr(mod, constant, module) != name:
        raise RayCompatError(f"setting {name}", f"{module}.{constant} is {getattr(mod, constant)!r}")
    if in_set is not None and name not in _attr(mod, in_set, module):
        raise RayCompatError(f"setting {name}", f"not in {module}.{in_set}")
    return name


# -- Train-in-Tune report hand-off (search.tune_handoff) -------------------------------------------

_SESSION_MODULE = "ray.train._internal.session"


def _resolve_train_session() -> Callable[[], Any]:
    module = _module(_SESSION_MODULE)
    # The queue is an instance attribute made on first use; its creator on the class shows the
    # session still has it.
    cls = _attr(module, "_TrainSession", _SESSION_MODULE)
    _attr(cls, "_get_or_create_inter_actor_queue", f"{_SESSION_MODULE}._TrainSession")
    return _attr(module, "get_session", _SESSION_MODULE)


def train_to_tune_queue() -> Any | None:
    """The queue that carries this Tune trial's Train reports to Tune (a ``ray.util.queue.Queue``),
    or None outside a Train-in-Tune trial or before Train reported anything."""
    session = _resolve_train_session()()
    if session is None:
        return None
    if not hasattr(session, "_inter_actor_queue"):
        raise RayCompatError(
            f"{type(session).__name__}._inter_actor_queue", "the session has no such attribute"
        )
    return session._inter_actor_queue


# -- Autoscaler node groups (cluster.connect) ------------------------------------------------------


def _resolve_cluster_config() -> Callable[[], Any]:
    state = _attr(_module("ray._private.state"), "state", "ray._private.state")
    return _attr(state, "get_cluster_config", "ray._private.state.state")


def autoscaler_cluster_config() -> Any | None:
    """The autoscaler's published cluster config (``node_group_configs``), or None where none is
    published. Needs a connected Ray; a failure to read it raises as Ray raised it."""
    return _resolve_cluster_config()()


# -- Ray's own logger names (console.logs) ---------------------------------------------------------


def train_pg_cleaner_logger() -> str:
    """Ray Train's placement-group cleaner (polls the state API once a second)."""
    name = "ray.train.v2._internal.execution.controller.placement_group_cleaner"
    _module_file(name)
    return name


def token_notice_logger() -> str:
    """Ray's notice that token authentication is on."""
    name = "ray._private.authentication.authentication_token_setup"
    _module_file(name)
    return name


def train_report_logger() -> str:
    """Ray Train's per-report INFO line: its logger is named by the module's file path."""
    return _module_file("ray.train.v2._internal.execution.context")


# -- Settings Ray reads from the environment -------------------------------------------------------


def train_health_check_interval_env() -> str:
    """How often Train's controller polls its workers (and drains their reports), seconds."""
    return _env_var(
        "ray.train.v2._internal.constants",
        "HEALTH_CHECK_INTERVAL_S_ENV_VAR",
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S",
    )


def train_preemption_watcher_env() -> str:
    """Whether each Train run starts a preemption-watcher actor ("0": no)."""
    return _env_var(
        "ray.train.v2._internal.constants",
        "ENABLE_PREEMPTION_WATCHER_ENV_VAR",
        "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER",
    )


def tune_new_output_env() -> str:
    """Tune's newer console output ("0": the classic one)."""
    return _env_var("ray.air.constants", None, "RAY_AIR_NEW_OUTPUT", in_set="AIR_ENV_VARS")


def tune_warn_threshold_env() -> str:
    """Seconds one step of Tune's event loop may take before Tune warns."""
    return _env_var("ray.tune.constants", None, "TUNE_WARN_THRESHOLD_S", in_set="TUNE_ENV_VARS")


# -- Tune's controller, as a scheduler sees it (search.early_stop) ---------------------------------


def _resolve_search_alg() -> None:
    cls = _attr(
        _module("ray.tune.execution.tune_controller"), "TuneController", "ray.tune.execution.tune_controller"
    )
    _attr(cls, "search_alg", "TuneController")
    searcher = _attr(_module("ray.tune.search"), "SearchAlgorithm", "ray.tune.search")
    _attr(searcher, "on_trial_complete", "ray.tune.search.SearchAlgorithm")


def release_search_slot(tune_controller: Any, trial_id: str) -> None:
    """Tell the search algorithm a trial is complete, which only frees its concurrency slot: Tune's
    ``max_concurrent_trials`` counts a paused trial as live."""
    search_alg = _attr(tune_controller, "search_alg", type(tune_controller).__name__)
    _attr(search_alg, "on_trial_complete", type(search_alg).__name__)(trial_id)


# -- How a job's working_dir upload is filtered (docs/cluster.md) -----------------------------------


def _resolve_excludes() -> Callable[..., Callable[[Any], bool]]:
    module = "ray._private.runtime_env.packaging"
    return _attr(_module(module), "_get_excludes", module)


def upload_excludes(root: os.PathLike[str], patterns: list[str]) -> Callable[[Any], bool]:
    """Ray's matcher for a working_dir upload's ``excludes``: path -> whether ``ray job submit``
    leaves it out."""
    return _resolve_excludes()(root, patterns)


# Name -> a check that the item resolves on the installed Ray (raises RayCompatError otherwise).
RESOLVERS: dict[str, Callable[[], object]] = {
    "train session and its Train-to-Tune queue": _resolve_train_session,
    "autoscaler cluster config": _resolve_cluster_config,
    "Train placement-group cleaner logger": train_pg_cleaner_logger,
    "token authentication notice logger": token_notice_logger,
    "Train report logger": train_report_logger,
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": train_health_check_interval_env,
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": train_preemption_watcher_env,
    "RAY_AIR_NEW_OUTPUT": tune_new_output_env,
    "TUNE_WARN_THRESHOLD_S": tune_warn_threshold_env,
    "TuneController.search_alg": _resolve_search_alg,
    "working_dir upload excludes": _resolve_excludes,
}


def check_installed_ray() -> None:
    """Resolve every private item; the first one missing raises :class:`RayCompatError`."""
    for resolve in RESOLVERS.values():
        resolve()
