"""Each vote group's table of every validator, read from the merged counts of the vote pass.

One row per candidate of the group (index: candidate ids in the group's order, ascending value in
a sweep), one column per validator computed in this selection, in the order of the registry
:data:`selection.validators.VALIDATORS`. This is the table a rule (:mod:`selection.decision.rules`) picks
from; the same function reads the whole subset's counts and each half's.

=================  =====================================================================
column             from
=================  =====================================================================
f_miou             the group's vote (pass 1)
f_miou_trimmed     the vote without the degenerate candidates (pass 2; pass 1 when nobody
                   was trimmed). NaN for the degenerate candidates themselves: the trimmed
                   vote does not rank the candidates it left out (so no rule picks them by it)
f_miou_lno         the leave-neighbours-out votes (``table.attrs["leave_out"]``: "neighbours"
                   or "one", :func:`selection.validators.leave_out`)
evidence ones      :class:`selection.validators.EvidenceAccumulator` (when evidence files were
                   given: every validator all of them support; NaN for a candidate without one)
seed_agreement     the replicate pairs' agreement (only when some candidate has 2 replicates)
given by caller    registered validators passed as ``extra_scores`` (e.g. a benchmark's own)
=================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from selection.errors import SelectionError
from selection.run.plan import PlanAccumulator, VotePlan
from selection.validators import VALIDATORS

__all__ = ["group_tables"]


def _column(ids: tuple[str, ...], values: Mapping[str, float]) -> list[float]:
    return [float(values.get(i, float("nan"))) for i in ids]


def group_tables(
    plan: VotePlan,
    first: PlanAccumulator,
    trimmed: PlanAccumulator | None,
    degenerate: Mapping[str, tuple[str, ...]],
    *,
    seed_agreement: Mapping[str, float] | None = None,
    extra: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Vote group -> its validator table (module docstring). ``first``/``trimmed``: the merged counts
    of pass 1 and pass 2 (whole subset, or one half); ``degenerate``: group -> trimmed candidates."""
    tables = {}
    for g in plan.vote_groups:
        ids = plan.groups[g]
        deg = set(degenerate.get(g, ()))
        f = first.fusion[g].f_miou
        if deg:
            if trimmed is None or g not in trimmed.fusion:
                raise SelectionError(f"vote group {g!r} has degenerate candidates but no pass-2 counts")
            ft = trimmed.fusion[g].f_miou
        else:
            ft = f
        cols: dict[str, list[float]] = {
            "f_miou": [float(v) for v in f],
            "f_miou_trimmed": [float("nan") if i in deg else float(v) for i, v in zip(ids, ft, strict=True)],
            "f_miou_lno": [float(v) for v in first.lno[g].scores],
        }
        if first.evidence is not None:
            ev = first.evidence.table(ids, g)
            cols.update({n: ev[n].tolist() for n in ev.columns})
        if seed_agreement:
            cols["seed_agreement"] = _column(ids, seed_agreement)
        for name, values in (extra or {}).items():
            if name in VALIDATORS:
                cols[name] = _column(ids, values)
        table = pd.DataFrame(
            {n: np.asarray(cols[n], dtype=np.float64) for n in VALIDATORS if n in cols},
            index=pd.Index(list(ids), name="candidate_id"),
        )
        table.attrs.update(leave_out=plan.lno_mode.get(g), degenerate=sorted(deg, key=list(ids).index))
        tables[g] = table
    return tables
