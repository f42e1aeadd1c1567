"""The results table (one row per candidate), and atomic Parquet / JSON / Markdown writers.

Columns of :func:`build_results_table`, in order (``<g>`` = vote group: a sweep's parameter name,
or ``grid``; ``<p>`` = a parameter; ``<id>`` = a candidate id):

=========================  ===================================================================
candidate_id, digest       stable readable id; short hash of the full parameter dict
role                       ``default`` / ``varied`` (sweep mode) or ``grid``
sweep                      its sweep; ``default`` for the default candidate (in every sweep); ``grid``
sweeps                     list of the vote groups it belongs to
<p>                        every parameter's value (float)
f_miou                     F-mIoU in its own vote; the default candidate, voted in every sweep,
                           gets the mean of its per-sweep values (the exact ones: ``f_miou__<g>``)
f_miou_trimmed             same, against the fusion without degenerate candidates
f_miou__<g>                F-mIoU in vote group g (NaN where not a member); picks use these
f_miou_trimmed__<g>        trimmed F-mIoU in group g (equal to f_miou__<g> if nobody was trimmed)
per_class_iou              list of C IoUs against the fusion (NaN: class absent); default: mean
per_class_iou__<g>         per-class IoU in group g (empty list where not a member)
degenerate                 flagged by the trimming rule in any of its groups
degenerate_in              list of the groups where it was flagged
broken                     broken on evidence other than agreement (selection.decision.guard): never picked
broken_reason              why (None when not broken)
picked_in                  list of the groups where it is the choice
centre_bound               it lies on a line the centre-bias diagnostic marked centre_bound
<validator>                every other validator of the vote groups' tables (selection.run.validator_table),
                           registry order: one column for a "self" validator (snd, atc, ...); a
                           "group" one (ensv, f_miou_lno) like f_miou: the mean over its groups,
                           and ``<validator>__<g>`` per group
<extra score>              each label-free score given (mean_confidence, ...)
seed_agreement             mean mIoU between its replicates (NaN with one replicate)
replicates                 number of prediction files (replicates) it has
true_miou                  only when labels exist (audit)
agreement__<id>            mIoU-style agreement with every candidate (1 with itself)
=========================  ===================================================================
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from selection.candidates import GRID_GROUP, Candidate
from selection.errors import SelectionError
from selection.filesystem import atomic_output, write_bytes_atomic
from selection.validators import VALIDATORS

__all__ = [
    "GroupScores",
    "build_results_table",
    "write_parquet",
    "write_json",
    "to_jsonable",
    "RESERVED_COLUMNS",
]

RESERVED_COLUMNS = {
    "candidate_id",
    "digest",
    "role",
    "sweep",
    "sweeps",
    "f_miou",
    "f_miou_trimmed",
    "per_class_iou",
    "degenerate",
    "degenerate_in",
    "broken",
    "broken_reason",
    "picked_in",
    "centre_bound",
    "seed_agreement",
    "replicates",
    "true_miou",
}


@dataclass
class GroupScores:
    """Scores of one vote group (a sweep, or the grid)."""

    group: str
    ids: tuple[str, ...]
    f_miou: dict[str, float]
    f_miou_trimmed: dict[str, float]
    per_class_iou: dict[str, np.ndarray]
    degenerate: tuple[str, ...] = ()
    pick: str | None = None
    untrimmed_pick: str | None = None
    score_used: str = "f_miou"
    undecided_fraction: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # The validator table (selection.run.validator_table), every validator's pick and the rule's
    # ("rule"), and the pick's confidence (selection.decision.confidence.GroupConfidence).
    table: pd.DataFrame | None = None
    picks: dict[str, str | None] = field(default_factory=dict)
    confidence: Any = None
    # Candidate id -> why it is broken (selection.decision.guard); never picked.
    broken: dict[str, str] = field(default_factory=dict)


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def build_results_table(
    candidates: Sequence[Candidate],
    groups: Mapping[str, GroupScores],
    *,
    agreement: np.ndarray | None = None,
    extra_scores: Mapping[str, Mapping[str, float]] | None = None,
    seed_agreement: Mapping[str, float] | None = None,
    replicates: Mapping[str, int] | None = None,
    centre_bound_ids: set[str] | None = None,
    true_miou: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per candidate, columns as in the module docstring."""
    params = list(candidates[0].params) if candidates else []
    clash = (set(params) | set(extra_scores or {})) & RESERVED_COLUMNS
    if clash:
        raise SelectionError(f"parameter/score names clash with result columns: {sorted(clash)}")
    gnames = list(groups)
    rows = []
    for k, c in enumerate(candidates):
        mine = [g for g in gnames if c.id in groups[g].ids]
        if GRID_GROUP in c.sweeps:
            role, sweep = "grid", GRID_GROUP
        elif c.is_default:
            role, sweep = "default", "default"
        else:
            role, sweep = "varied", c.sweeps[0]
        row: dict[str, Any] = {
            "candidate_id": c.id,
            "digest": c.digest,
            "role": role,
            "sweep": sweep,
            "sweeps": list(c.sweeps),
        }
        for p in params:
            row[p] = float(c.params[p])
        row["f_miou"] = _mean([groups[g].f_miou[c.id] for g in mine])
        row["f_miou_trimmed"] = _mean([groups[g].f_miou_trimmed[c.id] for g in mine])
        for g in gnames:
            row[f"f_miou__{g}"] = float(groups[g].f_miou[c.id]) if c.id in groups[g].ids else float("nan")
        for g in gnames:
            row[f"f_miou_trimmed__{g}"] = (
                float(groups[g].f_miou_trimmed[c.id]) if c.id in groups[g].ids else float("nan")
            )
        pcs = [groups[g].per_class_iou[c.id] for g in mine]
        if pcs:
            stacked = np.stack(pcs)
            with warnings.catch_warnings():  # an all-NaN column is an absent class: NaN is the answer
                warnings.simplefilter("ignore", RuntimeWarning)
                mean_pc = np.nanmean(stacked, axis=0)
            row["per_class_iou"] = [float(x) for x in mean_pc]
        else:
            row["per_class_iou"] = []
        for g in gnames:
            row[f"per_class_iou__{g}"] = (
                [float(x) for x in groups[g].per_class_iou[c.id]] if c.id in groups[g].ids else []
            )
        deg = [g for g in mine if c.id in groups[g].degenerate]
        row["degenerate"] = bool(deg)
        row["degenerate_in"] = deg
        reasons = [groups[g].broken[c.id] for g in mine if c.id in groups[g].broken]
        row["broken"] = bool(reasons)
        row["broken_reason"] = reasons[0] if reasons else None
        row["picked_in"] = [g for g in mine if groups[g].pick == c.id]
        row["centre_bound"] = bool(centre_bound_ids and c.id in centre_bound_ids)
        row.update(_validator_columns(c.id, groups, mine, skip=set(extra_scores or {})))
        for name, vals in (extra_scores or {}).items():
            v = vals.get(c.id)
            row[name] = float(v) if v is not None else float("nan")
        row["seed_agreement"] = float((seed_agreement or {}).get(c.id, float("nan")))
        row["replicates"] = int((replicates or {}).get(c.id, 1))
        if true_miou is not None:
            v = true_miou.get(c.id)
            row["true_miou"] = float(v) if v is not None else float("nan")
        for j, other in enumerate(candidates):
            row[f"agreement__{other.id}"] = float(agreement[k, j]) if agreement is not None else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


_OWN_COLUMNS = ("f_miou", "f_miou_trimmed", "seed_agreement")


def _validator_columns(
    cid: str, groups: Mapping[str, GroupScores], mine: list[str], skip: set[str]
) -> dict[str, float]:
    """One candidate's values of the validators in the groups' tables (registry order)."""
    names = [n for n in VALIDATORS for gs in groups.values() if gs.table is not None and n in gs.table]
    out: dict[str, float] = {}
    for n in dict.fromkeys(names):
        if n in _OWN_COLUMNS or n in skip:
            continue
        per_group = {
            g: float(gs.table.at[cid, n])
            if gs.table is not None and g in mine and n in gs.table
            else float("nan")
            for g, gs in groups.items()
        }
        out[n] = _mean([per_group[g] for g in mine])
        if VALIDATORS[n].scope == "group":
            out.update({f"{n}__{g}": v for g, v in per_group.items()})
    return out


def write_parquet(df: pd.DataFrame, uri: str | os.PathLike[str]) -> None:
    """Write a DataFrame as Parquet (zstd) atomically to a local path or cluster URI."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    with atomic_output(uri) as out:
        pq.write_table(table, out, compression="zstd")


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays to Python, NaN/inf to None, tuples/sets to lists."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def write_json(obj: Any, uri: str | os.PathLike[str]) -> None:
    """Write a JSON document atomically (NaN written as null, never as the invalid token NaN)."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False, sort_keys=False)
    write_bytes_atomic(uri, (text + "\n").encode())
