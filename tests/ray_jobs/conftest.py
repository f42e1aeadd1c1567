"""Private Ray clusters for the ray_jobs tests, and helpers to run the selection job against them.

* ``ray_head``: one ``ray start --head --block`` node (2 CPUs), started once per session.
* ``multinode``: a head without CPUs plus two worker nodes, each with 2 CPUs and one ``gpu_slot``
  (a custom resource standing in for a GPU), started once per session.

Both come from ``raytest.local_cluster`` (own ports, own temp dirs, token auth, a
throw-away HOME) and are stopped by pid; nothing of them may outlive the session (checked in
``pytest_sessionfinish``). Jobs run as subprocesses (``python -m ray_jobs.select``) with
``RAY_ADDRESS`` pointing at the head, as they would in production.

The tests live in subfolders that mirror ``ray_jobs``' subpackages (the job's end-to-end tests stay
here, beside ``select``'s); this folder goes on ``sys.path``, which pytest's default import mode does
only for the test files directly in it, so its shared modules (``jobtools``, ``vote_fixtures``,
this ``conftest``) import by name from any subfolder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import pytest  # noqa: E402
from jobtools import REPO, write_config  # noqa: E402
from raytest.local_cluster import LocalCluster, Node, free_port  # noqa: E402

# Roots of the clusters started in this session: the leak check looks for processes naming them.
_CLUSTER_ROOTS: list[str] = []


def _select_cmd(config: Path, storage: Path | str, args: tuple[str, ...], faults: dict | None) -> list[str]:
    # With faults, the same job through the driver that injects them (raytest.fault_job).
    return [
        sys.executable,
        "-m",
        "raytest.fault_job" if faults else "ray_jobs.select",
        "--config",
        str(config),
        "--storage",
        str(storage),
        *args,
    ]


def _fault_env(faults: dict | None) -> dict[str, str]:
    if not faults:
        return {}
    # Imported here: ray.train's import would slow every test module that only loads this file.
    from raytest.faults import fault_env

    return fault_env(faults)


class RayHead:
    """A running local cluster, as the job's client sees it."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        assert cluster.head is not None
        self.process = cluster.head.process
        self.address = cluster.address  # GCS, for RAY_ADDRESS
        self.dashboard_url = cluster.dashboard_url  # jobs API, for RAY_API_SERVER_ADDRESS
        self.env = cluster.env  # what a client (driver, `ray job submit`) needs

    def client_env(self, **extra: str) -> dict[str, str]:
        return self.cluster.client_env(**extra)

    def run_select(
        self,
        config: Path,
        storage: Path | str,
        *args: str,
        faults: dict | None = None,
        timeout: float = 600,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """``python -m ray_jobs.select`` against this cluster, as a subprocess; output kept for asserts."""
        return subprocess.run(
            _select_cmd(config, storage, args, faults), cwd=REPO,
            env=self.client_env(**_fault_env(faults), **(env or {})),
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def start_select(
        self,
        config: Path,
        storage: Path | str,
        *args: str,
        faults: dict | None = None,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        """The same, in the background (its own process group, so a test can kill the driver)."""
        return subprocess.Popen(
            _select_cmd(config, storage, args, faults), cwd=REPO,
            env=self.client_env(**_fault_env(faults), **(env or {})),
            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _new_cluster(prefix: str, extra_env: dict[str, str] | None = None) -> LocalCluster:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    _CLUSTER_ROOTS.append(str(root))
    return LocalCluster(root, extra_env or {})


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    cluster = _new_cluster("rj-head-")
    try:
        cluster.start_head(num_cpus=2, resources={"hiast_trial_driver": 1})
        yield RayHead(cluster)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


class S3Server:
    """A local S3 API (moto's server, bound to 127.0.0.1) that checks credentials like AWS does.

    moto lets the first INITIAL_NO_AUTH_ACTION_COUNT requests through unauthenticated and checks
    every later one against its IAM: those first requests create a user, its key, a policy
    allowing S3, and the bucket. From then on, only that key works.
    """

    BUCKET = "hiast-test"
    _SETUP_REQUESTS = 4

    def __init__(self, root: Path) -> None:
        import boto3

        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = root / "moto.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(self._SETUP_REQUESTS)},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert self.process.poll() is None, self.log.read_text()[-2000:]
                assert time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.2)
        anon = {"endpoint_url": self.endpoint, "region_name": "us-east-1"}
        iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **anon)
        iam.create_user(UserName="hiast")
        key = iam.create_access_key(UserName="hiast")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="hiast", PolicyName="s3", PolicyDocument=json.dumps(policy))
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        boto3.client(
            "s3", aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key, **anon
        ).create_bucket(Bucket=self.BUCKET)
        # What each node (and the driver) gets: the AWS SDK's own variables, read by pyarrow.
        self.node_env = {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def filesystem(self):
        """pyarrow's S3 filesystem for this server, configured explicitly (not from the environment)."""
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            access_key=self.access_key, secret_key=self.secret_key, region="us-east-1",
            endpoint_override=self.endpoint,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()


# The multi-node cluster's worker nodes: 2 CPUs each but one GPU slot, so with
# `ray.worker_resources: {gpu_slot: 1}` one candidate fits per node and two run at once, one on each.
# They also carry the trial-driver resource: trial drivers, their Train controllers and the vote
# actor run on worker nodes too, and are lost with them (the head only holds the job's driver).
WORKER_NODE = (2.0, {"gpu_slot": 1.0, "hiast_trial_driver": 1.0})
WORKER_NAMES = ("worker-a", "worker-b")
# A lost node is declared dead after ~3 s instead of Ray's default ~15-30 s.
FAST_NODE_FAILURE = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


class MultiNode(RayHead):
    def worker(self, name: str) -> Node:
        return self.cluster.workers[name]

    def node_names(self) -> set[str]:
        return self.cluster.alive_node_names()

    def ensure_workers(self) -> None:
        """Bring back worker nodes a test lost on purpose (same names, same resources)."""
        lost = {n: WORKER_NODE for n in WORKER_NAMES if not self.cluster.workers[n].alive()}
        if lost:
            self.cluster.add_workers(lost)


@pytest.fixture(scope="session")
def multinode_cluster(s3_server) -> Iterator[MultiNode]:
    """Every node gets the S3 endpoint and credentials, as nodes in a cloud get an IAM role."""
    cluster = _new_cluster("rj-multi-", {**FAST_NODE_FAILURE, **s3_server.node_env})
    try:
        cluster.start_head(num_cpus=0)
        cluster.add_workers({n: WORKER_NODE for n in WORKER_NAMES})
        yield MultiNode(cluster)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture()
def multinode(multinode_cluster: MultiNode) -> MultiNode:
    multinode_cluster.ensure_workers()
    return multinode_cluster


@pytest.fixture(scope="session")
def submitted(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny search, fault-free, through ``ray job submit --working-dir .``; run once and shared
    (the fault tests compare their choice with it)."""
    root = tmp_path_factory.mktemp("submitted")
    config = write_config(root / "tiny.yaml")
    storage = root / "results"
    job_id = f"tiny-{os.getpid()}-{time.time_ns()}"
    cmd = [
        *_JOB_CLI, "submit", "--submission-id", job_id,
        "--working-dir", ".",
        # Only the code travels: results, runs and git history stay behind.
        "--runtime-env-json", json.dumps({"excludes": [".git", "results", "runs", "bench/results"]}),
        # The job's own interpreter, not whichever `python` comes first on the head's PATH.
        "--", sys.executable, "-m", "ray_jobs.select", "--config", str(config), "--storage", str(storage),
    ]  # fmt: skip
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=ray_head.client_env(), capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired as exc:
        # A job outlives the client that submitted it: stop it, or it holds the cluster's CPUs
        # through every later test. Fail with what the job and the cluster were doing.
        pytest.fail(f"ray job submit: no result in {exc.timeout} s\n{_stop_and_diagnose(ray_head, job_id)}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return {
        "config": config,
        "experiment": storage / "tiny",
        "output": output,
        "seconds": time.perf_counter() - start,
    }


_JOB_CLI = (sys.executable, "-m", "ray.scripts.scripts", "job")


def _stop_and_diagnose(head: RayHead, job_id: str) -> str:
    """Stop a job that ran past its time; return the tail of its logs and the cluster's state."""
    env = head.client_env()

    def cli(*args: str) -> str:
        try:
            p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
            return p.stdout + p.stderr
        except subprocess.TimeoutExpired:
            return f"{' '.join(args[2:5])}: no answer in 120 s"

    logs = cli(*_JOB_CLI, "logs", job_id)[-6000:]
    status = cli(sys.executable, "-m", "ray.scripts.scripts", "status", "--address", head.address)[-3000:]
    stopped = cli(*_JOB_CLI, "stop", job_id)[-1000:]
    return f"--- job logs (tail) ---\n{logs}\n--- ray status ---\n{status}\n--- job stop ---\n{stopped}"


def _ray_processes_of(roots: list[str]) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(d in cmd for d in roots):
            found.append(f"{proc.name}: {cmd[:200]}")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No raylet, GCS or worker of a cluster started here may survive the session."""
    if not _CLUSTER_ROOTS:
        return
    deadline = time.monotonic() + 30
    left = _ray_processes_of(_CLUSTER_ROOTS)
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = _ray_processes_of(_CLUSTER_ROOTS)
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        listing = "\n  ".join(left)
        print(f"\nRay processes started by the tests are still running:\n  {listing}", file=sys.stderr)
