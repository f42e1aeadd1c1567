"""The rule x regime table: how far each rule's pick falls below the best candidate, per regime.

Input: the scores table (:mod:`selection_bench.tables.scores`), and the per-image target-val counts
(:mod:`selection_bench.tables.target_images`) for the few-label oracles; no checkpoint. Every rule picks
again from each group's validator table (:func:`selection.decision.rules.parse_rule`, ties to the default),
so any rule ``selection.decision.rules`` can parse is evaluated in seconds. The truth of a candidate is
its target-val mIoU averaged over the regime's seeds (the broken ones included: a rule that picks
one pays for it). Per regime, over every (seed, sweep) pick:

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
among the sweep's candidates (its top-1 and broken figures are expectations too). Limits: the
oracles of :mod:`selection_bench.rules.limits` (few-label figures are averages over their draws).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from selection.decision.rules import parse_rule
from selection.validators import VALIDATORS
from selection_bench.layout import DRAWN_PREFIX
from selection_bench.rules.limits import (
    FEW_LABEL_DRAWS,
    FEW_LABEL_N,
    ORACLE,
    best_of,
    few_label_draws,
    few_label_label,
    few_label_scores,
    per_seed_oracle_scores,
)
from selection_bench.rules.registry import BENCH_RULES
from selection_bench.tables import Group, ScoresTable, TargetImages

__all__ = [
    "BASELINES",
    "limit_labels",
    "rule_costs",
    "rules_markdown",
    "rules_table",
    "summary_markdown",
]

BASELINES = ("centre", "random")
_FIELDS = ("regret", "spearman", "top1", "centre", "broken")
Metrics = tuple[float, float, float, float, float]


def limit_labels(ns: Sequence[int] = FEW_LABEL_N) -> list[str]:
    return [ORACLE, *(few_label_label(n) for n in ns)]


def rule_costs(rule: Any, replicates: int) -> tuple[int, int]:
    """(extra inference passes, extra trainings) per candidate that ``rule`` needs."""
    needs = set().union(*(VALIDATORS[v].needs for v in parse_rule(rule).requires))
    passes = int("mixval" in needs) + int(bool(needs & {"source_probs", "source_val_miou"}))
    trainings = replicates - 1 if "replicates" in needs else 0
    return passes + trainings, trainings


def _spearman(scores: Mapping[str, float | None], truth: Mapping[str, float], ids: Sequence[str]) -> float:
    x = np.array([scores.get(i) if scores.get(i) is not None else -np.inf for i in ids], float)
    x[np.isnan(x)] = -np.inf
    y = np.array([truth[i] for i in ids], float)
    if np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    x[np.isneginf(x)] = np.nanmin(x[np.isfinite(x)]) - 1 if np.isfinite(x).any() else 0.0
    # Spearman's rho is Pearson's r of the average ranks (scipy's spearmanr, without its overhead,
    # which dominated the rules stage).
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def pick_metrics(
    pick: str, scores: Mapping[str, float | None], truth: Mapping[str, float], group: Group
) -> Metrics:
    """(regret, Spearman, top-1, centre, broken) of one pick in one group, against ``truth``."""
    best = max(truth[i] for i in group.ids)
    return (
        best - truth[pick],
        _spearman(scores, truth, group.ids),
        float(truth[pick] == best),
        float(pick == "default"),
        float(pick in group.broken),
    )


def _baselines(group: Group, truth: Mapping[str, float]) -> dict[str, Metrics]:
    best = max(truth[i] for i in group.ids)
    # A random pick, like every rule, never takes a candidate the job's guard flagged.
    ids = [i for i in group.ids if i in group.eligible.index]
    top = [i for i in ids if truth[i] == best]
    return {
        "centre": (best - truth["default"], float("nan"), float("default" in top), 1.0, 0.0),
        "random": (
            best - float(np.mean([truth[i] for i in ids])),
            0.0,
            len(top) / len(ids),
            1 / len(ids),
            len(group.broken & set(ids)) / len(ids),
        ),
    }


def _mean_metrics(values: Sequence[Metrics]) -> Metrics:
    a = np.array(values, float)
    rho = a[:, 1][np.isfinite(a[:, 1])]
    return (
        float(a[:, 0].mean()),
        float(rho.mean()) if rho.size else float("nan"),
        *(float(v) for v in a[:, 2:].mean(0)),
    )


def group_metrics(
    group: Group,
    truth: Mapping[str, float],
    rules: Mapping[str, Any],
    images: TargetImages | None,
    few_label: Sequence[int],
    draws: int,
) -> dict[str, Metrics | None]:
    """label -> metrics of its pick in ``group``; None: a few-label oracle the regime cannot feed."""
    out: dict[str, Metrics | None] = dict(_baselines(group, truth))
    for label, rule in rules.items():
        r = parse_rule(rule)
        if not r.requires <= set(group.validators.columns):
            continue  # the group's table lacks a validator the rule reads (as the score stage skipped it)
        table = group.validators
        pick = r.pick(group.eligible, prefer="default")  # scores still rank every candidate
        if pick is None:
            continue
        scores = r.scores(table)
        out[label] = pick_metrics(pick, {k: float(v) for k, v in scores.items()}, truth, group)
    oracle = per_seed_oracle_scores(group)
    pick = best_of(oracle, group.ids)
    if pick is not None:
        out[ORACLE] = pick_metrics(pick, oracle, truth, group)
    if images is not None:
        counts, pool = images.counts(group.regime, group.seed), images.images(group.regime)
        for n in few_label:
            sets = few_label_draws(group.regime, group.seed, pool, n, draws)
            per_draw = []
            for d in sets:
                s = few_label_scores(group, counts, d)
                p = best_of(s, group.ids)
                if p is not None:
                    per_draw.append(pick_metrics(p, s, truth, group))
            out[few_label_label(n)] = _mean_metrics(per_draw) if per_draw else None
    return out


def rules_table(
    scores: ScoresTable,
    rules: Mapping[str, Any] = BENCH_RULES,
    images: TargetImages | None = None,
    *,
    few_label: Sequence[int] = FEW_LABEL_N,
    draws: int = FEW_LABEL_DRAWS,
) -> dict[str, dict[str, dict[str, Any]]]:
    """regime -> label -> {regret, regret_max, spearman, top1, centre, broken, picks, passes,
    trainings}; a few-label oracle the regime cannot feed: {"unavailable": why}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for regime in scores.regimes:
        truth = scores.mean_truth(regime)
        rows: dict[str, list[Metrics]] = {}
        unavailable: set[str] = set()
        replicates = 1
        for g in scores.groups(regime):
            replicates = g.replicates
            for label, m in group_metrics(g, truth, rules, images, few_label, draws).items():
                if m is None:
                    unavailable.add(label)
                else:
                    rows.setdefault(label, []).append(m)
        table: dict[str, dict[str, Any]] = {}
        for label, ms in rows.items():
            a = np.array(ms, float)
            rho = a[:, 1][np.isfinite(a[:, 1])]
            rule = rules.get(label)
            passes, trainings = rule_costs(rule, replicates) if rule is not None else (0, 0)
            table[label] = {
                "regret": float(a[:, 0].mean()),
                "regret_max": float(a[:, 0].max()),
                "spearman": float(rho.mean()) if rho.size else float("nan"),
                "top1": float(a[:, 2].mean()),
                "centre": float(a[:, 3].mean()),
                "broken": float(a[:, 4].sum()),
                "picks": len(ms),
                "passes": passes,
                "trainings": trainings,
            }
        n_images = len(images.images(regime)) if images is not None else 0
        for label in sorted(unavailable - set(table)):
            table[label] = {"unavailable": f"the regime has {n_images} target-val images, fewer than N"}
        out[regime] = table
    return out


def _available(m: Mapping[str, Any] | None) -> bool:
    return m is not None and "unavailable" not in m


def rules_markdown(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]], verdict: Mapping[str, Any], labels: Sequence[str]
) -> str:
    regimes = sorted(table)
    labels = [lab for lab in labels if any(lab in table[r] for r in regimes)]
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
            if not _available(m):
                cells.append("–" if m is None else "n/a (too few images)")
                continue
            rho = "–" if not math.isfinite(m["spearman"]) else f"{m['spearman']:+.2f}"
            brk = f"{m['broken']:.0f}" if float(m["broken"]).is_integer() else f"{m['broken']:.2f}"
            cells.append(f"{m['regret']:.2f} / {rho} / {m['top1']:.2f} / {m['centre']:.2f} / {brk}")
        vals = [table[r][lab]["regret"] for r in regimes if _available(table[r].get(lab))]
        mean = f"{np.mean(vals):.2f}" if vals else "–"
        first = next((table[r][lab] for r in regimes if _available(table[r].get(lab))), {})
        plain = lab in BASELINES or lab.startswith("oracle")
        cost = "–" if plain else f"{first.get('passes', 0)} ({first.get('trainings', 0)})"
        met = "–" if plain else ("yes" if verdict["meets_target"].get(lab) else "no")
        name = f"**{lab}**" if lab == verdict["default"] else lab
        lines.append(f"| {name} | {cost} | " + " | ".join(cells) + f" | {mean} | {met} |")
    return "\n".join(lines) + "\n"


def _mean_over(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]], label: str, regimes: Sequence[str]
) -> str:
    vals = [table[r][label]["regret"] for r in regimes if _available(table[r].get(label))]
    return f"{np.mean(vals):.2f}" if len(vals) == len(regimes) else "n/a"


def summary_markdown(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]],
    verdict: Mapping[str, Any],
    rows: Sequence[str],
    loro: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The README's table: per rule, regret per regime, then the leave-one-regime-out mean regret
    (rules chosen by looking; "—" for the others), the mean over the drawn regimes (if any),
    Spearman, top-1 and centre-pick rates averaged over the regimes, broken picks summed, and the
    extra passes."""
    regimes = sorted(table)
    # Drawn at random after every rule above was registered: their mean is out of sample for all.
    drawn = [r for r in regimes if r.startswith(DRAWN_PREFIX)]
    head = (
        "| rule | "
        + " | ".join(f"regret, {r}" for r in regimes)
        + " | mean regret | mean regret, LORO"
        + (" | mean regret, drawn regimes" if drawn else "")
        + " | Spearman | top-1 | centre picks | broken picks | extra passes |"
    )
    names = {"centre": "pick the default (centre)", "random": "random pick (expected)"}
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for lab in rows:
        if not all(lab in table[r] for r in regimes):
            continue
        ms = [table[r][lab] for r in regimes]
        ok = [m for m in ms if _available(m)]
        if not ok:
            continue
        rho = [m["spearman"] for m in ok if math.isfinite(m["spearman"])]
        brk, picks = sum(m["broken"] for m in ok), sum(m["picks"] for m in ok)
        name = names.get(lab, lab)
        lo = (loro or {}).get(lab)
        cells = [
            f"**{name}**" if lab == verdict["default"] else name,
            *(f"{m['regret']:.2f}" if _available(m) else "n/a" for m in ms),
            f"{np.mean([m['regret'] for m in ok]):.2f}"
            + ("" if len(ok) == len(ms) else " (available regimes)"),
            f"{lo['mean']:.2f}" if lo else "—",
            *([_mean_over(table, lab, drawn)] if drawn else []),
            f"{np.mean(rho):+.2f}" if rho and lab != "random" else "–",
            f"{np.mean([m['top1'] for m in ok]):.2f}",
            f"{np.mean([m['centre'] for m in ok]):.2f}",
            f"{brk:.0f} of {picks}" if float(brk).is_integer() else f"{brk:.1f} of {picks}",
            "–" if lab in BASELINES or lab.startswith("oracle") else str(int(ms[0]["passes"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
