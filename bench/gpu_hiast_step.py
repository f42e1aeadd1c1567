"""GPU benchmark: our real HIAST self-training step against the anchor's HIAST-like step, same run.

"Ours" is the project's own round loop, ``hiast.selftrain.train_one_round``, timed from the outside:
the DataLoader (with workers) over ``TargetTrainingSet`` — pseudo-label PNG reads, HPLA copy-paste,
weak/strong augmentation — then on the device normalisation, the EMA teacher's forward on the weak
view, the student's forward + backward on the strong view, ``hiast_losses``, Adam and the EMA
update, under bf16 autocast with channels_last, DeepLab-V2 / ResNet-101, 19 classes, BN frozen.
The target set is synthscape rendered in memory at the anchor's resolution (512x1024), with a
pseudo-label folder in the project's format (``--pseudo oracle``: ground-truth layouts with
ignored boundaries and blobs, like IAS output; ``--pseudo generate``: ``generate_pseudo_labels``
with a randomly initialised DeepLab-V2 generator).

The anchor is ``train_steps(bf16=True, channels_last=True)`` of the reference ``gpu_anchor.py``:
synthetic tensors already on the GPU, no data pipeline. Both run in this process with the same
backend flags (the anchor's: cudnn.benchmark, TF32), alternating ``--repeat`` times. Two "ours"
numbers are printed: ``ours_hiast_step`` (everything) and ``ours_fixed_batch`` (the same loop fed
precomputed samples without workers: collate, copy to the device, model, loss, EMA), so a gap can
be put on the data pipeline or on the device work. The verdict is ours / anchor images per second,
target >= 0.95.

    python bench/gpu_hiast_step.py [--anchor PATH] [--repeat 2] [--iters 20] [--workers 8]
    python bench/gpu_hiast_step.py --smoke          # tiny, on the CPU, < 1 minute: plumbing only

The anchor script is not part of this repository: pass its path with --anchor (or set
$HIAST_GPU_ANCHOR); without one the run stops before any work, unless --no-anchor times ours alone.
On a GPU the results go to bench/results/<device-name>-hiast-step.json (and into $OUT when set).
Prints one JSON line per measurement, then the verdict line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hiast.config import HIASTConfig, load_config  # noqa: E402
from hiast.data.base import WithoutLabels  # noqa: E402
from hiast.data.io import InMemoryDataset  # noqa: E402
from hiast.data.synthscape import PERSON, POLE, SIGN, SYNTHSCAPE_CLASSES, SynthscapeDataset  # noqa: E402
from hiast.ema import EMATeacher  # noqa: E402
from hiast.hpla import ClassIndex  # noqa: E402
from hiast.models import build_model  # noqa: E402
from hiast.pseudo_labels import PSEUDO_LABEL_FORMAT, PseudoLabels, generate_pseudo_labels, load_pseudo_labels  # noqa: E402
from hiast.selftrain import TargetTrainingSet, train_one_round  # noqa: E402

TARGET_RATIO = 0.95
NUM_CLASSES = 19


def emit(**kw) -> dict:
    print(json.dumps(kw), flush=True)
    return kw


def find_anchor(given: str | None) -> Path:
    """The anchor script named by --anchor or $HIAST_GPU_ANCHOR; exits naming what is missing."""
    path = given or os.environ.get("HIAST_GPU_ANCHOR")
    if not path:
        raise SystemExit(
            "no anchor: pass --anchor PATH/TO/gpu_anchor.py (or set HIAST_GPU_ANCHOR), "
            "or --no-anchor to time ours only"
        )
    where = "--anchor" if given else "HIAST_GPU_ANCHOR"
    if not Path(path).is_file():
        raise SystemExit(f"{where} {path}: no such file")
    return Path(path).resolve()


def load_anchor(path: Path) -> ModuleType:
    # The anchor reads "--smoke" from sys.argv at import time: it sizes itself like this run.
    spec = importlib.util.spec_from_file_location("gpu_anchor", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("train_steps", "H", "W", "B"):
        if not hasattr(module, name):
            raise SystemExit(f"{path}: no {name!r}; is this the HIAST gpu_anchor.py?")
    return module


# ---------------------------------------------------------------- the target set and its pseudo-labels
def _render(job: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    n, i, h, w = job
    s = SynthscapeDataset("target", "train", n, (h, w), 1.0, 0)[i]
    return s.image, s.label


def target_arrays(n: int, h: int, w: int, procs: int) -> tuple[list[str], list, list]:
    jobs = [(n, i, h, w) for i in range(n)]
    if procs > 1:
        # Before any CUDA work: forked workers must not inherit a CUDA context.
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            pairs = pool.map(_render, jobs)
    else:
        pairs = [_render(j) for j in jobs]
    ids = [f"target_train_{i:05d}" for i in range(n)]
    return ids, [p[0] for p in pairs], [p[1] for p in pairs]


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    for _ in range(r):
        m = mask.copy()
        m[1:] |= mask[:-1]
        m[:-1] |= mask[1:]
        m[:, 1:] |= mask[:, :-1]
        m[:, :-1] |= mask[:, 1:]
        mask = m
    return mask


def oracle_pseudo_labels(
    folder: Path, ids: list[str], labels: list[np.ndarray], seed: int = 0
) -> PseudoLabels:
    """A pseudo-label folder in the format ``generate_pseudo_labels`` writes, from true layouts.

    Like IAS output: boundaries and low-confidence blobs (~25 % of pixels) ignored; thresholds
    lowest for the small classes (pole, sign, person), which makes them HPLA's hard classes.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    order = rng.permutation(len(ids))
    pixels = np.zeros(NUM_CLASSES, np.int64)
    kept = np.zeros(NUM_CLASSES, np.int64)
    written = []
    for pos, i in enumerate(order):
        lab = labels[i]
        h, w = lab.shape
        edge = np.zeros(lab.shape, bool)
        edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
        edge[1:] |= lab[1:] != lab[:-1]
        coarse = (rng.random((max(h // 32, 2), max(w // 32, 2))) * 255).astype(np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR))
        pseudo = lab.copy()
        pseudo[_dilate(edge, 1) | (field < 40)] = 255
        pixels += np.bincount(lab.ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
        kept += np.bincount(pseudo[pseudo != 255].ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
        Image.fromarray(pseudo).save(folder / f"{pos:06d}.png", optimize=False, compress_level=1)
        written.append(pseudo)
    thresholds = np.full(NUM_CLASSES, 0.9)
    for c in SYNTHSCAPE_CLASSES:
        thresholds[c] = rng.uniform(0.45, 0.65) if c in (POLE, SIGN, PERSON) else rng.uniform(0.8, 0.95)
    meta = {
        "format": PSEUDO_LABEL_FORMAT,
        "key": "bench-oracle",
        "ids": [ids[int(i)] for i in order],
        "thresholds": thresholds.tolist(),
        "class_index": ClassIndex.from_labels(written, NUM_CLASSES).to_dict(),
        "stats": {
            "kept_ratio": float(kept.sum() / max(pixels.sum(), 1)),
            "predicted_pixels": pixels.tolist(),
            "kept_pixels": kept.tolist(),
        },
        "ias": None,
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return load_pseudo_labels(folder)


# ---------------------------------------------------------------- ours
def make_config(
    args: argparse.Namespace, h: int, w: int, batch: int, workers: int, iters: int
) -> HIASTConfig:
    return load_config(
        None,
        {
            "data.num_classes": NUM_CLASSES,
            "data.synthscape.image_size": [h, w],
            "data.crop_size": [h, w],
            # The paper's target crops are 1/3 to ~1 of the image height, resized to crop_size.
            "data.target_crop_height": [h // 3, h - h // 64],
            "data.num_loader_workers": workers,
            "model.arch": "deeplab_v2_small" if args.smoke else "deeplab_v2",
            "model.width": 8 if args.smoke else 16,  # ignored by deeplab_v2 (ResNet-101)
            "hpla.enabled": True,
            "hpla.k": 14 if not args.smoke else 3,
            "selftrain.batch_size": batch,
            "selftrain.iters_per_round": iters,
            "selftrain.bf16": True,
            "selftrain.channels_last": True,
            "selftrain.freeze_bn": True,
            "selftrain.tau": 0.999,
        },
    )


class _StampedTeacher(EMATeacher):
    """The real EMA teacher, with a host timestamp (after a device sync) at each update = step end."""

    def __init__(self, student: torch.nn.Module, tau: float, dev: torch.device) -> None:
        super().__init__(student, tau)
        self.dev = dev
        self.stamps: list[float] = []

    def update(self, student: torch.nn.Module) -> None:
        super().update(student)
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)
        self.stamps.append(time.perf_counter())


class _FixedBatches(TargetTrainingSet):
    """The same training set, but every draw returns one of a few precomputed samples."""

    def __init__(self, inner: TargetTrainingSet, n: int) -> None:
        self.__dict__.update(inner.__dict__)
        self._cached = [inner[j] for j in range(n)]

    def __getitem__(self, j: int):
        return self._cached[j % len(self._cached)]


def time_ours(
    what: str, cfg: HIASTConfig, data: TargetTrainingSet, dev: torch.device, warm: int, shape: tuple
) -> dict:
    torch.manual_seed(0)
    student = build_model(cfg.model, NUM_CLASSES).freeze_bn(True).to(dev)
    if cfg.selftrain.channels_last:
        student.to(memory_format=torch.channels_last)
    teacher = _StampedTeacher(student, cfg.selftrain.tau, dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    metrics = train_one_round(student, teacher, data, cfg, dev, 0, 1, False)
    total = time.perf_counter() - start
    stamps = teacher.stamps
    n_steps = cfg.selftrain.iters_per_round
    if len(stamps) != n_steps:
        raise RuntimeError(f"{what}: expected {n_steps} EMA updates (steps), saw {len(stamps)}")
    timed = stamps[warm - 1 :]
    deltas = np.diff(timed)
    step_s = (timed[-1] - timed[0]) / len(deltas)
    batch = cfg.selftrain.batch_size
    rec = {
        "what": what,
        "bf16": cfg.selftrain.bf16,
        "channels_last": cfg.selftrain.channels_last,
        "batch": batch,
        "hw": list(shape),
        "workers": cfg.data.num_loader_workers,
        "steps_timed": len(deltas),
        "s": round(step_s, 4),
        "s_median": round(float(np.median(deltas)), 4),
        "s_max": round(float(deltas.max()), 4),
        "img_per_s": round(batch / step_s, 2),
        "first_step_s": round(stamps[0] - start, 2),
        "round_total_s": round(total, 2),
        "loss_total": round(metrics["loss_total"], 4),
        "finite": bool(np.isfinite(list(metrics.values())).all()),
    }
    if dev.type == "cuda":
        rec["peak_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    del student, teacher
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return emit(device=_device_name(dev), **rec)


# ---------------------------------------------------------------- anchor
def time_anchor(anchor: ModuleType) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        anchor.train_steps(True, True)
    found = None
    for line in buf.getvalue().splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        rec["what"] = "anchor_" + rec["what"]
        emit(**rec)
        if rec["what"] == "anchor_train_step_hiast":
            found = rec
    if found is None:
        raise RuntimeError(f"the anchor printed no train_step_hiast line:\n{buf.getvalue()}")
    return found


def _device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny, on the CPU: checks the plumbing only")
    p.add_argument("--anchor", help="path to gpu_anchor.py")
    p.add_argument("--no-anchor", action="store_true", help="time ours only")
    p.add_argument("--device", default=None, help="default: cuda when present (cpu with --smoke)")
    p.add_argument("--iters", type=int, default=None, help="timed steps of ours (default 20; smoke 2)")
    p.add_argument("--warm", type=int, default=None, help="untimed first steps, >= 1 (default 3; smoke 1)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default min(8, cores-2))")
    p.add_argument("--images", type=int, default=None, help="target images in memory (default 24; smoke 6)")
    p.add_argument("--pseudo", choices=["oracle", "generate"], default="oracle")
    p.add_argument("--repeat", type=int, default=None, help="anchor/ours alternations (default 2; smoke 1)")
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cudnn.benchmark and TF32 off")
    p.add_argument("--out", help="results JSON (default on a GPU: bench/results/<device>-hiast-step.json)")
    args = p.parse_args(argv)
    anchor_path = None if args.no_anchor else find_anchor(args.anchor)  # before any work is spent
    smoke = args.smoke
    iters = args.iters if args.iters is not None else (2 if smoke else 20)
    warm = args.warm if args.warm is not None else (1 if smoke else 3)
    n_images = args.images if args.images is not None else (6 if smoke else 24)
    repeat = args.repeat if args.repeat is not None else (1 if smoke else 2)
    if min(iters, warm, n_images, repeat) < 1:
        p.error("--iters, --warm, --images and --repeat must be >= 1")
    cores = os.cpu_count() or 2
    workers = args.workers if args.workers is not None else (1 if smoke else max(1, min(8, cores - 2)))
    dev = torch.device(args.device or ("cpu" if smoke or not torch.cuda.is_available() else "cuda"))
    if smoke:
        torch.set_num_threads(1)  # tiny work on a shared CPU: a second thread only contends
    if dev.type == "cuda" and not args.no_cudnn_benchmark:
        # The anchor's own settings (its __main__): the same for both sides.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    h, w, batch = (64, 128, 2) if smoke else (512, 1024, 6)
    t = time.perf_counter()
    ids, images, labels = target_arrays(n_images, h, w, 1 if smoke else min(n_images, cores))
    target = WithoutLabels(InMemoryDataset(ids, images, None, NUM_CLASSES, name="bench-target"))
    emit(what="target_set", images=n_images, hw=[h, w], s=round(time.perf_counter() - t, 2))

    emit(
        what="env",
        torch=torch.__version__,
        cuda=torch.version.cuda,
        device=_device_name(dev),
        cores=cores,
        smoke=smoke,
        iters=iters,
        warm=warm,
        workers=workers,
        images=n_images,
        pseudo=args.pseudo,
        cudnn_benchmark=torch.backends.cudnn.benchmark,
    )

    anchor = None
    if anchor_path is not None:
        path = anchor_path
        anchor = load_anchor(path)
        if (anchor.H, anchor.W, anchor.B) != (h, w, batch):
            raise SystemExit(f"{path}: anchor sizes {(anchor.H, anchor.W, anchor.B)} != ours {(h, w, batch)}")
        anchor.dev = dev.type  # its module global; the smoke run stays on the CPU
        if smoke:
            # ResNet-101 in bf16 on a CPU takes ~30 s a step: the smoke anchor gets the small network.
            anchor.deeplabv2 = lambda: build_model(make_config(args, h, w, batch, 0, 1).model, NUM_CLASSES)
        emit(what="anchor", path=str(path))

    cfg = make_config(args, h, w, batch, workers, warm + iters)
    cfg_fixed = make_config(args, h, w, batch, 0, warm + iters)
    with tempfile.TemporaryDirectory(prefix="hiast-bench-") as tmp:
        t = time.perf_counter()
        if args.pseudo == "oracle":
            pseudo = oracle_pseudo_labels(Path(tmp) / "pseudo", ids, labels)
        else:
            torch.manual_seed(0)
            generator = build_model(cfg.model, NUM_CLASSES).to(dev)
            pseudo = generate_pseudo_labels(
                generator, target, cfg, Path(tmp) / "pseudo", order_seed=0, device=dev, key="bench"
            )
            del generator
        emit(
            what="pseudo_labels",
            mode=args.pseudo,
            images=len(pseudo),
            s=round(time.perf_counter() - t, 2),
            kept_ratio=round(pseudo.stats["kept_ratio"], 3),
        )
        del labels
        data = TargetTrainingSet(target, pseudo, cfg, seed=0, round_idx=1)
        fixed = _FixedBatches(TargetTrainingSet(target, pseudo, cfg_fixed, seed=0, round_idx=1), batch * 2)
        if data.hpla is not None:
            emit(what="hpla", hard_classes=[int(c) for c in data.hpla.hard])

        ours, ours_fixed, anchors = [], [], []
        for _ in range(repeat):
            if anchor is not None:
                anchors.append(time_anchor(anchor)["img_per_s"])
            ours.append(time_ours("ours_hiast_step", cfg, data, dev, warm, (h, w))["img_per_s"])
            ours_fixed.append(time_ours("ours_fixed_batch", cfg_fixed, fixed, dev, warm, (h, w))["img_per_s"])

    verdict = {
        "what": "verdict",
        "device": _device_name(dev),
        "smoke": smoke,
        "ours_img_per_s": statistics.median(ours),
        "ours_fixed_batch_img_per_s": statistics.median(ours_fixed),
        "runs_ours": ours,
        "runs_ours_fixed_batch": ours_fixed,
    }
    if anchors:
        ratio = statistics.median(ours) / statistics.median(anchors)
        verdict.update(
            anchor_img_per_s=statistics.median(anchors),
            runs_anchor=anchors,
            ratio_ours_over_anchor=round(ratio, 3),
            ratio_fixed_batch_over_anchor=round(
                statistics.median(ours_fixed) / statistics.median(anchors), 3
            ),
            target=TARGET_RATIO,
            # A smoke run checks the plumbing: its CPU numbers say nothing about the GPU ratio.
            meets_target=None if smoke else ratio >= TARGET_RATIO,
        )
    emit(**verdict)
    if args.out or (dev.type == "cuda" and not smoke):
        out = (
            Path(args.out)
            if args.out
            else REPO / "bench/results" / f"{_slug(_device_name(dev))}-hiast-step.json"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"args": vars(args), **verdict}, indent=2) + "\n")
        if os.environ.get("OUT") and Path(os.environ["OUT"]).is_dir():
            shutil.copy(out, Path(os.environ["OUT"]) / out.name)
        emit(what="written", path=str(out))
    if smoke and not all(np.isfinite(ours + ours_fixed)):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
