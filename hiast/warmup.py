"""Warm-up (paper §3.3, Fig. 2a): source-only training, then output-space adversarial training.

The result is the round-0 pseudo-label generator. The discriminator sees softmax outputs and is
trained with least-squares losses (Eq. 2–3), AdaptSegNet style.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hiast.checkpoint import load_checkpoint, save_checkpoint
from hiast.config import HIASTConfig, stored_config
from hiast.data import build_dataset, normalize
from hiast.data.holdout import build_split, min_train_images
from hiast.losses import lsgan_d_loss, lsgan_g_loss, source_ce
from hiast.models import FCDiscriminator, build_model, segment
from hiast.training import denormals_flushed, log, resolve_device, seed_everything, source_batches

__all__ = ["run_warmup", "validate_warmup_checkpoint"]


def validate_warmup_checkpoint(path: Path, cfg: HIASTConfig) -> Path:
    """Check a given warm-up checkpoint fits this run (architecture and classes) before using it."""
    ckpt = load_checkpoint(path)
    for key in ("model", "config"):
        if key not in ckpt:
            raise ValueError(f"{path}: not a warm-up checkpoint (missing {key!r})")
    theirs = stored_config(ckpt["config"])

    def shape(c: HIASTConfig) -> str:
        width = f", width {c.model.width}" if c.model.arch == "deeplab_v2_small" else ""
        return f"{c.model.arch} with {c.data.num_classes} classes{width}"

    if shape(theirs) != shape(cfg):
        raise ValueError(
            f"{path}: warm-up checkpoint is {shape(theirs)}; this run needs {shape(cfg)} "
            "(model.arch, data.num_classes, model.width)"
        )
    return path


def _target_batches(dataset, cfg: HIASTConfig, batch_size: int, rng: np.random.Generator):
    from hiast.augment import random_sized_crop

    while True:
        imgs = []
        for i in rng.integers(0, len(dataset), batch_size):
            img, _ = random_sized_crop(
                dataset[int(i)].image, None, rng, cfg.data.target_crop_height, cfg.data.crop_size
            )
            imgs.append(np.ascontiguousarray(img))
        yield normalize(np.stack(imgs))


def run_warmup(
    cfg: HIASTConfig,
    out_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    progress: bool = False,
) -> Path:
    """Train the warm-up model and write ``out_dir/warmup.pt`` atomically; return its path.

    If ``cfg.warmup.checkpoint`` is set, that checkpoint is validated and returned instead.
    """
    if cfg.warmup.checkpoint is not None:
        return validate_warmup_checkpoint(Path(cfg.warmup.checkpoint), cfg)
    with denormals_flushed():
        return _train_warmup(cfg, Path(out_dir), device, cfg.seed if seed is None else seed, progress)


def _train_warmup(
    cfg: HIASTConfig, out_dir: Path, device: str | torch.device, seed: int, progress: bool
) -> Path:
    seed_everything(seed)
    dev = resolve_device(device)
    w = cfg.warmup
    # Without the held-out source-val images, when the hold-out applies (never trained on).
    source = build_split(cfg.data, "source", min_train=min_train_images(cfg))
    assert source is not None
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    model = build_model(cfg.model, cfg.data.num_classes).to(dev).train()
    rng = np.random.default_rng([seed, 1])
    src_iter = source_batches(source, cfg, w.batch_size, rng)
    opt = torch.optim.Adam(model.parameters(), lr=w.lr, weight_decay=5e-4)
    total = w.source_iters + w.adversarial_iters
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total, 1), eta_min=w.lr * 1e-2)
    start = time.perf_counter()
    bar = tqdm(total=total, desc="warm-up", disable=not progress, leave=False)
    ce_sum = 0.0
    for _ in range(w.source_iters):
        x, y = next(src_iter)
        loss = source_ce(segment(model, x.to(dev)), y.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ce_sum += loss.item()
        bar.update()
    if w.adversarial_iters:
        disc = FCDiscriminator(cfg.data.num_classes, ndf=64 if cfg.model.arch == "deeplab_v2" else 16).to(dev)
        d_opt = torch.optim.Adam(disc.parameters(), lr=w.discriminator_lr, betas=(0.9, 0.99))
        tgt_iter = _target_batches(target, cfg, w.batch_size, rng)
        for _ in range(w.adversarial_iters):
            x, y = next(src_iter)
            xt = next(tgt_iter).to(dev)
            out_s = segment(model, x.to(dev))
            out_t = segment(model, xt)
            # Generator: segment the source, and make target outputs look like source ones to D.
            for p in disc.parameters():
                p.requires_grad_(False)
            g_loss = source_ce(out_s, y.to(dev)) + w.adversarial_weight * lsgan_g_loss(disc(out_t.softmax(1)))
            opt.zero_grad(set_to_none=True)
            g_loss.backward()
            opt.step()
            sched.step()
            for p in disc.parameters():
                p.requires_grad_(True)
            d_loss = lsgan_d_loss(disc(out_s.detach().softmax(1)), disc(out_t.detach().softmax(1)))
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            bar.update()
    bar.close()
    log.info(
        "warm-up done: %d source + %d adversarial iterations in %.1fs (mean source CE %.3f)",
        w.source_iters,
        w.adversarial_iters,
        time.perf_counter() - start,
        ce_sum / max(w.source_iters, 1),
    )
    path = Path(out_dir) / "warmup.pt"
    save_checkpoint(
        path,
        model={k: v.detach().cpu() for k, v in model.state_dict().items()},
        config=cfg.model_dump(mode="json"),
        stage="warmup",
        seed=seed,
    )
    return path
