"""The job's test hook does nothing unless the driver's environment asks for it."""

from __future__ import annotations

import os

import pytest

from ray_jobs import hooks


def loop(config: dict) -> None:
    config["ran"] = True


def doubling(inner):  # a wrapper as a test would name it: module:function
    def wrapped(config: dict) -> None:
        config["wrapped"] = True
        inner(config)

    return wrapped


def test_without_the_variables_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith(hooks.PREFIX)]:
        monkeypatch.delenv(key)
    assert hooks.runtime_env() is None
    assert hooks.wrap_worker_loop(loop) is loop


def test_the_variables_travel_and_the_loop_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hooks.LOOP_WRAPPER_ENV, f"{__name__}:doubling")
    monkeypatch.setenv(hooks.PREFIX + "FAULTS", "{}")
    monkeypatch.setenv("OTHER_VARIABLE", "stays home")
    assert hooks.runtime_env() == {
        "env_vars": {hooks.LOOP_WRAPPER_ENV: f"{__name__}:doubling", hooks.PREFIX + "FAULTS": "{}"}
    }
    config: dict = {}
    hooks.wrap_worker_loop(loop)(config)
    assert config == {"wrapped": True, "ran": True}


def test_a_malformed_wrapper_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hooks.LOOP_WRAPPER_ENV, "no_colon_here")
    with pytest.raises(ValueError, match="expected 'module:function'"):
        hooks.wrap_worker_loop(loop)
