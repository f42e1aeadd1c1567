"""Confidence calibration: does the job's ``choice.confidence`` level say anything about regret?

Per (regime, seed, sweep), the scores table records the confidence the job reports
(:mod:`selection.decision.confidence`) for the pick of its configured default rule (``confidence_rule``,
``job_pick``, ``confidence_level``, ``confidence_reasons``). Here each such pick gets its realised
regret against the truth averaged over the regime's seeds (as in :mod:`selection_bench.rules.table`),
and the picks are summarised per level and per kind of reason. "high" is useful when its picks'
regret is lower than that of "low" picks; "low" is right to be low when those picks' regret is high.

A candidate signal is calibrated beside it, from the table alone and for any rule (the verdict's
default): how many independent families (source-side, information-based, consensus:
:data:`selection_bench.rules.registry.FAMILIES`) pick the same candidate as the rule
(:func:`agreement_picks`). If picks that more families share have lower regret, the job's
confidence can say so. The job's own confidence is that of the rule configured when the table was
scored (``confidence_rule``): after the default changes, rescore (outputs are cached: minutes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from selection.decision.rules import parse_rule
from selection_bench.tables import ScoresTable

__all__ = [
    "GOOD_REGRET",
    "REASON_KINDS",
    "agreement_markdown",
    "agreement_picks",
    "agreement_table",
    "calibration_markdown",
    "calibration_picks",
    "calibration_table",
]

GOOD_REGRET = 1.0  # the benchmark's target per regime, used here per pick
# Reason kinds, matched on the sentences of selection.decision.confidence.group_confidence (in its order).
REASON_KINDS = (
    ("no pick", "no pick"),
    ("families disagree", "the families disagree"),
    ("validators disagree", "the validators disagree"),  # the job's reason before the families
    ("centre-bound", "centre-bound"),
    ("within noise", "within noise"),
    ("too few subset images", "fewer than 2 images"),
    ("noise not measured", "was not measured"),
)


def _kind(reason: str) -> str:
    return next((k for k, s in REASON_KINDS if s in reason), "other")


def calibration_picks(scores: ScoresTable) -> list[dict[str, Any]]:
    """One record per (regime, seed, sweep): the job's pick, its confidence and its regret."""
    out = []
    for regime in scores.regimes:
        truth = scores.mean_truth(regime)
        for g in scores.groups(regime):
            c = g.confidence
            pick = str(c["job_pick"])
            best = max(truth[i] for i in g.ids)
            out.append(
                {
                    "regime": g.regime,
                    "seed": g.seed,
                    "sweep": g.sweep,
                    "rule": str(c["confidence_rule"]),
                    "pick": pick or None,
                    "level": str(c["confidence_level"]),
                    "reasons": json.loads(str(c["confidence_reasons"])),
                    "regret": float(best - truth[pick]) if pick else float("nan"),
                    "broken": pick in g.broken,
                }
            )
    return out


def _summary(regrets: Sequence[float]) -> dict[str, float]:
    a = np.array([r for r in regrets if np.isfinite(r)], float)
    if not a.size:
        return {
            "picks": len(regrets),
            "mean": float("nan"),
            "median": float("nan"),
            "good": float("nan"),
            "max": float("nan"),
        }
    return {
        "picks": len(regrets),
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "good": float(np.mean(a <= GOOD_REGRET)),
        "max": float(a.max()),
    }


def calibration_table(picks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per level and per reason kind (a pick counts once per kind it has): the regret summary."""
    levels = sorted({p["level"] for p in picks})
    kinds = sorted({_kind(r) for p in picks for r in p["reasons"]})
    return {
        "rules": sorted({p["rule"] for p in picks}),
        "levels": {lv: _summary([p["regret"] for p in picks if p["level"] == lv]) for lv in levels},
        "reasons": {
            k: _summary([p["regret"] for p in picks if any(_kind(r) == k for r in p["reasons"])])
            for k in kinds
        },
    }


def _row(name: str, s: dict[str, float]) -> str:
    if not np.isfinite(s["mean"]):
        return f"| {name} | {s['picks']} | – | – | – | – |"
    return (
        f"| {name} | {s['picks']} | {s['mean']:.2f} | {s['median']:.2f} | {s['good']:.2f} | {s['max']:.2f} |"
    )


def calibration_markdown(table: dict[str, Any]) -> str:
    head = (
        f"| {{}} | picks | mean regret | median regret | share with regret <= {GOOD_REGRET:g} | max regret |"
    )
    lines = [
        f"Confidence of the job's pick ({', '.join(table['rules'])}) per (regime, seed, sweep), against its "
        "regret (mIoU points, against the seed-mean truth).",
        "",
        head.format("confidence"),
        "|---|---|---|---|---|---|",
        *(_row(lv, s) for lv, s in table["levels"].items()),
        "",
        head.format("reason (a pick may have several)"),
        "|---|---|---|---|---|---|",
        *(_row(k, s) for k, s in table["reasons"].items()),
    ]
    hi, lo = table["levels"].get("high"), table["levels"].get("low")
    if hi and lo and np.isfinite(hi["mean"]) and np.isfinite(lo["mean"]):
        lines += [
            "",
            f"Mean regret of 'high' picks {'below' if hi['mean'] < lo['mean'] else 'not below'} that of "
            f"'low' picks ({hi['mean']:.2f} vs {lo['mean']:.2f}).",
        ]
    return "\n".join(lines) + "\n"


def agreement_picks(scores: ScoresTable, rule: Any, families: Sequence[Any]) -> list[dict[str, Any]]:
    """Per (regime, seed, sweep) where ``rule`` picks: how many of ``families`` (rules) could pick
    there and how many pick the same candidate, whether the job would call them disagreeing (no more
    than half of those that could pick agree: :mod:`selection.decision.confidence`), whether the pick
    left the default, and its regret against the seed-mean truth."""
    r, fams = parse_rule(rule), [parse_rule(f) for f in families]
    out = []
    for regime in scores.regimes:
        truth = scores.mean_truth(regime)
        for g in scores.groups(regime):
            cols, table = set(g.validators.columns), g.eligible
            pick = r.pick(table, prefer="default") if r.requires <= cols else None
            if pick is None:
                continue
            # A family that cannot pick (a validator missing, or no finite score) is left out, as in the job.
            picks = [f.pick(table, prefer="default") for f in fams if f.requires <= cols]
            judged = [p for p in picks if p is not None]
            agreeing = sum(p == pick for p in judged)
            out.append(
                {
                    "regime": g.regime,
                    "seed": g.seed,
                    "sweep": g.sweep,
                    "pick": pick,
                    "agreeing": agreeing,
                    "available": len(judged),
                    # The job's reason: low when no more than half of those that could pick agree.
                    "families_disagree": bool(judged) and 2 * agreeing <= len(judged),
                    "moved": pick != "default",
                    "regret": float(max(truth[i] for i in g.ids) - truth[pick]),
                }
            )
    return out


def agreement_table(picks: Sequence[dict[str, Any]], families: int) -> dict[str, Any]:
    """Regret summaries per number of agreeing families, for all picks and for those off the default,
    and by the job's test (most of the families that could pick agree, or not)."""
    return {
        "families": families,
        "job_test": {
            label: _summary([p["regret"] for p in picks if p["families_disagree"] is flagged])
            for label, flagged in (("families disagree (low)", True), ("not flagged", False))
        },
        "all": {n: _summary([p["regret"] for p in picks if p["agreeing"] == n]) for n in range(families + 1)},
        "moved": {
            n: _summary([p["regret"] for p in picks if p["agreeing"] == n and p["moved"]])
            for n in range(families + 1)
        },
    }


def agreement_markdown(table: dict[str, Any], rule_text: str) -> str:
    head = f"| families agreeing | picks | mean regret | median regret | share <= {GOOD_REGRET:g} | max |"
    lines = [
        f"Picks of {rule_text} by how many of the {table['families']} families (source-side, "
        "information-based, consensus) pick the same candidate; first by the job's test (more than half "
        "of the families that could pick agree: otherwise its confidence is low), then by count.",
        "",
        head.replace("families agreeing", "the job's test"),
        "|---|---|---|---|---|---|",
        *(_row(k, s) for k, s in table["job_test"].items()),
        "",
        head,
        "|---|---|---|---|---|---|",
        *(_row(str(n), s) for n, s in table["all"].items()),
        "",
        "The same, for the picks that left the default:",
        "",
        head,
        "|---|---|---|---|---|---|",
        *(_row(str(n), s) for n, s in table["moved"].items()),
    ]
    return "\n".join(lines) + "\n"
