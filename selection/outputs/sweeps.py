"""Per-sweep tables (``sweeps/<group>.parquet``): how every validator and the rule rank a vote group.

One row per candidate of the group, in the group's order (ascending value in a sweep). Columns:

=======================  ===============================================================
candidate_id             the candidate
<p>                      the value of each parameter that varies within the group
is_default               it is the default setting (ties go to it)
degenerate               the trimming rule flagged it in this group
picked                   the rule picked it in this group
rule, rule__rank         the rule's score (higher is better) and rank
<v>, <v>__rank           every validator of the group's table (:mod:`selection.run.validator_table`):
                         its value (f_miou_trimmed is NaN for degenerate candidates) and rank
true_miou, true_miou__rank  only when labels exist (audit; never read by a rule)
=======================  ===============================================================

Ranks: 1 = best by the score's direction; equal values share the best rank of their tie; NaN
(no value) has no rank. Those of the rule are :meth:`selection.decision.rules.Rule.ranks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from selection.candidates import Candidate
from selection.decision.rules import Rule, Single
from selection.errors import SelectionError
from selection.tables import GroupScores

__all__ = ["sweep_table"]


def sweep_table(
    gs: GroupScores, candidates: Sequence[Candidate], rule: Rule, true_miou: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """The table of vote group ``gs`` (module docstring)."""
    if gs.table is None:
        raise SelectionError(f"vote group {gs.group!r} has no validator table")
    table = gs.table
    by_id = {c.id: c for c in candidates}
    members = [by_id[i] for i in gs.ids]
    varying = [p for p in members[0].params if len({float(c.params[p]) for c in members}) > 1]
    out = pd.DataFrame({"candidate_id": list(gs.ids)})
    for p in varying:
        out[p] = [float(c.params[p]) for c in members]
    out["is_default"] = [c.is_default for c in members]
    out["degenerate"] = [i in gs.degenerate for i in gs.ids]
    out["picked"] = [i == gs.pick for i in gs.ids]
    out["rule"] = rule.scores(table).to_numpy(dtype=float)
    out["rule__rank"] = rule.ranks(table).to_numpy(dtype=float)
    for v in table.columns:
        out[v] = table[v].to_numpy(dtype=float)
        out[f"{v}__rank"] = Single(v).ranks(table).to_numpy(dtype=float)
    if true_miou is not None:
        truth = pd.Series([float(true_miou.get(i, float("nan"))) for i in gs.ids], index=list(gs.ids))
        out["true_miou"] = truth.to_numpy()
        out["true_miou__rank"] = truth.rank(method="min", ascending=False, na_option="keep").to_numpy()
    return out
