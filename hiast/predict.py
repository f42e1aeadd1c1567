"""Prediction of label maps and dataset-level evaluation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from hiast.config import HIASTConfig
from hiast.data import SegDataset, build_dataset, normalize
from hiast.metrics import confusion_matrix, iou_from_confusion, mean_iou
from hiast.models import segment
from hiast.training import resize_pair, resolve_device

__all__ = ["predict_labels", "predict_probabilities", "evaluate", "evaluate_splits"]


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    dataset: SegDataset,
    ids: Sequence[str] | None = None,
    *,
    size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    bf16: bool = False,
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (id, softmax (C, H, W) float32 on CPU) for each image, in ``ids`` order."""
    dev = resolve_device(device)
    model.eval()
    idx = list(range(len(dataset))) if ids is None else [dataset.index_of(i) for i in ids]
    for start in range(0, len(idx), batch_size):
        chunk = idx[start : start + batch_size]
        images = [resize_pair(dataset[i].image, None, size)[0] for i in chunk]
        shapes = {im.shape for im in images}
        groups = [images] if len(shapes) == 1 else [[im] for im in images]
        probs = []
        for g in groups:
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                logits = segment(model, normalize(np.stack(g)).to(dev))
            probs.extend(logits.float().softmax(1).cpu())
        for i, p in zip(chunk, probs, strict=True):
            yield dataset.ids[i], p


def predict_labels(
    model: nn.Module,
    dataset: SegDataset,
    ids: Sequence[str] | None = None,
    *,
    size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    with_confidence: bool = False,
) -> Iterator[tuple]:
    """Yield (id, uint8 argmax map) — or (id, map, float16 max-probability map) — per image."""
    for sid, p in predict_probabilities(model, dataset, ids, size=size, device=device, batch_size=batch_size):
        conf, arg = p.max(0)
        label = arg.numpy().astype(np.uint8)
        yield (sid, label, conf.numpy().astype(np.float16)) if with_confidence else (sid, label)


def evaluate(
    model: nn.Module,
    dataset: SegDataset,
    *,
    num_classes: int,
    eval_classes: Sequence[int] | None = None,
    size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
) -> dict:
    """Dataset-level mIoU: intersections and unions summed over all images, divided once."""
    if not dataset.has_labels:
        raise ValueError(f"{dataset.name}: has no labels to evaluate against")
    cm = np.zeros((num_classes, num_classes), np.int64)
    for sid, label in predict_labels(model, dataset, size=size, device=device, batch_size=batch_size):
        gt = dataset[dataset.index_of(sid)].label
        if size is not None:
            _, gt = resize_pair(dataset[dataset.index_of(sid)].image, gt, size)
        cm += confusion_matrix(label, gt, num_classes)
    iou = iou_from_confusion(cm)
    return {
        "miou": float(mean_iou(cm, eval_classes)),
        "per_class_iou": [None if np.isnan(v) else float(v) for v in iou],
    }


def evaluate_splits(
    model: nn.Module,
    cfg: HIASTConfig,
    splits: Sequence[str] = ("source_val", "target_val"),
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """mIoU on each of the config's labelled validation splits that is set (others are skipped)."""
    out = {}
    for name in splits:
        spec = getattr(cfg.data, name)
        if spec is None:
            continue
        ds = build_dataset(spec, cfg.data)
        if ds.has_labels:
            out[name] = evaluate(
                model,
                ds,
                num_classes=cfg.data.num_classes,
                eval_classes=cfg.data.eval_classes,
                size=cfg.data.eval_size,
                device=device,
            )["miou"]
    return out
