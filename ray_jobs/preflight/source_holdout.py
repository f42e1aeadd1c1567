"""``<experiment>/source_val_holdout.json``: which source images the job held out as source-val.

The one owner of that file. The driver writes it once, before any training
(:func:`record_source_holdout`); a ``--resume`` finds it and checks that the source set still
divides the same way, since a search whose candidates saw different held-out images would compare
unlike scores. The split itself is :mod:`hiast.data.holdout`'s; this module only records it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass

from hiast.config import HIASTConfig, SourceValHoldout
from hiast.data import build_dataset
from hiast.data.holdout import source_split
from ray_jobs.preflight.checks import JobError
from ray_jobs.storage import exists, write_bytes_atomic
from selection import read_json_document

__all__ = [
    "HOLDOUT_FORMAT",
    "HoldoutError",
    "HoldoutRecord",
    "read_holdout",
    "record_source_holdout",
    "write_holdout",
]

HOLDOUT_FORMAT = "hiast-select/source-val-holdout/v1"

log = logging.getLogger("ray_jobs")


class HoldoutError(JobError):
    """The file is unreadable, or holds another split than this config and source set give."""


@dataclass(frozen=True)
class HoldoutRecord:
    """The held-out ids (sorted), the settings that chose them and the source set's size."""

    held_out: list[str]
    source_size: int
    fraction: float
    max_images: int
    seed: int

    @property
    def trained_on(self) -> int:
        return self.source_size - len(self.held_out)

    @property
    def settings(self) -> SourceValHoldout:
        return SourceValHoldout(fraction=self.fraction, max_images=self.max_images, seed=self.seed)


def write_holdout(uri: str | os.PathLike[str], record: HoldoutRecord) -> None:
    doc = {"format": HOLDOUT_FORMAT, **asdict(record), "trained_on": record.trained_on}
    # The ids last: the settings stay readable at the top of a 500-id file.
    doc["held_out"] = doc.pop("held_out")
    write_bytes_atomic(uri, (json.dumps(doc, indent=1) + "\n").encode())


def read_holdout(uri: str | os.PathLike[str]) -> HoldoutRecord:
    where = f"source-val hold-out file {os.fspath(uri)}"
    doc = read_json_document(uri, where, HoldoutError)
    if doc.get("format") != HOLDOUT_FORMAT:
        raise HoldoutError(f"{where}: not a {HOLDOUT_FORMAT} document")
    ids = doc.get("held_out")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise HoldoutError(f"{where}: held_out must be a list of strings")
    try:
        record = HoldoutRecord(
            held_out=ids,
            source_size=int(doc["source_size"]),
            fraction=float(doc["fraction"]),
            max_images=int(doc["max_images"]),
            seed=int(doc["seed"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise HoldoutError(f"{where}: missing or bad field {e}") from None
    if doc.get("trained_on") != record.trained_on:
        raise HoldoutError(f"{where}: trained_on does not match source_size and held_out (edited?)")
    return record


def record_source_holdout(cfg: HIASTConfig, uri: str) -> HoldoutRecord | None:
    """Write the split this config holds out (None, nothing written, when it holds out none); when
    the file exists (a resume), check it holds the same split instead."""
    source = build_dataset(cfg.data.source, cfg.data)
    parts = source_split(cfg, source.ids)
    if parts is None:
        return None
    s = parts.settings
    record = HoldoutRecord(parts.held_out, parts.source_size, s.fraction, s.max_images, s.seed)
    if cfg.warmup.checkpoint is not None:
        # The hold-out keeps the held-out images out of the training it runs, not out of a
        # model trained elsewhere.
        log.warning(
            "warmup.checkpoint %s was not trained by this job: it may have seen the held-out source-val "
            "images (%d), which would flatter source-val mIoU and ATC",
            cfg.warmup.checkpoint,
            len(record.held_out),
        )
    if exists(uri):
        stored = read_holdout(uri)
        if stored != record:
            raise HoldoutError(
                f"{uri} holds another source-val hold-out ({len(stored.held_out)} of {stored.source_size} "
                f"images) than this config and source set give ({len(record.held_out)} of "
                f"{record.source_size}): the source set or data.source_val_holdout changed"
            )
        return stored
    write_holdout(uri, record)
    return record
