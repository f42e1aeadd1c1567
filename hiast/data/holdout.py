"""The source-val split held out of the source training set, and every split as the run reads it.

In UDA the source is labelled, so a labelled source-val split can always exist. When a config gives
no ``data.source_val``, ``data.source_val_holdout`` (on by default) takes one out of ``data.source``:
round-half-up(fraction x N) images, at most ``max_images``, chosen by seeded hash rank (each id gets
``sha256(f"{seed}:{id}")`` and the smallest win, as :mod:`selection.store.subset` does for the target
subset). The choice depends only on the set of source ids (after ``data.source.limit``) and the
settings, not on the order the files are listed in nor on numpy's RNG, so a ``--resume`` and every
replicate hold out the same images. Those images are never trained on: the warm-up reads the
remainder (:func:`build_split` ``"source"``); self-training reads only the target.

An explicit ``data.source_val`` always wins (nothing is held out); ``data.source_val_holdout: null``
turns the hold-out off (no source-val split, as before). A ``warmup.checkpoint`` trained elsewhere
may have seen the held-out images: the hold-out cannot vouch for a model it did not train.

Too few images is a config error naming ``data.source_val_holdout``: fewer than 1 held out, or fewer
than ``min_train`` left to train on (the job, the warm-up and ``check-data`` ask for two warm-up
batches, :func:`min_train_images`: a smaller remainder is almost surely a misconfigured hold-out
on a small or ``limit``-ed source, not a setup worth training).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from hiast.config import ConfigError, DataConfig, HIASTConfig, SourceValHoldout
from hiast.data import build_dataset
from hiast.data.base import SegDataset, Subset, WithoutLabels

__all__ = [
    "FIELD",
    "HELD_OUT_CHECK",
    "SPLITS",
    "SourceSplit",
    "build_split",
    "held_out_count",
    "holdout_applies",
    "min_train_images",
    "source_split",
    "split_source_ids",
]

FIELD = "data.source_val_holdout"
# The name the pre-start checks and check-data give the held-out split.
HELD_OUT_CHECK = "data.source_val (held out of data.source)"
SPLITS = ("source", "target", "source_val", "target_val")


@dataclass(frozen=True)
class SourceSplit:
    """The source ids divided: ``held_out`` (the source-val split) and ``train``, both sorted."""

    held_out: list[str]
    train: list[str]
    settings: SourceValHoldout

    @property
    def source_size(self) -> int:
        return len(self.held_out) + len(self.train)


def holdout_applies(data: DataConfig) -> bool:
    """True when the source-val split is held out of ``data.source`` (no explicit one, not off)."""
    return data.source_val is None and data.source_val_holdout is not None


def held_out_count(n: int, holdout: SourceValHoldout) -> int:
    """round-half-up(fraction x n), capped at ``max_images`` (Python's round() rounds half to even)."""
    return min(math.floor(holdout.fraction * n + 0.5), holdout.max_images)


def min_train_images(cfg: HIASTConfig) -> int:
    """The fewest source images the warm-up may be left with: two of its batches."""
    return 2 * cfg.warmup.batch_size


def _rank(seed: int, image_id: str) -> bytes:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).digest()


def split_source_ids(ids: Sequence[str], holdout: SourceValHoldout, *, min_train: int = 1) -> SourceSplit:
    """Divide the source ids; ConfigError naming ``data.source_val_holdout`` when too few remain."""
    ids = sorted(set(ids))
    n, k = len(ids), held_out_count(len(ids), holdout)
    off = f"give data.source_val, or turn the hold-out off with {FIELD}: null"
    if k < 1:
        raise ConfigError(
            f"{FIELD}: fraction {holdout.fraction} of the {n} source images holds out {k} images; "
            f"at least 1 is needed: raise {FIELD}.fraction, or {off}"
        )
    if n - k < min_train:
        raise ConfigError(
            f"{FIELD}: holding out {k} of the {n} source images leaves {n - k} to train on, fewer than "
            f"{min_train} (twice warmup.batch_size); lower {FIELD}.fraction or .max_images, or {off}"
        )
    chosen = set(sorted(ids, key=lambda i: (_rank(holdout.seed, i), i))[:k])
    return SourceSplit(
        held_out=[i for i in ids if i in chosen], train=[i for i in ids if i not in chosen], settings=holdout
    )


def source_split(cfg: HIASTConfig, ids: Sequence[str]) -> SourceSplit | None:
    """How the run divides these source ids (None: nothing held out), with the job's too-few rule."""
    if cfg.data.source_val_holdout is None or not holdout_applies(cfg.data):
        return None
    return split_source_ids(ids, cfg.data.source_val_holdout, min_train=min_train_images(cfg))


def build_split(
    data: DataConfig, split: str, *, with_labels: bool = True, min_train: int = 1
) -> SegDataset | None:
    """The dataset the run reads for ``split`` (one of :data:`SPLITS`); None when it has none.

    ``source`` is the training set: without the held-out images when the hold-out applies.
    ``source_val`` is the explicit split, else the held-out one, else None.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if split in ("source", "source_val") and holdout_applies(data):
        source = build_dataset(data.source, data)
        assert data.source_val_holdout is not None
        parts = split_source_ids(source.ids, data.source_val_holdout, min_train=min_train)
        if split == "source":
            part = Subset(source, parts.train, f"{source.name} (without the held-out source-val)")
        else:
            part = Subset(source, parts.held_out, f"{source.name} (held-out source-val)")
        return part if with_labels else WithoutLabels(part)
    spec = getattr(data, split)
    if spec is None:
        return None
    return build_dataset(spec, data, with_labels=with_labels)
