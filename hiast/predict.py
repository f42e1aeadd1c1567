"""Prediction of label maps, dataset-level evaluation, and result files in the Cityscapes format."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from hiast.config import HIASTConfig
from hiast.data import DatasetError, SegDataset, normalize
from hiast.data.classes import CITYSCAPES19_PALETTE, TRAINID_TO_LABELID, colorize
from hiast.data.holdout import build_split
from hiast.metrics import confusion_matrix, iou_from_confusion, mean_iou
from hiast.models import segment
from hiast.training import resize_pair, resolve_device

__all__ = [
    "predict_labels",
    "predict_probabilities",
    "evaluate",
    "evaluate_splits",
    "CityscapesName",
    "cityscapes_name",
    "write_cityscapes_result",
    "write_png",
]


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
        ds = build_split(cfg.data, name)
        if ds is not None and ds.has_labels:
            out[name] = evaluate(
                model,
                ds,
                num_classes=cfg.data.num_classes,
                eval_classes=cfg.data.eval_classes,
                size=cfg.data.eval_size,
                device=device,
            )["miou"]
    return out


# --------------------------------------------------------------------------------------------
# Results for the Cityscapes benchmark server (and cityscapesScripts' evaluation)

# cityscapesScripts splits file names on "_": <city>_<sequence>_<frame>_<type>.png.
_CITYSCAPES_IMAGE = re.compile(r"^(?P<city>[^_]+)_(?P<seq>\d+)_(?P<frame>\d+)_leftImg8bit$")


@dataclass(frozen=True)
class CityscapesName:
    """Where the results for one ``<city>_<seq>_<frame>_leftImg8bit`` image go, under ``out``:
    ``labelIds/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png`` (what the server evaluates) and
    ``color/<city>/..._gtFine_color.png``. The two sit in separate folders because the evaluator
    takes every file under its results folder that starts with ``<city>_<seq>_<frame>`` as the
    prediction, and refuses two."""

    city: str
    stem: str  # <city>_<seq>_<frame>

    def label_ids(self, out: Path) -> Path:
        return out / "labelIds" / self.city / f"{self.stem}_gtFine_labelIds.png"

    def color(self, out: Path) -> Path:
        return out / "color" / self.city / f"{self.stem}_gtFine_color.png"


def cityscapes_name(image: str | Path) -> CityscapesName:
    """The Cityscapes name of an image file; DatasetError naming the file if it has none."""
    m = _CITYSCAPES_IMAGE.match(Path(image).stem)
    if m is None:
        raise DatasetError(
            f"{image}: not a Cityscapes image name; --format cityscapes expects "
            "<city>_<sequence>_<frame>_leftImg8bit.png (as in leftImg8bit/<split>/<city>/)"
        )
    return CityscapesName(m["city"], f"{m['city']}_{m['seq']}_{m['frame']}")


def write_png(path: Path, array: np.ndarray) -> None:
    """A PNG written to a temporary name in its folder, then renamed: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(array).save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_cityscapes_result(
    train_ids: np.ndarray, name: CityscapesName, out: Path, *, color: bool = False
) -> Path:
    """Write one prediction (19 Cityscapes trainIds, 255 = none) as a labelIds PNG; returns its path.

    ``color`` also writes the Cityscapes colour picture. Raises ValueError for ids outside 0..18
    and 255 (not a 19-class Cityscapes prediction).
    """
    train_ids = np.asarray(train_ids)
    if train_ids.dtype != np.uint8 or train_ids.ndim != 2:
        raise ValueError(
            f"{name.stem}: expected a uint8 (H, W) trainId map, got {train_ids.dtype} {train_ids.shape}"
        )
    bad = (train_ids >= len(CITYSCAPES19_PALETTE)) & (train_ids != 255)
    if bad.any():
        raise ValueError(
            f"{name.stem}: prediction holds ids {np.unique(train_ids[bad])[:10].tolist()}, "
            "not Cityscapes trainIds (0..18)"
        )
    path = name.label_ids(out)
    write_png(path, TRAINID_TO_LABELID[train_ids])
    if color:
        write_png(name.color(out), colorize(train_ids, CITYSCAPES19_PALETTE))
    return path
