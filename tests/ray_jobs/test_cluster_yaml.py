"""cluster.yaml: valid for the installed Ray's cluster launcher, offline, and safe by our rules."""

from __future__ import annotations

import copy
import fnmatch
import ipaddress
import json
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "cluster.yaml"
DASHBOARD_PORT = 8265


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach AWS (boto3) or any socket connection fails the test."""
    import boto3
    import boto3.session

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("cluster.yaml validation tried to reach the network/AWS")

    for obj, name in [
        (boto3, "client"),
        (boto3, "resource"),
        (boto3.session.Session, "client"),
        (boto3.session.Session, "resource"),
        (socket.socket, "connect"),
        (socket.socket, "connect_ex"),
        (socket, "create_connection"),
    ]:
        monkeypatch.setattr(obj, name, refuse)


@pytest.fixture()
def raw() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def _validate(config: dict[str, Any]) -> dict[str, Any]:
    # What `ray up` does before it talks to the cloud: merge the provider's defaults, check
    # docker settings, fill per-type worker counts, then check against ray/autoscaler/ray-schema.json.
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def open_to_world(rule: dict[str, Any], port: int) -> bool:
    """Whether an EC2 ingress rule (IpPermissions item) admits ``port`` from the whole internet."""
    proto = str(rule.get("IpProtocol", "")).lower()
    if proto not in {"-1", "tcp", "6"}:
        return False
    if proto != "-1":
        lo, hi = int(rule.get("FromPort", -1)), int(rule.get("ToPort", -1))
        if not (lo == -1 or lo <= port <= hi):
            return False
    cidrs = [r.get("CidrIp", "") for r in rule.get("IpRanges", [])]
    cidrs += [r.get("CidrIpv6", "") for r in rule.get("Ipv6Ranges", [])]
    return any(c and ipaddress.ip_network(c, strict=False).prefixlen == 0 for c in cidrs)


def test_valid_for_installed_ray_schema(raw: dict[str, Any], offline: None) -> None:
    prepared = _validate(raw)
    assert prepared["cluster_name"] == "hiast-select"
    assert prepared["provider"]["type"] == "aws"


def test_schema_check_is_live(raw: dict[str, Any], offline: None) -> None:
    """The validation above would catch a mistake (it is not a no-op on this Ray version)."""
    import jsonschema

    bad = copy.deepcopy(raw)
    bad["available_node_types"]["gpu.a10g"]["min_wrokers"] = 0  # typo'd key
    with pytest.raises(jsonschema.ValidationError):
        _validate(bad)
    bad = copy.deepcopy(raw)
    bad["available_node_types"]["gpu.a10g"]["resources"]["GPU"] = 0.5  # resources are integers
    with pytest.raises(jsonschema.ValidationError):
        _validate(bad)


def _images(raw: dict[str, Any]) -> list[str]:
    docker = raw.get("docker", {})
    images = [docker[k] for k in ("image", "head_image", "worker_image") if k in docker]
    for node in raw["available_node_types"].values():
        images += [v for k, v in node.get("docker", {}).items() if k == "worker_image"]
    return images


def test_image_matches_installed_ray(raw: dict[str, Any]) -> None:
    images = _images(raw)
    assert images
    for image in images:
        m = re.fullmatch(r"rayproject/ray:(?P<ver>\d+\.\d+\.\d+)-py3\d+-(?P<flavour>gpu|cu\d+)", image)
        assert m, f"{image}: expected rayproject/ray:<version>-py3XX-gpu (ray-ml is gone after 2.49)"
        assert m["ver"] == ray.__version__, f"{image} does not match the installed ray {ray.__version__}"


def test_cpu_head_and_autoscaling_gpu_workers(raw: dict[str, Any]) -> None:
    types = raw["available_node_types"]
    head = types[raw["head_node_type"]]
    assert head["resources"]["GPU"] == 0 and head["resources"]["CPU"] >= 2
    gpu_types = [
        t for name, t in types.items() if name != raw["head_node_type"] and t["resources"].get("GPU", 0) >= 1
    ]
    assert gpu_types, "no GPU worker type"
    for t in gpu_types:
        assert t.get("min_workers", 0) == 0, "GPU workers must scale to zero when idle"
        assert t["max_workers"] >= 1
        assert t["max_workers"] <= raw["max_workers"]
        # Train workers write checkpoints to S3 themselves, so they need an instance profile.
        assert "IamInstanceProfile" in t["node_config"]


def test_setup_installs_torch_and_project(raw: dict[str, Any]) -> None:
    setup = " ; ".join(raw["setup_commands"])
    assert re.search(r"pip install [\"']?torch", setup)
    assert "pip install -e /home/ray/hiast-select" in setup
    assert raw["file_mounts"]["/home/ray/hiast-select"] == "."
    assert any(
        "--autoscaling-config=~/ray_bootstrap_config.yaml" in c for c in raw["head_start_ray_commands"]
    )
    assert any("$RAY_HEAD_IP:6379" in c for c in raw["worker_start_ray_commands"])


def test_token_auth_is_consistent(raw: dict[str, Any]) -> None:
    # A node started with RAY_AUTH_MODE=token and no token file refuses to start; nodes with
    # different tokens cannot join. Every start command sets the mode; every node gets the token.
    for cmds in (raw["head_start_ray_commands"], raw["worker_start_ray_commands"]):
        start = [c for c in cmds if "ray start" in c]
        assert start and all("RAY_AUTH_MODE=token" in c for c in start)
    assert raw["file_mounts"].get("/home/ray/.ray/auth_token") == "~/.ray/auth_token"


def test_dashboard_not_open_to_the_internet(raw: dict[str, Any]) -> None:
    rules = raw["provider"].get("security_group", {}).get("IpPermissions", [])
    offenders = [r for r in rules if open_to_world(r, DASHBOARD_PORT)]
    assert not offenders, f"8265 must be reached via `ray dashboard` (SSH), not opened: {offenders}"
    for opts in (
        raw.get("docker", {}).get("run_options", []),
        raw.get("docker", {}).get("head_run_options", []),
    ):
        assert not any(str(DASHBOARD_PORT) in str(o) for o in opts), "do not publish 8265 from docker"


@pytest.mark.parametrize(
    ("rule", "exposed"),
    [
        (
            {"IpProtocol": "tcp", "FromPort": 8265, "ToPort": 8265, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            True,
        ),
        ({"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 9000, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}, True),
        ({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, True),
        (
            {
                "IpProtocol": "tcp",
                "FromPort": 8265,
                "ToPort": 8265,
                "IpRanges": [{"CidrIp": "203.0.113.7/32"}],
            },
            False,
        ),
        ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, False),
        (
            {"IpProtocol": "udp", "FromPort": 8265, "ToPort": 8265, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            False,
        ),
    ],
)
def test_open_to_world_checker(rule: dict[str, Any], exposed: bool) -> None:
    """The security-group check above can actually fail."""
    assert open_to_world(rule, DASHBOARD_PORT) is exposed


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the project's tracked files")
    return [line for line in out.stdout.splitlines() if line]


def _rsync_excluded(path: str, pattern: str) -> bool:
    """rsync --exclude semantics for the simple patterns we use: "/x" anchored, "x" at any depth."""
    pattern = pattern.rstrip("/")
    parts = path.split("/")
    if pattern.startswith("/"):
        return fnmatch.fnmatch(parts[0], pattern[1:])
    return any(fnmatch.fnmatch(p, pattern) for p in parts)


def test_file_mount_keeps_every_source_file(raw: dict[str, Any]) -> None:
    # An unanchored "data" would drop hiast/data and `pip install -e` would install a broken package.
    tracked = _tracked_files()
    assert "hiast/config.py" in tracked
    for pattern in raw["rsync_exclude"]:
        dropped = [f for f in tracked if _rsync_excluded(f, pattern)]
        assert not dropped, f"rsync_exclude {pattern!r} drops tracked files: {dropped[:5]}"
    assert _rsync_excluded("data/GTA5/images/00001.png", "/data")
    assert not _rsync_excluded("hiast/data/real.py", "/data")
    assert _rsync_excluded("hiast/data/real.py", "data")  # the trap the anchoring avoids


def test_documented_job_excludes_keep_every_source_file() -> None:
    """The --runtime-env-json excludes in docs/cluster.md, applied the way Ray applies them."""
    from ray_jobs.ray_compat import upload_excludes

    doc = (ROOT / "docs" / "cluster.md").read_text()
    m = re.search(r"--runtime-env-json '([^']+)'", doc)
    assert m, "docs/cluster.md lost its ray job submit excludes"
    excludes = json.loads(m[1])["excludes"]
    excluded = upload_excludes(ROOT, excludes)
    dropped = [f for f in _tracked_files() if excluded(ROOT / f)]
    assert not dropped, f"job upload excludes drop tracked files: {dropped[:5]}"
    for heavy in ("data/GTA5/x.png", "results/exp/candidates.parquet", "runs/x", ".git/HEAD", "w.pt"):
        assert excluded(ROOT / heavy), heavy
