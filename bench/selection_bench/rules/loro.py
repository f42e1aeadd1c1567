"""Leave-one-regime-out regret for the rules whose form was chosen after looking at the table.

A rule fixed in advance (a single published validator, or a combination registered before any
benchmark seed was scored) is judged in-sample: nothing was fitted. A rule whose form or
parameters were chosen by looking (:data:`CHOSEN_BY_LOOKING`) gets a second figure: for each
regime h, the member of its declared family (:func:`family`) with the lowest mean regret on the
other regimes is chosen (ties: the family's order), and its regret on h is the rule's held-out
regret there; the LORO figure is the mean over h. It answers "what would this way of choosing the
rule have cost on a regime it had not seen", which the in-sample figure cannot.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from selection.decision.rules import parse_rule
from selection_bench.rules.registry import FAMILIES

__all__ = [
    "CHOSEN_BY_LOOKING",
    "LORO_AGREE_NEEDS",
    "LORO_FRACTIONS",
    "LORO_PAIRS",
    "LORO_RANK_SETS",
    "family",
    "loro_regret",
]

# Declared with the LORO column (issue 16), before it was computed on any table. The family each
# post-hoc rule was in effect chosen from: the two-stage fractions a user could have set, times
# the (drop, pick) pairs the benchmark registers (BENCH_RULES); the rank averages it registers.
# Only members every packaged config can run count (one replicate; every config has a source-val
# split since data.source_val_holdout), as the post-hoc rules were chosen to be the shipped default.
LORO_FRACTIONS = (0.25, 0.5, 0.75)
LORO_PAIRS = (("source_val_miou", "ensv"), ("f_miou", "mixval"), ("f_miou_trimmed", "bnm"))
LORO_RANK_SETS = (("ensv", "mixval"), ("f_miou", "ensv", "mixval", "atc"), ("f_miou_trimmed", "bnm"))

# Rule label -> the family its form was chosen from. Both were added after four of the six
# regimes had been seen (bench/selection_bench/rules/registry.py says so).
CHOSEN_BY_LOOKING = {
    "two_stage[f_miou_trimmed 0.5 -> bnm]": "two_stage",
    "rank_average[f_miou_trimmed,bnm]": "rank_average",
    # Declared with them (before the per-candidate table was scored): how many families must agree.
    "agree[2 of source,information,consensus]": "agree",
    "agree[3 of source,information,consensus]": "agree",
}
LORO_AGREE_NEEDS = (2, 3)


def family(kind: str, feasible: Callable[[Any], bool]) -> dict[str, Any]:
    """The declared family ``kind`` ("two_stage", "rank_average", "agree"), label -> rule, feasible only."""
    # Labelled as BENCH_RULES labels its rules, so the rule under test is a member by its own label.
    if kind == "two_stage":
        rules = {
            f"two_stage[{d} {f:g} -> {p}]": {"two_stage": {"drop": d, "fraction": f, "pick": p}}
            for (d, p), f in itertools.product(LORO_PAIRS, LORO_FRACTIONS)
        }
    elif kind == "rank_average":
        rules = {f"rank_average[{','.join(s)}]": {"rank_average": list(s)} for s in LORO_RANK_SETS}
    elif kind == "agree":
        rules = {
            f"agree[{n} of source,information,consensus]": {"agree": {"families": FAMILIES, "need": n}}
            for n in LORO_AGREE_NEEDS
        }
    else:
        raise ValueError(f"no declared LORO family {kind!r}; known: two_stage, rank_average, agree")
    return {label: r for label, r in rules.items() if feasible(parse_rule(r))}


def loro_regret(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]], members: list[str]
) -> dict[str, Any] | None:
    """Hold out each regime of ``table`` (regime -> label -> metrics) in turn: choose the member of
    ``members`` with the lowest mean regret on the rest, report its regret on the held-out one.
    None with fewer than two regimes (nothing to choose on)."""
    regimes = sorted(table)
    members = [m for m in members if all(m in table[r] for r in regimes)]
    if len(regimes) < 2 or not members:
        return None
    per: dict[str, dict[str, Any]] = {}
    for h in regimes:
        rest = [r for r in regimes if r != h]
        chosen = min(
            members, key=lambda m: (np.mean([table[r][m]["regret"] for r in rest]), members.index(m))
        )
        per[h] = {"chosen": chosen, "regret": float(table[h][chosen]["regret"])}
    return {"mean": float(np.mean([v["regret"] for v in per.values()])), "per_regime": per}
