"""``--storage s3://…`` checked before Ray starts, against a local S3 server (moto's, an HTTP S3 API
on 127.0.0.1 that checks credentials like AWS does).

How the endpoint reaches the job: the AWS SDK's own ``AWS_ENDPOINT_URL_S3`` (with the key pair) in
the environment, which pyarrow — and so Ray Train and Tune's storage — honours. A whole search on
S3, on the multi-node cluster that loses a node mid-search, is in test_multinode.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import ray
from conftest import S3Server
from jobtools import file_names, write_config

from ray_jobs.select import main
from ray_jobs.storage import StorageError, check_storage

pytestmark = pytest.mark.slow


@pytest.fixture()
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for key, value in s3_server.node_env.items():
        monkeypatch.setenv(key, value)
    return s3_server


def test_good_storage_passes_and_leaves_no_probe(s3_env: S3Server) -> None:
    prefix = f"{S3Server.BUCKET}/probe-{uuid.uuid4().hex[:8]}"
    check_storage(f"s3://{prefix}")
    assert file_names(s3_env.filesystem(), prefix) == []


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
