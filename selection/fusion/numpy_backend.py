"""The numpy back-end of the vote and the agreement (CPU; the default there).

uint8 pairwise-agreement vote and one ``bincount`` per candidate: ~20x the straightforward loop on
CPU. Every function takes the (n, P) uint8 pixels of :func:`selection.fusion.arrays.as_pixels`; the torch
back-end (:mod:`selection.fusion.torch_backend`) returns identical counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["vote", "counts", "pair_intersections", "label_histogram"]


def vote(v: np.ndarray, ignore_index: int) -> np.ndarray:
    """Fused labels (P,) of the voters' maps ``v`` (nv, P), uint8 throughout.

    agree[k] = number of voters whose label equals voter k's (itself included), 0 where k abstains;
    the most-voted class belongs to the voters with the largest ``agree``. If those voters do not
    all carry the same label (hi != lo among them) it is a tie. O(nv^2) uint8 passes, which beats a
    (C, P) count array for the candidate counts a sweep has (measured: 8 voters, 19 classes).
    """
    nv, npix = v.shape
    valid8 = (v != ignore_index).view(np.uint8)
    agree = valid8.copy()
    eq = np.empty(npix, dtype=bool)
    eq8 = eq.view(np.uint8)
    for i in range(nv):
        for k in range(i + 1, nv):
            np.equal(v[i], v[k], out=eq)
            agree[i] += eq8
            agree[k] += eq8
    agree *= valid8
    top = agree.max(axis=0)
    hi = np.zeros(npix, dtype=np.uint8)
    lo = np.full(npix, 255, dtype=np.uint8)
    at = np.empty(npix, dtype=bool)
    mask = np.empty(npix, dtype=np.uint8)
    tmp = np.empty(npix, dtype=np.uint8)
    for k in range(nv):
        np.equal(agree[k], top, out=at)
        np.negative(at.view(np.uint8), out=mask)  # 0 or 255: select without branches
        np.bitwise_and(v[k], mask, out=tmp)
        np.maximum(hi, tmp, out=hi)
        np.invert(mask, out=mask)
        np.bitwise_or(v[k], mask, out=tmp)
        np.minimum(lo, tmp, out=lo)
    # top == 0 means every voter abstained: then all maps hold ignore, hi == lo == ignore.
    return np.where(hi == lo, hi, np.uint8(ignore_index))


def counts(
    p: np.ndarray, fused: np.ndarray, num_classes: int, ignore_index: int
) -> tuple[np.ndarray, int | None]:
    """(n, C+1, C+1) counts of (fused, candidate) label pairs and the first invalid candidate or None."""
    n, npix = p.shape
    c = num_classes
    rows = c + 1
    f16 = np.minimum(fused, np.uint8(c)).astype(np.uint16)  # undecided (and invalid) -> row C
    f16 *= 256
    code = np.empty(npix, dtype=np.uint16)
    raw = np.empty((n, rows * 256), dtype=np.int64)
    for j in range(n):
        np.add(f16, p[j], out=code)
        raw[j] = np.bincount(code, minlength=rows * 256)
    raw = raw.reshape(n, rows, 256)
    # Label validation for free: a column >= C other than ignore holds pixels only if a label is bad.
    per_label = raw.sum(axis=1)
    per_label[:, ignore_index] = 0
    bad = per_label[:, c:].any(axis=1)
    first_bad = int(np.argmax(bad)) if bad.any() else None
    out = np.concatenate([raw[:, :, :c], raw[:, :, ignore_index : ignore_index + 1]], axis=2)
    return out, first_bad


def pair_intersections(p: np.ndarray, pairs: Sequence[tuple[int, int]], num_classes: int) -> np.ndarray:
    """(n_pairs, C): pixels where both candidates of a pair say class c."""
    npix = p.shape[1]
    eq = np.empty(npix, dtype=bool)
    mask = np.empty(npix, dtype=np.uint8)
    both = np.empty(npix, dtype=np.uint8)
    out = np.empty((len(pairs), num_classes), dtype=np.int64)
    for idx, (a, b) in enumerate(pairs):
        np.equal(p[a], p[b], out=eq)
        np.negative(eq.view(np.uint8), out=mask)
        np.invert(mask, out=mask)  # 255 where they differ
        np.bitwise_or(p[a], mask, out=both)  # the shared label, or 255 (never a class)
        out[idx] = np.bincount(both, minlength=256)[:num_classes]
    return out


def label_histogram(p: np.ndarray) -> np.ndarray:
    """(n, 256) count of every uint8 value per candidate."""
    return np.stack([np.bincount(row, minlength=256) for row in p])
