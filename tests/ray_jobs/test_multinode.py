"""A real multi-node cluster on one machine loses a worker node in the middle of the search.

The cluster (conftest ``multinode``): a head that only holds the job's driver, and two worker
nodes, each its own ``ray start`` process group with 2 CPUs and one ``gpu_slot`` (a custom
resource standing in for a GPU). The job asks for ``ray.worker_resources: {gpu_slot: 1}``, so two
candidates train at once, one per node. The worker nodes also carry the trial-driver resource, so
trial drivers, their Train controllers and the vote actor live there too and can be lost.

Storage is object storage, as on a real cluster, where a lost node's disk goes with it: a local S3
server (conftest ``s3_server``, moto's) that every node and the driver reach through ``pyarrow.fs``
with the AWS SDK's own variables. The test reads the outputs back through an explicitly configured
``S3FileSystem``, not through that environment.

The test holds every candidate's first attempt after round 1 (``raytest.faults``) and
releases the ones on the other node, until one candidate has finished; then it SIGKILLs the node
that holds both the vote actor and a candidate in the middle of its rounds. Once that candidate has
restarted on the surviving node, it SIGKILLs the driver too, and ``--resume`` finishes the search
from what is on S3.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from conftest import REPO, WORKER_NAMES, MultiNode, S3Server
from jobtools import TINY_IDS, check_outputs, file_names, multinode_overrides, reports_settled, write_config
from raytest.faults import records, release

pytestmark = pytest.mark.slow


def _vote_actor(cluster: MultiNode, actor_id: str | None = None) -> dict | None:
    filters = [f"actor_id={actor_id}"] if actor_id else ["class_name=VoteActor", "state=ALIVE"]
    actors = cluster.cluster.ray_list("actors", *filters)
    return actors[0] if actors else None


def _node_names(cluster: MultiNode) -> dict[str, str]:
    return {n["node_id"]: n["node_name"] for n in cluster.cluster.ray_list("nodes")}


def _held(markers: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (markers / "held").glob("*.json")}


def test_lost_node_then_lost_driver_cost_only_what_they_were_running(
    multinode: MultiNode, s3_server: S3Server, submitted: dict, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    config = write_config(tmp_path / "tiny.yaml", **multinode_overrides(submitted))
    prefix = f"{S3Server.BUCKET}/runs-{uuid.uuid4().hex[:8]}"
    storage = f"s3://{prefix}"
    fs = s3_server.filesystem()
    results = f"{prefix}/tiny/results"
    driver = multinode.start_select(
        config, storage, faults={"marker_dir": str(markers), "hold_after_round": 1}, log=tmp_path / "job.log"
    )
    log = tmp_path / "job.log"
    deadline = time.monotonic() + 500
    actor, victim, killed_at = None, None, None
    released: set[str] = set()
    try:
        while killed_at is None:
            assert driver.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, f"no kill after 500 s:\n{log.read_text()[-4000:]}"
            if actor is None:
                actor = _vote_actor(multinode)
                if actor is not None:
                    victim = _node_names(multinode)[actor["node_id"]]
                    assert victim in WORKER_NAMES
            held = _held(markers)
            for name, h in held.items():  # everything held elsewhere goes on
                if h["node_name"] != victim and victim is not None and name not in released:
                    release(markers, name)
                    released.add(name)
            on_victim = [name for name, h in held.items() if h["node_name"] == victim]
            if on_victim and file_names(fs, results) and reports_settled(markers):
                multinode.worker(victim).kill()
                killed_at = time.time()
                finished_before = {name.split(".rep")[0] for name in file_names(fs, results)}
                lost = held[on_victim[0]]["candidate_id"]
                release(markers)
            time.sleep(0.5)
        # Then the driver dies too, as soon as the lost candidate has restarted on the survivor:
        # `--resume` finishes the search from what is on S3.
        while not any(
            s["candidate_id"] == lost and s["node_name"] != victim for s in records(markers, "starts")
        ):
            assert driver.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, f"no restart after the loss:\n{log.read_text()[-4000:]}"
            time.sleep(0.2)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=30)
    assert "choice.json" not in file_names(fs, f"{prefix}/tiny"), log.read_text()[-4000:]
    proc = multinode.run_select(config, storage, "--resume", faults={"marker_dir": str(markers)})
    assert proc.returncode == 0, (log.read_text() + proc.stdout + proc.stderr)[-6000:]

    table, choice = check_outputs(f"{prefix}/tiny", TINY_IDS, fs)
    baseline = json.loads((submitted["experiment"] / "choice.json").read_text())
    assert choice["parameters"] == baseline["parameters"]
    assert choice["candidate_id"] == baseline["candidate_id"]

    starts = records(markers, "starts")
    rounds = records(markers, "rounds")
    survivor = next(n for n in WORKER_NAMES if n != victim)
    # What happened, for the assertion messages: every start and round report, in time order.
    trace = "\n".join(json.dumps(r) for r in sorted(starts + rounds, key=lambda r: r["time"]))
    trace += f"\nkilled {victim} at {killed_at} holding {lost}; finished before: {finished_before}"
    # Both nodes did work: wave one put one candidate on each.
    assert {s["node_name"] for s in starts} == set(WORKER_NAMES), trace
    # The candidate on the lost node trained round 1 there and round 2 on the survivor, from its checkpoint.
    mine = [s for s in starts if s["candidate_id"] == lost]
    assert [(s["resumed_round"], s["node_name"]) for s in mine][:2] == [(0, victim), (1, survivor)], trace
    # Candidates finished before the loss were not trained again.
    per_candidate = Counter(s["candidate_id"] for s in starts)
    assert finished_before and all(per_candidate[c] == 1 for c in finished_before), trace
    # Any restart (a candidate whose trial driver was on the lost node restarts too, and every
    # unfinished one after the driver's death) resumed from the last round that candidate had
    # reported, and every round was reported exactly once.
    for s in starts:
        before = [
            r["round"] for r in rounds if r["candidate_id"] == s["candidate_id"] and r["time"] < s["time"]
        ]
        assert s["resumed_round"] == max(before, default=0), trace
    assert Counter((r["candidate_id"], r["round"]) for r in rounds) == Counter(
        {(c, r): 1 for c in TINY_IDS for r in (1, 2)}
    ), trace
    # The vote actor was on the lost node: Ray restarted it on the survivor (it ended with the
    # killed driver's job; the resumed job's own actor read the stored predictions).
    after = _vote_actor(multinode, actor["actor_id"])
    assert after["num_restarts"] >= 1, after
    assert _node_names(multinode).get(after["node_id"]) == survivor

    # Ray's own storage is on S3 too: Tune's experiment state and each candidate's Train run.
    assert any(n.startswith("experiment_state") for n in file_names(fs, f"{prefix}/tiny"))
    train_runs = fs.get_file_info(pafs.FileSelector(f"{prefix}/tiny/train"))
    assert len([i for i in train_runs if i.type == pafs.FileType.Directory]) == 3
    assert not (REPO / "s3:").exists()  # nothing went to a local folder named after the URI
