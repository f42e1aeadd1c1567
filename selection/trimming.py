"""Trimmed vote: report candidates whose F-mIoU is far below the rest, and vote again without them.

Why: on synthscape, two correlated degenerate (collapsed) candidates in a five-candidate vote moved
the pick off the best one. F-mIoU does rank collapsed candidates last, so they are easy to flag;
they still poison the fusion they vote in.

Rule (robust to the outliers it looks for): with scores s over a vote group of at least
``min_candidates``, median m and MAD = median(|s - m|), a candidate is degenerate when

    s < m - max(k * 1.4826 * MAD, min_gap)          (defaults k = 3, min_gap = 0.10)

1.4826 * MAD estimates a standard deviation; ``min_gap`` keeps a tight, healthy group (MAD near
0) from flagging ordinary spread. Only the low side is tested. At most half the group can be
flagged (the median sits among the rest). Paper Table 8 (alpha: 0.854 median, 0.07 MAD) flags
nothing: its spread is ordinary. NaN scores are never flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["TrimRule", "find_degenerate", "trim_threshold"]


@dataclass(frozen=True)
class TrimRule:
    k: float = 3.0
    min_gap: float = 0.10
    min_candidates: int = 3

    def describe(self) -> str:
        return f"F-mIoU below median - max({self.k:g} x 1.4826 x MAD, {self.min_gap:g})"


def find_degenerate(scores: Mapping[str, float], rule: TrimRule = TrimRule()) -> list[str]:
    """Candidate ids flagged as degenerate (F-mIoU far below the rest), in input order."""
    ids = [i for i, s in scores.items() if np.isfinite(s)]
    if len(ids) < rule.min_candidates:
        return []
    vals = np.array([scores[i] for i in ids], dtype=np.float64)
    med = float(np.median(vals))
    mad = float(np.median(np.abs(vals - med)))
    threshold = med - max(rule.k * 1.4826 * mad, rule.min_gap)
    return [i for i, v in zip(ids, vals, strict=True) if v < threshold]


def trim_threshold(scores: Mapping[str, float], rule: TrimRule = TrimRule()) -> float:
    """The threshold :func:`find_degenerate` applies (NaN when the group is too small)."""
    vals = np.array([s for s in scores.values() if np.isfinite(s)], dtype=np.float64)
    if len(vals) < rule.min_candidates:
        return float("nan")
    med = float(np.median(vals))
    return med - max(rule.k * 1.4826 * float(np.median(np.abs(vals - med))), rule.min_gap)
