"""Real Ray clusters on one machine: a head and worker nodes, each its own ``ray start --block``.

Each node is one session (``ray start --block`` and everything it starts: raylet, object store,
agents, workers), so a node is lost the way a machine is lost by SIGKILLing every process of the
session at once, and stopped cleanly by SIGTERM (``--block`` tears its children down). Every node
gets its own ports and temp dir; the cluster gets its own token (token authentication, Ray's
default) and a throw-away HOME, so nothing lands in the real home and other clusters on the
machine are left alone.

All nodes of such a cluster share this machine's disk: a local folder is storage that "every
node" reaches, as NFS would on a real cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Node", "LocalCluster", "free_port"]

_RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    name: str
    process: subprocess.Popen
    log: Path
    temp_dir: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Lose the node: SIGKILL to every process of it at once, no clean-up of any kind.

        Ray's workers run in process groups of their own (they would outlive a killpg by the
        seconds a worker takes to notice its raylet is gone, and go on training meanwhile), but
        they stay in the session that ``ray start`` opened, so the session is what is killed.
        """
        for pid in _session(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM the group (``ray start --block`` stops its children), then SIGKILL if it lingers."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def _session(sid: int) -> list[int]:
    """Every live process in session ``sid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _ports() -> list[str]:
    # Every port a node opens, so that several nodes (and other people's clusters) coexist.
    return [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]


@dataclass
class LocalCluster:
    """A cluster under ``root``; call :meth:`start_head` first, then :meth:`add_worker`."""

    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)  # for every node (e.g. S3 credentials)
    head: Node | None = None
    workers: dict[str, Node] = field(default_factory=dict)
    address: str = ""  # GCS, for RAY_ADDRESS
    dashboard_url: str = ""  # jobs and state API, for RAY_API_SERVER_ADDRESS
    env: dict[str, str] = field(default_factory=dict)  # what a client (driver, ray CLI) needs

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        token = self.root / "auth_token"
        token.write_text(secrets.token_hex(32))
        self.env = {
            "HOME": str(home),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_USAGE_STATS_ENABLED": "0",
            # SIGTERM would otherwise drain the node for 30 s before stopping.
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            **self.extra_env,
        }

    @property
    def temp_dirs(self) -> list[str]:
        """Every node's temp dir: a process naming one of them belongs to this cluster."""
        nodes = ([self.head] if self.head else []) + list(self.workers.values())
        return [str(n.temp_dir) for n in nodes]

    def client_env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.env, **extra}

    def _start(self, name: str, args: list[str]) -> Node:
        temp_dir = self.root / f"ray-{name}"
        log = self.root / f"{name}.log"
        # --node-name (hidden in `ray start --help`, used by KubeRay) makes the node findable in
        # `ray list nodes` and ray.nodes(); on one machine every node has the same IP.
        cmd = [
            *_RAY_CLI, "start", "--block", "--node-ip-address=127.0.0.1", f"--node-name={name}",
            f"--temp-dir={temp_dir}", "--disable-usage-stats", *_ports(), *args,
        ]  # fmt: skip
        process = subprocess.Popen(
            cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=self.client_env(),
            start_new_session=True, cwd=self.root,
        )  # fmt: skip
        return Node(name, process, log, temp_dir)

    def start_head(
        self, num_cpus: float, resources: dict[str, float] | None = None, timeout: float = 180
    ) -> Node:
        gcs_port, dash_port = free_port(), free_port()
        self.dashboard_url = f"http://127.0.0.1:{dash_port}"
        # Ray's own processes that call the state API (Train's placement-group cleaner, which
        # frees the GPU slots of a Train run whose controller died with its node) look for the
        # cluster through this variable; without it, on a machine that runs several Ray clusters,
        # they fail ("Found multiple active Ray instances") and the slots stay taken for good.
        self.env["RAY_API_SERVER_ADDRESS"] = self.dashboard_url
        head = self._start(
            "head",
            [
                "--head", f"--port={gcs_port}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
                "--include-dashboard=true", f"--ray-client-server-port={free_port()}",
                f"--num-cpus={num_cpus:g}", f"--resources={json.dumps(resources or {})}",
            ],
        )  # fmt: skip
        self.head = head
        self.address = f"127.0.0.1:{gcs_port}"
        self.env["RAY_ADDRESS"] = self.address
        self._wait(head, self._dashboard_up, timeout)
        return head

    def add_workers(self, specs: dict[str, tuple[float, dict[str, float]]], timeout: float = 180) -> None:
        """Start worker nodes ``{name: (num_cpus, custom resources)}`` together; wait until all are up."""
        assert self.head is not None, "start_head first"
        for name, (num_cpus, resources) in specs.items():
            self.workers[name] = self._start(
                name,
                [
                    f"--address={self.address}",
                    f"--num-cpus={num_cpus:g}",
                    f"--resources={json.dumps(resources)}",
                ],
            )
        for name in specs:
            node = self.workers[name]
            # Printed by `ray start` once its raylet has registered with the head.
            self._wait(node, lambda n=node: "Ray runtime started" in n.log.read_text(), timeout)

    def _wait(self, node: Node, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not node.alive():
                tail = node.log.read_text()[-3000:]
                raise RuntimeError(f"ray start ({node.name}) exited with {node.process.returncode}:\n{tail}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"node {node.name} did not come up in {timeout:.0f}s:\n{node.log.read_text()[-3000:]}"
        )

    def _dashboard_up(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.dashboard_url}/api/version", timeout=2)
        except urllib.error.HTTPError:
            return True  # it answers (auth may refuse us): it is up
        except OSError:
            return False
        return True

    def ray_list(self, kind: str, *filters: str) -> list[dict]:
        """``ray list <kind> --detail`` through the state API (the dashboard), as dicts."""
        args = [f"--filter={f}" for f in filters]
        proc = subprocess.run(
            [*_RAY_CLI, "list", kind, "--detail", "--format=json", f"--address={self.dashboard_url}", *args],
            env=self.client_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"ray list {kind} failed:\n{proc.stderr[-2000:]}")
        if proc.stdout.strip().startswith("No resource"):  # what it prints instead of an empty list
            return []
        return json.loads(proc.stdout)

    def alive_node_names(self) -> set[str]:
        try:
            nodes = self.ray_list("nodes", "state=ALIVE")
        except (RuntimeError, ValueError):
            return set()
        return {n.get("node_name") for n in nodes}

    def stop(self) -> None:
        """Stop every node, workers first; nothing of the cluster survives."""
        for node in list(self.workers.values()):
            node.stop()
        if self.head is not None:
            self.head.stop()
