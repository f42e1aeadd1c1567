"""Vote + per-candidate confusion on one GPU: selection's torch path against the reference anchor's vote.

The anchor's vote streams 500 images of 1024x2048, 19 classes, 5 and 16 candidates (1.28 s for 16
on an H200 with PyTorch 2.11, as the anchor's notes report). This script builds the same synthetic
label maps (same generator and seed), times the anchor's loop (copied verbatim below, so this file
runs alone) and ``FusionAccumulator(..., device="cuda")`` fed ``--batch`` images per update, and
prints one JSON line per candidate count. Target: >= 10x at 16 candidates.

Semantics differ on purpose: the anchor breaks ties to the lowest class id, ours leaves ties
undecided (255), so F-mIoUs are close, not equal. Equality is checked instead against selection's
numpy path on the first --check images.

    python bench/gpu_vote.py              # on a GPU machine
    python bench/gpu_vote.py --smoke      # tiny, on CPU, forcing the torch code path
    python bench/gpu_vote.py --compile    # also try torch.compile on the vote (slow first call)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selection.fusion.majority import FusionAccumulator  # noqa: E402

C = 19


def make_preds(n: int, nimg: int, fh: int, fw: int, dev: str) -> torch.Tensor:
    """gpu_anchor.voting's data: per image a base map, 10% of each candidate's pixels redrawn."""
    g = torch.Generator(device=dev).manual_seed(0)
    preds = torch.empty(n, nimg, fh, fw, device=dev, dtype=torch.uint8)
    for i in range(nimg):
        base = torch.randint(0, C, (fh, fw), device=dev, dtype=torch.uint8, generator=g)
        noisy = torch.randint(0, C, (n, fh, fw), device=dev, dtype=torch.uint8, generator=g)
        keep = torch.rand(n, fh, fw, device=dev, generator=g) >= 0.1
        preds[:, i] = torch.where(keep, base, noisy)
    return preds


def anchor_vote(preds: torch.Tensor) -> torch.Tensor:
    """The reference gpu_anchor.py's voting.run, verbatim apart from taking ``preds`` as an argument."""
    n, nimg, fh, fw = preds.shape
    dev = preds.device
    conf = torch.zeros(n, C, C, device=dev, dtype=torch.int64)
    for i in range(nimg):  # stream image by image, as a real voter would
        p = preds[:, i].long()  # n,H,W
        counts = torch.zeros(C, fh, fw, device=dev, dtype=torch.int32)
        for j in range(n):
            counts.scatter_add_(0, p[j : j + 1], torch.ones_like(p[j : j + 1], dtype=torch.int32))
        fused = counts.argmax(0)  # ties -> lowest class id
        idx = fused.unsqueeze(0) * C + p  # n,H,W
        idx = idx + (torch.arange(n, device=dev) * C * C).view(n, 1, 1)
        conf += torch.bincount(idx.flatten(), minlength=n * C * C).view(n, C, C)
    inter = conf.diagonal(dim1=1, dim2=2).double()
    union = conf.sum(1).double() + conf.sum(2).double() - inter
    return torch.nanmean(inter / union, dim=1)


def ours(preds: torch.Tensor, batch: int, backend: str) -> np.ndarray:
    n, nimg = preds.shape[:2]
    acc = FusionAccumulator(n, C, pairwise=False, device=str(preds.device), backend=backend)
    for i in range(0, nimg, batch):
        acc.update(preds[:, i : i + batch])  # (n, B, H, W): B images per update, exact
    return acc.f_miou


def sync(dev: str) -> None:
    if dev == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev: str, repeats: int):
    fn()  # warm-up (allocator, kernels)
    best, out = float("inf"), None
    for _ in range(repeats):
        sync(dev)
        t = time.perf_counter()
        out = fn()
        if torch.is_tensor(out):
            out = out.cpu()
        sync(dev)
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on CPU, torch code path forced")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--batch", type=int, default=4, help="images per update")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check", type=int, default=3, help="images compared with the numpy path")
    ap.add_argument("--candidates", type=int, nargs="+", default=[5, 16])
    ap.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="map size")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="experimental: torch.compile the vote kernel (fuses its elementwise passes); "
        "results are checked against the numpy path as usual",
    )
    args = ap.parse_args()
    if args.compile:
        import selection.fusion.torch_backend as fusion_torch

        # The vote is a fixed sequence of elementwise ops and reductions: a compiler can fuse it into
        # a few kernels. Swapped in here only, so the library itself never depends on compilation.
        fusion_torch.vote = torch.compile(fusion_torch.vote, dynamic=False)

    dev = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    fh, fw = args.size or ((128, 256) if args.smoke else (1024, 2048))
    nimg = args.images or (6 if args.smoke else 500)
    backend = "torch"  # on CPU too: the smoke run exercises the GPU code path
    print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "device": dev}), flush=True)
    status = 0
    for n in args.candidates:
        preds = make_preds(n, nimg, fh, fw, dev)
        t_anchor, f_anchor = timed(lambda p=preds: anchor_vote(p), dev, args.repeats)
        t_ours, f_ours = timed(lambda p=preds: ours(p, args.batch, backend), dev, args.repeats)
        k = min(args.check, nimg)
        sub = preds[:, :k]
        f_gpu = ours(sub, args.batch, backend)
        f_np = ours(sub.cpu(), 1, "numpy")
        equal = bool(np.allclose(f_gpu, f_np, rtol=0, atol=1e-12))
        status |= not equal
        rec = {
            "what": "vote_fmiou",
            "n_candidates": n,
            "images": nimg,
            "hw": [fh, fw],
            "batch": args.batch,
            "anchor_s": round(t_anchor, 4),
            "ours_s": round(t_ours, 4),
            "ratio": round(t_anchor / t_ours, 2),
            "target_ratio": 10,
            "equal_to_numpy_path": equal,
            "max_abs_diff_vs_anchor": float(np.nanmax(np.abs(np.asarray(f_anchor) - f_ours))),
            "gb_per_s": round(preds.numel() / t_ours / 1e9, 3),
            "compiled": args.compile,
            "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
        }
        if dev == "cuda":
            rec["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            torch.cuda.reset_peak_memory_stats()
        print(json.dumps(rec), flush=True)
        del preds
        if dev == "cuda":
            torch.cuda.empty_cache()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
