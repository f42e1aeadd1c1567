"""Label-free early stopping end to end on CPU: 5 candidates, 2 at a time, cut after round 1 of 2."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import RayHead
from jobtools import write_config

from ray_jobs.testing.faults import records

pytestmark = pytest.mark.slow

IDS = {"default", "alpha=0.1", "alpha=0.3", "alpha=0.7", "alpha=0.9"}


@pytest.fixture(scope="module")
def early_stopped(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("early-stop")
    config = write_config(
        root / "tiny.yaml",
        **{
            "experiment": "early",
            "selection.parameters": {"alpha": [0.1, 0.3, 0.5, 0.7, 0.9]},
            "selection.early_stop": {"after_round": 1, "keep": 0.5},
        },
    )
    marker = root / "marker"
    proc = ray_head.run_select(config, root / "results", faults={"marker_dir": str(marker)}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return {"experiment": root / "results" / "early", "marker": marker, "output": proc.stdout + proc.stderr}


def test_bottom_of_the_sweep_stops_after_round_one(early_stopped: dict) -> None:
    experiment: Path = early_stopped["experiment"]
    decision = json.loads((experiment / "early_stop.json").read_text())
    stopped = set(decision["stopped"])
    ranks = {cid: r["rank"] for cid, r in decision["candidates"].items()}
    # keep 0.5 of the 4 candidates besides the default: the best ceil(2) = 2 go on, and the default.
    others = sorted((r, cid) for cid, r in ranks.items() if cid != "default")
    assert stopped == {cid for _, cid in others[2:]}
    assert 1 <= len(stopped) <= 2
    assert set(decision["candidates"]) == IDS
    # Rung outputs of every candidate (replicate 0), written before its round-1 report.
    assert {p.stem for p in (experiment / "rung" / "1" / "predictions").iterdir()} == IDS

    table = pd.read_parquet(experiment / "candidates.parquet").set_index("candidate_id")
    assert set(table.index) == IDS
    assert set(table.index[table["status"] == "stopped"]) == stopped
    assert (table.loc[sorted(IDS - stopped), "status"] == "done").all()
    for col in ("rung_score", "rung_rank", "rung_f_miou"):
        assert table[col].notna().all(), col  # every candidate reached the rung
    # The rung's ranking agrees with the cut: the stopped ones rank below the survivors.
    survivors = table.loc[sorted(IDS - stopped - {"default"})]
    assert table.loc[sorted(stopped), "rung_rank"].min() > survivors["rung_rank"].max()
    assert table.loc[sorted(stopped), "f_miou"].isna().all()  # not in the final vote

    choice = json.loads((experiment / "choice.json").read_text())
    assert choice["schema_version"] == 3
    assert choice["early_stop"] == {
        "after_round": 1,
        "keep": 0.5,
        "stopped": decision["stopped"],
    }
    assert choice["candidate_id"] in IDS - stopped
    assert choice["failed"] == [] and choice["finished"] == 5 - len(stopped) and choice["total"] == 5
    assert "stopped" in early_stopped["output"] and "after round 1" in early_stopped["output"]


def test_stopped_candidates_trained_one_round_and_survivors_resumed_at_round_two(early_stopped: dict) -> None:
    experiment: Path = early_stopped["experiment"]
    marker: Path = early_stopped["marker"]
    stopped = set(json.loads((experiment / "early_stop.json").read_text())["stopped"])
    rounds: dict[str, list[int]] = {}
    for r in records(marker, "rounds"):
        rounds.setdefault(r["candidate_id"], []).append(r["round"])
    starts: dict[str, list[int]] = {}
    for s in records(marker, "starts"):
        starts.setdefault(s["candidate_id"], []).append(s["resumed_round"])
    for cid in stopped:
        assert rounds[cid] == [1], (cid, rounds)  # nothing trained in the background while paused
        assert starts[cid] == [0]  # never resumed
    resumed = [cid for cid in IDS - stopped if starts[cid] == [0, 1]]
    for cid in IDS - stopped:
        assert rounds[cid] == [1, 2], (cid, rounds)  # round 1 was not trained again
        # Paused at the rung and resumed from its round-1 checkpoint; except the last to reach
        # the rung, which is not paused: the decision comes while it waits.
        assert starts[cid] in ([0, 1], [0]), (cid, starts)
    assert len(resumed) >= len(IDS - stopped) - 1


def test_resumed_job_keeps_the_decision(ray_head: RayHead, tmp_path: Path) -> None:
    """The driver dies right after the cut; --resume trains no stopped candidate again."""
    ids = {"default", "alpha=0.3", "alpha=0.7"}
    # keep 0.3 of the 2 candidates besides the default: one place; one candidate stopped.
    config = write_config(tmp_path / "tiny.yaml", **{"selection.early_stop": {"after_round": 1, "keep": 0.3}})
    storage, marker = tmp_path / "results", tmp_path / "marker"
    faults = {"marker_dir": str(marker)}
    decision_file = storage / "tiny" / "early_stop.json"
    driver = ray_head.start_select(config, storage, faults=faults, log=tmp_path / "first.log")
    deadline = time.monotonic() + 600
    try:
        while not decision_file.exists():
            assert driver.poll() is None, (tmp_path / "first.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "no early-stopping decision in time"
            time.sleep(0.5)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver dies just after the decision
        driver.wait(timeout=30)
    decided = decision_file.read_text()
    stopped = set(json.loads(decided)["stopped"])
    assert stopped and "default" not in stopped

    proc = ray_head.run_select(config, storage, "--resume", faults=faults, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert decision_file.read_text() == decided  # the decision stands
    starts: dict[str, list[int]] = {}
    for s in records(marker, "starts"):
        starts.setdefault(s["candidate_id"], []).append(s["resumed_round"])
    for cid in stopped:
        assert starts[cid] == [0], (cid, starts)  # never trained again
    table = pd.read_parquet(storage / "tiny" / "candidates.parquet").set_index("candidate_id")
    assert set(table.index[table["status"] == "stopped"]) == stopped
    assert (table.loc[sorted(ids - stopped), "status"] == "done").all()
    choice = json.loads((storage / "tiny" / "choice.json").read_text())
    assert choice["candidate_id"] in ids - stopped and choice["early_stop"]["stopped"] == sorted(
        stopped, key=json.loads(decided)["stopped"].index
    )
