"""The label-free scores side by side: which columns are scores, and what each would pick per vote.

A score is a column named in the one registry :data:`selection.validators.VALIDATORS` (its
direction and description come from there), so a validator registered there shows up here with
nothing else to change; ``true_miou`` is added last, marked as the audit. Other columns —
parameters, per-group and per-replicate copies, bookkeeping — are never scores.

Scores from different votes are not comparable (each sweep is its own vote), so every score picks
within each vote group; :func:`group_values` is the one place that reads a score in a group, and
is what a ranking table per group would build on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from selection.candidates import GRID_GROUP, format_value
from selection.report.inputs import Facts
from selection.validators import VALIDATORS

__all__ = ["AUDIT_SCORE", "ScoreColumn", "PickCell", "ScoreRow", "score_columns", "group_values", "pick_rows"]

AUDIT_SCORE = "true_miou"


@dataclass(frozen=True)
class ScoreColumn:
    name: str
    higher_is_better: bool
    description: str
    audit: bool = False


@dataclass(frozen=True)
class PickCell:
    text: str
    candidate_id: str | None = None
    agrees: bool = False
    tie: bool = False
    degenerate: bool = False


@dataclass(frozen=True)
class ScoreRow:
    score: ScoreColumn
    cells: list[PickCell]
    same: int
    comparable: int


def score_columns(table: pd.DataFrame) -> list[ScoreColumn]:
    """The score columns of a results table that hold a value, in registry order, then the audit."""

    def present(name: str) -> bool:
        return name in table.columns and bool(pd.to_numeric(table[name], errors="coerce").notna().any())

    out = [
        ScoreColumn(s.name, s.higher_is_better, s.description) for s in VALIDATORS.values() if present(s.name)
    ]
    if present(AUDIT_SCORE):
        out.append(
            ScoreColumn(
                AUDIT_SCORE, True, "mIoU against target labels; audits the others, never selects", True
            )
        )
    return out


def group_values(facts: Facts, score: str, group: str) -> pd.Series:
    """``score`` of the candidates that voted in ``group``, by candidate id (the per-group column
    where the score has one: the default candidate's F-mIoU differs between sweeps)."""
    members = facts.voted(facts.members(group))
    col = facts.group_column(score, group)
    if col not in members.columns:
        return pd.Series(dtype=float)
    values = pd.to_numeric(members[col], errors="coerce")
    return pd.Series(values.to_numpy(), index=members["candidate_id"].to_numpy(), dtype=float).dropna()


def _shown(facts: Facts, group: str, cid: str) -> str:
    if group == GRID_GROUP:
        return cid
    value = facts.df.loc[facts.df["candidate_id"] == cid, group].iloc[0]
    return format_value(value)


def _pick_cell(facts: Facts, score: ScoreColumn, group: str) -> PickCell | None:
    values = group_values(facts, score.name, group)
    if values.empty:
        return None
    best = values.max() if score.higher_is_better else values.min()
    tied = [cid for cid, v in values.items() if math.isclose(v, best, abs_tol=1e-9)]
    if len(tied) > 1:
        # A tie is no pick: the score does not tell these candidates apart.
        return PickCell("tie: " + ", ".join(_shown(facts, group, c) for c in tied), tie=True)
    cid = str(tied[0])
    return PickCell(
        _shown(facts, group, cid),
        cid,
        agrees=cid == facts.pick_id(group),
        degenerate=cid in facts.degenerate,
    )


def pick_rows(facts: Facts) -> list[ScoreRow]:
    """One row per score: its pick in every vote group, and how often that is the vote's pick."""
    rows = []
    for score in score_columns(facts.df):
        cells = [_pick_cell(facts, score, g) for g in facts.groups]
        decided = [c for c in cells if c is not None]
        rows.append(
            ScoreRow(
                score,
                [c if c is not None else PickCell("–") for c in cells],
                same=sum(c.agrees for c in decided),
                comparable=len(decided),
            )
        )
    return rows
