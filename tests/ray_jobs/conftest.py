"""A private Ray head for the ray_jobs tests, and helpers to run the selection job against it.

The head is one ``ray start --head --block`` process (own ports, own temp dir, token auth, a
throw-away HOME) started once per session and stopped by its pid; nothing of it may outlive the
session (checked in ``pytest_sessionfinish``). Jobs run as subprocesses (``python -m
ray_jobs.select``) with ``RAY_ADDRESS`` pointing at the head, as they would in production.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jobtools import FAULTS_ENV, REPO, write_config

# Temp dirs of heads started in this session: the leak check looks for processes naming them.
_HEAD_TEMP_DIRS: list[str] = []


def _select_cmd(config: Path, storage: Path, args: tuple[str, ...]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ray_jobs.select",
        "--config",
        str(config),
        "--storage",
        str(storage),
        *args,
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayHead:
    process: subprocess.Popen
    address: str  # GCS, for RAY_ADDRESS
    dashboard_url: str  # jobs API, for RAY_API_SERVER_ADDRESS
    env: dict[str, str]  # what a client (driver, `ray job submit`) needs

    def client_env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.env, **extra}

    def run_select(
        self, config: Path, storage: Path, *args: str, faults: dict | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        """``python -m ray_jobs.select`` against this head, as a subprocess; output kept for asserts."""
        extra = {FAULTS_ENV: json.dumps(faults)} if faults else {}
        return subprocess.run(
            _select_cmd(config, storage, args), cwd=REPO, env=self.client_env(**extra),
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def start_select(
        self, config: Path, storage: Path, *args: str, faults: dict | None = None, log: Path
    ) -> subprocess.Popen:
        """The same, in the background (its own process group, so a test can kill the driver)."""
        extra = {FAULTS_ENV: json.dumps(faults)} if faults else {}
        return subprocess.Popen(
            _select_cmd(config, storage, args), cwd=REPO, env=self.client_env(**extra),
            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _wait_for_dashboard(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/api/version", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (auth may refuse us): it is up
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the Ray head did not come up in {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the head's process group (``ray start --block`` tears its children down), then KILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    root = Path(tempfile.mkdtemp(prefix="rj-head-"))
    home = root / "home"
    home.mkdir()
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    temp_dir = str(root / "ray")
    _HEAD_TEMP_DIRS.append(temp_dir)
    gcs_port, dash_port = _free_port(), _free_port()
    env = {
        "HOME": str(home),  # nothing lands in the real home
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_USAGE_STATS_ENABLED": "0",
        # SIGTERM would otherwise drain the node for 30 s before stopping.
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    }
    log = root / "head.log"
    cmd = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}", "--include-dashboard=true",
        f"--ray-client-server-port={_free_port()}", f"--temp-dir={temp_dir}",
        "--num-cpus=2", '--resources={"hiast_trial_driver": 1}', "--disable-usage-stats",
    ]  # fmt: skip
    process = subprocess.Popen(
        cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, **env},
        start_new_session=True, cwd=root,
    )  # fmt: skip
    url = f"http://127.0.0.1:{dash_port}"
    try:
        _wait_for_dashboard(url, process, log, timeout=180)
        yield RayHead(
            process,
            f"127.0.0.1:{gcs_port}",
            url,
            {**env, "RAY_ADDRESS": f"127.0.0.1:{gcs_port}", "RAY_API_SERVER_ADDRESS": url},
        )
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def submitted(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny search, fault-free, through ``ray job submit --working-dir .``; run once and shared
    (the fault tests compare their choice with it)."""
    root = tmp_path_factory.mktemp("submitted")
    config = write_config(root / "tiny.yaml")
    storage = root / "results"
    cmd = [
        sys.executable, "-m", "ray.scripts.scripts", "job", "submit",
        "--working-dir", ".",
        # Only the code travels: results, runs and git history stay behind.
        "--runtime-env-json", json.dumps({"excludes": [".git", "results", "runs", "bench/results"]}),
        "--", "python", "-m", "ray_jobs.select", "--config", str(config), "--storage", str(storage),
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=REPO, env=ray_head.client_env(), capture_output=True, text=True, timeout=600
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return {
        "config": config,
        "experiment": storage / "tiny",
        "output": output,
        "seconds": time.perf_counter() - start,
    }


def _ray_processes_of(temp_dirs: list[str]) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(d in cmd for d in temp_dirs):
            found.append(f"{proc.name}: {cmd[:200]}")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No raylet, GCS or worker of a head started here may survive the session."""
    if not _HEAD_TEMP_DIRS:
        return
    deadline = time.monotonic() + 30
    left = _ray_processes_of(_HEAD_TEMP_DIRS)
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = _ray_processes_of(_HEAD_TEMP_DIRS)
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        listing = "\n  ".join(left)
        print(f"\nRay processes started by the tests are still running:\n  {listing}", file=sys.stderr)
