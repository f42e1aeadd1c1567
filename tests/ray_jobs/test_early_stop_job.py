"""Label-free early stopping end to end on CPU: 3 candidates, 2 at a time, cut after round 1 of 2.

One search serves every test here: its driver is SIGKILLed right after the cut, then ``--resume``
finishes it. So the tests see the cut, the survivors going on from their round-1 checkpoints, and
a resumed job keeping the decision rather than making another.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import RayHead
from jobtools import TINY_IDS, write_config
from raytest.faults import records

from ray_jobs.cluster import leaked_placement_groups

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def early_stopped(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("early-stop")
    # keep 0.5 of the 2 candidates besides the default: ceil(1.0) = 1 place, so one is stopped.
    config = write_config(root / "tiny.yaml", **{"selection.early_stop": {"after_round": 1, "keep": 0.5}})
    storage, marker = root / "results", root / "marker"
    faults = {"marker_dir": str(marker)}
    decision_file = storage / "tiny" / "early_stop.json"
    driver = ray_head.start_select(config, storage, faults=faults, log=root / "first.log")
    deadline = time.monotonic() + 600
    try:
        while not decision_file.exists():
            assert driver.poll() is None, (root / "first.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "no early-stopping decision in time"
            time.sleep(0.5)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver dies just after the decision
        driver.wait(timeout=30)
    decided = decision_file.read_text()
    proc = ray_head.run_select(config, storage, "--resume", faults=faults, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return {
        "experiment": storage / "tiny",
        "marker": marker,
        "decided": decided,
        "output": proc.stdout + proc.stderr,
    }


def test_bottom_of_the_sweep_stops_after_round_one(early_stopped: dict) -> None:
    experiment: Path = early_stopped["experiment"]
    decision = json.loads((experiment / "early_stop.json").read_text())
    stopped = set(decision["stopped"])
    ranks = {cid: r["rank"] for cid, r in decision["candidates"].items()}
    others = sorted((r, cid) for cid, r in ranks.items() if cid != "default")
    assert stopped == {cid for _, cid in others[1:]} and len(stopped) == 1
    assert set(decision["candidates"]) == TINY_IDS
    # Rung outputs of every candidate (replicate 0), written before its round-1 report.
    assert {p.stem for p in (experiment / "rung" / "1" / "predictions").iterdir()} == TINY_IDS

    table = pd.read_parquet(experiment / "candidates.parquet").set_index("candidate_id")
    assert set(table.index) == TINY_IDS
    assert set(table.index[table["status"] == "stopped"]) == stopped
    assert (table.loc[sorted(TINY_IDS - stopped), "status"] == "done").all()
    # Every candidate reached the rung. (rung_score may be NaN: a two-stage rule, the default,
    # leaves the candidates its first stage drops unscored, and ranks them last.)
    for col in ("rung_rank", "rung_f_miou"):
        assert table[col].notna().all(), col
    assert table.loc[sorted(TINY_IDS - {"default"}), "rung_score"].notna().any()
    # The rung's ranking agrees with the cut: the stopped one ranks below the survivor.
    survivors = table.loc[sorted(TINY_IDS - stopped - {"default"})]
    assert table.loc[sorted(stopped), "rung_rank"].min() > survivors["rung_rank"].max()
    assert table.loc[sorted(stopped), "f_miou"].isna().all()  # not in the final vote

    choice = json.loads((experiment / "choice.json").read_text())
    assert choice["schema_version"] == 5
    assert choice["early_stop"] == {"after_round": 1, "keep": 0.5, "stopped": decision["stopped"]}
    assert choice["candidate_id"] in TINY_IDS - stopped
    assert choice["failed"] == [] and choice["finished"] == 2 and choice["total"] == 3
    assert "stopped" in early_stopped["output"]


def test_stopped_candidate_trained_one_round_and_survivors_went_on(
    early_stopped: dict,
) -> None:
    experiment: Path = early_stopped["experiment"]
    marker: Path = early_stopped["marker"]
    stopped = set(json.loads((experiment / "early_stop.json").read_text())["stopped"])
    starts, rounds = records(marker, "starts"), records(marker, "rounds")
    trace = "\n".join(json.dumps(r) for r in sorted(starts + rounds, key=lambda r: r["time"]))
    reported = {cid: [r["round"] for r in rounds if r["candidate_id"] == cid] for cid in TINY_IDS}
    started = {cid: [s["resumed_round"] for s in starts if s["candidate_id"] == cid] for cid in TINY_IDS}
    for cid in stopped:
        assert reported[cid] == [1], trace  # nothing trained in the background while paused
        assert started[cid] == [0], trace  # never resumed, neither at the rung nor by --resume
    survivors = TINY_IDS - stopped
    for cid in survivors:
        assert reported[cid] == [1, 2], trace  # round 1 was never trained again
        assert started[cid][0] == 0, trace
    # Paused at the rung, then resumed from the round-1 checkpoint: every survivor but perhaps the
    # last to reach the rung (not paused: the decision comes while it waits).
    assert sum(1 in started[cid][1:] for cid in survivors) >= len(survivors) - 1, trace
    # Every start (the rung's resume, the driver's --resume) began at its candidate's last report.
    for s in starts:
        before = [
            r["round"] for r in rounds if r["candidate_id"] == s["candidate_id"] and r["time"] < s["time"]
        ]
        assert s["resumed_round"] == max(before, default=0), trace


def test_resumed_job_keeps_the_decision(early_stopped: dict) -> None:
    experiment: Path = early_stopped["experiment"]
    decided = early_stopped["decided"]
    assert (experiment / "early_stop.json").read_text() == decided  # not decided again
    choice = json.loads((experiment / "choice.json").read_text())
    assert choice["early_stop"]["stopped"] == json.loads(decided)["stopped"]


def test_no_placement_group_outlives_the_killed_driver(early_stopped: dict, ray_head: RayHead) -> None:
    """A driver killed while a Train run starts can leave that run's placement group behind
    (ray_jobs.cluster.placement_groups); the resumed job removes it, or it holds a CPU of this cluster for
    every later test."""
    groups = ray_head.cluster.ray_list("placement-groups")
    jobs = ray_head.cluster.ray_list("jobs")
    assert leaked_placement_groups(groups, jobs) == [], groups
