"""Naive references for the selection tests: obviously correct, slow, no shared code with selection/."""

from __future__ import annotations

from collections import Counter

import numpy as np

IGNORE = 255


def naive_vote(stack: np.ndarray, num_classes: int, ignore: int = IGNORE) -> np.ndarray:
    """Pixel by pixel: the unique most-voted class, else ignore."""
    n, h, w = stack.shape
    out = np.full((h, w), ignore, dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            votes = Counter(int(v) for v in stack[:, y, x] if v != ignore)
            if not votes:
                continue
            top = max(votes.values())
            winners = [c for c, k in votes.items() if k == top]
            if len(winners) == 1:
                out[y, x] = winners[0]
    return out


def naive_sums(stacks, num_classes: int, ignore: int = IGNORE, voters=None):
    """Per-candidate intersections and unions against the fusion, summed over images."""
    inter = union = None
    for stack in stacks:
        vote_on = stack if voters is None else stack[list(voters)]
        fused = naive_vote(vote_on, num_classes, ignore)
        n = stack.shape[0]
        if inter is None:
            inter = np.zeros((n, num_classes))
            union = np.zeros((n, num_classes))
        decided = fused != ignore
        for j in range(n):
            p, g = stack[j][decided], fused[decided]
            for c in range(num_classes):
                inter[j, c] += np.sum((p == c) & (g == c))
                union[j, c] += np.sum((p == c) | (g == c))
    return inter, union


def naive_f_miou(stacks, num_classes: int, ignore: int = IGNORE, voters=None) -> np.ndarray:
    inter, union = naive_sums(stacks, num_classes, ignore, voters)
    out = []
    for j in range(inter.shape[0]):
        ious = [inter[j, c] / union[j, c] for c in range(num_classes) if union[j, c] > 0]
        out.append(sum(ious) / len(ious) if ious else float("nan"))
    return np.array(out)


def naive_agreement(stacks, num_classes: int) -> np.ndarray:
    """mIoU between every pair of candidates over all pixels of all images."""
    stacks = list(stacks)
    n = stacks[0].shape[0]
    out = np.full((n, n), np.nan)
    for a in range(n):
        for b in range(n):
            inter = np.zeros(num_classes)
            union = np.zeros(num_classes)
            for s in stacks:
                for c in range(num_classes):
                    inter[c] += np.sum((s[a] == c) & (s[b] == c))
                    union[c] += np.sum((s[a] == c) | (s[b] == c))
            ious = [inter[c] / union[c] for c in range(num_classes) if union[c] > 0]
            if ious:
                out[a, b] = sum(ious) / len(ious)
    return out


def random_stacks(rng, n: int, num_images: int, num_classes: int, shape=(5, 7), p_ignore=0.2, p_noise=0.4):
    """Candidates that mostly agree (so the vote decides pixels), with noise and abstentions."""
    stacks = []
    for _ in range(num_images):
        h, w = shape
        base = rng.integers(0, num_classes, (h, w))
        noise = rng.integers(0, num_classes, (n, h, w))
        s = np.where(rng.random((n, h, w)) < p_noise, noise, base[None]).astype(np.uint8)
        s[rng.random((n, h, w)) < p_ignore] = IGNORE
        stacks.append(s)
    return stacks
