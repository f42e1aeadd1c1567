"""Faults for tests and benchmarks, injected around the job's Train loop from outside the job.

Run the job as ``python -m raytest.fault_job`` (same arguments as ``ray_jobs.select``) with
:func:`fault_env` in its environment. That driver swaps the job's Tune trainable for
:func:`candidate_trainable`, which hands Ray Train :func:`faulty_loop`, the real loop inside them;
Ray ships this package and the faults (``HIAST_SELECT_TEST_FAULTS``) to every worker of the job.
The wrapper only watches what the loop does from outside: its start and the reports it makes to
Ray Train (one per round, then ``finished``). The faults, all optional, as JSON::

    marker_dir        a folder every node can write: records of what happened (below)
    fail_candidates   candidate ids that raise at every start (they fail for good)
    kill_after_round  the first worker of the job to report this round exits hard (once per marker_dir)
    hold_after_round  a candidate's first attempt waits after reporting this round until the test
                      releases it: <marker_dir>/release/<candidate>.rep<r>, or release/ALL

Records under ``marker_dir`` (one JSON file each, names sort by time):
``starts/`` one per Train run start (rank 0): candidate_id, replicate, resumed_round, node, node_name;
``rounds/`` one per round reported (rank 0): the same with ``round``;
``held/<candidate>.rep<r>.json`` while held; ``killed`` once a worker was killed.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ray.train

from ray_jobs.search import SearchSpec, trainable
from ray_jobs.worker import checkpoint_round, from_train_config, this_node, train_loop_per_worker

__all__ = [
    "FAULTS_ENV",
    "FAULT_JOB",
    "TESTS_DIR",
    "fault_env",
    "faulty_loop",
    "candidate_trainable",
    "records",
    "release",
]

FAULTS_ENV = "HIAST_SELECT_TEST_FAULTS"
# What to run instead of ``python -m ray_jobs.select`` for a job with faults.
FAULT_JOB = "raytest.fault_job"
# The folder that holds this package: on the fault job's path.
TESTS_DIR = Path(__file__).resolve().parents[1]
_HOLD_TIMEOUT_S = 900.0


def fault_env(faults: dict[str, Any], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment (added to ``base``, default ``os.environ``) that a ``python -m
    raytest.fault_job`` driver needs to run the job with ``faults``."""
    base = os.environ if base is None else base
    path = os.pathsep.join(p for p in (str(TESTS_DIR), base.get("PYTHONPATH", "")) if p)
    return {FAULTS_ENV: json.dumps(faults), "PYTHONPATH": path}


def faulty_loop(config: dict[str, Any]) -> None:
    """The job's Train loop inside the faults (what Train runs on every worker of a fault job)."""
    _run(_REAL_LOOP, config)


# The real loop, as ray_jobs.worker defines it: the swap below replaces only the trainable
# module's reference to it. Train pickles faulty_loop by reference, so the real loop never
# travels by value.
_REAL_LOOP = train_loop_per_worker


def candidate_trainable(config: dict[str, Any], spec: SearchSpec) -> None:
    """The job's Tune trial, its Train workers running :func:`faulty_loop`.

    Runs in the trial's own process (one trial per process): the swap reaches no other job.
    """
    # The trainable hands Ray Train the loop its module names.
    trainable.train_loop_per_worker = faulty_loop
    trainable.candidate_trainable(config, spec)


def records(marker_dir: Path, kind: str) -> list[dict[str, Any]]:
    """The records of one kind (``starts``, ``rounds``), oldest first."""
    return [json.loads(p.read_text()) for p in sorted((marker_dir / kind).glob("*.json"))]


def release(marker_dir: Path, name: str = "ALL") -> None:
    """Let a held candidate (``<candidate_id>.rep<r>``), or every one (``ALL``), go on."""
    (marker_dir / "release").mkdir(parents=True, exist_ok=True)
    (marker_dir / "release" / name).touch()


def _write(path: Path, record: dict[str, Any]) -> None:
    """Written under a temporary name, then renamed: a reader never sees half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps({**record, "time": time.time()}))
    tmp.rename(path)


def _record(folder: Path, record: dict[str, Any]) -> None:
    _write(folder / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json", record)


class _Faults:
    def __init__(self, spec: dict[str, Any], config: dict[str, Any], rank: int, resumed_round: int) -> None:
        self.spec = spec
        self.marker = Path(spec["marker_dir"]) if spec.get("marker_dir") else None
        loop = from_train_config(config)
        self.key = {"candidate_id": loop.candidate_id, "replicate": loop.replicate}
        self.name = f"{loop.candidate_id}.rep{loop.replicate}"
        self.rank = rank
        self.resumed_round = resumed_round
        self.node = this_node()

    def on_start(self) -> None:
        if self.marker is not None and self.rank == 0:
            _record(self.marker / "starts", {**self.key, "resumed_round": self.resumed_round, **self.node})
        if self.key["candidate_id"] in self.spec.get("fail_candidates", []):
            raise RuntimeError(f"candidate {self.key['candidate_id']!r}: failure injected by {FAULTS_ENV}")

    def after_report(self, metrics: dict[str, Any]) -> None:
        if self.rank != 0 or "round" not in metrics or self.marker is None:
            return
        r = int(metrics["round"])
        _record(self.marker / "rounds", {**self.key, "round": r, **self.node})
        if self.spec.get("kill_after_round") == r:
            self._kill_once()
        if self.spec.get("hold_after_round") == r and self.resumed_round < r:
            self._hold(r)

    def _kill_once(self) -> None:
        try:
            # O_EXCL: exactly one worker of the whole job gets to die.
            with open(self.marker / "killed", "x") as f:
                f.write(json.dumps(self.key))
        except FileExistsError:
            return
        # Let Train's controller collect this round's report first (it polls every
        # RAY_TRAIN_HEALTH_CHECK_INTERVAL_S), so the restart finds the round checkpoint.
        time.sleep(3.0)
        os._exit(1)

    def _hold(self, r: int) -> None:
        _write(self.marker / "held" / f"{self.name}.json", {**self.key, "round": r, **self.node})
        gates = [self.marker / "release" / self.name, self.marker / "release" / "ALL"]
        deadline = time.monotonic() + _HOLD_TIMEOUT_S
        while not any(g.exists() for g in gates) and time.monotonic() < deadline:
            time.sleep(0.2)


def _run(loop: Callable[[dict[str, Any]], None], config: dict[str, Any]) -> None:
    spec = json.loads(os.environ.get(FAULTS_ENV) or "{}")
    rank = ray.train.get_context().get_world_rank()
    faults = _Faults(spec, config, rank, checkpoint_round(ray.train.get_checkpoint()))
    faults.on_start()
    report = ray.train.report

    def watched_report(metrics: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        report(metrics, *args, **kwargs)
        faults.after_report(metrics)

    # The loop reports through ray.train.report; watch it for this run of the loop only.
    ray.train.report = watched_report
    try:
        loop(config)
    finally:
        ray.train.report = report
