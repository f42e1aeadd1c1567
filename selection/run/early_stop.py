"""Label-free early stopping: which candidates stop at the rung (a round before the last).

At the rung every surviving candidate has predicted the subset; :func:`rung_selection` scores them
against each other with the configured rule (:func:`selection.run.runner.run_selection`) and
:func:`decide` cuts. Per vote group, the rule orders the candidates (:meth:`Rule.order`, NaN
last); of the n candidates other than the default, the best ``ceil(keep * n)`` go on (at least
one, so the group can still vote); candidates tied with the last of those go on too (a cut never
falls between equal scores), and so does the default, always, without taking a place.
A candidate stops only if it is below the cut in every group it was scored in: the default sits in
every sweep and is never stopped; a sweep point sits in one. Nothing here knows about Ray.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from selection.candidates import Candidate
from selection.decision.rules import Rule, parse_rule
from selection.errors import SelectionError
from selection.run.outcomes import voting_candidates
from selection.run.runner import run_selection
from selection.run.spec import SelectionSpec

__all__ = ["RungRecord", "EarlyStopDecision", "decide", "rung_selection"]


@dataclass(frozen=True)
class RungRecord:
    """One candidate at the rung: the rule's score and rank (1 = best) and its F-mIoU, in ``group``.

    For a candidate scored in several groups (the default), the group where it ranked best.
    """

    group: str
    score: float
    rank: int
    f_miou: float
    kept: bool


@dataclass(frozen=True)
class EarlyStopDecision:
    stopped: list[str]
    records: dict[str, RungRecord] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (NaN as None)."""
        return {
            "stopped": list(self.stopped),
            "candidates": {
                cid: {
                    "group": r.group,
                    "score": _plain(r.score),
                    "rank": r.rank,
                    "f_miou": _plain(r.f_miou),
                    "kept": r.kept,
                }
                for cid, r in self.records.items()
            },
            "notes": list(self.notes),
        }


def _plain(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _group_cut(table: pd.DataFrame, rule: Rule, keep: float, default_id: str | None) -> dict[str, tuple]:
    """candidate -> (score, rank in the rule's order, kept) for one group's validator table."""
    order = rule.order(table, prefer=default_id)
    scores = rule.scores(table).astype(float)
    # The places are for the candidates other than the default (which always goes on), and at
    # least one of them goes on: the final vote of the group needs two voters.
    others = [cid for cid in order if cid != default_id]
    if not others:
        return {cid: (float(scores[cid]), k + 1, True) for k, cid in enumerate(order)}
    n_keep = max(1, math.ceil(keep * len(others)))
    kept_ids = set(others[:n_keep])
    boundary = float(scores[others[min(n_keep, len(others)) - 1]])
    out = {}
    for position, cid in enumerate(order):
        s = float(scores[cid])
        tied = (np.isnan(s) and np.isnan(boundary)) or s == boundary
        kept = cid in kept_ids or tied or cid == default_id
        out[cid] = (s, position + 1, kept)
    return out


def decide(
    tables: Mapping[str, pd.DataFrame], rule: Any, keep: float, default_id: str | None
) -> EarlyStopDecision:
    """Which candidates stop, from each vote group's validator table at the rung (index: candidate ids).

    ``rule``: ``selection.rule``'s value or a Rule; ``keep`` in (0, 1]; ``default_id``: the default
    candidate (never stopped; None in a search without one).
    """
    if not 0 < keep <= 1:
        raise SelectionError(f"selection.early_stop.keep: expected a number in (0, 1], got {keep!r}")
    parsed = parse_rule(rule)
    cuts = {g: _group_cut(t, parsed, keep, default_id) for g, t in tables.items() if len(t)}
    records: dict[str, RungRecord] = {}
    stopped: list[str] = []
    ids = list(dict.fromkeys(cid for cut in cuts.values() for cid in cut))
    for cid in ids:
        mine = [(g, cut[cid]) for g, cut in cuts.items() if cid in cut]
        kept = any(k for _, (_, _, k) in mine)
        group, (score, rank, _) = min(mine, key=lambda item: item[1][1])
        f = tables[group].loc[cid].get("f_miou", float("nan"))
        records[cid] = RungRecord(group, score, rank, float(f), kept)
        if not kept:
            stopped.append(cid)
    return EarlyStopDecision(stopped, records)


def rung_selection(
    candidates: Sequence[Candidate],
    prediction_uris: Mapping[str, str | os.PathLike[str]],
    spec: SelectionSpec,
    *,
    keep: float,
    evidence_uris: Mapping[str, str | os.PathLike[str]] | None = None,
) -> EarlyStopDecision:
    """Score the candidates that reached the rung (``prediction_uris``' keys) and decide.

    A group left with fewer than two of them is not scored there (said in the notes): nobody in it
    stops.
    """
    voters, notes = voting_candidates(candidates, set(prediction_uris))
    if len(voters) < 2:
        return EarlyStopDecision([], {}, notes + [f"{len(voters)} candidate(s) at the rung: nobody stops."])
    default = next((c.id for c in candidates if c.is_default), None)
    result = run_selection(
        voters,
        {c.id: prediction_uris[c.id] for c in voters},
        spec,
        centre_bias=False,
        agreement=False,
        evidence_uris={c.id: evidence_uris[c.id] for c in voters if c.id in evidence_uris}
        if evidence_uris
        else None,
    )
    decision = decide(result.validators, spec.rule, keep, default)
    return EarlyStopDecision(decision.stopped, decision.records, notes + decision.notes)
