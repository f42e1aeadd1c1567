"""Multi-round self-training (paper §4, Fig. 2b–c, Fig. 3b).

Each round: the generator (warm-up model, then the previous round's EMA teacher) pseudo-labels
the target set with IAS; the student trains on HPLA-augmented target images — strong view into
the student, weak view into the EMA teacher — with the region-adaptive loss (Eq. 4); at the end
the teacher becomes the next generator and is re-made from the student. BN is frozen (affine and
statistics) unless the config says otherwise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from hiast.augment import weak_and_strong
from hiast.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from hiast.config import HIASTConfig
from hiast.data import SegDataset, build_dataset, normalize
from hiast.ema import EMATeacher, unwrap_model
from hiast.hpla import HardAwareCopyPaste
from hiast.losses import hiast_losses
from hiast.models import build_model, segment
from hiast.pseudo_labels import PseudoLabels, generate_pseudo_labels, pseudo_label_key, state_digest
from hiast.training import (
    build_optimizer,
    denormals_flushed,
    log,
    resize_pair,
    resolve_device,
    seed_everything,
)

__all__ = ["RoundResult", "train_rounds", "train_one_round", "TargetTrainingSet"]


@dataclass
class RoundResult:
    round: int
    metrics: dict[str, float]
    checkpoint: Path
    thresholds: list[float] = field(default_factory=list)


class TargetTrainingSet(Dataset):
    """Target images with their pseudo-labels, HPLA-augmented, as (weak, strong, label) triples.

    Sample j of a round draws from its own generator seeded by (seed, round, j), so the batches
    do not depend on the number of loader workers.
    """

    def __init__(
        self, target: SegDataset, pseudo: PseudoLabels, cfg: HIASTConfig, seed: int, round_idx: int
    ) -> None:
        self.target, self.pseudo, self.cfg = target, pseudo, cfg
        self.seed, self.round = seed, round_idx
        self.index = [target.index_of(i) for i in pseudo.ids]
        self.hpla = (
            HardAwareCopyPaste(pseudo.thresholds, cfg.hpla.k, pseudo.class_index, cfg.data.num_classes)
            if cfg.hpla.enabled
            else None
        )

    def __len__(self) -> int:
        return len(self.index)

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        label = self.pseudo.label(i)
        image, _ = resize_pair(self.target[self.index[i]].image, None, label.shape)
        return image, label

    def draw(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.round, j])
        i = int(rng.integers(len(self.index)))
        image, label = self.pair(i)
        if self.hpla is not None:
            image, label, _ = self.hpla(image, label, rng, self.pair, self_index=i)
        d = self.cfg.data
        return weak_and_strong(image, label, rng, d.target_crop_height, d.crop_size)

    def __getitem__(self, j: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        weak, strong, label = self.draw(j)
        return (
            # np.array copies: PIL-backed arrays are read-only, which torch warns about.
            torch.from_numpy(np.array(weak)),
            torch.from_numpy(np.array(strong)),
            torch.from_numpy(np.array(label)).long(),
        )


def _cosine(base: float, step: int, total: int) -> float:
    # Not torch's CosineAnnealingLR (as warmup.py uses): it takes one eta_min for all groups, where
    # each group here ends at its own base * 1e-3, and its recursive update drifts from this closed
    # form in the last bits; LambdaLR's base * factor differs in the last bits too. Either would
    # change every trained score.
    eta_min = base * 1e-3
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * step / max(total, 1))) / 2


def train_one_round(
    student: nn.Module,
    teacher: EMATeacher,
    data: TargetTrainingSet,
    cfg: HIASTConfig,
    dev: torch.device,
    rank: int,
    world_size: int,
    progress: bool,
) -> dict[str, float]:
    st = cfg.selftrain
    per_rank = max(1, st.batch_size // world_size)
    n_draws = st.iters_per_round * per_rank
    # Rank r takes draws r*per_rank .. of each global batch: together the ranks see the same
    # samples as a single process would.
    loader = DataLoader(
        # Sample numbers [offset, offset + n) of the round: each rank reads its own slice.
        Subset(data, range(rank * n_draws, (rank + 1) * n_draws)),
        batch_size=per_rank,
        shuffle=False,
        num_workers=cfg.data.num_loader_workers,
        drop_last=True,
        persistent_workers=False,
    )
    opt = build_optimizer(student, st.lr, st.head_lr_mult, st.weight_decay)
    base_lrs = [g["lr"] for g in opt.param_groups]
    # Running sums stay on the device (float64, as the Python floats they replace): reading a
    # value per step would wait for the GPU every iteration. One transfer at the end of the round.
    sums: dict[str, torch.Tensor] = {}
    kept = torch.zeros((), dtype=torch.float64, device=dev)
    student.train()
    bar = tqdm(total=st.iters_per_round, desc=f"round {data.round}", disable=not progress, leave=False)
    for it, (weak, strong, label) in enumerate(loader):
        for g, base in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = _cosine(base, it, st.iters_per_round)
        weak, strong, label = normalize(weak.to(dev)), normalize(strong.to(dev)), label.to(dev)
        if st.channels_last:
            weak, strong = (
                weak.contiguous(memory_format=torch.channels_last),
                strong.contiguous(memory_format=torch.channels_last),
            )
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=st.bf16):
            t_prob = segment(teacher.model, weak).float().softmax(1)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=st.bf16):
            logits = segment(student, strong)
        terms = hiast_losses(
            logits.float(),
            label,
            t_prob,
            lambda_i=cfg.loss.lambda_i,
            lambda_c=cfg.loss.lambda_c,
            lambda_cst=cfg.loss.lambda_cst,
            normalization=cfg.loss.normalization,
        )
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        teacher.update(student)
        for k, v in terms.items():
            v = v.detach().to(torch.float64)
            sums[k] = sums[k] + v if k in sums else v
        kept += (label != 255).float().mean().to(torch.float64)
        bar.update()
    bar.close()
    n = max(st.iters_per_round, 1)
    totals = torch.stack([*sums.values(), kept]).tolist()  # the round's one host sync
    out = {f"loss_{k}": t / n for k, t in zip(sums, totals[:-1], strict=True)}
    out["train_kept_ratio"] = totals[-1] / n
    return out


def _round_checkpoint(work_dir: Path, r: int) -> Path:
    return work_dir / f"round{r}.pt"


def train_rounds(
    cfg: HIASTConfig,
    warmup_checkpoint: str | Path,
    work_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    resume_from: str | Path | None = None,
    pseudo_label_cache: str | Path | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    rank: int = 0,
    world_size: int = 1,
    wrap_model: Callable[[nn.Module], nn.Module] | None = None,
    progress: bool = False,
) -> Path:
    """Run the self-training rounds from a warm-up checkpoint; return the last round's checkpoint.

    Args:
        cfg: the run's configuration (one candidate's parameters already applied).
        warmup_checkpoint: the round-0 generator (``run_warmup``'s output).
        work_dir: where this candidate's round checkpoints and pseudo-labels go.
        device: torch device; "auto" picks CUDA when present.
        seed: defaults to ``cfg.seed``.
        resume_from: a round checkpoint of this run: training continues after that round.
        pseudo_label_cache: a folder shared by candidates. Round-1 pseudo-labels depend only on
            the warm-up model and the IAS settings, so candidates differing in λ or k reuse them.
        on_round: called after every round's checkpoint is written, on every rank.
        rank, world_size: this process's place in a data-parallel group (torch.distributed is
            already initialised by the caller when world_size > 1).
        wrap_model: e.g. a DDP wrapper, applied to the student.
        progress: show progress bars.
    """
    with denormals_flushed():
        return _train_rounds(
            cfg,
            Path(warmup_checkpoint),
            Path(work_dir),
            device=device,
            seed=cfg.seed if seed is None else seed,
            resume_from=resume_from,
            pseudo_label_cache=pseudo_label_cache,
            on_round=on_round,
            rank=rank,
            world_size=world_size,
            wrap_model=wrap_model,
            progress=progress,
        )


def _train_rounds(
    cfg: HIASTConfig,
    warmup_checkpoint: Path,
    work_dir: Path,
    *,
    device: str | torch.device,
    seed: int,
    resume_from: str | Path | None,
    pseudo_label_cache: str | Path | None,
    on_round: Callable[[RoundResult], None] | None,
    rank: int,
    world_size: int,
    wrap_model: Callable[[nn.Module], nn.Module] | None,
    progress: bool,
) -> Path:
    seed_everything(seed + rank)
    dev = resolve_device(device)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)

    student = build_model(cfg.model, cfg.data.num_classes)
    first_round = 1
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from)
        if "student" not in ckpt or "round" not in ckpt:
            raise ValueError(f"{resume_from}: not a round checkpoint (has {sorted(ckpt)})")
        load_model_state(student, ckpt["student"], what=f"{resume_from} (student weights)")
        teacher_state = ckpt["teacher"]
        first_round = int(ckpt["round"]) + 1
        log.info("resuming after round %d from %s", first_round - 1, resume_from)
    else:
        ckpt = load_checkpoint(warmup_checkpoint)
        load_model_state(student, ckpt["model"], what=f"{warmup_checkpoint} (warm-up weights)")
        teacher_state = None
    last = _round_checkpoint(work_dir, first_round - 1) if resume_from is not None else None
    if first_round > cfg.selftrain.rounds:
        return Path(resume_from)  # type: ignore[arg-type]
    student.freeze_bn(cfg.selftrain.freeze_bn)
    student.to(dev)
    if cfg.selftrain.channels_last:
        student.to(memory_format=torch.channels_last)
    generator = build_model(cfg.model, cfg.data.num_classes)
    load_model_state(generator, teacher_state if teacher_state is not None else ckpt["model"])
    generator.to(dev).eval()
    model = wrap_model(student) if wrap_model is not None else student

    for r in range(first_round, cfg.selftrain.rounds + 1):
        start = time.perf_counter()
        digest = state_digest(generator)
        order_seed = seed * 1000 + r
        key = pseudo_label_key(cfg, digest, order_seed)
        # Only round 1 is shareable: later generators depend on this candidate's own training.
        if r == 1 and pseudo_label_cache is not None:
            folder = Path(pseudo_label_cache) / key
        else:
            folder = work_dir / f"pseudo_round{r}-{key}"
        pseudo = generate_pseudo_labels(
            generator, target, cfg, folder, order_seed=order_seed, device=dev, key=key
        )
        teacher = EMATeacher(unwrap_model(model), cfg.selftrain.tau)
        data = TargetTrainingSet(target, pseudo, cfg, seed, r)
        metrics = train_one_round(model, teacher, data, cfg, dev, rank, world_size, progress)
        generator = teacher.model
        metrics["pseudo_kept_ratio"] = pseudo.stats["kept_ratio"]
        metrics["round_seconds"] = time.perf_counter() - start
        thresholds = [float(t) for t in pseudo.thresholds]
        path = _round_checkpoint(work_dir, r)
        if rank == 0:
            save_checkpoint(
                path,
                student={k: v.detach().cpu() for k, v in unwrap_model(model).state_dict().items()},
                teacher={k: v.detach().cpu() for k, v in generator.state_dict().items()},
                round=r,
                thresholds=thresholds,
                metrics=metrics,
                config=cfg.model_dump(mode="json"),
                seed=seed,
            )
        _barrier(world_size)
        log.info(
            "round %d/%d: CE %.3f R_c %.3f R_i %.3f R_cst %.3f | kept %.1f%% | thresholds %s | %.1fs",
            r,
            cfg.selftrain.rounds,
            metrics.get("loss_ce", 0),
            metrics.get("loss_r_c", 0),
            metrics.get("loss_r_i", 0),
            metrics.get("loss_r_cst", 0),
            100 * metrics["pseudo_kept_ratio"],
            " ".join(f"{t:.2f}" for t in thresholds),
            metrics["round_seconds"],
        )
        last = path
        if on_round is not None:
            on_round(RoundResult(r, metrics, path, thresholds))
    assert last is not None
    return last


def _barrier(world_size: int) -> None:
    if world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
