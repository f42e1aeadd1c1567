"""Wall time of the default selection job: ``python -m ray_jobs.select`` with no arguments.

That is the embedded synthscape config (11 candidates: 5 alpha + gamma, lambda_i and k sweeps,
the default trained once), a local Ray cluster started by the job, results in a temporary
folder. Target (issue): at most 5 minutes on a 2-core machine. Also reports the time to the first
warm-up, per-candidate training times (from Tune's results) and the machine's load, since a
shared machine's neighbours change the figure. The job draws synthscape into a fresh cache, as on
a new machine. ``--cpu-profile`` adds where the CPU went, by Ray process kind.

    python bench/bench_select_job.py [--out bench/results/select_job.json] [--config FILE] [--cpu-profile]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
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

    from selection.decision.audit import spearman

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


class ProcessCPU(threading.Thread):
    """Samples /proc while the job runs: CPU seconds of every process started after it began,
    summed by Ray process kind (``ray::TrainController``, ``ray::RayTrainWorker``, ...).

    A process's last sample before it exits is what counts, so a short-lived one can lose up to
    one interval of CPU. Linux only; costs about 1 % of one core.
    """

    def __init__(self, interval: float = 0.3) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.before = {p for p in os.listdir("/proc") if p.isdigit()}
        self.last: dict[str, tuple[str, float]] = {}
        self.halt = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid in self.before:
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    with open(f"/proc/{pid}/cmdline") as f:
                        cmd = f.read().replace("\0", " ").strip()
                except OSError:
                    continue  # exited between listdir and open
                cpu = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
                name = cmd.split(" ")[0] if cmd.startswith("ray::") else _short(cmd)
                if cmd or pid not in self.last:
                    self.last[pid] = (name, cpu)
                else:
                    self.last[pid] = (self.last[pid][0], cpu)

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name, cpu in self.last.values():
            entry = out.setdefault(name, {"cpu_seconds": 0.0, "processes": 0})
            entry["cpu_seconds"] = round(entry["cpu_seconds"] + cpu, 1)
            entry["processes"] += 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["cpu_seconds"]))


def _short(cmd: str) -> str:
    parts = cmd.split(" ")
    if not parts[0]:
        return "(exited)"
    if "python" in parts[0]:
        script = next((Path(a).name for a in parts[1:] if not a.startswith("-")), "")
        return f"python {script}" if script != "ray_jobs.select" else "job driver"
    return Path(parts[0]).name


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "select_job.json"))
    p.add_argument("--config", help="another config (default: the embedded one, as the issue asks)")
    p.add_argument(
        "--cpu-profile",
        action="store_true",
        help="also sample /proc: CPU seconds per Ray process kind (perturbs the wall time slightly)",
    )
    args = p.parse_args()

    storage = Path(tempfile.mkdtemp(prefix="bench-select-"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # the job starts its own cluster
    # A fresh synthscape cache: the job pays for drawing the benchmark, as on a new machine.
    env.update(
        HOME=str(storage / "home"),
        RAY_USAGE_STATS_ENABLED="0",
        HIAST_SYNTHSCAPE_CACHE=str(storage / "synthscape-cache"),
    )
    cmd = [sys.executable, "-m", "ray_jobs.select", "--storage", str(storage / "results")]
    if args.config:
        cmd += ["--config", args.config]
    load_before = os.getloadavg()
    sampler = ProcessCPU() if args.cpu_profile else None
    if sampler is not None:
        sampler.start()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if sampler is not None:
        sampler.halt.set()
        sampler.join()
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
    if sampler is not None:
        cpu = sampler.summary()
        report["cpu_profile"] = {
            "total_cpu_seconds": round(sum(v["cpu_seconds"] for v in cpu.values()), 1),
            "by_process": cpu,
        }
    print(json.dumps(report, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
