"""ray_compat: every private Ray item resolves on the installed Ray, and a missing one stops with a
message naming the Ray version and what is missing."""

from __future__ import annotations

import importlib
import sys
import types

import pytest
import ray

from ray_jobs import ray_compat
from ray_jobs.ray_compat import RESOLVERS, RayCompatError


@pytest.mark.parametrize("name", sorted(RESOLVERS))
def test_every_private_item_resolves_on_the_installed_ray(name: str) -> None:
    RESOLVERS[name]()


def test_the_check_of_the_installed_ray_passes() -> None:
    ray_compat.check_installed_ray()


@pytest.mark.parametrize("name", sorted(RESOLVERS))
def test_a_missing_item_names_the_ray_version_and_the_item(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """No Ray module importable and no module file on disk: every resolver must say so clearly."""

    def no_module(module: str) -> types.ModuleType:
        raise ImportError(f"No module named {module!r}")

    monkeypatch.setattr(ray_compat.importlib, "import_module", no_module)
    monkeypatch.setattr(ray_compat.os.path, "isfile", lambda path: False)
    with pytest.raises(RayCompatError, match=rf"^Ray {ray.__version__}: .* is missing") as info:
        RESOLVERS[name]()
    assert "ray_compat" in str(info.value)


def test_a_removed_module_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import raise, as a Ray without the module would.
    monkeypatch.setitem(sys.modules, "ray.train._internal.session", None)
    with pytest.raises(RayCompatError, match=r"module ray\.train\._internal\.session is missing"):
        ray_compat.train_to_tune_queue()


def test_a_removed_attribute_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray._private.state import state

    monkeypatch.delattr(type(state), "get_cluster_config")
    with pytest.raises(
        RayCompatError, match=rf"Ray {ray.__version__}: ray\._private\.state\.state\.get_cluster_config"
    ):
        ray_compat.autoscaler_cluster_config()


def test_a_renamed_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    constants = importlib.import_module("ray.train.v2._internal.constants")
    monkeypatch.setattr(constants, "HEALTH_CHECK_INTERVAL_S_ENV_VAR", "RAY_TRAIN_SOMETHING_ELSE")
    with pytest.raises(RayCompatError, match=r"setting RAY_TRAIN_HEALTH_CHECK_INTERVAL_S is missing"):
        ray_compat.train_health_check_interval_env()
    tune_constants = importlib.import_module("ray.tune.constants")
    monkeypatch.setattr(tune_constants, "TUNE_ENV_VARS", set())
    with pytest.raises(RayCompatError, match=r"setting TUNE_WARN_THRESHOLD_S is missing"):
        ray_compat.tune_warn_threshold_env()


def test_the_train_to_tune_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    session_module = importlib.import_module("ray.train._internal.session")
    # Outside a Train-in-Tune trial there is no session, hence no queue.
    monkeypatch.setattr(session_module, "get_session", lambda: None)
    assert ray_compat.train_to_tune_queue() is None
    queue = object()
    monkeypatch.setattr(
        session_module, "get_session", lambda: types.SimpleNamespace(_inter_actor_queue=queue)
    )
    assert ray_compat.train_to_tune_queue() is queue
    monkeypatch.setattr(session_module, "get_session", lambda: types.SimpleNamespace())
    with pytest.raises(RayCompatError, match=r"SimpleNamespace\._inter_actor_queue is missing"):
        ray_compat.train_to_tune_queue()


def test_release_search_slot() -> None:
    done: list[str] = []
    controller = types.SimpleNamespace(search_alg=types.SimpleNamespace(on_trial_complete=done.append))
    ray_compat.release_search_slot(controller, "t1")
    assert done == ["t1"]
    with pytest.raises(RayCompatError, match=r"SimpleNamespace\.search_alg is missing"):
        ray_compat.release_search_slot(types.SimpleNamespace(), "t1")


def test_logger_names_are_ray_modules() -> None:
    assert ray_compat.train_pg_cleaner_logger().startswith("ray.train.")
    assert ray_compat.train_report_logger().endswith("context.py")
