"""Audit of label-free scores wherever true labels exist (synthscape, or a labelled target val split).

Per vote group (sweep) and per score -- every validator of the group's table
(:mod:`selection.run.validator_table`, ``kind`` "validator"), the configured rule (score ``rule``,
kind "rule"), any other score a caller gave (kind "score") -- and two references (kind
"reference"):

* ``spearman``, ``kendall`` (tau-b): rank correlation of the score with true mIoU over the group's
  candidates. The score is oriented first (lower-is-better scores negated), so +1 always means
  "orders candidates exactly as true mIoU does" and -1 "exactly backwards". NaN with fewer than
  2 candidates or a constant score.
* ``regret``: true mIoU of the group's best candidate minus true mIoU of the score's pick (the
  best-scored eligible candidate; ties go to the default candidate when it is tied, else the first
  in the group's order -- as the rules pick). 0 is perfect; ``top1``: the pick is a best candidate.

Two reference rows per group: ``centre`` (always pick the middle of the sweep, lower middle for an
even count; for a grid, the candidate at every parameter's middle value) and ``random`` (expected
regret of a uniform pick: best minus mean). A score whose regret is no better than ``centre`` has
not shown it sees anything the grid layout does not.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from selection.candidates import GRID_GROUP, Candidate
from selection.decision.rules import Rule
from selection.tables import GroupScores
from selection.validators import VALIDATORS

__all__ = [
    "spearman",
    "kendall_tau_b",
    "pick",
    "AuditScore",
    "audit_group",
    "centre_of_group",
    "audit_selection",
    "summarize_audit",
    "AUDIT_COLUMNS",
]

AUDIT_COLUMNS = [
    "group",
    "score",
    "kind",
    "higher_is_better",
    "n_candidates",
    "spearman",
    "kendall",
    "pick",
    "pick_true_miou",
    "best",
    "best_true_miou",
    "regret",
    "top1",
]


def _rank_inputs(name: str, x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray] | None:
    """Both as float arrays, or None where the correlation is undefined (n < 2, a constant side)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"{name}: lengths differ ({len(x)} vs {len(y)})")
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None  # scipy would warn and give NaN; NaN is the answer, without the warning
    return x, y


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties, scipy.stats); NaN if n < 2 or either is constant."""
    both = _rank_inputs("spearman", x, y)
    return float("nan") if both is None else float(scipy.stats.spearmanr(*both).statistic)


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties adjusted, scipy.stats.kendalltau); NaN if n < 2 or either is constant."""
    both = _rank_inputs("kendall", x, y)
    return float("nan") if both is None else float(scipy.stats.kendalltau(*both, variant="b").statistic)


def pick(
    ids: Sequence[str],
    values: Mapping[str, float],
    higher_is_better: bool,
    eligible: Collection[str] | None = None,
    prefer: str | None = None,
) -> str | None:
    """The best-scored candidate among ``eligible`` with a finite score; on ties ``prefer`` if it is
    tied, else the first in ``ids`` (the tie rule of :meth:`selection.decision.rules.Rule.pick`)."""
    scored = []
    for i in ids:
        v = values.get(i, float("nan"))
        if (eligible is None or i in eligible) and v is not None and np.isfinite(v):
            scored.append((i, float(v) if higher_is_better else -float(v)))
    if not scored:
        return None
    top = max(v for _, v in scored)
    tied = [i for i, v in scored if v == top]
    return prefer if prefer in tied else tied[0]


@dataclass(frozen=True)
class AuditScore:
    """A score to audit: values per candidate, direction, who may be picked (None: everyone), its kind."""

    values: Mapping[str, float]
    higher_is_better: bool
    eligible: Collection[str] | None = None
    kind: str = "score"


def audit_group(
    group: str,
    ids: Sequence[str],
    true_miou: Mapping[str, float],
    scores: Mapping[str, AuditScore],
    centre_id: str | None,
    prefer: str | None = None,
) -> list[dict]:
    """Audit rows (see AUDIT_COLUMNS) for one vote group: every score, then centre and random.
    ``prefer``: the candidate ties go to (the default)."""
    known = [i for i in ids if i in true_miou and np.isfinite(true_miou[i])]
    rows: list[dict] = []
    if not known:
        return rows
    best = max(known, key=lambda i: true_miou[i])
    best_t = float(true_miou[best])

    def row(
        score: str,
        kind: str,
        hib: bool | None,
        n: int,
        rho: float,
        tau: float,
        chosen: str | None,
        chosen_t: float,
    ):
        return {
            "group": group,
            "score": score,
            "kind": kind,
            "higher_is_better": hib,
            "n_candidates": n,
            "spearman": rho,
            "kendall": tau,
            "pick": chosen,
            "pick_true_miou": chosen_t,
            "best": best,
            "best_true_miou": best_t,
            "regret": best_t - chosen_t,
            "top1": bool(chosen is not None and best_t - chosen_t <= 1e-12),
        }

    for name, sc in scores.items():
        both = [i for i in known if i in sc.values and np.isfinite(sc.values[i])]
        if not both:
            continue
        sign = 1.0 if sc.higher_is_better else -1.0
        s = [sign * float(sc.values[i]) for i in both]
        t = [float(true_miou[i]) for i in both]
        chosen = pick(ids, sc.values, sc.higher_is_better, sc.eligible, prefer)
        chosen_t = float(true_miou[chosen]) if chosen in true_miou else float("nan")
        rho, tau = spearman(s, t), kendall_tau_b(s, t)
        rows.append(row(name, sc.kind, sc.higher_is_better, len(both), rho, tau, chosen, chosen_t))
    nan = float("nan")
    if centre_id is not None and centre_id in true_miou:
        rows.append(
            row("centre", "reference", None, len(known), nan, nan, centre_id, float(true_miou[centre_id]))
        )
    rows.append(
        row(
            "random",
            "reference",
            None,
            len(known),
            float("nan"),
            float("nan"),
            None,
            float(np.mean([true_miou[i] for i in known])),
        )
    )
    return rows


def centre_of_group(group: str, ids: Sequence[str], by_id: Mapping[str, Candidate]) -> str | None:
    """The middle candidate: middle value of a sweep, or every parameter's middle value in a grid."""
    if group != GRID_GROUP:
        return ids[(len(ids) - 1) // 2]
    members = [by_id[i] for i in ids]
    target = {}
    for p in members[0].params:
        vals = sorted({float(c.params[p]) for c in members})
        target[p] = vals[(len(vals) - 1) // 2]
    for c in members:
        if all(float(c.params[p]) == v for p, v in target.items()):
            return c.id
    return None


def audit_selection(
    groups: Mapping[str, GroupScores],
    candidates: Sequence[Candidate],
    true_miou: Mapping[str, float],
    extra_scores: Mapping[str, Mapping[str, float]],
    extra_directions: Mapping[str, bool],
    rule: Rule,
) -> pd.DataFrame:
    """Audit rows (AUDIT_COLUMNS) of every vote group: every validator of its table, the rule, each
    other extra score, then the centre and random references."""
    by_id = {c.id: c for c in candidates}
    rows: list[dict] = []
    for g, gs in groups.items():
        assert gs.table is not None  # score_from_accumulators sets it
        table = gs.table
        sc: dict[str, AuditScore] = {
            name: AuditScore(table[name].to_dict(), VALIDATORS[name].higher_is_better, kind="validator")
            for name in table.columns
        }
        sc["rule"] = AuditScore(rule.scores(table).to_dict(), True, kind="rule")
        for name, vals in extra_scores.items():
            if name not in sc:
                sc[name] = AuditScore(vals, extra_directions[name])
        prefer = next((c.id for c in candidates if c.is_default and c.id in set(gs.ids)), None)
        rows += audit_group(g, gs.ids, true_miou, sc, centre_of_group(g, gs.ids, by_id), prefer)
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def summarize_audit(audit: pd.DataFrame) -> pd.DataFrame:
    """Per score over all groups: mean and max regret, how often it picked the best, mean correlations."""
    if audit.empty:
        return pd.DataFrame(
            columns=[
                "score",
                "groups",
                "mean_regret",
                "max_regret",
                "picked_best",
                "mean_spearman",
                "mean_kendall",
            ]
        )
    g = audit.groupby("score", sort=False)
    out = pd.DataFrame(
        {
            "groups": g.size(),
            "mean_regret": g["regret"].mean(),
            "max_regret": g["regret"].max(),
            "picked_best": g["top1"].sum().astype(int),
            "mean_spearman": g["spearman"].mean(),
            "mean_kendall": g["kendall"].mean(),
        }
    )
    return out.reset_index()
