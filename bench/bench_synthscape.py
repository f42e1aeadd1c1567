"""synthscape: does the benchmark have a real domain gap, and does HIAST close it?

For each seed: a source-only model, the warm-up (source + adversarial) followed by 3 HIAST
rounds, and a target oracle (the same training on *target* labels), all evaluated on the
target-val labels; plus settings known to hurt self-training (BN statistics updating; a very
large α without HWD). Prints one JSON line per run and a summary with mean ± spread, and the
small model's training step time.

    python bench/bench_synthscape.py [--seeds 0 1 2] [--out bench/results/synthscape.json]

Targets (issue 2): source-only loses >= 10 mIoU from source-val to target-val; full HIAST closes
>= 40 % of the gap between source-only and the oracle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiast.config import load_config  # noqa: E402
from hiast.data import build_dataset  # noqa: E402
from hiast.pipeline import evaluate, load_model, run_warmup, train_rounds  # noqa: E402


def miou(ckpt: Path, cfg, split: str) -> float:
    ds = build_dataset(getattr(cfg.data, split), cfg.data)
    return evaluate(
        load_model(ckpt), ds, num_classes=cfg.data.num_classes, eval_classes=cfg.data.eval_classes
    )["miou"]


def step_time(cfg) -> float:
    from hiast.models import build_model, segment

    model = build_model(cfg.model, cfg.data.num_classes)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    h, w = cfg.data.crop_size
    x = torch.randn(cfg.selftrain.batch_size, 3, h, w)
    y = torch.randint(0, 19, (cfg.selftrain.batch_size, h, w))
    for i in range(13):
        if i == 3:
            t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(segment(model, x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t) / 10


def run_seed(seed: int, base, work: Path, rounds_iters: int | None) -> dict:
    cfg = base.model_copy(update={"seed": seed})
    out: dict = {"seed": seed}
    t0 = time.perf_counter()
    src_only = run_warmup(
        cfg.model_copy(update={"warmup": cfg.warmup.model_copy(update={"adversarial_iters": 0})}),
        work / f"s{seed}-source-only",
        seed=seed,
    )
    out["source_only_source_val"] = miou(src_only, cfg, "source_val")
    out["source_only_target_val"] = miou(src_only, cfg, "target_val")
    oracle_data = cfg.data.model_copy(update={"source": cfg.data.target})
    oracle_cfg = cfg.model_copy(
        update={
            "data": oracle_data,
            "warmup": cfg.warmup.model_copy(update={"adversarial_iters": 0}),
        }
    )
    out["oracle_target_val"] = miou(
        run_warmup(oracle_cfg, work / f"s{seed}-oracle", seed=seed), cfg, "target_val"
    )
    warm = run_warmup(cfg, work / f"s{seed}-warmup", seed=seed)
    out["warmup_target_val"] = miou(warm, cfg, "target_val")
    st = (
        cfg.selftrain
        if rounds_iters is None
        else cfg.selftrain.model_copy(update={"iters_per_round": rounds_iters})
    )
    variants = {
        "hiast": cfg.model_copy(update={"selftrain": st}),
        "hiast_bn_updating": cfg.model_copy(update={"selftrain": st.model_copy(update={"freeze_bn": False})}),
        "hiast_alpha0.9_gamma0": cfg.with_parameters({"alpha": 0.9, "gamma": 0.0}).model_copy(
            update={"selftrain": st}
        ),
    }
    cache = work / f"s{seed}-cache"
    for name, vcfg in variants.items():
        last = train_rounds(vcfg, warm, work / f"s{seed}-{name}", seed=seed, pseudo_label_cache=cache)
        out[f"{name}_target_val"] = miou(last, cfg, "target_val")
    gap = out["oracle_target_val"] - out["source_only_target_val"]
    out["gap_closed_by_hiast"] = (
        (out["hiast_target_val"] - out["source_only_target_val"]) / gap if gap > 0 else None
    )
    out["seconds"] = time.perf_counter() - t0
    return out


def write_results(args, cfg, rows: list[dict], step_seconds: float) -> dict:
    summary = {}
    for key in rows[0]:
        vals = [r[key] for r in rows if isinstance(r.get(key), float)]
        if vals and key != "seed":
            summary[key] = {"mean": statistics.mean(vals), "min": min(vals), "max": max(vals)}
    summary["small_model_step_seconds"] = step_seconds
    summary["source_to_target_drop"] = (
        summary["source_only_source_val"]["mean"] - summary["source_only_target_val"]["mean"]
    )
    result = {
        "config": args.config or "configs/synthscape.yaml",
        "iters_per_round": args.iters_per_round or cfg.selftrain.iters_per_round,
        "torch_threads": torch.get_num_threads(),
        "runs": rows,
        "summary": summary,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp_out = Path(args.out + ".tmp")
    tmp_out.write_text(json.dumps(result, indent=2))
    os.replace(tmp_out, args.out)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--iters-per-round", type=int, default=None, help="override selftrain.iters_per_round")
    ap.add_argument("--out", default="bench/results/synthscape.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: two benches share 2 cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    step_seconds = step_time(cfg)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = run_seed(seed, cfg, Path(tmp), args.iters_per_round)
            print(json.dumps(row), flush=True)
            rows.append(row)
            write_results(args, cfg, rows, step_seconds)  # partial results survive an interruption
    summary = write_results(args, cfg, rows, step_seconds)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
