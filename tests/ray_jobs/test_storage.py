"""Storage that cannot be written is refused before Ray starts, naming the storage and the reason.

The S3 cases (a missing bucket, wrong credentials) are in test_s3.py, against a local S3 server.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import ray
from jobtools import write_config

from ray_jobs.select import main
from ray_jobs.storage import StorageError, check_storage


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write into: read-only by its mode, or (as root, whom modes do not
    stop) one on a read-only file system."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if not os.access(folder, os.W_OK):
        return folder
    for candidate in (Path("/sys/fs"), Path("/sys")):  # sysfs refuses new entries, even to root
        try:
            (candidate / "hiast-select-probe").mkdir()
        except OSError:
            return candidate
        (candidate / "hiast-select-probe").rmdir()
    pytest.skip("no folder here refuses writes to this user")


def test_writable_folder_passes_and_is_left_as_it_was(tmp_path: Path) -> None:
    check_storage(tmp_path / "new" / "results")
    assert not (tmp_path / "new").exists()  # folders made for the probe are gone again
    (tmp_path / "kept").mkdir()
    check_storage(tmp_path / "kept")
    assert list((tmp_path / "kept").iterdir()) == []  # no probe left behind


def test_unwritable_folder_is_refused(tmp_path: Path) -> None:
    folder = _unwritable_folder(tmp_path)
    with pytest.raises(StorageError, match="cannot write there") as err:
        check_storage(folder / "results")
    assert str(folder / "results") in str(err.value)


def test_a_file_is_not_a_storage_folder(tmp_path: Path) -> None:
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(StorageError, match="is not a folder"):
        check_storage(tmp_path / "results")


def test_unknown_uri_scheme_is_refused() -> None:
    with pytest.raises(StorageError, match=r"--storage nosuchfs://bucket/prefix: not a storage location"):
        check_storage("nosuchfs://bucket/prefix")


def test_uri_options_are_refused() -> None:
    # pyarrow would take the endpoint from the query, but paths appended to the URI would land in it.
    with pytest.raises(StorageError, match="options in the URI are not supported"):
        check_storage("s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http")


@pytest.mark.parametrize("where", ["unwritable", "scheme"])
def test_the_job_refuses_bad_storage_before_ray_starts(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = str(_unwritable_folder(tmp_path) / "results") if where == "unwritable" else "nosuchfs://b/p"
    code = main(["--config", str(write_config(tmp_path / "tiny.yaml")), "--storage", storage])
    assert code == 2
    assert not ray.is_initialized()
    err = capsys.readouterr().err
    assert f"--storage {storage}" in err
