"""``--storage s3://…`` for real: a local S3 server (moto's, an HTTP S3 API on 127.0.0.1 that checks
credentials), the multi-node cluster, every node reading and writing through ``pyarrow.fs``.

How the endpoint reaches everyone: the AWS SDK's own ``AWS_ENDPOINT_URL_S3`` (with the key pair)
in each node's environment and the driver's, which pyarrow — and so Ray Train and Tune's storage —
honours. The test reads the outputs back with pyarrow/pandas through an explicitly configured
``S3FileSystem``, not through that environment.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pytest
import ray
from conftest import REPO, WORKER_NAMES, MultiNode, S3Server
from jobtools import TINY_IDS, multinode_overrides, reports_settled, write_config

from ray_jobs.select import main
from ray_jobs.storage import StorageError, check_storage
from ray_jobs.testing.faults import records, release

pytestmark = pytest.mark.slow


def _names(fs: pafs.FileSystem, folder: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(Path(i.path).name for i in infos if i.type == pafs.FileType.File)


def test_job_on_s3_survives_a_killed_driver(
    multinode: MultiNode, s3_server: S3Server, submitted: dict, tmp_path: Path
) -> None:
    prefix = f"{S3Server.BUCKET}/runs-{uuid.uuid4().hex[:8]}"
    storage = f"s3://{prefix}"
    fs = s3_server.filesystem()
    markers = tmp_path / "markers"
    markers.mkdir()
    config = write_config(tmp_path / "tiny.yaml", **multinode_overrides(submitted))
    log = tmp_path / "first.log"
    # Every first attempt waits after round 1; one is let go; once it has finished, the driver dies.
    driver = multinode.start_select(
        config, storage, faults={"marker_dir": str(markers), "hold_after_round": 1}, log=log
    )
    deadline = time.monotonic() + 400
    try:
        while not (_names(fs, f"{prefix}/tiny/results") and reports_settled(markers)):
            assert driver.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, f"no candidate finished in time:\n{log.read_text()[-4000:]}"
            held = sorted(p.stem for p in (markers / "held").glob("*.json"))
            if held and not (markers / "release").exists():
                release(markers, held[0])
            time.sleep(0.5)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver dies mid-search, no clean-up of its own
        driver.wait(timeout=30)
    finished_before = {name.split(".rep")[0] for name in _names(fs, f"{prefix}/tiny/results")}
    assert len(finished_before) == 1, finished_before  # the other two were held
    assert "choice.json" not in _names(fs, f"{prefix}/tiny")

    proc = multinode.run_select(config, storage, "--resume", faults={"marker_dir": str(markers)})
    assert proc.returncode == 0, proc.stderr[-6000:]

    # The outputs, read back from S3.
    table = pd.read_parquet(f"{prefix}/tiny/candidates.parquet", filesystem=fs)
    with fs.open_input_stream(f"{prefix}/tiny/choice.json") as f:
        choice = json.loads(f.read())
    with fs.open_input_stream(f"{prefix}/tiny/dashboard.html") as f:
        assert b"PROVISIONAL" not in f.read()
    assert set(table["candidate_id"]) == TINY_IDS
    assert (table["status"] == "done").all()
    assert table["f_miou"].between(0, 1).all()
    assert _names(fs, f"{prefix}/tiny/predictions") == sorted(f"{c}.parquet" for c in TINY_IDS)
    baseline = json.loads((submitted["experiment"] / "choice.json").read_text())
    assert (choice["parameters"], choice["candidate_id"]) == (
        baseline["parameters"],
        baseline["candidate_id"],
    )
    # Ray's own storage is there too: Tune's experiment state and each candidate's Train run.
    assert any(n.startswith("experiment_state") for n in _names(fs, f"{prefix}/tiny"))
    train_runs = fs.get_file_info(pafs.FileSelector(f"{prefix}/tiny/train"))
    assert len([i for i in train_runs if i.type == pafs.FileType.Directory]) == 3

    # The search ran on both worker nodes: after the resume, the two unfinished candidates trained
    # at once, one per GPU slot.
    assert set(table["node_name"]) == set(WORKER_NAMES), table[["candidate_id", "node_name"]]
    assert table["node"].str.len().gt(0).all()
    # The finished candidate was not trained again; the one held after round 1 resumed from its
    # round-1 checkpoint; every start resumed from the last round its candidate had reported.
    starts, rounds = records(markers, "starts"), records(markers, "rounds")
    per_candidate = Counter(s["candidate_id"] for s in starts)
    assert all(per_candidate[c] == 1 for c in finished_before), per_candidate
    assert sum(s["resumed_round"] == 1 for s in starts) >= 1
    for s in starts:
        before = [
            r["round"] for r in rounds if r["candidate_id"] == s["candidate_id"] and r["time"] < s["time"]
        ]
        assert s["resumed_round"] == max(before, default=0), (s, before)
    assert not (REPO / "s3:").exists()  # nothing went to a local folder named after the URI


@pytest.fixture()
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for key, value in s3_server.node_env.items():
        monkeypatch.setenv(key, value)
    return s3_server


def test_good_storage_passes_and_leaves_no_probe(s3_env: S3Server) -> None:
    prefix = f"{S3Server.BUCKET}/probe-{uuid.uuid4().hex[:8]}"
    check_storage(f"s3://{prefix}")
    assert _names(s3_env.filesystem(), prefix) == []


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing bucket", "bucket does not exist"),
        ("wrong secret", "signature we calculated does not match"),
        ("unknown key", "Access Key Id you provided does not exist"),
    ],
)
def test_bad_s3_storage_fails_before_ray_starts(
    case: str,
    reason: str,
    s3_env: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storage = f"s3://{S3Server.BUCKET}/hiast"
    if case == "missing bucket":
        storage = "s3://no-such-bucket/hiast"
    elif case == "wrong secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAKEY000000000")
    with pytest.raises(StorageError, match=reason):
        check_storage(storage)
    code = main(["--config", str(write_config(tmp_path / "tiny.yaml")), "--storage", storage])
    assert code == 2
    assert not ray.is_initialized()  # refused before connecting to (or starting) a cluster
    err = capsys.readouterr().err
    assert f"--storage {storage}: cannot write there" in err and reason in err
