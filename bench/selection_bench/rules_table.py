"""The rule x regime table: how far each rule's pick falls below the best candidate, per regime.

Inputs: the scoring stage's ``scores.json`` per regime and seed (:mod:`selection_bench.score`).
The truth of a candidate is its target-val mIoU averaged over the regime's seeds (the broken ones
included: a rule that picks one pays for it). Per regime, over every (seed, sweep) pick:

* ``regret``: mean over picks of (best mean truth in the sweep) - (mean truth of the pick), mIoU points;
* ``spearman``: mean over picks of Spearman's rho between the rule's scores and the mean truth in
  the sweep (NaN scores rank last, as the rules rank them);
* ``top1``: share of picks that are the sweep's best; ``centre``: share that are the default;
* ``broken``: number of picks that are broken candidates;
* ``passes`` / ``trainings``: inference passes and trainings per candidate beyond the one training
  and the subset prediction pass every rule needs (MixVal: the mixed subset; ATC and source-val
  mIoU share one source-val pass; seed agreement: one more training and subset pass per extra
  replicate, here the regime's other seeds).

Baselines: ``centre`` always picks the default; ``random`` is the expectation of a uniform pick
among the sweep's candidates (its top-1 and broken figures are expectations too).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from selection.rules import parse_rule
from selection.validators import VALIDATORS
from selection_bench.score import BENCH_RULES

__all__ = ["rule_costs", "rules_table", "choose_default", "rules_markdown", "mean_truth", "summary_markdown"]

BASELINES = ("centre", "random")
_FIELDS = ("regret", "spearman", "top1", "centre", "broken")


def rule_costs(rule: Any, replicates: int) -> tuple[int, int]:
    """(extra inference passes, extra trainings) per candidate that ``rule`` needs."""
    needs = set().union(*(VALIDATORS[v].needs for v in parse_rule(rule).requires))
    passes = int("mixval" in needs) + int(bool(needs & {"source_probs", "source_val_miou"}))
    trainings = replicates - 1 if "replicates" in needs else 0
    return passes + trainings, trainings


def mean_truth(scores: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    per: dict[str, list[float]] = {}
    for s in scores:
        for cid, t in s["truth"].items():
            per.setdefault(cid, []).append(float(t))
    return {cid: float(np.mean(v)) for cid, v in per.items()}


def _spearman(scores: Mapping[str, float | None], truth: Mapping[str, float], ids: Sequence[str]) -> float:
    x = np.array([scores.get(i) if scores.get(i) is not None else -np.inf for i in ids], float)
    y = np.array([truth[i] for i in ids], float)
    if np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    x[np.isneginf(x)] = np.nanmin(x[np.isfinite(x)]) - 1 if np.isfinite(x).any() else 0.0
    return float(spearmanr(x, y).statistic)


def rules_table(all_scores: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """regime -> rule label -> {regret, spearman, top1, centre, broken, picks, passes, trainings}."""
    by_regime: dict[str, list[Mapping[str, Any]]] = {}
    for s in all_scores:
        by_regime.setdefault(s["regime"], []).append(s)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for regime, seeds in sorted(by_regime.items()):
        truth = mean_truth(seeds)
        rows: dict[str, dict[str, list[float]]] = {}
        for s in seeds:
            broken = set(s["broken"])
            replicates = len(s["replicate_seeds"])
            for g in s["groups"].values():
                ids = g["candidates"]
                best = max(truth[i] for i in ids)
                top = {i for i in ids if truth[i] == best}
                picks: dict[str, tuple[float, float, float, float, float]] = {
                    "centre": (best - truth["default"], float("nan"), float("default" in top), 1.0, 0.0),
                    "random": (
                        best - float(np.mean([truth[i] for i in ids])),
                        0.0,
                        len(top) / len(ids),
                        1 / len(ids),
                        len(broken & set(ids)) / len(ids),
                    ),
                }
                for label, r in g["rules"].items():
                    p = r["pick"]
                    if p is None:
                        continue
                    picks[label] = (
                        best - truth[p],
                        _spearman(r["scores"], truth, ids),
                        float(p in top),
                        float(p == "default"),
                        float(p in broken),
                    )
                for label, values in picks.items():
                    row = rows.setdefault(label, {k: [] for k in _FIELDS})
                    for k, v in zip(_FIELDS, values, strict=True):
                        row[k].append(v)
                    row.setdefault("replicates", [replicates])
        table = {}
        for label, row in rows.items():
            rho = [v for v in row["spearman"] if math.isfinite(v)]
            rule = BENCH_RULES.get(label)
            passes, trainings = rule_costs(rule, int(row["replicates"][0])) if rule is not None else (0, 0)
            table[label] = {
                "regret": float(np.mean(row["regret"])),
                "regret_max": float(np.max(row["regret"])),
                "spearman": float(np.mean(rho)) if rho else float("nan"),
                "top1": float(np.mean(row["top1"])),
                "centre": float(np.mean(row["centre"])),
                "broken": float(np.sum(row["broken"])),
                "picks": len(row["regret"]),
                "passes": passes,
                "trainings": trainings,
            }
        out[regime] = table
    return out


def choose_default(
    table: Mapping[str, Mapping[str, Mapping[str, float]]], feasible: set[str]
) -> dict[str, Any]:
    """The feasible label-free rule with the lowest mean regret over the regimes, and the target's verdict.

    ``feasible``: rule labels the default config can run (one replicate: no seed agreement).
    Target (issue): regret <= 1.0 in every regime, below centre and random in each, no broken pick.
    """
    regimes = sorted(table)
    labels = [lab for lab in BENCH_RULES if lab in feasible and all(lab in table[r] for r in regimes)]
    mean = {lab: float(np.mean([table[r][lab]["regret"] for r in regimes])) for lab in labels}
    best = min(labels, key=lambda lab: (mean[lab], list(BENCH_RULES).index(lab)))

    def meets(lab: str) -> bool:
        return all(
            table[r][lab]["regret"] <= 1.0
            and table[r][lab]["regret"] < min(table[r]["centre"]["regret"], table[r]["random"]["regret"])
            and table[r][lab]["broken"] == 0
            for r in regimes
        )

    return {
        "default": best,
        "rule": BENCH_RULES[best],
        "mean_regret": mean,
        "meets_target": {lab: meets(lab) for lab in labels},
    }


def rules_markdown(table: Mapping[str, Mapping[str, Mapping[str, float]]], verdict: Mapping[str, Any]) -> str:
    regimes = sorted(table)
    labels = [*BASELINES, *[lab for lab in BENCH_RULES if any(lab in table[r] for r in regimes)]]
    head = "| rule | extra passes (trainings) | " + " | ".join(regimes) + " | mean regret | target met |"
    lines = [
        "Per regime: mean regret (mIoU points) / Spearman / top-1 rate / centre-pick rate / broken picks. "
        "Picks per regime (seeds x sweeps): "
        + ", ".join(f"{r} {table[r]['centre']['picks']}" for r in regimes)
        + ".",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for lab in labels:
        cells = []
        for r in regimes:
            m = table[r].get(lab)
            if m is None:
                cells.append("–")
                continue
            rho = "–" if not math.isfinite(m["spearman"]) else f"{m['spearman']:+.2f}"
            brk = f"{m['broken']:.0f}" if float(m["broken"]).is_integer() else f"{m['broken']:.2f}"
            cells.append(f"{m['regret']:.2f} / {rho} / {m['top1']:.2f} / {m['centre']:.2f} / {brk}")
        mean = np.mean([table[r][lab]["regret"] for r in regimes if lab in table[r]])
        first = table[regimes[0]].get(lab, {})
        cost = "–" if lab in BASELINES else f"{first.get('passes', 0)} ({first.get('trainings', 0)})"
        met = "–" if lab in BASELINES else ("yes" if verdict["meets_target"].get(lab) else "no")
        name = f"**{lab}**" if lab == verdict["default"] else lab
        lines.append(f"| {name} | {cost} | " + " | ".join(cells) + f" | {mean:.2f} | {met} |")
    return "\n".join(lines) + "\n"


def summary_markdown(
    table: Mapping[str, Mapping[str, Mapping[str, float]]], verdict: Mapping[str, Any], rows: Sequence[str]
) -> str:
    """The README's table: per rule, regret per regime, then Spearman, top-1 and centre-pick rates
    averaged over the regimes, broken picks summed, and the extra passes."""
    regimes = sorted(table)
    head = (
        "| rule | "
        + " | ".join(f"regret, {r}" for r in regimes)
        + " | mean regret | Spearman | top-1 | centre picks | broken picks | extra passes |"
    )
    names = {"centre": "pick the default (centre)", "random": "random pick (expected)"}
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for lab in rows:
        if not all(lab in table[r] for r in regimes):
            continue
        ms = [table[r][lab] for r in regimes]
        rho = [m["spearman"] for m in ms if math.isfinite(m["spearman"])]
        brk, picks = sum(m["broken"] for m in ms), sum(m["picks"] for m in ms)
        name = names.get(lab, lab)
        cells = [
            f"**{name}**" if lab == verdict["default"] else name,
            *(f"{m['regret']:.2f}" for m in ms),
            f"{np.mean([m['regret'] for m in ms]):.2f}",
            f"{np.mean(rho):+.2f}" if rho and lab != "random" else "–",
            f"{np.mean([m['top1'] for m in ms]):.2f}",
            f"{np.mean([m['centre'] for m in ms]):.2f}",
            f"{brk:.0f} of {picks}" if float(brk).is_integer() else f"{brk:.1f} of {picks}",
            "–" if lab in BASELINES else str(int(ms[0]["passes"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
