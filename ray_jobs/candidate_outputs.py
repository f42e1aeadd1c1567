"""Everything one finished candidate leaves for the selection: its label maps and its evidence file.

The one place where hiast's inference passes (:mod:`hiast.evidence`) meet selection's writers
(:class:`selection.store.PredictionWriter`, :class:`selection.evidence.EvidenceWriter`). It imports
no Ray, so the Train worker (rank 0, after its last round) and the selection benchmark call the
same function. Passes:

1. subset pass: label maps -> ``predictions_uri``; softmax at the sampled pixels -> evidence;
2. MixVal pass: each subset image mixed with its partner; the counts of
   :func:`selection.validators.mixval_counts` against the candidate's own label maps (read back
   from the predictions file just written, so nothing is held in memory) -> evidence;
3. source-val pass (when ``data.source_val`` is set): full-map confusion -> ``source_val_miou``
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
from hiast.evidence import predict_labelled_with_pixels, predict_mixed, predict_with_pixels
from hiast.metrics import confusion_matrix, mean_iou
from selection.evidence import EvidenceSettings, EvidenceWriter, mixval_pairs
from selection.store import PredictionFile, PredictionWriter
from selection.validators import mixval_counts

__all__ = ["write_candidate_outputs"]


def _nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if labels.shape == tuple(shape):
        return labels
    return np.asarray(Image.fromarray(labels).resize((shape[1], shape[0]), Image.NEAREST))


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
) -> dict[str, float]:
    """Write the candidate's predictions and evidence files; return its scalars (``source_val_miou``).

    Inference passes: 1 over the subset, 1 over the mixed subset, 1 over source-val if configured.
    Both files are written atomically; the evidence file only once all passes have finished.
    """
    settings = settings or EvidenceSettings()
    data = cfg.data
    c, size = data.num_classes, data.eval_size
    sampler = settings.sampler()
    target = build_dataset(data.target, data, with_labels=False)
    source = build_dataset(data.source_val, data) if data.source_val is not None else None
    kept_source = settings.source_subset(source.ids) if source is not None else None
    scalars: dict[str, float] = {}
    with EvidenceWriter(
        evidence_uri, candidate_id, c, subset_ids, settings=settings, source_ids=kept_source
    ) as evidence:
        with PredictionWriter(predictions_uri, candidate_id, c, subset_ids) as predictions:
            for image_id, labels, probs in predict_with_pixels(
                model, target, subset_ids, sampler, size=size, device=device, batch_size=batch_size
            ):
                predictions.write(image_id, labels)
                evidence.add_target(image_id, labels.shape, probs)

        stored = PredictionFile(predictions_uri, candidate_id=candidate_id, num_classes=c)
        try:
            position = {image_id: k for k, image_id in enumerate(stored.image_ids)}

            def labels_of(image_id: str) -> np.ndarray:
                return next(stored.iter_maps(position[image_id], position[image_id] + 1))[1]

            pairs = mixval_pairs(subset_ids, settings.mixval_seed)
            for a, b, mixed in predict_mixed(
                model, target, pairs, settings.mixval_weight, size=size, device=device, batch_size=batch_size
            ):
                own_a = labels_of(a)
                own_b = _nearest(labels_of(b), own_a.shape)
                evidence.add_mixval(a, b, mixval_counts(own_a, own_b, mixed, c))
        finally:
            stored.close()

        if source is not None:
            keep = set(kept_source or [])
            cm = np.zeros((c, c), np.int64)
            for image_id, pred, truth, probs, truth_at in predict_labelled_with_pixels(
                model, source, None, sampler, size=size, device=device, batch_size=batch_size
            ):
                cm += confusion_matrix(pred, truth, c)
                if image_id in keep:
                    evidence.add_source(image_id, pred.shape, probs, truth_at)
            scalars["source_val_miou"] = float(mean_iou(cm, data.eval_classes))
        for name, value in scalars.items():
            evidence.set_scalar(name, value)
    return scalars
