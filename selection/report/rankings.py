"""Rankings per sweep: how the rule and every validator rank a sweep's candidates, beside the truth.

Read from the sweep tables the selection wrote (``sweeps/<group>.parquet``, :mod:`selection.outputs.sweeps`),
so the page shows the ranks the rule actually used. One compact table per vote group: rows are the
candidates in sweep order, columns the rule's rank, then each validator's rank (registry order),
then true mIoU's rank and value where labels exist. Rank 1 is best; ties share a rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from selection.candidates import GRID_GROUP, format_value
from selection.report.inputs import Facts, finite
from selection.validators import VALIDATORS

__all__ = ["RankCell", "RankRow", "RankTable", "ranking_tables"]


@dataclass(frozen=True)
class RankCell:
    rank: int | None
    title: str

    @property
    def best(self) -> bool:
        return self.rank == 1


@dataclass(frozen=True)
class RankRow:
    candidate_id: str
    label: str
    picked: bool
    degenerate: bool
    is_default: bool
    rule: RankCell
    cells: list[RankCell]
    truth: RankCell | None
    true_miou: float | None


@dataclass(frozen=True)
class RankTable:
    group: str
    columns: list[tuple[str, str]]  # (validator, its description with direction)
    rows: list[RankRow]
    has_truth: bool
    agreeing_with_truth: int  # validators whose rank-1 candidate is true mIoU's rank-1


def _cell(row: pd.Series, name: str) -> RankCell:
    rank = finite(row.get(f"{name}__rank"))
    value = finite(row.get(name))
    title = f"{name} = {value:.4f}" if value is not None else f"{name}: no value"
    return RankCell(None if rank is None else int(rank), title)


def _label(facts: Facts, group: str, row: pd.Series) -> str:
    if group != GRID_GROUP and group in row.index and finite(row[group]) is not None:
        return f"{group} = {format_value(float(row[group]))}"
    return str(row["candidate_id"])


def _describe(name: str) -> str:
    spec = VALIDATORS[name]
    return f"{spec.description} ({'higher' if spec.higher_is_better else 'lower'} is better)"


def ranking_tables(facts: Facts) -> list[RankTable]:
    """One table per vote group with a stored sweep table, in the choice's group order."""
    out = []
    for g in [g for g in facts.groups if g in facts.sweeps]:
        t = facts.sweeps[g]
        names = [n for n in VALIDATORS if n in t.columns and f"{n}__rank" in t.columns]
        has_truth = "true_miou__rank" in t.columns and bool(t["true_miou__rank"].notna().any())
        rows = []
        for _, r in t.iterrows():
            rows.append(
                RankRow(
                    candidate_id=str(r["candidate_id"]),
                    label=_label(facts, g, r),
                    picked=bool(r["picked"]),
                    degenerate=bool(r["degenerate"]),
                    is_default=bool(r.get("is_default", False)),
                    rule=_cell(r, "rule"),
                    cells=[_cell(r, n) for n in names],
                    truth=_cell(r, "true_miou") if has_truth else None,
                    true_miou=finite(r.get("true_miou")) if has_truth else None,
                )
            )
        best_true = {row.candidate_id for row in rows if row.truth is not None and row.truth.best}
        agreeing = sum(
            any(row.cells[k].best and row.candidate_id in best_true for row in rows)
            for k in range(len(names))
        )
        columns = [(n, _describe(n)) for n in names]
        out.append(RankTable(g, columns, rows, has_truth, agreeing))
    return out
