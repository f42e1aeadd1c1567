"""Paths and URIs through ``pyarrow.fs``, and writes that either complete or leave nothing.

A local path and a cluster URI (``s3://bucket/x``, ``gs://bucket/x``, ``file:///x``) go through the
same code. Every write goes to a hidden temporary name beside the target and is then moved over it:
a rename on a local disk (atomic), a copy + delete on object stores (where the target appears only
once it is complete, since object uploads are all-or-nothing). A failed write deletes its temp.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

__all__ = [
    "resolve",
    "atomic_output",
    "write_bytes_atomic",
    "read_bytes",
    "read_json_document",
    "exists",
    "temp_path",
    "move",
    "delete_quietly",
]


def resolve(uri: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local path (relative ones made absolute) or a URI with a scheme."""
    s = os.fspath(uri)
    if "://" not in s:
        return pafs.LocalFileSystem(), os.path.abspath(s)
    return pafs.FileSystem.from_uri(s)


def exists(uri: str | os.PathLike[str]) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def temp_path(path: str) -> str:
    """A hidden, unique temporary name beside ``path`` (same directory: the final move stays cheap)."""
    parent, name = posixpath.split(path)
    return posixpath.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:12]}")


def move(fs: pafs.FileSystem, src: str, dst: str) -> None:
    """Move ``src`` over ``dst``: a rename where the file system has one, else copy then delete."""
    try:
        fs.move(src, dst)
    except (NotImplementedError, pa.ArrowNotImplementedError):
        # Some object stores implement no rename: copy, then drop the temp.
        fs.copy_file(src, dst)
        fs.delete_file(src)


def delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    """Delete a temporary file while another error is being raised; a failure here must not mask it."""
    try:
        fs.delete_file(path)
    except (OSError, pa.ArrowException):
        pass


@contextmanager
def atomic_output(uri: str | os.PathLike[str]) -> Iterator[pa.NativeFile]:
    """Yield an output stream; on normal exit the data replaces ``uri``, on error nothing changes."""
    fs, path = resolve(uri)
    parent = posixpath.dirname(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    tmp = temp_path(path)
    try:
        with fs.open_output_stream(tmp) as out:
            yield out
        move(fs, tmp, path)
    except BaseException:
        delete_quietly(fs, tmp)
        raise


def write_bytes_atomic(uri: str | os.PathLike[str], data: bytes) -> None:
    with atomic_output(uri) as out:
        out.write(data)


def read_bytes(uri: str | os.PathLike[str]) -> bytes:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def read_json_document(uri: str | os.PathLike[str], where: str, error: type[Exception]) -> dict[str, Any]:
    """The JSON object stored at ``uri``; ``error`` naming ``where`` when the file is missing,
    unreadable, not JSON or not an object (the owners of the job's JSON records share this)."""
    try:
        doc = json.loads(read_bytes(uri))
    except FileNotFoundError:
        raise error(f"{where} not found") from None
    except (OSError, ValueError) as e:
        raise error(f"{where} is unreadable: {e}") from None
    if not isinstance(doc, dict):
        raise error(f"{where}: expected a JSON object, got {type(doc).__name__}")
    return doc
