"""The selection job end to end on CPU: as a driver joining a cluster, and through ``ray job submit``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import RayHead
from jobtools import REPO, write_config

pytestmark = pytest.mark.slow

PARAMETER_COLUMNS = ["alpha", "gamma", "lambda_i", "lambda_c", "lambda_cst", "k"]


def check_outputs(experiment: Path, expected_ids: set[str]) -> tuple[pd.DataFrame, dict]:
    """The three outputs exist and agree with each other; returns (table, choice)."""
    table = pd.read_parquet(experiment / "candidates.parquet")
    choice = json.loads((experiment / "choice.json").read_text())
    page = (experiment / "dashboard.html").read_text()
    assert set(table["candidate_id"]) == expected_ids
    for col in [*PARAMETER_COLUMNS, "sweep", "f_miou", "true_miou", "status"]:
        assert col in table.columns, col
    done = table[table["status"] == "done"]
    assert done["f_miou"].between(0, 1).all()
    assert done["true_miou"].between(0, 1).all()  # synthscape has target labels
    assert choice["parameters"] and choice["candidate_id"] in expected_ids
    assert choice["provisional"] is False
    assert "PROVISIONAL" not in page
    for cid in expected_ids:
        assert cid in page
        assert (experiment / "predictions" / f"{cid}.parquet").is_file() or cid in choice["failed"]
    return table, choice


@pytest.fixture(scope="session")
def baseline(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny search, fault-free, run once and shared (the fault tests compare against it)."""
    root = tmp_path_factory.mktemp("baseline")
    config = write_config(root / "tiny.yaml")
    start = time.perf_counter()
    proc = ray_head.run_select(config, root / "results")
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-5000:]
    return {
        "experiment": root / "results" / "tiny",
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "seconds": seconds,
    }


def test_job_writes_table_choice_and_dashboard(baseline: dict) -> None:
    experiment = baseline["experiment"]
    table, choice = check_outputs(experiment, {"default", "alpha=0.3", "alpha=0.7"})
    assert (table["status"] == "done").all()
    # The default configuration is trained once although it belongs to the alpha sweep.
    assert len(list((experiment / "results").glob("*.json"))) == 3
    # One Train run per trial, with its round checkpoints under the experiment.
    assert len(list((experiment / "train").iterdir())) == 3
    # What the job prints is choice.json.
    printed = json.loads(baseline["stdout"][baseline["stdout"].index("{") :])
    assert printed["parameters"] == choice["parameters"]
    # The provisional vote ran while the third candidate was training (2 of 3 finished).
    assert "provisional vote over 2 finished trial(s)" in baseline["stderr"] + baseline["stdout"]
    # Tune's own per-trial files are there for TensorBoard, with F-mIoU added after the vote.
    trial_dirs = [p for p in experiment.iterdir() if p.name.startswith("cand_")]
    assert len(trial_dirs) == 3
    for d in trial_dirs:
        assert (d / "params.json").is_file()
        assert any(p.name.endswith("hiast-hparams") for p in d.iterdir())


def test_rerun_without_resume_refuses(baseline: dict, ray_head: RayHead) -> None:
    experiment = baseline["experiment"]
    proc = ray_head.run_select(experiment.parent.parent / "tiny.yaml", experiment.parent)
    assert proc.returncode == 2
    assert "--resume" in proc.stderr


def test_ray_job_submit(ray_head: RayHead, tmp_path: Path) -> None:
    """``ray job submit --working-dir .`` on a local head: the job joins it and writes to storage."""
    config = write_config(tmp_path / "tiny.yaml", experiment="submitted")
    storage = tmp_path / "results"
    cmd = [
        sys.executable, "-m", "ray.scripts.scripts", "job", "submit",
        "--working-dir", ".",
        # Only the code travels: tests data, results and git history stay behind.
        "--runtime-env-json", json.dumps({"excludes": [".git", "results", "runs", "bench/results"]}),
        "--", "python", "-m", "ray_jobs.select", "--config", str(config), "--storage", str(storage),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=REPO, env=ray_head.client_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "succeeded" in proc.stdout + proc.stderr
    check_outputs(storage / "submitted", {"default", "alpha=0.3", "alpha=0.7"})
