"""Pseudo-label generation with IAS (Alg. 1) and their compact, reproducible storage.

A generation writes one folder: an 8-bit PNG per target image (label maps compress well) and
``meta.json`` with the image ids in generation order, the final per-class thresholds, the class
index HPLA samples donors from, per-class statistics and the settings that made them. The folder
is written under a temporary name and renamed, so a reader never sees half a generation.

Instances are processed in a seeded order: the IAS thresholds are a running average, so the
order matters, and the paper's results must not depend on a data loader's shuffling.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from hiast.config import HIASTConfig
from hiast.data import SegDataset, normalize
from hiast.hpla import ClassIndex
from hiast.ias import IAS
from hiast.models import segment
from hiast.training import resize_pair

__all__ = [
    "PSEUDO_LABEL_FORMAT",
    "PseudoLabels",
    "generate_pseudo_labels",
    "pseudo_label_key",
    "load_pseudo_labels",
]

PSEUDO_LABEL_FORMAT = "hiast-pseudo-labels/1"


@dataclass
class PseudoLabels:
    """One generation's pseudo-labels, read lazily from its folder."""

    folder: Path
    ids: list[str]
    thresholds: np.ndarray
    class_index: ClassIndex
    stats: dict

    def label(self, i: int) -> np.ndarray:
        return np.asarray(Image.open(self.folder / f"{i:06d}.png"))

    def __len__(self) -> int:
        return len(self.ids)


def pseudo_label_key(cfg: HIASTConfig, generator_digest: str, order_seed: int) -> str:
    """What a generation depends on: the generator's weights, IAS settings, target data and order."""
    parts = {
        "generator": generator_digest,
        "ias": cfg.ias.model_dump(mode="json"),
        "target": cfg.data.target.model_dump(mode="json"),
        "synthscape": cfg.data.synthscape.model_dump(mode="json")
        if cfg.data.target.name == "synthscape"
        else None,
        "eval_size": cfg.data.eval_size,
        "order_seed": order_seed,
        "format": PSEUDO_LABEL_FORMAT,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def load_pseudo_labels(folder: str | Path) -> PseudoLabels:
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder}: not a pseudo-label folder (no meta.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != PSEUDO_LABEL_FORMAT:
        raise ValueError(
            f"{meta_path}: unknown format {meta.get('format')!r}, expected {PSEUDO_LABEL_FORMAT!r}"
        )
    return PseudoLabels(
        folder=folder,
        ids=meta["ids"],
        thresholds=np.asarray(meta["thresholds"], np.float64),
        class_index=ClassIndex.from_dict(meta["class_index"]),
        stats=meta["stats"],
    )


@torch.no_grad()
def generate_pseudo_labels(
    generator: nn.Module,
    dataset: SegDataset,
    cfg: HIASTConfig,
    out_folder: str | Path,
    *,
    order_seed: int,
    device: torch.device,
    batch_size: int = 4,
    key: str = "",
) -> PseudoLabels:
    """Run the generator over every target image, select pseudo-labels with IAS, write the folder."""
    out_folder = Path(out_folder)
    if (out_folder / "meta.json").is_file():
        return load_pseudo_labels(out_folder)
    if len(dataset) == 0:
        raise ValueError(f"{dataset.name}: the target set is empty; nothing to pseudo-label")
    c = cfg.data.num_classes
    ias = IAS(
        num_classes=c,
        alpha=cfg.ias.alpha,
        beta=cfg.ias.beta,
        gamma=cfg.ias.gamma,
        init_threshold=cfg.ias.init_threshold,
        variant=cfg.ias.variant,
    )
    order = np.random.default_rng(order_seed).permutation(len(dataset))
    generator.eval()
    out_folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_folder.name + ".tmp-", dir=out_folder.parent))
    try:
        pixels = np.zeros(c, np.int64)
        kept = np.zeros(c, np.int64)
        labels: list[np.ndarray] = []
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            images = [resize_pair(dataset[int(i)].image, None, cfg.data.eval_size)[0] for i in chunk]
            prob = segment(generator, normalize(np.stack(images)).to(device)).float().softmax(1)
            p_max, p_arg = prob.max(1)
            for j in range(len(chunk)):
                arg = p_arg[j].cpu().numpy()
                pseudo = ias.step(p_max[j].cpu().numpy(), arg)
                pixels += np.bincount(arg.ravel(), minlength=c)[:c]
                kept += np.bincount(pseudo[pseudo != 255].ravel(), minlength=c)[:c]
                Image.fromarray(pseudo).save(tmp / f"{start + j:06d}.png", optimize=False, compress_level=1)
                labels.append(pseudo)
        index = ClassIndex.from_labels(labels, c)
        del labels
        meta = {
            "format": PSEUDO_LABEL_FORMAT,
            "key": key,
            "ids": [dataset.ids[int(i)] for i in order],
            "thresholds": ias.thresholds.tolist(),
            "class_index": index.to_dict(),
            "stats": {
                "kept_ratio": float(kept.sum() / max(pixels.sum(), 1)),
                "predicted_pixels": pixels.tolist(),
                "kept_pixels": kept.tolist(),
            },
            "ias": cfg.ias.model_dump(mode="json"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, out_folder)
        except OSError:
            # Another worker (or candidate) finished the same generation first: keep theirs.
            if not (out_folder / "meta.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_pseudo_labels(out_folder)
