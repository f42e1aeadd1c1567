"""SND, soft neighbourhood density (Saito et al., "Tune it the Right Way", ICCV 2021), on sampled pixels.

Definition (paper; pytorch-adapt's SNDValidator): L2-normalise each softmax vector, take the cosine
similarity of every pair divided by a temperature T (0.05), leave each sample's similarity to
itself out, turn each row into a distribution with a softmax, and average the rows' entropies.
Higher is better: a model whose target predictions form dense neighbourhoods scores high.

Adaptation to segmentation, and the choices made here:

* Samples are pixels. SND's own segmentation code (AdaptSegNet/run_all.py) draws 100 random
  pixels per image and computes the density within each image; so do we, on the evidence's
  ``n_pix`` sampled pixels of each image (default 1000: a less noisy estimate, the same pixels for
  every candidate). The score is the mean over all rows of all images (every image has n_pix rows).
* Self-similarity is left out exactly (the paper and pytorch-adapt); SND's segmentation code keeps
  the diagonal, the classification code fills it with -1/T (weight at most e^-20 of the nearest
  neighbour's, since cosines of probability vectors are >= 0).
* Exact entropy (the reference adds 1e-5 inside the log).
* Rows are processed in chunks of ``chunk_size`` so memory is O(chunk_size x n_pix); results do
  not depend on the chunk size beyond float rounding.

Cost: n_images x n_pix^2 x C multiply-adds (500 x 1000^2 x 19 ~ 1e10) and n_images x n_pix^2
exponentials: seconds per candidate on a CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selection.errors import SelectionError

__all__ = ["snd", "snd_row_entropies", "SNDAccumulator", "DEFAULT_TEMPERATURE"]

DEFAULT_TEMPERATURE = 0.05


def snd_row_entropies(
    probs: Any, temperature: float = DEFAULT_TEMPERATURE, chunk_size: int = 1024
) -> np.ndarray:
    """(P,) entropy of each pixel's soft-neighbourhood distribution within one image's (P, C) sample."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2:
        raise SelectionError(
            f"SND needs (P, C) probabilities with P >= 2 pixels per image, got shape {p.shape}"
        )
    if not (temperature > 0 and np.isfinite(temperature)):
        raise SelectionError(f"SND temperature must be > 0, got {temperature}")
    if chunk_size < 1:
        raise SelectionError(f"chunk_size must be >= 1, got {chunk_size}")
    if not np.all(np.isfinite(p)):
        raise SelectionError("SND: the probabilities hold NaN or infinite values")
    norms = np.linalg.norm(p, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise SelectionError("SND: a pixel's probability vector is all zeros")
    x = p / norms
    n = x.shape[0]
    out = np.empty(n)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        rows = np.arange(start, stop)
        s = (x[start:stop] @ x.T) / temperature
        s[rows - start, rows] = -np.inf  # leave self out
        m = s.max(axis=1, keepdims=True)
        z = s - m
        e = np.exp(z)  # exp(-inf) = 0 on the diagonal
        total = e.sum(axis=1)
        z[rows - start, rows] = 0.0  # its weight is 0; keep 0 * (-inf) out of the sum
        out[start:stop] = np.log(total) - (e * z).sum(axis=1) / total
    return out


class SNDAccumulator:
    """Streaming SND over images: ``update`` with one image's (P, C) or a batch (B, P, C)."""

    def __init__(self, temperature: float = DEFAULT_TEMPERATURE, chunk_size: int = 1024) -> None:
        self.temperature = float(temperature)
        self.chunk_size = int(chunk_size)
        self.total = 0.0
        self.count = 0

    def update(self, probs: Any) -> None:
        p = np.asarray(probs)
        for image in p.reshape(-1, *p.shape[-2:]) if p.ndim >= 2 else [p]:
            h = snd_row_entropies(image, self.temperature, self.chunk_size)
            self.total += float(h.sum())
            self.count += h.size

    def merge(self, other: SNDAccumulator) -> SNDAccumulator:
        if other.temperature != self.temperature:
            raise SelectionError(
                f"cannot merge SND at temperatures {other.temperature} and {self.temperature}"
            )
        out = SNDAccumulator(self.temperature, self.chunk_size)
        out.total, out.count = self.total + other.total, self.count + other.count
        return out

    @property
    def value(self) -> float:
        if self.count == 0:
            raise SelectionError("SND: no pixels were added")
        return self.total / self.count


def snd(probs: Any, temperature: float = DEFAULT_TEMPERATURE, chunk_size: int = 1024) -> float:
    """Mean soft-neighbourhood entropy; ``probs`` (n_images, P, C), neighbourhoods within each image."""
    acc = SNDAccumulator(temperature, chunk_size)
    acc.update(probs)
    return acc.value
