"""Selection outputs for the dashboard tests, from a real selection (``selection.run_selection``).

The table gets what the job adds to it (``ray_jobs.vote.actor``): a ``status`` and ``error`` per
candidate, the per-replicate labelled metrics ``true_miou__rep<r>`` / ``source_val_miou__rep<r>``,
``f_miou__rep<r>`` with several replicates, and a row for a candidate that failed. The choice gets
the job's ``failed`` / ``provisional`` / ``finished`` / ``total`` keys. tests/ray_jobs/
vote/test_report_job.py renders the job's own table, so these shapes cannot drift unnoticed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiast.data.classes import class_names
from hiast.metrics import confusion_matrix, mean_iou
from ray_jobs.config import JobConfig, load_job_config
from selection.candidates import build_candidates
from selection.run import SelectionSpec
from selection.run.runner import run_selection
from selection.store.predictions_writer import PredictionWriter

HOSTILE_NOTE = '<script>alert("x")</script> & "quotes"'
FAILED_ID = "k=5"
COLLAPSED_ID = "lambda_i=3"
FAILED_ERROR = "RayTaskError: CUDA out of memory"
IMAGES = [f"img{i}" for i in range(4)]


@dataclass
class Outputs:
    table: pd.DataFrame
    choice: dict[str, Any]
    config: dict[str, Any]
    class_names: list[str]
    cfg: JobConfig
    sweeps: dict[str, pd.DataFrame]


def _predictions(c: Any, truth: list[np.ndarray], classes: np.ndarray, rng: np.random.Generator) -> list:
    """Each candidate's error is a shift proportional to alpha (neighbours agree most, so every
    alpha window picks its centre) plus noise growing away from gamma 8 and k 3."""
    p = c.params
    noise = 0.03 + 0.04 * abs(math.log2(p["gamma"] / 8)) + 0.03 * abs(p["k"] - 3)
    preds = []
    for t in truth:
        pred = np.roll(t, int(round(p["alpha"] * 20)), axis=1)
        if c.id == COLLAPSED_ID:
            pred[rng.random(pred.shape) < 0.9] = 0
        flip = rng.random(pred.shape) < noise
        pred[flip] = rng.choice(classes, int(flip.sum()))
        preds.append(pred)
    return preds


def job_outputs(
    tmp: Path, *, replicates: int = 1, grid: dict[str, list[float]] | None = None, rule: Any = "f_miou"
) -> Outputs:
    """The synthscape config's 11 candidates (or ``grid``): alpha is centre-bound, lambda_i=3
    collapses to "road" (degenerate), k=5 fails before the vote. Target labels exist."""
    cfg = load_job_config(None)
    if grid is not None:
        cfg = cfg.model_copy(
            update={"selection": cfg.selection.model_copy(update={"mode": "grid", "parameters": grid})}
        )
    cands = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    rng = np.random.default_rng(0)
    classes = np.array(cfg.data.eval_classes)
    layout = np.add.outer(np.arange(32) // 8, np.arange(64) // 8)
    truth = [classes[(layout + i) % len(classes)].astype(np.uint8) for i in range(len(IMAGES))]
    finished = [c for c in cands if c.id != FAILED_ID]
    uris: dict[str, list[str]] = {}
    true_miou: dict[str, list[float]] = {}
    for c in finished:
        for r in range(replicates):
            preds = _predictions(c, truth, classes, rng)
            uri = str(tmp / f"rep{r}" / f"{c.id}.parquet")
            with PredictionWriter(uri, c.id, cfg.data.num_classes, IMAGES) as w:
                for i, pred in zip(IMAGES, preds, strict=True):
                    w.write(i, pred)
            cm = sum(confusion_matrix(p, t, cfg.data.num_classes) for p, t in zip(preds, truth, strict=True))
            uris.setdefault(c.id, []).append(uri)
            true_miou.setdefault(c.id, []).append(mean_iou(cm, classes.tolist()))
    result = run_selection(
        finished,
        uris,
        SelectionSpec(IMAGES, cfg.data.num_classes, rule=rule),
        extra_scores={
            "mean_confidence": {c.id: float(rng.uniform(0.8, 0.95)) for c in finished},
            "source_val_miou": {c.id: float(rng.uniform(0.5, 0.7)) for c in finished},
        },
        true_miou={cid: v[0] for cid, v in true_miou.items()},
    )
    table = result.table.assign(status="done", error=None)
    for r in range(replicates):
        table[f"true_miou__rep{r}"] = [true_miou[cid][r] for cid in table["candidate_id"]]
        table[f"source_val_miou__rep{r}"] = rng.uniform(0.5, 0.7, len(table))
        if replicates > 1:
            table[f"f_miou__rep{r}"] = table["f_miou"] + rng.normal(0, 0.01, len(table))
    lost = next(c for c in cands if c.id == FAILED_ID) if grid is None else None
    if lost is not None:
        failed_row = {
            "candidate_id": lost.id,
            "digest": lost.digest,
            "sweep": lost.sweeps[0],
            "sweeps": list(lost.sweeps),
            **{p: float(v) for p, v in lost.params.items()},
            "f_miou": float("nan"),
            "status": "failed",
            "error": FAILED_ERROR,
        }
        table = pd.concat([table, pd.DataFrame([failed_row])], ignore_index=True)
    choice = {
        **result.choice.as_dict(),
        "notes": [*result.choice.notes, HOSTILE_NOTE],
        "failed": [lost.id] if lost is not None else [],
        "provisional": False,
        "finished": len(finished),
        "total": len(cands),
    }
    names = list(class_names(cfg.data.target.class_set))
    return Outputs(table, choice, cfg.model_dump(mode="json"), names, cfg, result.sweeps)
