"""Independent families of validators: what each looks at, so that their agreement means something.

* **source-side**: the candidate on labelled source-val (its mIoU, ATC, DEV): needs a source-val
  split, which every search has (``data.source_val``, or the one held out of ``data.source``);
* **information**: the candidate's own predictive distribution on the subset (IM, BNM);
* **consensus**: the candidate against the others' predictions (F-mIoU, EnsV).

Within a family the validators' ranks are averaged (:class:`selection.decision.rules.RankAverage`).
The grouping was fixed before the selection benchmark's per-candidate table was scored. The
``agree`` rule reads them (as configured), and the pick's confidence asks whether most of them pick
what the rule picks (:mod:`selection.decision.confidence`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from selection.decision.rules import Rule, parse_rule

__all__ = ["FAMILIES", "family_picks"]

FAMILIES: Mapping[str, Any] = {
    "source-side": {"rank_average": ["source_val_miou", "atc", "dev"]},
    "information": {"rank_average": ["im", "bnm"]},
    "consensus": {"rank_average": ["f_miou", "ensv"]},
}
_RULES: dict[str, Rule] = {name: parse_rule(rule) for name, rule in FAMILIES.items()}


def family_picks(table: pd.DataFrame, prefer: str | None = None) -> dict[str, str | None]:
    """Each family's pick in ``table`` (ties to ``prefer``), for the families whose validators are
    all columns of it; None where none of its scores is finite."""
    return {name: r.pick(table, prefer) for name, r in _RULES.items() if r.requires <= set(table.columns)}
