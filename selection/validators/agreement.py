"""Seed agreement (after Jiang et al., "Assessing Generalization of SGD via Disagreement", ICLR 2022).

GDE predicts test error from the disagreement of two runs that differ only in their seed. As a
validator: train every candidate ``replicates`` times, each replicate with its own warm-up and
its own self-training seed, and score the candidate by the mean, over replicate pairs, of the mIoU
between their label maps on the subset (per-class intersections and unions summed over all
pixels; :class:`selection.fusion.PairwiseAgreement`). Higher is better: a setting whose runs
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
from selection.fusion import IGNORE_INDEX, PairwiseAgreement

# The (r, r) matrix -> mean over pairs step already exists there; only the streaming is added here.
from selection.scores import seed_agreement as mean_pair_agreement

__all__ = ["seed_agreement", "mean_pair_agreement"]


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
