"""Early stopping measured on the selection benchmark: candidate-rounds saved against regret.

Per regime and seed, what ``selection.early_stop: {after_round, keep}`` would have done: every
candidate's model after ``after_round`` (the benchmark keeps that checkpoint) predicts the subset
and leaves its evidence, :func:`selection.run.early_stop.rung_selection` (the job's own decision)
stops the bottom of each sweep by the rule, and the rule then picks among the survivors'
final models, scored in a vote of the survivors only, as the job would. Regret is against the
truth averaged over the regime's seeds, as in :mod:`selection_bench.rules.table`; the full-run pick
(no early stopping, every candidate in the vote) is beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selection.run import SelectionSpec
from selection.run.early_stop import rung_selection
from selection.run.runner import run_selection
from selection_bench.layout import write_json
from selection_bench.rules import BENCH_RULES
from selection_bench.scoring import rule_tables, seed_candidates, subset_of, write_outputs

__all__ = ["simulate_seed", "early_stop_table", "early_stop_markdown", "mean_truth"]


def mean_truth(scores: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per candidate: its truth averaged over the ``scores.json`` records of the regime's seeds."""
    per: dict[str, list[float]] = {}
    for s in scores:
        for cid, t in s["truth"].items():
            per.setdefault(cid, []).append(float(t))
    return {cid: float(np.mean(v)) for cid, v in per.items()}


def simulate_seed(
    work: Path, regime: str, seed: int, rule_label: str, keep: float, after_round: int = 1
) -> dict[str, Any]:
    """One regime and seed under early stopping with ``rule_label`` (a key of BENCH_RULES)."""
    rule = BENCH_RULES[rule_label]
    mine, cands = seed_candidates(work, regime, seed)
    cfg = mine[0].config()
    subset = subset_of(cfg)
    rung = {fc.id: write_outputs(fc, subset, at_round=after_round) for fc in mine}
    decision = rung_selection(
        cands,
        {cid: str(p) for cid, (p, _) in rung.items()},
        SelectionSpec(subset, cfg.data.num_classes, rule=rule),
        keep=keep,
        evidence_uris={cid: str(e) for cid, (_, e) in rung.items()},
    )
    stopped = set(decision.stopped)
    survivors = [c for c in cands if c.id not in stopped]
    final = {fc.id: write_outputs(fc, subset) for fc in mine if fc.id not in stopped}
    result = run_selection(
        survivors,
        {cid: str(p) for cid, (p, _) in final.items()},
        SelectionSpec(subset, cfg.data.num_classes, rule=rule),
        evidence_uris={cid: str(e) for cid, (_, e) in final.items()},
    )
    groups = rule_tables(result.validators, {rule_label: rule})
    rounds = cfg.selftrain.rounds
    return {
        "regime": regime,
        "seed": seed,
        "rule": rule_label,
        "keep": keep,
        "after_round": after_round,
        "stopped": sorted(stopped),
        "picks": {g: v["rules"][rule_label]["pick"] for g, v in groups.items()},
        "candidate_rounds": len(mine) * rounds,
        "saved_rounds": len(stopped) * (rounds - after_round),
    }


def early_stop_table(
    runs: Sequence[Mapping[str, Any]], scores: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """regime -> {saved share, regret with early stopping, regret of the full run, picks changed}."""
    full = {(s["regime"], s["seed"]): s for s in scores}
    out: dict[str, dict[str, float]] = {}
    for regime in sorted({r["regime"] for r in runs}):
        mean = mean_truth([s for s in scores if s["regime"] == regime])
        es, fr, changed, saved, total = [], [], 0, 0, 0
        for r in (r for r in runs if r["regime"] == regime):
            s = full[regime, r["seed"]]
            saved, total = saved + r["saved_rounds"], total + r["candidate_rounds"]
            for g, pick in r["picks"].items():
                ids = s["groups"][g]["candidates"]
                best = max(mean[i] for i in ids)
                full_pick = s["groups"][g]["rules"][r["rule"]]["pick"]
                es.append(best - mean[pick] if pick is not None else math.nan)
                fr.append(best - mean[full_pick])
                changed += int(pick != full_pick)
        out[regime] = {
            "saved_share": saved / total,
            "saved_rounds": saved,
            "candidate_rounds": total,
            "regret_early_stop": float(np.mean(es)),
            "regret_full_run": float(np.mean(fr)),
            "picks_changed": changed,
            "picks": len(es),
        }
    return out


def early_stop_markdown(
    table: Mapping[str, Mapping[str, float]], rule: str, keep: float, after_round: int
) -> str:
    lines = [
        f"Rule {rule}, `selection.early_stop: {{after_round: {after_round}, keep: {keep}}}`; regret in mIoU "
        "points against the seed-mean truth, mean over seeds x sweeps.",
        "",
        "| regime | candidate-rounds saved | regret, early stopping | regret, full run | picks changed |",
        "|---|---|---|---|---|",
    ]
    for regime, m in table.items():
        lines.append(
            f"| {regime} | {m['saved_rounds']} of {m['candidate_rounds']} ({100 * m['saved_share']:.0f} %) "
            f"| {m['regret_early_stop']:.2f} | {m['regret_full_run']:.2f} "
            f"| {m['picks_changed']} of {m['picks']} |"
        )
    return "\n".join(lines) + "\n"


def run_early_stop(
    work: Path, regimes: Sequence[str], seeds: Sequence[int], scores: Sequence[Mapping[str, Any]],
    rule_label: str, keep: float, prefix: Path,
) -> dict[str, Any]:  # fmt: skip
    """Simulate every regime and seed, write ``<prefix>.json`` and ``.md``; returns the table."""
    runs = [
        simulate_seed(work, regime, seed, rule_label, keep)
        for regime in regimes
        for seed in seeds
        if (work / regime / f"seed{seed}" / "scores.json").is_file()
    ]
    table = early_stop_table(runs, scores)
    write_json(prefix.with_suffix(".json"), {"table": table, "runs": runs, "rule": rule_label, "keep": keep})
    prefix.with_suffix(".md").write_text(
        "# Early stopping on the selection benchmark\n\n" + early_stop_markdown(table, rule_label, keep, 1)
    )
    return table
