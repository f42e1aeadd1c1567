"""Everything one finished candidate leaves for the selection: its label maps and its evidence file.

The one place where hiast's inference passes (:mod:`hiast.evidence`) meet selection's writers
(:class:`selection.store.PredictionWriter`, :class:`selection.validators.EvidenceWriter`). It imports
no Ray, so the Train worker (rank 0, after its last round) and the selection benchmark call the
same function. Passes:

1. subset pass: label maps -> ``predictions_uri``; softmax at the sampled pixels -> evidence;
2. MixVal pass: each subset image mixed with its partner; the counts of
   :func:`selection.validators.mixval_counts` against the candidate's own label maps (kept from
   pass 1 while they fit in ``label_cache_bytes``, else read back from the predictions file just
   written) -> evidence;
3. source-val pass (when there is a source-val split: ``data.source_val`` or the one held out of
   ``data.source``, :mod:`hiast.data.holdout`): full-map confusion -> ``source_val_miou``
   (the definition of :func:`hiast.predict.evaluate`), softmax and labels at the sampled pixels of
   up to ``settings.source_images`` images -> evidence.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torch import nn

from hiast.config import HIASTConfig
from hiast.data import build_dataset
from hiast.data.holdout import build_split
from hiast.evidence import predict_labelled_with_pixels, predict_mixed, predict_with_pixels
from hiast.metrics import confusion_matrix, mean_iou
from selection.store import PredictionFile, PredictionWriter
from selection.validators import EvidenceSettings, EvidenceWriter, mixval_counts, mixval_pairs

__all__ = ["write_candidate_outputs"]


def _nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if labels.shape == tuple(shape):
        return labels
    return np.asarray(Image.fromarray(labels).resize((shape[1], shape[0]), Image.NEAREST))


class _OwnLabels:
    """The candidate's label maps for the MixVal pass: kept in memory while they fit in ``budget``
    bytes (500 Cityscapes-sized maps are 1 GB), else read back from the predictions file."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used = int(budget), 0
        self.maps: dict[str, np.ndarray] | None = {}
        self._file: PredictionFile | None = None
        self._position: dict[str, int] = {}

    def keep(self, image_id: str, labels: np.ndarray) -> None:
        if self.maps is None:
            return
        self.used += labels.nbytes
        if self.used > self.budget:
            self.maps = None
        else:
            self.maps[image_id] = labels

    def open(self, uri: str | os.PathLike[str], candidate_id: str, num_classes: int) -> None:
        if self.maps is None:
            self._file = PredictionFile(uri, candidate_id=candidate_id, num_classes=num_classes)
            self._position = {image_id: k for k, image_id in enumerate(self._file.image_ids)}

    def __call__(self, image_id: str) -> np.ndarray:
        if self.maps is not None:
            return self.maps[image_id]
        assert self._file is not None
        k = self._position[image_id]
        return next(self._file.iter_maps(k, k + 1))[1]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def write_candidate_outputs(
    model: nn.Module,
    cfg: HIASTConfig,
    *,
    candidate_id: str,
    subset_ids: list[str],
    predictions_uri: str | os.PathLike[str],
    evidence_uri: str | os.PathLike[str],
    settings: EvidenceSettings | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    label_cache_bytes: int = 256 * 2**20,
) -> dict[str, float]:
    """Write the candidate's predictions and evidence files; return its scalars (``source_val_miou``).

    Inference passes: 1 over the subset, 1 over the mixed subset, 1 over source-val if configured.
    Both files are written atomically; the evidence file only once all passes have finished.
    """
    settings = settings or EvidenceSettings()
    data = cfg.data
    c, size = data.num_classes, data.eval_size
    run = {"size": size, "device": device, "batch_size": batch_size}
    sampler = settings.sampler()
    target = build_dataset(data.target, data, with_labels=False)
    source = build_split(data, "source_val")  # the explicit split, or the held-out one
    kept_source = settings.source_subset(source.ids) if source is not None else None
    scalars: dict[str, float] = {}
    own = _OwnLabels(label_cache_bytes)
    with EvidenceWriter(
        evidence_uri, candidate_id, c, subset_ids, settings=settings, source_ids=kept_source
    ) as evidence:
        with PredictionWriter(predictions_uri, candidate_id, c, subset_ids) as predictions:
            for image_id, labels, probs in predict_with_pixels(model, target, subset_ids, sampler, **run):
                predictions.write(image_id, labels)
                evidence.add_target(image_id, labels.shape, probs)
                own.keep(image_id, labels)

        own.open(predictions_uri, candidate_id, c)
        try:
            pairs = mixval_pairs(subset_ids, settings.mixval_seed)
            for a, b, mixed in predict_mixed(model, target, pairs, settings.mixval_weight, **run):
                own_a = own(a)
                evidence.add_mixval(a, b, mixval_counts(own_a, _nearest(own(b), own_a.shape), mixed, c))
        finally:
            own.close()

        if source is not None:
            keep = set(kept_source or [])
            cm = np.zeros((c, c), np.int64)
            for image_id, pred, truth, probs, truth_at in predict_labelled_with_pixels(
                model, source, None, sampler, **run
            ):
                cm += confusion_matrix(pred, truth, c)
                if image_id in keep:
                    evidence.add_source(image_id, pred.shape, probs, truth_at)
            scalars["source_val_miou"] = float(mean_iou(cm, data.eval_classes))
        for name, value in scalars.items():
            evidence.set_scalar(name, value)
    return scalars
