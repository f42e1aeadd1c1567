"""The fault-injecting driver (tests/raytest): what it changes for its own job, and that the job
itself carries no test hook. The faults at work are checked end to end in test_fault_tolerance.py,
test_multinode.py and test_early_stop_job.py."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from jobtools import REPO
from raytest import fault_job, faults

from ray_jobs import console, worker
from ray_jobs.search import trainable, tune_grid


def test_fault_env_names_the_faults_and_puts_the_support_package_on_the_path() -> None:
    env = faults.fault_env({"marker_dir": "/m"}, base={"PYTHONPATH": "/work/checkout"})
    assert json.loads(env[faults.FAULTS_ENV]) == {"marker_dir": "/m"}
    assert env["PYTHONPATH"].split(":") == [str(REPO / "tests"), "/work/checkout"]
    assert faults.fault_env({}, base={})["PYTHONPATH"] == str(REPO / "tests")


def test_the_fault_job_adds_the_faults_to_the_jobs_own_ray_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(faults.FAULTS_ENV, '{"fail_candidates": ["a"]}')
    plain = console.ray_init_options(console.NORMAL)
    options = fault_job.with_faults_env(console.NORMAL)
    env = options["runtime_env"]
    # The job's own settings stand: its worker logging hook, its verbosity.
    assert env["worker_process_setup_hook"] == plain["runtime_env"]["worker_process_setup_hook"]
    assert {k: v for k, v in options.items() if k != "runtime_env"} == {
        k: v for k, v in plain.items() if k != "runtime_env"
    }
    assert env["env_vars"] == {
        **plain["runtime_env"]["env_vars"],
        faults.FAULTS_ENV: '{"fail_candidates": ["a"]}',
    }
    assert env["py_modules"] == [str(Path(faults.__file__).parent)]


def test_the_fault_job_refuses_to_run_without_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.FAULTS_ENV, raising=False)
    with pytest.raises(SystemExit, match=faults.FAULTS_ENV):
        fault_job.main()


def test_the_faulty_trial_is_the_jobs_trial_by_name_and_signature() -> None:
    # Tune names trials (and their folders) after the trainable.
    assert faults.candidate_trainable.__name__ == trainable.candidate_trainable.__name__
    assert inspect.signature(faults.candidate_trainable).parameters.keys() == (
        inspect.signature(trainable.candidate_trainable).parameters.keys()
    )
    assert faults.faulty_loop.__module__ == "raytest.faults"  # Train pickles it by reference


def test_the_product_has_no_test_hook() -> None:
    sources = {
        p: p.read_text() for pkg in ("ray_jobs", "hiast", "selection") for p in (REPO / pkg).rglob("*.py")
    }
    assert [p for p, text in sources.items() if "HIAST_SELECT_TEST" in text or "raytest" in text] == []
    assert not (REPO / "ray_jobs" / "testing").exists() and not (REPO / "ray_jobs" / "hooks.py").exists()


def test_the_names_the_fault_job_swaps_are_the_ones_the_job_uses() -> None:
    """fault_job replaces the Tuner's trainable and faults.candidate_trainable the trainable's Train
    loop, each by its module-level name: a name the job no longer reads would silently inject nothing."""
    assert tune_grid.candidate_trainable is trainable.candidate_trainable
    assert trainable.train_loop_per_worker is worker.train_loop_per_worker
