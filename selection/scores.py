"""Label-free scores beside F-mIoU: each a small pure function with a stated direction.

Every score maps what was accumulated for one candidate to one float, and carries
``higher_is_better``. The streaming parts are accumulators that add exactly across workers.

=====================  =====  =============================================================
score                  dir.   input
=====================  =====  =============================================================
f_miou                 high   vote against the fusion (:mod:`selection.fusion`)
f_miou_trimmed         high   same, fusion without degenerate candidates
mean_confidence        high   per-pixel max softmax probability maps, streamed
mean_entropy           low    per-pixel softmax entropy maps (nats), streamed
rescale_consistency    high   label maps at scale 1 vs. at another scale resized back: mIoU
source_val_miou        high   mIoU on the labelled source validation split (passed through)
seed_agreement         high   mIoU between a candidate's replicates (Jiang et al., ICLR 2022)
=====================  =====  =============================================================

Known blind spots, kept visible rather than fixed: a collapsed model can be very confident
(high confidence, low entropy) and perfectly rescale-consistent; source mIoU ignores the domain
gap. That is why the audit (:mod:`selection.audit`) reports every score's regret side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selection.agreement import PairwiseAgreement
from selection.arrays import is_torch, to_numpy
from selection.errors import SelectionError

__all__ = [
    "ScoreSpec",
    "ScoreValues",
    "SCORES",
    "MeanMapAccumulator",
    "max_prob_map",
    "entropy_map",
    "mean_confidence",
    "mean_entropy",
    "rescale_consistency",
    "rescale_accumulator",
    "source_val_miou",
    "seed_agreement",
    "direction",
]


@dataclass(frozen=True)
class ScoreSpec:
    name: str
    higher_is_better: bool
    description: str


SCORES: dict[str, ScoreSpec] = {
    s.name: s
    for s in (
        ScoreSpec("f_miou", True, "mIoU against the majority-vote fusion of the candidates (paper §4.5)"),
        ScoreSpec("f_miou_trimmed", True, "F-mIoU against the fusion of the non-degenerate candidates"),
        ScoreSpec("mean_confidence", True, "mean max softmax probability over the subset's pixels"),
        ScoreSpec("mean_entropy", False, "mean softmax entropy (nats) over the subset's pixels"),
        ScoreSpec("rescale_consistency", True, "mIoU between predictions at scale 1 and at another scale"),
        ScoreSpec("source_val_miou", True, "mIoU on the labelled source validation split"),
        ScoreSpec("seed_agreement", True, "mean mIoU between predictions of a candidate's replicates"),
    )
}


@dataclass(frozen=True)
class ScoreValues:
    """Values of one score for some candidates, with its direction (for :func:`run_selection`)."""

    values: Mapping[str, float]
    higher_is_better: bool
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def direction(name: str, given: ScoreValues | Mapping[str, float]) -> bool:
    """higher_is_better of a score: from ScoreValues, else the registry; unknown plain dicts raise."""
    if isinstance(given, ScoreValues):
        return given.higher_is_better
    if name in SCORES:
        return SCORES[name].higher_is_better
    raise SelectionError(
        f"score {name!r} is not a known score ({', '.join(SCORES)}); "
        "pass ScoreValues(values, higher_is_better=...)"
    )


def _score(higher_is_better: bool) -> Callable[[Callable[..., float]], Callable[..., float]]:
    def wrap(fn: Callable[..., float]) -> Callable[..., float]:
        fn.higher_is_better = higher_is_better  # type: ignore[attr-defined]
        return fn

    return wrap


class MeanMapAccumulator:
    """Streaming mean of a per-pixel map (max-prob or entropy) over all images; merges exactly.

    ``update(map, valid=None)``: ``valid`` (bool, same shape) restricts the pixels counted, e.g.
    to exclude padding. Sums in float64 so the order of images does not change the result beyond
    rounding.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self.images = 0

    def update(self, values: Any, valid: Any = None) -> None:
        v = np.asarray(to_numpy(values), dtype=np.float64)
        if valid is not None:
            m = np.asarray(to_numpy(valid), dtype=bool)
            if m.shape != v.shape:
                raise SelectionError(f"valid mask shape {m.shape} differs from map shape {v.shape}")
            v = v[m]
        if not np.all(np.isfinite(v)):
            raise SelectionError("map holds NaN or infinite values")
        self.total += float(v.sum())
        self.count += int(v.size)
        self.images += 1

    def merge(self, other: MeanMapAccumulator) -> MeanMapAccumulator:
        self.total += other.total
        self.count += other.count
        self.images += other.images
        return self

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")


def max_prob_map(probs: Any, axis: int = 0) -> Any:
    """(C, H, W) softmax probabilities -> (H, W) max probability (numpy or torch, as given)."""
    return probs.amax(dim=axis) if is_torch(probs) else np.max(probs, axis=axis)


def entropy_map(probs: Any, axis: int = 0, eps: float = 1e-12) -> Any:
    """(C, H, W) softmax probabilities -> (H, W) entropy in nats (0 log 0 taken as 0)."""
    if is_torch(probs):
        import torch

        return -(probs * torch.log(probs.clamp_min(eps))).sum(dim=axis)
    p = np.asarray(probs, dtype=np.float64)
    return -(p * np.log(np.maximum(p, eps))).sum(axis=axis)


@_score(higher_is_better=True)
def mean_confidence(acc: MeanMapAccumulator) -> float:
    """Mean max-probability over the subset (higher is better; blind to confident collapse)."""
    return acc.mean


@_score(higher_is_better=False)
def mean_entropy(acc: MeanMapAccumulator) -> float:
    """Mean prediction entropy over the subset (lower is better; blind to confident collapse)."""
    return acc.mean


def rescale_accumulator(num_classes: int, ignore_index: int = 255) -> PairwiseAgreement:
    """Accumulator for :func:`rescale_consistency`: update with ``np.stack([at_scale_1, rescaled_back])``."""
    return PairwiseAgreement(2, num_classes, ignore_index)


@_score(higher_is_better=True)
def rescale_consistency(acc: PairwiseAgreement) -> float:
    """mIoU between labels at scale 1 and at another scale resized back (higher is better)."""
    if acc.n != 2:
        raise SelectionError(f"rescale_consistency needs a 2-map accumulator, got {acc.n}")
    return float(acc.matrix()[0, 1])


@_score(higher_is_better=True)
def source_val_miou(value: float) -> float:
    """mIoU on the labelled source validation split, passed through (higher is better)."""
    v = float(value)
    if not (np.isnan(v) or 0.0 <= v <= 1.0):
        raise SelectionError(f"source_val_miou must be a fraction in [0, 1], got {value!r}")
    return v


@_score(higher_is_better=True)
def seed_agreement(agreement: np.ndarray) -> float:
    """Mean mIoU over the pairs of a candidate's replicates, from an (r, r) agreement matrix.

    After Jiang et al. (ICLR 2022): a setting whose runs agree with each other is a stable one.
    NaN with fewer than 2 replicates. Higher is better.
    """
    a = np.asarray(agreement, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise SelectionError(f"seed_agreement expects a square agreement matrix, got shape {a.shape}")
    r = a.shape[0]
    if r < 2:
        return float("nan")
    vals = a[np.triu_indices(r, k=1)]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")
