"""The rules the benchmark compares (:data:`BENCH_RULES`, label -> rule as ``selection.rule``) and
the families the ``agree`` rules and the agreement calibration read (:data:`FAMILIES`).

Each registration says when it was made relative to the figures it could have been fitted to;
:data:`selection_bench.rules.loro.CHOSEN_BY_LOOKING` lists the ones that get a leave-one-regime-out
figure.
"""

from __future__ import annotations

from typing import Any

from selection.decision.families import FAMILIES as FAMILY_RULES
from selection.validators import VALIDATORS

__all__ = ["BENCH_RULES", "FAMILIES"]

# The agree rules' families: the product's (selection.decision.families), in its order.
FAMILIES = list(FAMILY_RULES.values())

# The rules the benchmark compares, fixed before any benchmark seed was scored: every validator
# alone (VALIDATORS), plus combinations from the literature's own suggestions (agreement with the
# ensemble and a source-side check), not fitted to these regimes.
BENCH_RULES: dict[str, Any] = {
    **{name: name for name in VALIDATORS},
    "rank_average[ensv,mixval]": {"rank_average": ["ensv", "mixval"]},
    "rank_average[f_miou,ensv,mixval,atc]": {"rank_average": ["f_miou", "ensv", "mixval", "atc"]},
    "two_stage[source_val_miou 0.5 -> ensv]": {
        "two_stage": {"drop": "source_val_miou", "fraction": 0.5, "pick": "ensv"}
    },
    "two_stage[f_miou 0.5 -> mixval]": {"two_stage": {"drop": "f_miou", "fraction": 0.5, "pick": "mixval"}},
    # Added after the four-regime table (so in-sample there), before dim_camera and grainy_camera
    # were piloted or trained: the two best single scores fail in opposite regimes (BNM where
    # self-training hurts and the vote does not, the vote where self-training helps), and BNM
    # alone picks broken candidates. Those two regimes are their held-out check.
    "two_stage[f_miou_trimmed 0.5 -> bnm]": {
        "two_stage": {"drop": "f_miou_trimmed", "fraction": 0.5, "pick": "bnm"}
    },
    "rank_average[f_miou_trimmed,bnm]": {"rank_average": ["f_miou_trimmed", "bnm"]},
    # Registered before the per-candidate table (issue 16) was scored, after the six-regime
    # aggregates and issue 17's held-out figures had been read: leave the default only when
    # independent families agree (source-side, information, consensus; issue 17's grouping).
    "agree[2 of source,information,consensus]": {"agree": {"families": FAMILIES, "need": 2}},
    "agree[3 of source,information,consensus]": {"agree": {"families": FAMILIES, "need": 3}},
}
