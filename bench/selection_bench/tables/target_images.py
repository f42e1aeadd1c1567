"""``bench/results/selection_target_images.parquet``: per-image target-val counts, one owner.

The few-label oracles pick by the mIoU on N labelled target-val images. mIoU is not an average of
per-image mIoUs: a subset's mIoU sums every class's intersection and union over its images and
divides once, as :func:`hiast.predict.evaluate` does over the whole split. So the file keeps, per
(regime, seed, candidate, target-val image), the intersection and union pixel counts of every
evaluated class: enough for the mIoU of any subset, and summed over all images it must give the
candidate's recorded target-val mIoU exactly (the score stage checks that before writing).

One row per image rather than per (image, class), with the counts as lists aligned with the
``classes`` list of the row: the row is the unit a few-label draw samples, and the file stays small
for the whole benchmark (8 regimes x 3 seeds x 13 candidates x 120 images = 37,440 rows; 0.6 MB
for random counts of that size).

Columns: regime, seed, candidate, image (target-val image id), classes, intersection, union (lists
of int64, same length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from selection_bench.tables.scores import TableError, read_parquet_checked, write_parquet_atomic

__all__ = [
    "COLUMNS",
    "TargetImages",
    "image_counts",
    "read_target_images",
    "subset_miou",
    "write_target_images",
]

KEY = ("regime", "seed", "candidate", "image")
COLUMNS = (*KEY, "classes", "intersection", "union")


def image_counts(cm: np.ndarray, classes: Sequence[int]) -> tuple[list[int], list[int]]:
    """(intersection, union) pixel counts per class in ``classes`` from one image's confusion matrix
    (``hiast.metrics.confusion_matrix``: rows label, columns prediction), as ``iou_from_confusion``
    counts them."""
    cm = np.asarray(cm, np.int64)
    inter = np.diag(cm)
    union = cm.sum(1) + cm.sum(0) - inter
    return [int(inter[c]) for c in classes], [int(union[c]) for c in classes]


def subset_miou(intersection: np.ndarray, union: np.ndarray) -> float:
    """mIoU in points of (images, classes) count arrays summed over the images; classes with no
    pixel in the union are left out (``hiast.metrics.mean_iou``'s NaN-aware mean)."""
    i, u = np.asarray(intersection, np.int64).sum(0), np.asarray(union, np.int64).sum(0)
    ok = u > 0
    return float(100 * np.mean(i[ok] / u[ok])) if ok.any() else float("nan")


@dataclass(frozen=True)
class TargetImages:
    """The per-image counts in memory, with (regime, seed) -> candidate -> (images, I, U) arrays."""

    frame: pd.DataFrame
    # Every vote group of a seed asks for the same arrays: built once per (regime, seed).
    _memo: dict[tuple[str, int], dict] = field(default_factory=dict, repr=False, compare=False)

    def images(self, regime: str) -> list[str]:
        """The regime's target-val image ids, sorted."""
        return sorted(self.frame.loc[self.frame["regime"] == regime, "image"].unique())

    def counts(self, regime: str, seed: int) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
        """candidate -> (image ids sorted, intersection (n, C), union (n, C))."""
        if (regime, seed) not in self._memo:
            self._memo[regime, seed] = self._counts(regime, seed)
        return self._memo[regime, seed]

    def _counts(self, regime: str, seed: int) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
        rows = self.frame[(self.frame["regime"] == regime) & (self.frame["seed"] == seed)]
        out = {}
        for cid, r in rows.groupby("candidate", sort=True):
            r = r.sort_values("image")
            out[str(cid)] = (
                [str(i) for i in r["image"]],
                np.stack([np.asarray(v, np.int64) for v in r["intersection"]]),
                np.stack([np.asarray(v, np.int64) for v in r["union"]]),
            )
        return out


def _check(frame: pd.DataFrame, path: Path) -> None:
    lens = frame["classes"].map(len)
    bad = (frame["intersection"].map(len) != lens) | (frame["union"].map(len) != lens)
    if bad.any():
        row = frame.loc[bad, list(KEY)].iloc[0].tolist()
        raise TableError(f"{path}: row {row}: intersection/union lengths differ from classes")


def write_target_images(table: TargetImages, path: Path) -> None:
    missing = [c for c in COLUMNS if c not in table.frame.columns]
    if missing:
        raise TableError(f"{path}: refusing to write per-image counts without column(s) {', '.join(missing)}")
    _check(table.frame, path)
    write_parquet_atomic(table.frame.sort_values(list(KEY)).reset_index(drop=True), path)


def read_target_images(path: Path) -> TargetImages:
    """Read and validate ``path`` (TableError naming the file and what is wrong)."""
    frame = read_parquet_checked(path, COLUMNS, KEY)
    _check(frame, path)
    return TargetImages(frame)
