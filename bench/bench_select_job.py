"""Wall time of the default selection job: ``python -m ray_jobs.select`` with no arguments.

That is the embedded synthscape config (11 candidates: 5 alpha + gamma, lambda_i and k sweeps,
the default trained once), a local Ray cluster started by the job, results in a temporary
folder. Target (issue): at most 5 minutes on a 2-core machine. Also reports the time to the first
warm-up, per-candidate training times (from Tune's results) and the machine's load, since a
shared machine's neighbours change the figure.

    python bench/bench_select_job.py [--out bench/results/select_job.json] [--config FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 300.0


def trial_seconds(experiment: Path) -> dict[str, float]:
    """time_total_s of each trial's last result (Tune's result.json), keyed by candidate id."""
    out = {}
    for result in sorted(experiment.glob("cand_*/result.json")):
        lines = result.read_text().splitlines()
        if lines:
            last = json.loads(lines[-1])
            cand = last.get("config", {}).get("candidate", {})
            key = f"{cand.get('candidate_id')}#r{cand.get('replicate')}"
            out[key] = round(last.get("time_total_s", 0.0), 1)
    return out


def label_audit(experiment: Path, choice: dict) -> dict:
    """How F-mIoU relates to the hidden true mIoU on this run (synthscape has target labels)."""
    import pandas as pd

    from selection.audit import spearman

    table = pd.read_parquet(experiment / "candidates.parquet")
    ok = table[table["true_miou"].notna()]
    out: dict = {
        "spearman_f_miou_true_miou": float(spearman(ok["f_miou"], ok["true_miou"])) if len(ok) > 1 else None,
        "candidates": {
            r.candidate_id: {"f_miou": round(float(r.f_miou), 4), "true_miou": round(float(r.true_miou), 4)}
            for r in ok.itertuples()
        },
        "per_sweep": {},
    }
    truth = dict(zip(ok["candidate_id"], ok["true_miou"], strict=True))
    for sweep, info in choice.get("per_sweep", {}).items():
        ids = [c for c in info.get("candidates", {}) if c in truth]
        col = f"f_miou__{sweep}"
        if not ids or col not in table.columns:
            continue
        scores = table.set_index("candidate_id").loc[ids, col].astype(float)
        best = max(truth[c] for c in ids)
        picked = info.get("candidate_id")
        out["per_sweep"][sweep] = {
            "picked": picked,
            "regret": round(best - truth[picked], 4) if picked in truth else None,
            "spearman": float(spearman(scores.values, [truth[c] for c in ids])) if len(ids) > 1 else None,
            "centre_bound": bool(info.get("centre_bound")),
        }
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "select_job.json"))
    p.add_argument("--config", help="another config (default: the embedded one, as the issue asks)")
    args = p.parse_args()

    storage = Path(tempfile.mkdtemp(prefix="bench-select-"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # the job starts its own cluster
    env.update(HOME=str(storage / "home"), RAY_USAGE_STATS_ENABLED="0")
    cmd = [sys.executable, "-m", "ray_jobs.select", "--storage", str(storage / "results")]
    if args.config:
        cmd += ["--config", args.config]
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    (storage / "job.log").write_text(log)
    if proc.returncode != 0:
        print(log[-5000:], file=sys.stderr)
        print(f"job failed with status {proc.returncode}; log in {storage / 'job.log'}", file=sys.stderr)
        return 1

    experiment = next(p for p in (storage / "results").iterdir() if (p / "choice.json").is_file())
    choice = json.loads((experiment / "choice.json").read_text())
    warmup = re.search(r"warm-up\(s\) done in ([0-9.]+)s", log)
    report = {
        "wall_seconds": round(wall, 1),
        "target_seconds": TARGET_SECONDS,
        "within_target": wall <= TARGET_SECONDS,
        "warmup_seconds": float(warmup.group(1)) if warmup else None,
        "candidates": choice["total"],
        "trial_seconds": trial_seconds(experiment),
        "choice": choice["parameters"],
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "config": args.config or "embedded (configs/synthscape.yaml)",
        "label_audit": label_audit(experiment, choice),
    }
    print(json.dumps(report, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
