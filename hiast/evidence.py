"""What a trained model shows the label-free validators, beyond its label maps: softmax at chosen pixels.

Three passes, all built on :func:`hiast.predict.predict_probabilities` (same resizing, batching,
device handling and softmax as the label maps the selection votes on):

* :func:`predict_with_pixels` -- the subset pass: per image the argmax label map and the softmax
  at the pixels ``pixels(image_id, (H, W))`` names (one pass gives both);
* :func:`predict_labelled_with_pixels` -- the same over a labelled split (source-val), with the
  ground truth resized like :func:`hiast.predict.evaluate` does (nearest);
* :func:`predict_mixed` -- the MixVal pass: image a and image b mixed in input space,
  ``w * a + (1 - w) * b`` (b resized to a's size, the mix rounded to uint8 like any image, an
  error of at most 0.5/255 per channel), and the model's label map of the mix.

``pixels`` is any callable returning distinct flat (row-major) indices into an (H, W) image; the
selection side supplies one that is identical for every candidate. This module imports nothing
from ``selection``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from hiast.data.base import DatasetError, Sample, SegDataset
from hiast.predict import predict_probabilities
from hiast.training import resize_pair

__all__ = ["PixelIndex", "predict_with_pixels", "predict_labelled_with_pixels", "predict_mixed"]

PixelIndex = Callable[[str, tuple[int, int]], np.ndarray]


def _pixel_index(pixels: PixelIndex, image_id: str, shape: tuple[int, int]) -> np.ndarray:
    idx = np.asarray(pixels(image_id, shape))
    total = shape[0] * shape[1]
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(
            f"image {image_id!r}: pixel indices must be a non-empty 1-D integer array, got {idx.shape}"
        )
    if idx.min() < 0 or idx.max() >= total:
        raise ValueError(f"image {image_id!r}: pixel indices must lie in 0..{total - 1} for shape {shape}")
    return idx.astype(np.int64)


def _split(
    image_id: str, probs: torch.Tensor, pixels: PixelIndex
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label map uint8, softmax at the pixels (P, C) float32, the pixel indices)."""
    c, h, w = probs.shape
    # max, as hiast.predict.predict_labels does: the same labels (first maximum), 3x faster than argmax
    label = probs.max(0).indices.numpy().astype(np.uint8)
    idx = _pixel_index(pixels, image_id, (h, w))
    at = probs.reshape(c, h * w)[:, torch.from_numpy(idx)].T.contiguous().numpy()
    return label, at, idx


def predict_with_pixels(
    model: nn.Module,
    dataset: SegDataset,
    ids: Sequence[str],
    pixels: PixelIndex,
    *,
    size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (id, label map (H, W) uint8, softmax at ``pixels(id, (H, W))`` (P, C) float32), ``ids`` order.

    The label map is the argmax of the same probabilities (what :func:`hiast.predict.predict_labels`
    yields); (H, W) is the predicted size (``size``, else the image's own).
    """
    for sid, probs in predict_probabilities(
        model, dataset, ids, size=size, device=device, batch_size=batch_size
    ):
        label, at, _ = _split(sid, probs, pixels)
        yield sid, label, at


def predict_labelled_with_pixels(
    model: nn.Module,
    dataset: SegDataset,
    ids: Sequence[str] | None,
    pixels: PixelIndex,
    *,
    size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (id, predicted map, true map, softmax at the pixels (P, C), true labels at the pixels (P,)).

    Maps are (H, W) uint8 at the predicted size; the true map is resized with nearest neighbours.
    ``ids=None`` takes every image of the dataset.
    """
    if not dataset.has_labels:
        raise DatasetError(f"{dataset.name}: has no labels (a labelled split is needed here)")
    for sid, probs in predict_probabilities(
        model, dataset, ids, size=size, device=device, batch_size=batch_size
    ):
        label, at, idx = _split(sid, probs, pixels)
        sample = dataset[dataset.index_of(sid)]
        if sample.label is None:
            raise DatasetError(f"{dataset.name}: image {sid!r} has no label")
        truth = resize_pair(sample.image, sample.label, label.shape)[1]
        yield sid, label, truth, at, truth.reshape(-1)[idx]


class _Mixed(SegDataset):
    """Pairs (a, b) of another dataset as single images w * a + (1 - w) * b at a's (or ``size``'s) size."""

    def __init__(
        self, inner: SegDataset, pairs: Sequence[tuple[str, str]], weight: float, size: tuple[int, int] | None
    ) -> None:
        self.inner, self.pairs, self.weight, self.size = inner, list(pairs), float(weight), size
        self.ids = [f"{a}\t{b}" for a, b in self.pairs]
        self.num_classes = inner.num_classes
        self.has_labels = False
        self.name = f"{inner.name} (mixed pairs)"

    def load(self, i: int) -> Sample:
        a_id, b_id = self.pairs[i]
        a = resize_pair(self.inner[self.inner.index_of(a_id)].image, None, self.size)[0]
        b = resize_pair(self.inner[self.inner.index_of(b_id)].image, None, a.shape[:2])[0]
        mix = self.weight * a.astype(np.float32) + (1.0 - self.weight) * b.astype(np.float32)
        return Sample(self.ids[i], np.clip(np.rint(mix), 0, 255).astype(np.uint8), None)


def predict_mixed(
    model: nn.Module,
    dataset: SegDataset,
    pairs: Sequence[tuple[str, str]],
    weight: float,
    *,
    size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
) -> Iterator[tuple[str, str, np.ndarray]]:
    """Yield (a, b, label map of the mix (H, W) uint8) for each pair, in order.

    The mix is ``weight * a + (1 - weight) * b`` in input (pixel) space, at ``size`` (else a's own
    size; b is resized to it). Normalisation is affine, so mixing before it equals mixing the
    normalised inputs.
    """
    if not 0.0 < float(weight) < 1.0:
        raise ValueError(f"mix weight must be in (0, 1), got {weight!r}")
    mixed = _Mixed(dataset, pairs, weight, size)
    for k, (sid, probs) in enumerate(
        predict_probabilities(model, mixed, None, size=None, device=device, batch_size=batch_size)
    ):
        a, b = mixed.pairs[k]
        if sid != mixed.ids[k]:
            raise RuntimeError(f"mixed pass out of order at pair {k}: {sid!r}")
        yield a, b, probs.max(0).indices.numpy().astype(np.uint8)
