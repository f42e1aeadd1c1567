"""Stage ``rules``: the rule x regime table from the committed tables, no checkpoint needed.

Reads ``selection_scores.parquet`` (and ``selection_target_images.parquet`` for the few-label
oracles), evaluates the benchmarked rules (:data:`selection_bench.rules.registry.BENCH_RULES`) plus any
other rule ``selection.decision.rules`` parses, the limits (:mod:`selection_bench.rules.limits`), the
leave-one-regime-out figures (:mod:`selection_bench.rules.loro`), the verdict on the default
(:mod:`selection_bench.rules.verdict`), the guard's record (:mod:`selection_bench.rules.guard_check`) and the
confidence calibration (:mod:`selection_bench.rules.calibration`), and writes ``selection_rules.{json,md}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selection.decision.rules import parse_rule, rule_needs
from selection_bench.layout import write_json
from selection_bench.rules.calibration import (
    agreement_markdown,
    agreement_picks,
    agreement_table,
    calibration_markdown,
    calibration_picks,
    calibration_table,
)
from selection_bench.rules.guard_check import guard_check, guard_markdown
from selection_bench.rules.limits import FEW_LABEL_DRAWS, FEW_LABEL_N, FEW_LABEL_SEED, ORACLE
from selection_bench.rules.loro import CHOSEN_BY_LOOKING, family, loro_regret
from selection_bench.rules.registry import BENCH_RULES, FAMILIES
from selection_bench.rules.table import (
    BASELINES,
    limit_labels,
    rules_markdown,
    rules_table,
    summary_markdown,
)
from selection_bench.rules.verdict import choose_default, verdict_markdown
from selection_bench.tables import ScoresTable, TargetImages

__all__ = ["compare_tables", "feasible_rule", "run_rules"]

_COMPARED = ("regret", "spearman", "top1", "centre", "broken")


def feasible_rule(rule: Any) -> bool:
    """Whether every packaged config can run ``rule``: one replicate (no seed agreement, which costs
    a training per replicate). Every config has a labelled source-val split (its own, or one held
    out of the source: ``data.source_val_holdout``), so ATC, source-val mIoU and DEV count."""
    return "replicates" not in rule_needs(parse_rule(rule))


def compare_tables(old: Mapping[str, Any], new: Mapping[str, Any], tol: float = 1e-9) -> list[str]:
    """Differences between two rule tables for the (regime, label) both have: one line each."""
    out = []
    for regime in sorted(set(old) & set(new)):
        for label in sorted(set(old[regime]) & set(new[regime])):
            a, b = old[regime][label], new[regime][label]
            for k in _COMPARED:
                x, y = a.get(k), b.get(k)
                if x is None or y is None:
                    continue
                same = (math.isnan(x) and math.isnan(y)) or (
                    not math.isnan(x) and not math.isnan(y) and abs(x - y) <= tol
                )
                if not same:
                    out.append(f"{regime} {label} {k}: {x!r} -> {y!r}")
    return out


def run_rules(
    scores: ScoresTable,
    images: TargetImages | None,
    prefix: Path,
    extra_rules: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate and write ``<prefix>.json`` / ``.md``; returns what the JSON holds."""
    extra = {k: v for k, v in (extra_rules or {}).items() if k not in BENCH_RULES}
    rules = {**BENCH_RULES, **extra}
    table = rules_table(scores, rules, images)
    loro: dict[str, Any] = {}
    for label, kind in CHOSEN_BY_LOOKING.items():
        members = family(kind, feasible_rule)
        result = loro_regret(rules_table(scores, members, None, few_label=()), list(members))
        if result is not None:
            loro[label] = {**result, "family": list(members)}
    for regime, row in table.items():
        for label, m in row.items():
            if "unavailable" not in m and label not in BASELINES:
                m["loro_regret"] = loro[label]["per_regime"][regime]["regret"] if label in loro else None
    feasible = {lab for lab, r in BENCH_RULES.items() if feasible_rule(r)}
    verdict = choose_default(table, feasible, loro=loro)
    cal = calibration_table(calibration_picks(scores))
    guard = guard_check(scores)
    agreement = agreement_table(agreement_picks(scores, verdict["rule"], FAMILIES), len(FAMILIES))
    regimes = sorted(table)
    default, oracle = verdict["default"], [table[r].get(ORACLE, {}).get("regret") for r in regimes]
    ratio = None
    if all(v is not None for v in oracle) and sum(oracle) > 0:
        ratio = verdict["mean_regret"][default] / (sum(oracle) / len(oracle))
    out = {
        "table": table,
        "verdict": verdict,
        "scored": scores.seeds(),
        "loro": loro,
        "default_to_oracle_ratio": ratio,
        "few_label": {"n": list(FEW_LABEL_N), "draws": FEW_LABEL_DRAWS, "seed": FEW_LABEL_SEED},
        "calibration": cal,
        "calibration_agreement": agreement,
        "guard": guard,
        "extra_rules": {k: parse_rule(v).to_config() for k, v in extra.items()},
    }
    write_json(prefix.with_suffix(".json"), out)
    rows = ["centre", "random", *limit_labels(), *rules]
    seeds = scores.seeds()
    md = [
        "# Selection benchmark: rules x regimes\n\n",
        f"Scored: {', '.join(f'{r} seed {s}' for r, s in seeds)}. Regret in mIoU points against the "
        "truth averaged over seeds; Spearman, top-1 and centre-pick rates averaged over regimes. Limits: "
        f"'{ORACLE}' picks by the seed's own target-val mIoU; 'oracle: N labels' by the mIoU on N "
        f"target-val images drawn at random ({FEW_LABEL_DRAWS} draws, seed {FEW_LABEL_SEED}, averaged). "
        "LORO: leave-one-regime-out regret of the rules chosen by looking "
        "(bench/selection_bench/rules/loro.py); "
        "'—' for rules fixed in advance.\n\n",
        summary_markdown(table, verdict, rows, loro),
        "\n## Per regime\n\n",
        rules_markdown(table, verdict, rows),
        "\n",
        verdict_markdown(table, verdict),
        f"\nIts in-sample mean regret is {ratio:.2f} x the per-seed oracle's.\n" if ratio is not None else "",
    ]
    if loro:
        md.append("\n## Leave one regime out\n\n")
        for label, res in loro.items():
            chosen = ", ".join(
                f"{h}: {v['chosen']} ({v['regret']:.2f})" for h, v in res["per_regime"].items()
            )
            md.append(
                f"- {label}: mean held-out regret {res['mean']:.2f}; chosen from "
                f"{len(res['family'])} declared members; per held-out regime: {chosen}.\n"
            )
    md += [
        "\n## Broken-candidate guard\n\n",
        guard_markdown(guard),
        "\n## Confidence calibration\n\n",
        calibration_markdown(cal),
        "\n",
        agreement_markdown(agreement, parse_rule(verdict["rule"]).text),
    ]
    prefix.with_suffix(".md").write_text("".join(md))
    return out
