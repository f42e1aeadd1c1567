"""The image subset every candidate is scored on (paper §4.5: 500 random target *training* images).

Selection is by seeded hash rank: each id gets ``sha256(f"{seed}:{id}")`` and the ``size`` smallest
win. So the subset depends only on the set of ids and the seed (not on their order, nor on numpy's
RNG implementation), and for one seed a smaller subset is contained in a larger one (Table 9 varies
the size). The result is returned sorted, the order every predictions file uses.

Asking for more images than exist is an error by default (a silently smaller subset would change
what the scores mean); ``allow_smaller=True`` takes them all and warns.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

from selection.errors import SelectionError
from selection.filesystem import read_json_document, write_bytes_atomic

__all__ = ["select_subset", "subset_hash", "save_subset", "load_subset", "SUBSET_FORMAT"]

SUBSET_FORMAT = "hiast-select/subset/v1"


def _rank(seed: int, image_id: str) -> bytes:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).digest()


def select_subset(ids: Sequence[str], size: int, seed: int, *, allow_smaller: bool = False) -> list[str]:
    """A deterministic random subset of ``size`` ids, sorted.

    Raises SelectionError for duplicate ids, ``size < 1``, or ``size > len(ids)`` unless
    ``allow_smaller`` (then every id is returned, with a warning).
    """
    ids = [str(i) for i in ids]
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise SelectionError(f"image ids must be unique; {i!r} appears more than once")
        seen.add(i)
    if size < 1:
        raise SelectionError(f"selection.subset_size must be >= 1, got {size}")
    if size > len(ids):
        if not allow_smaller:
            raise SelectionError(
                f"selection.subset_size is {size} but the target training set has only {len(ids)} images"
            )
        warnings.warn(f"subset_size {size} > {len(ids)} available images: using all {len(ids)}", stacklevel=2)
        size = len(ids)
    chosen = sorted(ids, key=lambda i: (_rank(seed, i), i))[:size]
    return sorted(chosen)


def subset_hash(ids: Sequence[str]) -> str:
    """Short stable fingerprint of an ordered id list (recorded in every predictions file)."""
    return hashlib.sha256(json.dumps(list(ids)).encode()).hexdigest()[:16]


def save_subset(
    uri: str | os.PathLike[str], ids: Sequence[str], *, seed: int | None = None, **extra: Any
) -> None:
    """Write the subset as JSON (atomically, local path or cluster URI), with its hash and seed."""
    doc = {
        "format": SUBSET_FORMAT,
        "seed": seed,
        "size": len(ids),
        "hash": subset_hash(ids),
        **extra,
        "image_ids": list(ids),
    }
    write_bytes_atomic(uri, (json.dumps(doc, indent=1) + "\n").encode())


def load_subset(uri: str | os.PathLike[str]) -> list[str]:
    """Read a subset written by :func:`save_subset`; checks format, size and hash."""
    doc = read_json_document(uri, f"subset file {os.fspath(uri)}", SelectionError)
    if doc.get("format") != SUBSET_FORMAT:
        raise SelectionError(f"subset file {os.fspath(uri)}: not a {SUBSET_FORMAT} document")
    ids = doc.get("image_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise SelectionError(f"subset file {os.fspath(uri)}: image_ids must be a list of strings")
    if doc.get("size") != len(ids) or doc.get("hash") != subset_hash(ids):
        raise SelectionError(f"subset file {os.fspath(uri)}: size/hash do not match its image ids (edited?)")
    return ids
