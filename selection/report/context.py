"""The results table and choice, turned into what the dashboard template shows, section by section.

Each section is one small function of :class:`~selection.report.inputs.Facts`; the template only
lays out and formats. A new section is a function here, a key in :func:`page_context` and a block
in ``templates/dashboard.html.j2``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from selection.report.charts import SweepChart, sweep_chart
from selection.report.heatmaps import agreement_heatmap, per_class_heatmap
from selection.report.inputs import Facts, as_names, finite
from selection.report.rankings import ranking_tables
from selection.report.score_table import ScoreColumn, pick_rows, score_columns

__all__ = ["CENTRE_BOUND_SENTENCE", "page_context"]

CENTRE_BOUND_SENTENCE = (
    "The vote did not discriminate between these values: the pick is the centre of every window"
)
# Per-replicate copies the job writes beside a candidate's scores (``f_miou__rep1``, ``true_miou__rep0``).
REPLICATE_COLUMN = re.compile(r"^(?P<name>.+)__rep(?P<replicate>\d+)$")


@dataclass(frozen=True)
class ParameterRow:
    name: str
    chosen: float
    default: float | None

    @property
    def changed(self) -> bool:
        return self.default is not None and self.chosen != self.default


@dataclass
class Summary:
    finished: int
    total: int
    candidates: int
    failed: int
    pending: int
    degenerate: int
    notes: list[str]
    choice: dict[str, Any] | None
    broken: int = 0
    parameters: list[ParameterRow] = field(default_factory=list)
    centre_bound: list[str] = field(default_factory=list)
    rule: dict[str, Any] | None = None  # choice.json's rule (schema 2): config, text, description
    confidence: dict[str, Any] | None = None  # choice.json's confidence: level, reasons, groups


@dataclass
class SweepCard:
    param: str
    group: str
    centre_bound: bool
    centre_detail: str
    pick_value: float | None
    pick_id: str | None
    score_used: str
    pick_score: float | None
    default: float | None
    facts: list[str]
    chart: SweepChart | None
    confidence: dict[str, Any] | None = None  # this group's level and reasons


@dataclass(frozen=True)
class CandidateRow:
    candidate_id: str
    sweeps: list[str]
    values: list[float]
    status: str
    f_miou: float | None
    true_miou: float | None
    chosen: bool
    picked_in: list[str]
    degenerate: bool
    centre_bound: bool


@dataclass(frozen=True)
class ReplicateTable:
    names: list[str]
    replicates: list[int]
    rows: list[tuple[str, list[float | None]]]


def _flag(value: Any) -> bool:
    # A bool column; rows the job adds for candidates that never voted hold NaN there.
    return isinstance(value, bool | np.bool_) and bool(value)


def summary(facts: Facts) -> Summary:
    status = facts.df["status"]
    out = Summary(
        finished=int((status != "pending").sum()),
        total=facts.total,
        candidates=len(facts.df),
        failed=int((status == "failed").sum()),
        pending=int((status == "pending").sum()),
        degenerate=len(facts.degenerate),
        notes=facts.notes,
        choice=facts.choice,
        broken=len(facts.broken),
    )
    if facts.choice is not None:
        out.parameters = [
            ParameterRow(p, float(v), facts.defaults.get(p)) for p, v in facts.choice["parameters"].items()
        ]
        out.centre_bound = [str(p) for p in facts.choice["centre_bound"]]
        out.rule = facts.choice.get("rule")
        out.confidence = facts.choice.get("confidence")
    return out


def sweep_cards(facts: Facts) -> list[SweepCard]:
    cards = []
    for p in facts.params:
        g = facts.group_of(p)
        entry = (facts.choice or {}).get("per_sweep", {}).get(g, {})
        bias = (facts.choice or {}).get("centre_bias", {}).get(p, {})
        pick_id = facts.pick_id(g)
        picked = facts.df[facts.df["candidate_id"] == pick_id]
        notes = []
        untrimmed = entry.get("untrimmed_pick")
        if untrimmed is not None and str(untrimmed) != pick_id:
            notes.append(f"without trimming the pick would be {untrimmed}")
        undecided = finite(entry.get("undecided_fraction"))
        if undecided is not None:
            notes.append(f"undecided pixels in the vote: {100 * undecided:.1f}%")
        if facts.choice is not None and g not in facts.choice["per_sweep"]:
            notes.append("no vote in this sweep (see the notes above)")
        if entry.get("degenerate"):
            notes.append("degenerate here: " + ", ".join(str(c) for c in entry["degenerate"]))
        score_used = facts.score_used(g)
        cards.append(
            SweepCard(
                param=p,
                group=g,
                centre_bound=p in (facts.choice or {}).get("centre_bound", []),
                centre_detail=str(bias.get("sentence") or ""),
                pick_value=float(picked.iloc[0][p]) if len(picked) else None,
                pick_id=pick_id,
                score_used=score_used,
                pick_score=finite(entry.get(score_used)),
                default=facts.defaults.get(p),
                facts=notes,
                chart=sweep_chart(facts, p),
                confidence=((facts.choice or {}).get("confidence") or {}).get("groups", {}).get(g),
            )
        )
    return cards


def candidate_rows(facts: Facts) -> list[CandidateRow]:
    chosen = (facts.choice or {}).get("candidate_id")
    rows = []
    for _, r in facts.df.iterrows():
        cid = str(r["candidate_id"])
        rows.append(
            CandidateRow(
                candidate_id=cid,
                sweeps=as_names(r["sweeps"]),
                values=[float(r[p]) for p in facts.params],
                status=str(r["status"]),
                f_miou=finite(r["f_miou"]),
                true_miou=finite(r.get("true_miou")),
                chosen=chosen is not None and cid == str(chosen),
                picked_in=[g for g in facts.groups if facts.pick_id(g) == cid],
                degenerate=cid in facts.degenerate,
                centre_bound=_flag(r.get("centre_bound")),
            )
        )
    return rows


def failed_candidates(facts: Facts) -> list[tuple[str, str | None]]:
    failed = facts.df[facts.df["status"] == "failed"]
    errors = failed["error"] if "error" in failed.columns else [None] * len(failed)
    return [
        (str(c), None if pd.isna(e) else str(e)) for c, e in zip(failed["candidate_id"], errors, strict=True)
    ]


def score_values(facts: Facts) -> tuple[list[ScoreColumn], list[tuple[str, bool, list[float | None]]]]:
    """Every voted candidate's value of every score (candidate-level columns)."""
    cols = score_columns(facts.df)
    voted = facts.voted(facts.df)
    rows = [
        (
            str(r["candidate_id"]),
            str(r["candidate_id"]) in facts.degenerate,
            [finite(r[c.name]) for c in cols],
        )
        for _, r in voted.iterrows()
    ]
    return cols, rows


def replicate_table(facts: Facts) -> ReplicateTable | None:
    """The job's per-replicate columns, when there are at least two replicates to compare."""
    found: dict[str, dict[int, str]] = {}
    for col in facts.df.columns:
        m = REPLICATE_COLUMN.match(str(col))
        if m:
            found.setdefault(m["name"], {})[int(m["replicate"])] = str(col)
    replicates = sorted({r for by_rep in found.values() for r in by_rep})
    if len(replicates) < 2:
        return None
    names = list(found)
    rows = [
        (
            str(row["candidate_id"]),
            [finite(row[found[n][r]]) if r in found[n] else None for n in names for r in replicates],
        )
        for _, row in facts.df.iterrows()
    ]
    return ReplicateTable(names, replicates, rows)


def settings(facts: Facts) -> list[tuple[str, list[tuple[str, str]] | str]]:
    """One row per config section: ``key: value`` pairs (JSON values), or the value itself."""
    rows: list[tuple[str, list[tuple[str, str]] | str]] = []
    for section, value in facts.config.items():
        if isinstance(value, dict):
            rows.append((section, [(k, json.dumps(v, separators=(", ", ": "))) for k, v in value.items()]))
        else:
            rows.append((section, json.dumps(value)))
    return rows


def page_context(facts: Facts, generated: str) -> dict[str, Any]:
    """Everything ``templates/dashboard.html.j2`` renders."""
    scores, values = score_values(facts)
    experiment = facts.config.get("experiment") or "selection"
    return {
        "title": f"hiast-select — {experiment}",
        "generated": generated,
        "provisional": facts.provisional,
        "mode": facts.mode,
        "has_true": facts.has_true,
        "centre_bound_sentence": CENTRE_BOUND_SENTENCE,
        "summary": summary(facts),
        "sweeps": sweep_cards(facts),
        "params": facts.params,
        "groups": facts.groups,
        "candidates": candidate_rows(facts),
        "has_per_group_scores": any(str(c).startswith("f_miou__") for c in facts.df.columns),
        "degenerate": facts.degenerate,
        "broken": facts.broken,
        "trim_rule": (facts.choice or {}).get("trim_rule"),
        "failed": failed_candidates(facts),
        "score_picks": pick_rows(facts) if facts.choice is not None else [],
        "rankings": ranking_tables(facts),
        # the charts plot the rule's score when it is an F-mIoU, else F-mIoU (selection.report.charts)
        "chart_score": next(
            (s for s in (facts.score_used(g) for g in facts.groups) if s in ("f_miou", "f_miou_trimmed")),
            "f_miou",
        ),
        "score_columns": scores,
        "score_values": values,
        "replicates": replicate_table(facts),
        "agreement": agreement_heatmap(facts),
        "per_class": per_class_heatmap(facts),
        "settings": settings(facts),
        "config_json": json.dumps(facts.config, indent=2) if facts.config else "",
    }
