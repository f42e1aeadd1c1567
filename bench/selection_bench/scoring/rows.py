"""What the score stage adds to the committed tables for one regime and seed.

:func:`group_rows`: the rows of ``selection_scores.parquet`` (:mod:`selection_bench.tables.scores`)
from the job's own selection result (its validator tables and its confidence). :func:`target_counts`:
the rows of ``selection_target_images.parquet`` (:mod:`selection_bench.tables.target_images`) of one
candidate, predicted again on target-val image by image, and refused unless they add up to the
candidate's recorded truth.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from selection.outputs.result import SelectionResult
from selection_bench.layout import FinishedCandidate
from selection_bench.tables import PARAM, ROUND1, VAL, image_counts, subset_miou

log = logging.getLogger(__name__)

__all__ = ["COUNTS_FILE", "group_rows", "round1_truth", "target_counts"]

COUNTS_FILE = "target_val_counts.parquet"


def round1_truth(fc: FinishedCandidate) -> float:
    """Target-val mIoU (points) after round 1, NaN if the record has no per-round evaluation."""
    rounds = fc.record.get("rounds") or []
    ev = rounds[0].get("eval") if rounds else None
    return 100 * float(ev["target_val_miou"]) if ev else float("nan")


def group_rows(
    mine: Sequence[FinishedCandidate],
    result: SelectionResult,
    rung: Mapping[str, pd.DataFrame] | None,
    replicates: int,
) -> list[dict[str, Any]]:
    """One row per (vote group, candidate) of one regime and seed (columns: scores_table)."""
    by_id = {fc.id: fc for fc in mine}
    conf = result.choice.confidence
    rule_text = result.choice.rule.text if result.choice.rule is not None else ""
    rows = []
    for g, table in result.validators.items():
        gc = conf.groups.get(g) if conf is not None else None
        sweep = result.choice.per_sweep.get(g)
        rung_table = rung.get(g) if rung is not None else None
        for pos, cid in enumerate(table.index):
            fc = by_id[cid]
            row: dict[str, Any] = {
                "regime": fc.regime,
                "seed": fc.seed,
                "sweep": g,
                "candidate": cid,
                "position": pos,
                "candidate_sweeps": ",".join(fc.sweeps),
                "broken": fc.broken,
                "is_default": cid == "default",
                "guard_reason": result.choice.broken.get(cid, ""),
                "group_validators": ",".join(table.columns),
                "target_val_miou": 100 * fc.truth,
                "round1_target_val_miou": round1_truth(fc),
                "source_val_miou": 100 * fc.source_val_miou,
                "warmup_target_val_miou": 100 * fc.warmup_truth,
                "replicates": replicates,
                "confidence_rule": rule_text,
                "job_pick": (sweep.candidate_id or "") if sweep is not None else "",
                "confidence_level": gc.level if gc is not None else "",
                "confidence_reasons": json.dumps(gc.reasons if gc is not None else []),
                "confidence_agreeing": gc.agreeing if gc is not None else -1,
                "confidence_validators": gc.validators if gc is not None else -1,
                # NaN: the centre-bias diagnostic gave no verdict (a float keeps the column simple).
                "centre_bound": float("nan")
                if gc is None or gc.centre_bound is None
                else float(gc.centre_bound),
                "confidence_half_picks": json.dumps(gc.half_picks if gc is not None else []),
                "confidence_family_picks": json.dumps(gc.family_picks if gc is not None else {}),
            }
            row.update({PARAM + k: float(v) for k, v in fc.params.items()})
            row.update({VAL + v: float(table.at[cid, v]) for v in table.columns})
            if rung_table is not None and cid in rung_table.index:
                row.update({ROUND1 + v: float(rung_table.at[cid, v]) for v in rung_table.columns})
            rows.append(row)
    return rows


def _predict_counts(fc: FinishedCandidate) -> pd.DataFrame:
    from hiast.data import build_dataset
    from hiast.metrics import confusion_matrix
    from hiast.pipeline import load_model
    from hiast.predict import predict_labels
    from hiast.training import resize_pair

    cfg = fc.config()
    ds = build_dataset(cfg.data.target_val, cfg.data)
    classes = list(cfg.data.eval_classes or range(cfg.data.num_classes))
    size = cfg.data.eval_size
    rows = []
    # The same prediction call as the train stage's evaluation (hiast.predict.evaluate), per image.
    for sid, label in predict_labels(load_model(fc.checkpoint), ds, size=size):
        sample = ds[ds.index_of(sid)]
        gt = sample.label if size is None else resize_pair(sample.image, sample.label, size)[1]
        inter, union = image_counts(confusion_matrix(label, gt, cfg.data.num_classes), classes)
        rows.append(
            {
                "regime": fc.regime,
                "seed": fc.seed,
                "candidate": fc.id,
                "image": str(sid),
                "classes": classes,
                "intersection": inter,
                "union": union,
            }
        )
    return pd.DataFrame(rows)


def target_counts(fc: FinishedCandidate) -> pd.DataFrame:
    """The candidate's per-image target-val counts (cached next to its checkpoint: ``--rescore``
    predicts nothing again); ValueError unless they add up to its recorded target-val mIoU."""
    cache = fc.checkpoint.parent / COUNTS_FILE
    if cache.is_file():
        frame = pd.read_parquet(cache)
    else:
        frame = _predict_counts(fc)
        frame.to_parquet(cache.with_name(cache.name + ".tmp"), index=False)
        cache.with_name(cache.name + ".tmp").replace(cache)
    got = subset_miou(
        np.stack(frame["intersection"].map(np.asarray)), np.stack(frame["union"].map(np.asarray))
    )
    if not math.isclose(got, 100 * fc.truth, abs_tol=1e-9):
        raise ValueError(
            f"{cache}: per-image counts give target-val mIoU {got!r}, the record says {100 * fc.truth!r}; "
            f"the prediction does not reproduce the train stage's evaluation (delete {cache} to retry)"
        )
    return frame
