"""Faults injected into the CPU job: a killed Train worker and a killed driver, in one search.

(A candidate that always fails: test_mlflow.py, whose search has one. A lost node:
test_multinode.py. A driver killed after early stopping's cut: test_early_stop_job.py.)

The faults are injected by ``raytest.faults`` around the Train loop of a job run through
``raytest.fault_job`` (the job itself has no test hook); every training start leaves a record in
the marker folder, so the tests count what was (re)trained.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import RayHead
from jobtools import TINY_IDS, check_outputs, training_starts, write_config

pytestmark = pytest.mark.slow


def test_killed_worker_and_killed_driver_resume_from_their_checkpoints(
    ray_head: RayHead, submitted: dict, tmp_path: Path
) -> None:
    """Two faults in one search. A Train worker dies after its candidate's round 1: Train restarts
    the worker group from the round-1 checkpoint. Then, once a candidate has finished and the killed
    one has restarted, the driver dies: ``--resume`` trains nothing that had finished."""
    markers = tmp_path / "markers"
    markers.mkdir()
    config = write_config(tmp_path / "tiny.yaml")
    storage = tmp_path / "results"
    results = storage / "tiny" / "results"
    faults = {"marker_dir": str(markers), "kill_after_round": 1}
    driver = ray_head.start_select(config, storage, faults=faults, log=tmp_path / "first.log")

    def killed_one_restarted() -> bool:
        if not (markers / "killed").exists():
            return False
        killed = json.loads((markers / "killed").read_text())["candidate_id"]
        return any(s["candidate_id"] == killed and s["resumed_round"] == 1 for s in training_starts(markers))

    deadline = time.monotonic() + 400
    try:
        while not (list(results.glob("*.json")) and killed_one_restarted()):
            assert driver.poll() is None, (tmp_path / "first.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "no finished candidate and restarted worker in time"
            time.sleep(0.5)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver dies mid-search, no clean-up of its own
        driver.wait(timeout=30)
    finished_before = {p.name.split(".rep")[0] for p in results.glob("*.json")}
    assert finished_before and len(finished_before) < 3
    assert not (storage / "tiny" / "choice.json").exists()
    killed = json.loads((markers / "killed").read_text())["candidate_id"]
    starts_before = training_starts(markers)
    # Train's own restart of the killed candidate: once from scratch, then from its round-1 checkpoint.
    mine = [s["resumed_round"] for s in starts_before if s["candidate_id"] == killed]
    assert mine[:2] == [0, 1], starts_before

    proc = ray_head.run_select(config, storage, "--resume", faults={"marker_dir": str(markers)})
    assert proc.returncode == 0, proc.stderr[-6000:]
    _, choice = check_outputs(storage / "tiny", TINY_IDS)
    per_candidate = Counter(s["candidate_id"] for s in training_starts(markers))
    for cid in finished_before:
        assert per_candidate[cid] == Counter(s["candidate_id"] for s in starts_before)[cid], (
            f"{cid} was trained again after the restart: {per_candidate}"
        )
    assert set(per_candidate) == TINY_IDS
    # Only one warm-up: the stored one was reused.
    assert len(list((storage / "tiny" / "warmup").iterdir())) == 1
    # Neither fault changed the choice.
    baseline = json.loads((submitted["experiment"] / "choice.json").read_text())
    assert (choice["parameters"], choice["candidate_id"]) == (
        baseline["parameters"],
        baseline["candidate_id"],
    )
