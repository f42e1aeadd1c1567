"""Scores of a candidate's own softmax at the sampled target pixels: mean entropy, mean confidence, IM, BNM.

All four read the evidence's ``target_probs`` (float16, n_images x n_pix x C) as one (N, C) matrix
of N = n_images * n_pix pixel predictions. Each pixel weighs the same; every image contributes the
same number of pixels.

===============  =====  =======================================================================
score            dir.   definition (p_i: softmax of pixel i; H: entropy in nats, 0 log 0 = 0)
===============  =====  =======================================================================
mean_entropy     low    mean_i H(p_i)  (Morerio et al., ICLR 2018, as a validator)
mean_confidence  high   mean_i max_c p_ic
im               high   H(mean_i p_i) - mean_i H(p_i)  (information maximisation: diversity
                        minus entropy; pytorch-adapt's IMValidator)
bnm              high   ||P||_* / N, the nuclear norm of the N x C matrix P (Cui et al., CVPR
                        2020; pytorch-adapt's BNMValidator is its negative loss, the same number)
===============  =====  =======================================================================

Adaptation to segmentation: pixels instead of images, sampled (``selection.validators.evidence``) because
the full maps would not fit. References add 1e-5 inside the log (MixVal/EnsV code); here the
entropy is exact. The probabilities are used as stored (float16 rows sum to 1 within ~1e-3).

Streaming: :class:`ProbabilityStats` sums what the four need (sum of p, of H, of max p, and the
C x C Gram matrix P^T P, whose eigenvalues are the squared singular values of P), so chunks of
images merge exactly up to float rounding. The functions are one-chunk shortcuts.

Known blind spot: a collapsed model (one class everywhere) is confident, has low entropy, and
only IM's diversity term and BNM's rank term notice it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selection.errors import SelectionError

__all__ = ["ProbabilityStats", "mean_entropy", "mean_confidence", "im", "bnm", "row_entropy"]


def row_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of a (N, C) float64 probability matrix; 0 log 0 taken as 0."""
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=-1)


def _as_rows(probs: Any, num_classes: int | None) -> np.ndarray:
    p = np.asarray(probs)
    if p.ndim < 1 or p.shape[-1] < 2:
        raise SelectionError(f"probabilities must be (..., C) with C >= 2, got shape {p.shape}")
    if num_classes is not None and p.shape[-1] != num_classes:
        raise SelectionError(f"probabilities have {p.shape[-1]} classes, expected {num_classes}")
    p = p.reshape(-1, p.shape[-1]).astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise SelectionError("probabilities hold NaN or infinite values")
    return p


class ProbabilityStats:
    """Streaming sums over pixel probability rows; ``update`` with any (..., C) array."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.count = 0
        self.sum_p = np.zeros(self.num_classes)
        self.sum_entropy = 0.0
        self.sum_max = 0.0
        self.gram = np.zeros((self.num_classes, self.num_classes))

    @classmethod
    def of(cls, probs: Any) -> ProbabilityStats:
        p = np.asarray(probs)
        stats = cls(p.shape[-1] if p.ndim else 0)
        stats.update(p)
        return stats

    def update(self, probs: Any) -> None:
        p = _as_rows(probs, self.num_classes)
        # Rebind instead of adding in place: the arrays may be read-only after a Ray round trip.
        self.count = self.count + p.shape[0]
        self.sum_p = self.sum_p + p.sum(axis=0)
        self.sum_entropy = self.sum_entropy + float(row_entropy(p).sum())
        self.sum_max = self.sum_max + float(p.max(axis=1).sum())
        self.gram = self.gram + p.T @ p

    def merge(self, other: ProbabilityStats) -> ProbabilityStats:
        if other.num_classes != self.num_classes:
            raise SelectionError(f"cannot merge stats of {other.num_classes} and {self.num_classes} classes")
        out = ProbabilityStats(self.num_classes)
        out.count = self.count + other.count
        out.sum_p = self.sum_p + other.sum_p
        out.sum_entropy = self.sum_entropy + other.sum_entropy
        out.sum_max = self.sum_max + other.sum_max
        out.gram = self.gram + other.gram
        return out

    def _need_pixels(self) -> None:
        if self.count == 0:
            raise SelectionError("no pixel probabilities were added")

    @property
    def mean_entropy(self) -> float:
        self._need_pixels()
        return self.sum_entropy / self.count

    @property
    def mean_confidence(self) -> float:
        self._need_pixels()
        return self.sum_max / self.count

    @property
    def im(self) -> float:
        self._need_pixels()
        mean_p = (self.sum_p / self.count)[None, :]
        return float(row_entropy(mean_p)[0]) - self.mean_entropy

    @property
    def bnm(self) -> float:
        self._need_pixels()
        eig = np.linalg.eigvalsh(self.gram)
        return float(np.sqrt(np.clip(eig, 0.0, None)).sum()) / self.count


def mean_entropy(probs: Any) -> float:
    """Mean pixel entropy in nats (lower is better)."""
    return ProbabilityStats.of(probs).mean_entropy


def mean_confidence(probs: Any) -> float:
    """Mean max-probability (higher is better)."""
    return ProbabilityStats.of(probs).mean_confidence


def im(probs: Any) -> float:
    """Entropy of the mean prediction minus the mean entropy (higher is better)."""
    return ProbabilityStats.of(probs).im


def bnm(probs: Any) -> float:
    """Nuclear norm of the (N, C) probability matrix over N (higher is better)."""
    return ProbabilityStats.of(probs).bnm
