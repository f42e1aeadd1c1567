"""Datasets: the embedded synthscape benchmark and loaders for GTA5, SYNTHIA, Cityscapes, RobotCar."""

from __future__ import annotations

import numpy as np
import torch

from hiast.config import DataConfig, DatasetSpec
from hiast.data.base import IGNORE_INDEX, DatasetError, Sample, SegDataset, WithoutLabels

__all__ = ["build_dataset", "normalize", "IGNORE_INDEX", "DatasetError", "Sample", "SegDataset"]

# ImageNet statistics: the backbone's pretrained weights expect them.
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def normalize(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) or (H, W, 3) RGB -> float32 (B, 3, H, W), ImageNet-normalised."""
    x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
    if x.ndim == 3:
        x = x[None]
    x = x.permute(0, 3, 1, 2).float()
    return (x - _MEAN.to(x.device)) / _STD.to(x.device)


def build_dataset(spec: DatasetSpec, data: DataConfig, *, with_labels: bool = True) -> SegDataset:
    """The dataset a spec names. ``with_labels=False`` hides labels (target training data)."""
    if spec.name == "synthscape":
        from hiast.data.synthscape import SynthscapeDataset, cache_dir

        s = data.synthscape
        n = {
            ("source", "train"): s.n_source_train,
            ("source", "val"): s.n_source_val,
            ("target", "train"): s.n_target_train,
            ("target", "val"): s.n_target_val,
        }.get((spec.domain, spec.split))
        if n is None:
            raise DatasetError(f"synthscape has splits 'train' and 'val', not {spec.split!r}")
        if spec.limit:
            n = min(n, spec.limit)
        ds: SegDataset = SynthscapeDataset(
            spec.domain,
            spec.split,
            n,
            s.image_size,
            s.shift,
            s.seed,
            cache_dir=cache_dir() if s.cache else None,
            **s.generator_options(spec.domain),
        )
        return ds if with_labels else WithoutLabels(ds)
    from hiast.data import real

    cls = {
        "cityscapes": real.CityscapesDataset,
        "gta5": real.GTA5Dataset,
        "synthia": real.SynthiaDataset,
        "robotcar": real.RobotCarDataset,
    }[spec.name]
    ds = cls(spec)
    if len(ds) == 0:
        raise DatasetError(f"{spec.name} {spec.split} at {spec.root}: no images found")
    return ds if with_labels else WithoutLabels(ds)
