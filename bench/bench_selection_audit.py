"""Does label-free selection work on synthscape? An audit against the hidden target labels.

For each seed: one warm-up, then HIAST trained for every α of two 1-D sweeps — a grid centred on
the default and one shifted away from it — each candidate's predictions on the selection subset
stored, and ``selection.run_selection`` run per grid with the true target-val mIoU passed in, so
every score (F-mIoU, trimmed F-mIoU, mean confidence, source-val mIoU, and seed agreement when
``--replicates 2``) is audited: Spearman and Kendall with true mIoU, regret of its pick, against
the regret of picking the centre of the grid and of a random pick.

    python bench/bench_selection_audit.py [--seeds 0 1 2] [--replicates 1]

Prints one JSON line per (seed, grid, score) and writes bench/results/selection_audit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiast.data import build_dataset  # noqa: E402
from hiast.pipeline import evaluate, load_model, predict_labels, run_warmup, train_rounds  # noqa: E402
from ray_jobs.config import load_job_config  # noqa: E402
from selection import build_candidates, run_selection  # noqa: E402
from selection.run import SelectionSpec  # noqa: E402
from selection.store.predictions_writer import PredictionWriter  # noqa: E402
from selection.store.subset import select_subset  # noqa: E402
from selection.validators.registry import ScoreValues  # noqa: E402

GRIDS = {"centred": [0.1, 0.3, 0.5, 0.7, 0.9], "shifted": [0.5, 0.6, 0.7, 0.8, 0.9]}


def train_candidate(cfg, alpha, warm, work: Path, seed: int, target, tval, sval, subset) -> dict:
    c = cfg.with_parameters({"alpha": alpha})
    last = train_rounds(c, warm, work, seed=seed, pseudo_label_cache=work.parent / "cache")
    model = load_model(last)
    conf_sum, conf_n = 0.0, 0
    for _, _, conf in predict_labels(model, target, subset, with_confidence=True):
        conf_sum += float(conf.astype(np.float64).sum())
        conf_n += conf.size
    kw = dict(num_classes=cfg.data.num_classes, eval_classes=cfg.data.eval_classes)
    return {
        "checkpoint": str(last),
        "true_miou": evaluate(model, tval, **kw)["miou"],
        "source_val_miou": evaluate(model, sval, **kw)["miou"],
        "mean_confidence": conf_sum / conf_n,
    }


def write_predictions(
    checkpoint: str, candidate_id: str, path: Path, target, subset, num_classes: int
) -> str:
    # The store records which candidate a file belongs to; a training reused by two grids is
    # written once per role.
    with PredictionWriter(str(path), candidate_id, num_classes, subset) as w:
        for sid, label in predict_labels(load_model(checkpoint), target, subset):
            w.write(sid, label)
    return str(path)


def write_results(args, rows, candidates, started) -> dict:
    summary: dict = {}
    for grid in GRIDS:
        for score in sorted({r["score"] for r in rows}):
            sel = [r for r in rows if r["grid"] == grid and r["score"] == score]
            regrets = [r["regret"] for r in sel if r["regret"] is not None]
            sp = [r["spearman"] for r in sel if r.get("spearman") is not None]
            summary[f"{grid}/{score}"] = {
                "mean_regret": float(np.mean(regrets)) if regrets else None,
                "mean_spearman": float(np.mean(sp)) if sp else None,
                "n": len(sel),
            }
    out = {
        "seeds": args.seeds,
        "replicates": args.replicates,
        "grids": GRIDS,
        "seconds": time.perf_counter() - started,
        "torch_threads": torch.get_num_threads(),
        "candidates": candidates,
        "rows": rows,
        "summary": summary,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".tmp").write_text(json.dumps(out, indent=2, default=str))
    os.replace(args.out + ".tmp", args.out)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=None, help="default: the embedded synthscape config")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--replicates", type=int, default=1, choices=[1, 2])
    ap.add_argument("--out", default="bench/results/selection_audit.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: two benches share 2 cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = load_job_config(args.config)
    target = build_dataset(base.data.target, base.data, with_labels=False)
    tval = build_dataset(base.data.target_val, base.data)
    sval = build_dataset(base.data.source_val, base.data)
    subset = select_subset(target.ids, base.selection.subset_size, base.selection.subset_seed)
    rows, cand_rows, started = [], [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            runs: dict[tuple[int, float], dict] = {}
            for rep in range(args.replicates):
                rseed = seed * 100 + rep  # independent warm-ups per replicate
                cfg = base.model_copy(update={"seed": rseed})
                warm = run_warmup(cfg, Path(tmp) / f"s{rseed}")
                for alpha in sorted({a for g in GRIDS.values() for a in g}):
                    work = Path(tmp) / f"s{rseed}" / f"alpha{alpha}"
                    runs[rep, alpha] = train_candidate(
                        cfg, alpha, warm, work, rseed, target, tval, sval, subset
                    )
                    cand_rows.append({"seed": seed, "replicate": rep, "alpha": alpha, **runs[rep, alpha]})
                    print(json.dumps(cand_rows[-1]), flush=True)
            for grid, values in GRIDS.items():
                centre = values[len(values) // 2]
                cands = build_candidates({**base.parameters(), "alpha": centre}, {"alpha": values}, "sweep")
                by_alpha = {c.params["alpha"]: c.id for c in cands}
                uris = {
                    by_alpha[a]: [
                        write_predictions(
                            runs[r, a]["checkpoint"],
                            by_alpha[a],
                            Path(tmp) / f"{seed}-{grid}-{r}-{a}.parquet",
                            target,
                            subset,
                            base.data.num_classes,
                        )
                        for r in range(args.replicates)
                    ]
                    for a in values
                }
                extra = {
                    "mean_confidence": {by_alpha[a]: runs[0, a]["mean_confidence"] for a in values},
                    "source_val_miou": {by_alpha[a]: runs[0, a]["source_val_miou"] for a in values},
                }
                result = run_selection(
                    cands,
                    uris,
                    SelectionSpec(subset, base.data.num_classes),
                    extra_scores={k: ScoreValues(v, True) for k, v in extra.items()},
                    true_miou={by_alpha[a]: runs[0, a]["true_miou"] for a in values},
                )
                for rec in result.audit.to_dict("records"):
                    rec.update(seed=seed, grid=grid, centre_bound=bool(result.choice["centre_bound"]))
                    rows.append(
                        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}
                    )
                    print(json.dumps(rows[-1], default=str), flush=True)
            write_results(args, rows, cand_rows, started)  # partial results survive an interrupted run
    summary = write_results(args, rows, cand_rows, started)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
