"""Deterministic choices every candidate must share: which pixels are sampled, which images are mixed.

Both depend only on (seed, image id, image shape) through SHA-256 and fixed 64-bit integer
arithmetic, never on Python's ``hash()`` (salted per process) nor on numpy's random generators
(whose streams may change between numpy versions). So every candidate, process and machine picks
the same pixels of an image, and the validators can compare candidates pixel by pixel.

* :func:`sample_pixels` -- ``n_pix`` distinct flat pixel indices of an (H, W) image, sorted.
* :func:`pixel_sampler` -- the same as a callable ``(image_id, (H, W)) -> indices`` (what
  :mod:`hiast.evidence` takes; hiast imports nothing from ``selection``).
* :func:`mixval_pairs` -- each subset image paired with another for the MixVal probe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from selection.errors import SelectionError

__all__ = ["sample_pixels", "pixel_sampler", "mixval_pairs"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _key(domain: str, seed: int, image_id: str) -> int:
    digest = hashlib.sha256(f"hiast-select/{domain}:{int(seed)}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _splitmix64(base: int, start: int, count: int) -> np.ndarray:
    """Outputs ``start .. start+count-1`` of the SplitMix64 stream seeded with ``base``.

    The finaliser is a bijection of 64-bit integers and the states are distinct, so the outputs
    are distinct; uint64 arithmetic wraps, as the algorithm intends.
    """
    k = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(base) + k * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def sample_pixels(image_id: str, shape: tuple[int, int], n_pix: int, seed: int) -> np.ndarray:
    """``n_pix`` distinct flat indices (row-major) into an image of ``shape`` = (H, W), ascending.

    Uniform without replacement: draws from a stream keyed by (seed, image_id), keeping the first
    ``n_pix`` distinct values. Raises SelectionError if the image has fewer than ``n_pix`` pixels.
    """
    if len(tuple(shape)) != 2:
        raise SelectionError(f"image {image_id!r}: shape must be (H, W), got {tuple(shape)}")
    h, w = (int(v) for v in shape)
    total = h * w
    if n_pix < 1:
        raise SelectionError(f"n_pix must be >= 1, got {n_pix}")
    if total < n_pix:
        raise SelectionError(
            f"image {image_id!r} is {h}x{w} = {total} pixels, fewer than the {n_pix} pixels to sample "
            "(lower the evidence n_pix)"
        )
    base = _key("pixels", seed, str(image_id))
    drawn = np.empty(0, dtype=np.int64)
    batch = max(2 * n_pix, 64)
    while True:
        new = (_splitmix64(base, drawn.size, batch) % np.uint64(total)).astype(np.int64)
        drawn = np.concatenate([drawn, new])
        _, first = np.unique(drawn, return_index=True)
        if first.size >= n_pix:
            return np.sort(drawn[np.sort(first)[:n_pix]])
        batch *= 2


def pixel_sampler(n_pix: int, seed: int) -> Callable[[str, tuple[int, int]], np.ndarray]:
    """``sample_pixels`` with ``n_pix`` and ``seed`` fixed: ``(image_id, (H, W)) -> indices``."""
    if n_pix < 1:
        raise SelectionError(f"n_pix must be >= 1, got {n_pix}")

    def pixels(image_id: str, shape: tuple[int, int]) -> np.ndarray:
        return sample_pixels(image_id, shape, n_pix, seed)

    return pixels


def mixval_pairs(image_ids: Sequence[str], seed: int) -> list[tuple[str, str]]:
    """(a, b) for every image a, in the given order: b is the image mixed into a for MixVal.

    The images are put in a seeded hash order and each is paired with its successor there
    (cyclically), so every image is the dominant one once and the mixed-in one once, never with
    itself. Subset ids are sorted by name, which for video datasets puts consecutive frames side
    by side; the hash order keeps such near-duplicates from being paired on purpose.
    """
    ids = [str(i) for i in image_ids]
    if len(ids) < 2:
        raise SelectionError(f"MixVal needs at least 2 images to mix, got {len(ids)}")
    if len(set(ids)) != len(ids):
        raise SelectionError("MixVal pairing: image ids are not unique")
    order = sorted(ids, key=lambda i: (_key("mixval", seed, i), i))
    partner = {a: order[(k + 1) % len(order)] for k, a in enumerate(order)}
    return [(a, partner[a]) for a in ids]
