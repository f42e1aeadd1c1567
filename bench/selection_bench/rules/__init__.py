"""The rules stage, from the committed tables alone: the registered rules, their regret per regime, the
limits, leave-one-regime-out figures, the verdict on the default, the guard's record and the
confidence calibration.
"""

from __future__ import annotations

from selection_bench.rules.calibration import (
    GOOD_REGRET,
    REASON_KINDS,
    agreement_markdown,
    agreement_picks,
    agreement_table,
    calibration_markdown,
    calibration_picks,
    calibration_table,
)
from selection_bench.rules.guard_check import guard_check, guard_markdown
from selection_bench.rules.limits import (
    FEW_LABEL_DRAWS,
    FEW_LABEL_N,
    FEW_LABEL_SEED,
    ORACLE,
    best_of,
    few_label_draws,
    few_label_label,
    few_label_scores,
    per_seed_oracle_scores,
)
from selection_bench.rules.loro import (
    CHOSEN_BY_LOOKING,
    LORO_AGREE_NEEDS,
    LORO_FRACTIONS,
    LORO_PAIRS,
    LORO_RANK_SETS,
    family,
    loro_regret,
)
from selection_bench.rules.registry import BENCH_RULES, FAMILIES
from selection_bench.rules.stage import compare_tables, feasible_rule, run_rules
from selection_bench.rules.table import (
    BASELINES,
    limit_labels,
    rule_costs,
    rules_markdown,
    rules_table,
    summary_markdown,
)
from selection_bench.rules.verdict import TARGETS, choose_default, targets_met, verdict_markdown

__all__ = [
    "BASELINES",
    "BENCH_RULES",
    "CHOSEN_BY_LOOKING",
    "FAMILIES",
    "FEW_LABEL_DRAWS",
    "FEW_LABEL_N",
    "FEW_LABEL_SEED",
    "GOOD_REGRET",
    "LORO_AGREE_NEEDS",
    "LORO_FRACTIONS",
    "LORO_PAIRS",
    "LORO_RANK_SETS",
    "ORACLE",
    "REASON_KINDS",
    "TARGETS",
    "agreement_markdown",
    "agreement_picks",
    "agreement_table",
    "best_of",
    "calibration_markdown",
    "calibration_picks",
    "calibration_table",
    "choose_default",
    "compare_tables",
    "family",
    "feasible_rule",
    "few_label_draws",
    "few_label_label",
    "few_label_scores",
    "guard_check",
    "guard_markdown",
    "limit_labels",
    "loro_regret",
    "per_seed_oracle_scores",
    "rule_costs",
    "rules_markdown",
    "rules_table",
    "run_rules",
    "summary_markdown",
    "targets_met",
    "verdict_markdown",
]
