"""The straightforward way to compute F-mIoU, in plain numpy loops: the speed bench's baseline.

Same semantics as ``selection.f_miou``: per pixel, the class most candidates predict; a tie, or a
pixel where every candidate abstains (255), is left undecided and out of every score. Each
candidate's IoU per class is accumulated over all images (intersection and union summed, divided
once); its F-mIoU is the mean over the classes whose union is not empty.

Written to be obviously right, not fast: one boolean mask per class and candidate.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

IGNORE = 255


def fuse(stack: np.ndarray, num_classes: int) -> np.ndarray:
    """(n, H, W) label maps of n candidates -> (H, W) majority vote, 255 where undecided."""
    votes = np.zeros((num_classes,) + stack.shape[1:], dtype=np.int64)
    for candidate in stack:
        for c in range(num_classes):
            votes[c] += candidate == c
    most = votes.max(axis=0)
    winners = (votes == most).sum(axis=0)
    fused = votes.argmax(axis=0).astype(np.uint8)
    fused[(winners > 1) | (most == 0)] = IGNORE
    return fused


def f_miou(stacks: Iterable[np.ndarray], num_classes: int) -> np.ndarray:
    """F-mIoU of each candidate over a stream of (n, H, W) stacks, one stack per image."""
    intersection = union = None
    for stack in stacks:
        fused = fuse(stack, num_classes)
        decided = fused != IGNORE
        if intersection is None:
            intersection = np.zeros((len(stack), num_classes))
            union = np.zeros((len(stack), num_classes))
        for j, candidate in enumerate(stack):
            for c in range(num_classes):
                mine = (candidate == c) & decided
                theirs = (fused == c) & decided
                intersection[j, c] += np.count_nonzero(mine & theirs)
                union[j, c] += np.count_nonzero(mine | theirs)
    if intersection is None:
        raise ValueError("f_miou: no images")
    scores = []
    for inter_j, union_j in zip(intersection, union, strict=True):
        present = union_j > 0
        scores.append(np.mean(inter_j[present] / union_j[present]) if present.any() else np.nan)
    return np.array(scores, dtype=np.float64)
