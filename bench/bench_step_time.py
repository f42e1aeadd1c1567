"""Seconds of one self-training iteration, the basis of ``hiast-select --plan``'s time estimate.

Trains one candidate's first round twice from the same warm-up, with ``--short`` and ``--long``
iterations, on this machine with the config's torch threads (``ray.cpus_per_worker``) or its GPU.
The step time is the slope, (long - short) / (long - short iterations): a round's fixed costs
(pseudo-label generation, the round checkpoint) cancel. Writes ``bench/results/step_time.json``
and, with ``--record``, the entry ``--plan`` reads (``ray_jobs/preflight/step_times.json``), keyed by the
model, crop, batch and device it was measured on.

    python bench/bench_step_time.py [--config synthscape] [--short 10] [--long 60] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from hiast.selftrain import train_rounds
from hiast.warmup import run_warmup
from ray_jobs.config import load_job_config
from ray_jobs.preflight import StepTime, load_step_times, save_step_times, step_key

REPO = Path(__file__).resolve().parents[1]


def one_round(cfg, warmup: Path, iters: int, device: str) -> float:
    run = cfg.model_copy(
        update={"selftrain": cfg.selftrain.model_copy(update={"rounds": 1, "iters_per_round": iters})}
    )
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        train_rounds(run, warmup, d, device=device)
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help="a YAML file or packaged config (default: synthscape)")
    ap.add_argument("--short", type=int, default=10)
    ap.add_argument("--long", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2, help="pairs of rounds; the median slope is kept")
    ap.add_argument("--record", action="store_true", help="write the entry --plan reads")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "step_time.json")
    args = ap.parse_args()
    if not 0 < args.short < args.long:
        ap.error("need 0 < --short < --long")

    cfg = load_job_config(args.config)
    device = "cuda" if cfg.ray.use_gpu else "cpu"
    if device == "cpu":
        torch.set_num_threads(max(1, int(cfg.ray.cpus_per_worker)))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        warmup = run_warmup(cfg, d, device=device)
        slopes, rounds = [], []
        for _ in range(args.repeats):
            short = one_round(cfg, warmup, args.short, device)
            long = one_round(cfg, warmup, args.long, device)
            rounds.append({"short_s": round(short, 3), "long_s": round(long, 3)})
            slopes.append((long - short) / (args.long - args.short))
    step = sorted(slopes)[len(slopes) // 2]
    where = f"{os.cpu_count()} CPU cores" if device == "cpu" else torch.cuda.get_device_name()
    measured = f"bench/bench_step_time.py on {where}, {datetime.date.today().isoformat()}"
    result = {
        "key": step_key(cfg),
        "step_seconds": round(step, 4),
        "slopes": [round(s, 4) for s in slopes],
        "rounds": rounds,
        "iterations": [args.short, args.long],
        "config": args.config or "synthscape",
        "measured": measured,
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    if args.record:
        table = load_step_times()
        table[result["key"]] = StepTime(result["key"], result["step_seconds"], measured)
        print(f"recorded in {save_step_times(table)}")


if __name__ == "__main__":
    main()
