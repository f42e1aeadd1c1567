"""Small pieces shared by the warm-up and the self-training rounds."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from hiast.augment import random_sized_crop
from hiast.checkpoint import load_checkpoint, load_model_state
from hiast.config import HIASTConfig, stored_config
from hiast.data import SegDataset, normalize
from hiast.ema import unwrap_model
from hiast.models import build_model

__all__ = [
    "denormals_flushed",
    "seed_everything",
    "resolve_device",
    "resize_pair",
    "source_batches",
    "build_optimizer",
    "load_model",
    "log",
]

log = logging.getLogger("hiast")


@contextmanager
def denormals_flushed() -> Iterator[None]:
    """Treat denormal floats as zero on the CPU while training: tiny gradients of a trained model
    otherwise slow the backward pass about 5x (measured: warm-up iterations 0.1 s -> 0.5 s).

    The flag is process-wide (it also changes what numpy sees), so it is restored on exit.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resize_pair(
    image: np.ndarray, label: np.ndarray | None, size: tuple[int, int] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize an image (bilinear) and its label map (nearest) to (H, W); None keeps them."""
    if size is None or image.shape[:2] == tuple(size):
        return image, label
    h, w = size
    image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    if label is not None:
        label = np.asarray(Image.fromarray(label).resize((w, h), Image.NEAREST))
    return image, label


def source_batches(
    dataset: SegDataset, cfg: HIASTConfig, batch_size: int, rng: np.random.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless random-sized-crop batches (normalised images, long labels) from a labeled dataset."""
    d = cfg.data
    while True:
        imgs, lbls = [], []
        for i in rng.integers(0, len(dataset), batch_size):
            s = dataset[int(i)]
            if s.label is None:
                raise ValueError(f"{dataset.name}: image {s.id} has no label; the source needs labels")
            img, lbl = random_sized_crop(s.image, s.label, rng, d.source_crop_height, d.crop_size)
            if rng.random() < 0.5:
                img, lbl = img[:, ::-1], lbl[:, ::-1]
            imgs.append(np.ascontiguousarray(img))
            lbls.append(np.ascontiguousarray(lbl))
        yield normalize(np.stack(imgs)), torch.from_numpy(np.stack(lbls)).long()


def build_optimizer(
    model: nn.Module, lr: float, head_lr_mult: float, weight_decay: float
) -> torch.optim.Adam:
    """Adam with L2 weight decay, the ASPP head at ``head_lr_mult`` times the backbone rate."""
    backbone, head = unwrap_model(model).parameter_groups()
    return torch.optim.Adam(
        [
            {"params": list(backbone), "lr": lr},
            {"params": list(head), "lr": lr * head_lr_mult},
        ],
        lr=lr,
        betas=(0.9, 0.999),
        weight_decay=weight_decay,
    )


def load_model(
    checkpoint: str | Path, device: str | torch.device = "cpu", which: str | None = None
) -> nn.Module:
    """Build the model a checkpoint describes and load its weights (eval mode).

    ``which`` picks the state dict: "teacher" (default for round checkpoints: the EMA model the
    paper uses as the generator) or "model" (warm-up checkpoints).
    """
    ckpt = load_checkpoint(checkpoint)
    cfg = stored_config(ckpt["config"])
    model = build_model(cfg.model, cfg.data.num_classes)
    key = which or ("teacher" if "teacher" in ckpt else "model")
    if key not in ckpt:
        raise KeyError(f"{checkpoint}: no {key!r} weights in this checkpoint (has {sorted(ckpt)})")
    load_model_state(model, ckpt[key])
    return model.to(resolve_device(device)).eval()
