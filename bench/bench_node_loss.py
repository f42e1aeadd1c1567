"""What losing a worker node costs the search: wall time with and without the loss, and the work redone.

A local multi-node cluster (``tests/raytest/local_cluster.py``): a head that holds only the
job's driver, and two worker nodes with 2 CPUs and one ``gpu_slot`` each (a custom resource
standing in for a GPU; the job asks for ``ray.worker_resources: {gpu_slot: 1}``), which also carry
the trial-driver resource (so trial drivers and the vote actor can be lost with a node).

The search: the default synthscape config with only its alpha sweep (5 candidates, 3 rounds each),
two candidates at a time, from one warm-up model trained beforehand. It runs twice, each time on a
fresh cluster and fresh storage: once untouched, once losing the worker node that holds the vote
actor (SIGKILL of every process of the node) right after a candidate on it has reported round 2,
i.e. while it trains round 3. The fault wrapper only records (every training
start and round report, with the node), it injects nothing. The lost node is not replaced: the rest
of the search runs on one node.

    nice -n 10 python bench/bench_node_loss.py [--keep]   # ~15 min on 2 idle cores
    -> bench/results/node_loss.json (written after each run)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Test support (local clusters, injected faults) lives with the tests and is not shipped.
sys.path.insert(0, str(REPO / "tests"))

import torch  # noqa: E402
from raytest.faults import FAULT_JOB, fault_env, records  # noqa: E402
from raytest.local_cluster import LocalCluster  # noqa: E402

from hiast.config import DEFAULT_CONFIG, load_config  # noqa: E402
from hiast.pipeline import run_warmup  # noqa: E402

WORKERS = ("worker-a", "worker-b")
WORKER_NODE = (2.0, {"gpu_slot": 1.0, "hiast_trial_driver": 1.0})
FAST_NODE_FAILURE = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def _config(path: Path, warmup: Path | None = None) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["experiment"] = "node-loss"
    raw["selection"]["parameters"] = {"alpha": raw["selection"]["parameters"]["alpha"]}
    raw["ray"]["worker_resources"] = {"gpu_slot": 1}
    if warmup is not None:
        raw["warmup"]["checkpoint"] = str(warmup)
    path.write_text(yaml.safe_dump(raw))
    return path


def _warmup(root: Path) -> tuple[Path, float]:
    """The warm-up model both runs start from (trained here once: it is not what differs)."""
    torch.set_num_threads(2)
    start = time.time()
    path = run_warmup(load_config(_config(root / "warmup.yaml")), root / "warmup", seed=0)
    return path, time.time() - start


def _vote_actor_node(cluster: LocalCluster) -> str | None:
    actors = cluster.ray_list("actors", "class_name=VoteActor", "state=ALIVE")
    if not actors:
        return None
    names = {n["node_id"]: n["node_name"] for n in cluster.ray_list("nodes")}
    return names.get(actors[0]["node_id"])


def _run(cluster: LocalCluster, config: Path, work: Path, lose_node: bool) -> dict[str, Any]:
    markers = work / "markers"
    markers.mkdir(parents=True)
    log = work / "job.log"
    cmd = [
        sys.executable,
        "-m",
        FAULT_JOB,  # the job, through the driver that injects the faults
        "--config",
        str(config),
        "--storage",
        str(work / "results"),
    ]
    env = cluster.client_env(**fault_env({"marker_dir": str(markers)}))
    start, load_before = time.time(), os.getloadavg()[0]
    driver = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    victim, killed_at = None, None
    while driver.poll() is None:
        if lose_node and killed_at is None:
            victim = victim or _vote_actor_node(cluster)
            on_victim = [
                r for r in records(markers, "rounds") if r["node_name"] == victim and r["round"] == 2
            ]
            if victim and on_victim:
                cluster.workers[victim].kill()
                killed_at = time.time()
        time.sleep(0.5)
    wall = time.time() - start
    if driver.returncode != 0:
        raise RuntimeError(f"the job failed ({driver.returncode}):\n{log.read_text()[-4000:]}")
    starts, rounds = records(markers, "starts"), records(markers, "rounds")
    choice = json.loads((work / "results" / "node-loss" / "choice.json").read_text())
    out: dict[str, Any] = {
        "wall_s": round(wall, 1),
        # 1-minute load average of the (shared, 2-core) machine when the run started and ended.
        "load_before": round(load_before, 1),
        "load_after": round(os.getloadavg()[0], 1),
        "first_training_start_s": round(min(s["time"] for s in starts) - start, 1),
        "last_round_reported_s": round(max(r["time"] for r in rounds) - start, 1),
        # The search itself, first training start to last round report: less exposed to the
        # machine's load during Ray's start-up than the wall time.
        "search_s": round(max(r["time"] for r in rounds) - min(s["time"] for s in starts), 1),
        "candidates": len({s["candidate_id"] for s in starts}),
        "training_starts": len(starts),
        "rounds_reported": len(rounds),
        "rounds_reported_twice": sum(
            n - 1 for n in Counter((r["candidate_id"], r["round"]) for r in rounds).values()
        ),
        "starts_per_node": dict(Counter(s["node_name"] for s in starts)),
        "choice": choice["candidate_id"],
    }
    if killed_at is not None:
        started_before = {s["candidate_id"] for s in starts if s["time"] < killed_at}
        restarts = [s for s in starts if s["time"] > killed_at and s["candidate_id"] in started_before]
        lost = []
        for s in restarts:
            before = [r for r in rounds if r["candidate_id"] == s["candidate_id"] and r["time"] < killed_at]
            last = max(before, key=lambda r: r["time"], default=None)
            reported = last["round"] if last else 0
            lost.append(
                {
                    "candidate_id": s["candidate_id"],
                    "last_round_reported_before_loss": reported,
                    "resumed_round": s["resumed_round"],
                    # Reported rounds whose checkpoint the restart did not find (reported, but not
                    # yet registered by Train when the node died): trained again.
                    "rounds_trained_again": reported - s["resumed_round"],
                    # The part of the next round done when the node died: lost too.
                    "round_in_progress_s": round(killed_at - last["time"], 1) if last else None,
                    "restarted_after_s": round(s["time"] - killed_at, 1),
                    "node": s["node_name"],
                }
            )
        out |= {
            "lost_node": victim,
            "killed_at_s": round(killed_at - start, 1),
            "restarts": lost,
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "node_loss.json"))
    p.add_argument("--keep", action="store_true", help="keep the work folder (job logs, markers, outputs)")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bnl-"))  # short: Ray's socket paths must stay under 108 bytes
    results: dict[str, Any] = {
        "machine": "2 CPU cores shared with other jobs, no GPU; wall times are upper bounds",
        "search": "default synthscape config, alpha sweep only: 5 candidates x 3 rounds of 20 iterations, "
        "both runs from the same warm-up model (trained once, before them)",
        "cluster": "head (0 CPU) + 2 worker nodes (2 CPU, 1 gpu_slot each); a fresh cluster per run",
    }
    try:
        warmup, seconds = _warmup(root)
        results["warmup_s"] = round(seconds, 1)
        config = _config(root / "config.yaml", warmup)
        for name, lose in (("untouched", False), ("node_lost", True)):
            # A fresh cluster per run: nothing of the first run (workers, object store) is left to
            # help or hinder the second.
            cluster = LocalCluster(root / name[0], FAST_NODE_FAILURE)
            try:
                cluster.start_head(num_cpus=0)
                cluster.add_workers({n: WORKER_NODE for n in WORKERS})
                results[name] = _run(cluster, config, root / f"{name}-work", lose)
            finally:
                cluster.stop()
            if name == "node_lost":
                results["extra_wall_s"] = round(
                    results["node_lost"]["wall_s"] - results["untouched"]["wall_s"], 1
                )
                results["same_choice"] = results["node_lost"]["choice"] == results["untouched"]["choice"]
            Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
            print(json.dumps(results[name], indent=1), flush=True)
    finally:
        if args.keep:
            print(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
