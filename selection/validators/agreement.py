"""Seed agreement (after Jiang et al., "Assessing Generalization of SGD via Disagreement", ICLR 2022).

GDE predicts test error from the disagreement of two runs that differ only in their seed. As a
validator: train every candidate ``replicates`` times, each replicate with its own warm-up and
its own self-training seed, and score the candidate by the mean, over replicate pairs, of the mIoU
between their label maps on the subset (per-class intersections and unions summed over all
pixels; :class:`selection.fusion.majority.PairwiseAgreement`). Higher is better: a setting whose runs
agree is a stable one.

Cost: ``replicates - 1`` whole extra trainings per candidate (and one prediction pass each); only
computed when ``selection.replicates >= 2``. Measured earlier on a synthetic prototype: it beat
the centre rule when the replicates had independent warm-ups, and reversed sign when they shared
one -- hence "each with its own warm-up".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from selection.errors import SelectionError
from selection.fusion.majority import IGNORE_INDEX, PairwiseAgreement

__all__ = ["seed_agreement", "mean_pair_agreement"]


def mean_pair_agreement(agreement: np.ndarray) -> float:
    """Mean mIoU over the pairs of a candidate's replicates, from an (r, r) agreement matrix.

    NaN with fewer than 2 replicates (or no finite pair). The vote pass tracks the replicate pairs
    in its :class:`~selection.fusion.majority.PairwiseAgreement` and calls this on their block.
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


def seed_agreement(stacks: Iterable[Any], num_classes: int, ignore_index: int = IGNORE_INDEX) -> float:
    """Mean pairwise mIoU between one candidate's replicates over a stream of (r, H, W) label stacks."""
    acc: PairwiseAgreement | None = None
    for i, stack in enumerate(stacks):
        arr = np.asarray(stack)
        if acc is None:
            if arr.ndim < 3 or arr.shape[0] < 2:
                raise SelectionError(
                    f"seed agreement needs a stack of >= 2 replicates' maps, got {arr.shape}"
                )
            acc = PairwiseAgreement(arr.shape[0], num_classes, ignore_index)
        acc.update(arr, image_id=i)
    if acc is None:
        raise SelectionError("seed agreement got no images")
    return mean_pair_agreement(acc.matrix())
