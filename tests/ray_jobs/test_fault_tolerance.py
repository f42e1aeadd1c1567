"""Faults injected into the CPU job: a killed Train worker, a killed driver, a candidate that always fails.

The faults are injected by ``ray_jobs.testing.faults``, which the job's test hook
(``ray_jobs.hooks``) wraps around the Train loop when the driver's environment asks for it; every
training start leaves a record in the marker folder, so the tests count what was (re)trained.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from conftest import RayHead
from jobtools import TINY_IDS, check_outputs, training_starts, write_config

pytestmark = pytest.mark.slow


def test_killed_worker_resumes_from_its_round_checkpoint(
    ray_head: RayHead, submitted: dict, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    config = write_config(tmp_path / "tiny.yaml")
    proc = ray_head.run_select(
        config, tmp_path / "results", faults={"marker_dir": str(markers), "kill_after_round": 1}
    )
    assert proc.returncode == 0, proc.stderr[-6000:]

    killed = json.loads((markers / "killed").read_text())["candidate_id"]
    starts = training_starts(markers)
    per_candidate = Counter(s["candidate_id"] for s in starts)
    # The killed candidate started twice, the second time after its round-1 checkpoint.
    assert per_candidate[killed] == 2
    assert sorted(s["resumed_round"] for s in starts if s["candidate_id"] == killed) == [0, 1]
    assert all(n == 1 for cid, n in per_candidate.items() if cid != killed)

    _, choice = check_outputs(tmp_path / "results" / "tiny", TINY_IDS)
    baseline = json.loads((submitted["experiment"] / "choice.json").read_text())
    assert choice["parameters"] == baseline["parameters"]
    assert choice["candidate_id"] == baseline["candidate_id"]


def test_killed_driver_resumes_without_retraining_finished_candidates(
    ray_head: RayHead, tmp_path: Path
) -> None:
    """Also the DDP path: two Train workers per candidate (half a CPU each, two candidates at once)."""
    markers = tmp_path / "markers"
    markers.mkdir()
    config = write_config(tmp_path / "tiny.yaml", **{"ray.num_workers": 2, "ray.cpus_per_worker": 0.5})
    storage = tmp_path / "results"
    faults = {"marker_dir": str(markers)}
    driver = ray_head.start_select(config, storage, faults=faults, log=tmp_path / "first.log")
    results = storage / "tiny" / "results"
    deadline = time.monotonic() + 400
    try:
        while not list(results.glob("*.json")):
            assert driver.poll() is None, (tmp_path / "first.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "no candidate finished in time"
            time.sleep(0.5)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver dies mid-search, no clean-up of its own
        driver.wait(timeout=30)
    finished_before = {p.name.split(".rep")[0] for p in results.glob("*.json")}
    assert finished_before and len(finished_before) < 3
    assert not (storage / "tiny" / "choice.json").exists()

    proc = ray_head.run_select(config, storage, "--resume", faults=faults)
    assert proc.returncode == 0, proc.stderr[-6000:]
    check_outputs(storage / "tiny", TINY_IDS)
    per_candidate = Counter(s["candidate_id"] for s in training_starts(markers))
    for cid in finished_before:
        assert per_candidate[cid] == 1, f"{cid} was trained again after the restart: {per_candidate}"
    assert set(per_candidate) == TINY_IDS
    # Only one warm-up: the stored one was reused.
    assert len(list((storage / "tiny" / "warmup").iterdir())) == 1


def test_failed_candidate_is_reported_and_the_vote_goes_on(ray_head: RayHead, tmp_path: Path) -> None:
    """alpha=0.7 fails at every start; with two replicates the others still vote (seed agreement too)."""
    config = write_config(
        tmp_path / "tiny.yaml",
        **{"ray.trial_max_failures": 0, "ray.worker_max_failures": 0, "selection.replicates": 2},
    )
    proc = ray_head.run_select(config, tmp_path / "results", faults={"fail_candidates": ["alpha=0.7"]})
    assert proc.returncode == 0, proc.stderr[-6000:]
    # The error reaches the console, by the candidate's name; the summary still closes the output.
    assert "alpha=0.7 [rep 0]: FAILED: RuntimeError: candidate 'alpha=0.7': failure injected" in proc.stderr
    assert proc.stdout.splitlines()[-3].startswith("Failed: alpha=0.7")
    table, choice = check_outputs(tmp_path / "results" / "tiny", TINY_IDS)
    rows = table.set_index("candidate_id")
    assert rows.loc["alpha=0.7", "status"] == "failed"
    assert "failure injected" in rows.loc["alpha=0.7", "error"]
    assert pd.isna(rows.loc["alpha=0.7", "f_miou"])
    assert choice["failed"] == ["alpha=0.7"]
    assert any("alpha=0.7" in n and "failed" in n for n in choice["notes"])
    assert choice["parameters"]["alpha"] in (0.3, 0.5)
    for cid in ("default", "alpha=0.3"):
        assert rows.loc[cid, "status"] == "done"
        assert rows.loc[cid, "replicates"] == 2
        assert 0 <= rows.loc[cid, "seed_agreement"] <= 1
        assert 0 <= rows.loc[cid, "true_miou__rep1"] <= 1
        assert 0 <= rows.loc[cid, "f_miou__rep1"] <= 1  # replicate 1's own vote
        assert (tmp_path / "results" / "tiny" / "predictions" / "rep1" / f"{cid}.parquet").is_file()
    # Two independent warm-ups, one per replicate.
    assert len(list((tmp_path / "results" / "tiny" / "warmup").iterdir())) == 2
