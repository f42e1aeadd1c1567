"""What the evidence costs per candidate in the default job, measured in one process (no Ray).

The default job (configs/synthscape.yaml: 11 candidates, 60 subset images of 64x128, 60 source-val
and 60 target-val images) now has each candidate's voting replicate write an evidence file, and the
vote computes every validator from it. Two places cost more than before:

* the Train worker, after its last round. Before: a label-map pass over the subset, then
  evaluation on target-val and source-val. Now: one subset pass giving label maps and the softmax
  at the sampled pixels, the MixVal pass, the source-val pass (which also gives the source-val mIoU
  the evaluation used to compute: one pass serves both), and evaluation on target-val only.
* the vote: the evidence validators (and f_miou_lno) accumulated beside the F-mIoU counts.

Both are timed here on the default config's data and model (weights drawn at random: the
inference cost does not depend on them), best of ``--repeats``, the old and the new path
alternating in the same process so that the machine's load hits both alike. One torch thread,
as a Train worker with one CPU has.

    nice -n 10 python bench/bench_evidence_cost.py [--repeats 3] [--out bench/results/evidence_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hiast import pipeline  # noqa: E402
from hiast.data import build_dataset  # noqa: E402
from hiast.models import build_model  # noqa: E402
from ray_jobs.candidate_outputs import write_candidate_outputs  # noqa: E402
from ray_jobs.config import load_job_config  # noqa: E402
from selection import build_candidates, run_selection  # noqa: E402
from selection.run import SelectionSpec  # noqa: E402
from selection.store.predictions_writer import PredictionWriter  # noqa: E402
from selection.store.subset import select_subset  # noqa: E402


def _model(cfg, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(cfg.model, cfg.data.num_classes).eval()


def old_outputs(model, cfg, cid: str, subset: list[str], pred_uri: str) -> dict:
    """What the Train worker did before: label maps, then evaluation on both labelled splits."""
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    with PredictionWriter(pred_uri, cid, cfg.data.num_classes, subset) as w:
        for image_id, labels in pipeline.predict_labels(model, target, subset, size=cfg.data.eval_size):
            w.write(image_id, labels)
    return pipeline.evaluate_splits(model, cfg, ("target_val", "source_val"))


def new_outputs(model, cfg, cid: str, subset: list[str], pred_uri: str, ev_uri: str) -> dict:
    """What it does now (ray_jobs.worker.train_loop, rank 0 of replicate 0 after its last round)."""
    scalars = write_candidate_outputs(
        model, cfg, candidate_id=cid, subset_ids=subset, predictions_uri=pred_uri, evidence_uri=ev_uri
    )
    return {**pipeline.evaluate_splits(model, cfg, ("target_val",)), **scalars}


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "evidence_cost.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_job_config(None)
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    subset = select_subset(target.ids, cfg.selection.subset_size, cfg.selection.subset_seed)
    candidates = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
        work = Path(tmp)
        model = _model(cfg, 0)
        # Warm the dataset caches and torch once, outside the timings.
        new_outputs(model, cfg, "warm", subset, str(work / "w.parquet"), str(work / "w.npz"))
        old_s = new_s = float("inf")
        for _ in range(args.repeats):  # alternate, so load changes hit both alike
            old_s = min(
                old_s, timed(lambda: old_outputs(model, cfg, "c", subset, str(work / "o.parquet")), 1)
            )
            new_s = min(
                new_s,
                timed(
                    lambda: new_outputs(
                        model, cfg, "c", subset, str(work / "n.parquet"), str(work / "n.npz")
                    ),
                    1,
                ),
            )
        old_metrics = old_outputs(model, cfg, "c", subset, str(work / "o.parquet"))
        new_metrics = new_outputs(model, cfg, "c", subset, str(work / "n.parquet"), str(work / "n.npz"))
        ev_bytes = (work / "n.npz").stat().st_size

        # The vote over the default job's 11 candidates, each with its own (random) model.
        preds, evs = {}, {}
        for k, c in enumerate(candidates):
            preds[c.id], evs[c.id] = str(work / f"p{k}.parquet"), str(work / f"e{k}.npz")
            new_outputs(_model(cfg, 100 + k), cfg, c.id, subset, preds[c.id], evs[c.id])
        ids = list(subset)
        c = cfg.data.num_classes
        vote_old = vote_new = float("inf")
        for _ in range(args.repeats):
            vote_old = min(
                vote_old, timed(lambda: run_selection(candidates, preds, SelectionSpec(ids, c)), 1)
            )
            vote_new = min(
                vote_new,
                timed(lambda: run_selection(candidates, preds, SelectionSpec(ids, c), evidence_uris=evs), 1),
            )
    n = len(candidates)
    out = {
        "what": "per-candidate cost of the evidence in the default job (configs/synthscape.yaml)",
        "candidates": n,
        "subset_images": len(subset),
        "torch_threads": 1,
        "repeats": args.repeats,
        "worker_before_s": round(old_s, 3),
        "worker_now_s": round(new_s, 3),
        "worker_extra_per_candidate_s": round(new_s - old_s, 3),
        "source_val_miou_same": abs(old_metrics["source_val"] - new_metrics["source_val_miou"]) < 1e-12,
        "evidence_file_bytes": ev_bytes,
        "vote_labels_only_s": round(vote_old, 3),
        "vote_with_evidence_s": round(vote_new, 3),
        "vote_extra_per_candidate_s": round((vote_new - vote_old) / n, 3),
        "job_extra_estimate_s": round(n * (new_s - old_s) / 2 + (vote_new - vote_old), 1),
        "job_extra_estimate_note": "worker extra x 11 / 2 (two candidates at a time) + the vote's extra",
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".tmp").write_text(json.dumps(out, indent=2) + "\n")
    os.replace(args.out + ".tmp", args.out)
    print(json.dumps(out, indent=2))
    return 0 if out["source_val_miou_same"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
