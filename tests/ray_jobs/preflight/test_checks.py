"""ray_jobs.preflight.checks (no cluster): an earlier experiment under the same storage is resumed
only when asked and only with the same config; a started experiment is marked by its config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jobtools import write_config

from ray_jobs.config import load_job_config
from ray_jobs.preflight import CONFIG_SNAPSHOT, JobError, check_experiment, save_config
from ray_jobs.storage import ExperimentPaths


@pytest.fixture
def cfg(tmp_path: Path):
    return load_job_config(write_config(tmp_path / "c.yaml"))


def test_a_new_experiment_starts_with_or_without_resume(cfg, tmp_path: Path) -> None:
    paths = ExperimentPaths(str(tmp_path / "store"), cfg.experiment)
    assert check_experiment(cfg, paths, resume=False) is False
    assert check_experiment(cfg, paths, resume=True) is False  # --resume of nothing simply starts


def test_a_started_experiment_needs_resume_and_the_same_config(cfg, tmp_path: Path) -> None:
    paths = ExperimentPaths(str(tmp_path / "store"), cfg.experiment)
    save_config(cfg, paths)
    assert json.loads(Path(paths.root, CONFIG_SNAPSHOT).read_text()) == cfg.model_dump(mode="json")
    with pytest.raises(JobError, match="already holds the experiment 'tiny': pass --resume"):
        check_experiment(cfg, paths, resume=False)
    # Same config, but Tune saved nothing yet (the driver died before the search): a fresh Tuner.
    assert check_experiment(cfg, paths, resume=True) is False
    other = load_job_config(write_config(tmp_path / "d.yaml", **{"selftrain.rounds": 3}))
    with pytest.raises(JobError, match=r"config differs .* \(sections: selftrain\)"):
        check_experiment(other, paths, resume=True)
    # The ray section may change between a run and its resume (another cluster).
    moved = load_job_config(write_config(tmp_path / "e.yaml", **{"ray.max_concurrent_trials": 1}))
    assert check_experiment(moved, paths, resume=True) is False


def test_the_config_snapshot_is_written_once(cfg, tmp_path: Path) -> None:
    paths = ExperimentPaths(str(tmp_path / "store"), cfg.experiment)
    save_config(cfg, paths)
    other = load_job_config(write_config(tmp_path / "d.yaml", **{"selftrain.rounds": 3}))
    save_config(other, paths)
    assert json.loads(Path(paths.root, CONFIG_SNAPSHOT).read_text())["selftrain"]["rounds"] == 2
