"""The scoring steps after the passes: input checks, the trim check, the rule's picks, notes, seed agreement.

Each step is a small function of the plan and the merged counts; :func:`.runner.score_from_accumulators`
runs them in order, with the validator tables (:mod:`selection.run.validator_table`), centre-bias
(:mod:`selection.decision.centre_bias`), confidence (:mod:`selection.decision.confidence`), choice
(:mod:`selection.outputs.choice`) and audit (:mod:`selection.decision.audit`) steps.

The pick of a vote group is the configured rule's (:mod:`selection.decision.rules`) on the group's
validator table, ties going to the default candidate; every validator's own pick is kept beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from selection.candidates import GRID_GROUP, Candidate
from selection.decision.centre_bias import CentreBias
from selection.decision.confidence import group_confidence
from selection.decision.families import family_picks
from selection.decision.guard import broken_reasons, class_shares
from selection.decision.rules import Rule, all_picks
from selection.decision.trimming import TrimRule, find_degenerate
from selection.errors import SelectionError
from selection.fusion.majority import FusionAccumulator
from selection.run.plan import HALVES, PlanAccumulator, VotePlan
from selection.tables import GroupScores
from selection.validators import EVIDENCE_VALIDATORS
from selection.validators.agreement import mean_pair_agreement
from selection.validators.registry import ScoreValues, direction

__all__ = [
    "COMPUTED_SCORES",
    "computed_scores",
    "check_extra_scores",
    "check_true_miou",
    "check_trimmed",
    "scores_of",
    "default_in",
    "group_scores",
    "group_notes",
    "seed_scores",
]

# Scores the selection always computes itself (from the label maps); a caller may not pass them in.
COMPUTED_SCORES = frozenset({"f_miou", "f_miou_trimmed", "f_miou_lno", "seed_agreement"})


def computed_scores(with_evidence: bool) -> frozenset[str]:
    """What the selection computes itself: the label validators, and the evidence ones when given files."""
    return COMPUTED_SCORES | (frozenset(EVIDENCE_VALIDATORS) if with_evidence else frozenset())


def check_extra_scores(
    extra_scores: Mapping[str, ScoreValues | Mapping[str, float]] | None,
    ids: Sequence[str],
    computed: frozenset[str] = COMPUTED_SCORES,
) -> tuple[dict[str, dict[str, float]], dict[str, bool]]:
    """Extra label-free scores as plain floats per candidate id, and each one's direction."""
    values: dict[str, dict[str, float]] = {}
    dirs: dict[str, bool] = {}
    for name, given in (extra_scores or {}).items():
        if name in computed:
            raise SelectionError(f"score {name!r} is computed by the selection itself; do not pass it")
        dirs[name] = direction(name, given)
        vals = given.values if isinstance(given, ScoreValues) else given
        unknown = [k for k in vals if k not in set(ids)]
        if unknown:
            raise SelectionError(f"score {name!r} has values for unknown candidate(s) {unknown}")
        values[name] = {k: float(v) for k, v in vals.items()}
    return values, dirs


def check_true_miou(true_miou: Mapping[str, float] | None, ids: Sequence[str]) -> None:
    if true_miou is not None:
        unknown = [k for k in true_miou if k not in set(ids)]
        if unknown:
            raise SelectionError(f"true_miou has values for unknown candidate(s) {unknown}")


def scores_of(acc: FusionAccumulator, ids: Sequence[str]) -> dict[str, float]:
    """Candidate id -> F-mIoU in one group's or window's vote."""
    return dict(zip(ids, acc.f_miou.tolist(), strict=True))


def check_trimmed(
    plan: VotePlan, first: PlanAccumulator, trimmed: PlanAccumulator | None
) -> dict[str, tuple[str, ...]]:
    """The degenerates of each vote group (trim rule on pass 1); raises unless ``trimmed`` re-voted them."""
    expected = {}
    if plan.trim_rule is not None:
        for g in plan.vote_groups:
            bad = find_degenerate(scores_of(first.fusion[g], plan.groups[g]), plan.trim_rule)
            if bad:
                expected[g] = tuple(bad)
    got = trimmed.plan.degenerate() if trimmed is not None else {}
    if {g: set(v) for g, v in expected.items()} != {g: set(v) for g, v in got.items()}:
        raise SelectionError(
            f"trimming flags {expected or 'nobody'} but the pass-2 accumulator covers {got or 'nothing'}: "
            "build it from plan.trimmed(first)"
        )
    return expected


def default_in(ids: Sequence[str], candidates: Sequence[Candidate]) -> str | None:
    """The default candidate if it is in ``ids`` (ties go to it: no evidence to move away from it)."""
    return next((c.id for c in candidates if c.is_default and c.id in set(ids)), None)


def group_scores(
    plan: VotePlan,
    first: PlanAccumulator,
    trimmed: PlanAccumulator | None,
    degenerate: Mapping[str, tuple[str, ...]],
    *,
    tables: Mapping[str, pd.DataFrame],
    half_tables: Sequence[Mapping[str, pd.DataFrame]] | None,
    rule: Rule,
    centre: CentreBias,
) -> dict[str, GroupScores]:
    """Per vote group: F-mIoU (pass 1), trimmed F-mIoU (pass 2, or pass 1 if nobody was trimmed),
    the validator table, every validator's pick and the rule's, and the confidence of the pick
    (``half_tables``: each half's tables, for its noise check; None: not measured)."""
    if half_tables is not None and len(half_tables) != len(HALVES):
        raise SelectionError(f"expected validator tables of {len(HALVES)} halves, got {len(half_tables)}")
    groups: dict[str, GroupScores] = {}
    # A candidate judged broken in one group (the default sits in every sweep) is picked in none.
    broken_in = {g: _broken(plan.groups[g], first.fusion[g], tables[g]) for g in plan.vote_groups}
    anywhere = {cid for found in broken_in.values() for cid in found}
    for g in plan.vote_groups:
        gids = plan.groups[g]
        acc = first.fusion[g]
        f = scores_of(acc, gids)
        deg = degenerate.get(g, ())
        ft = scores_of(trimmed.fusion[g], gids) if deg else dict(f)
        prefer = default_in(gids, plan.candidates)
        broken = broken_in[g]
        # Broken candidates stay in the table people read, but no rule or validator picks them.
        eligible = tables[g].drop(index=list(anywhere), errors="ignore")
        picks = all_picks(eligible, {"rule": rule}, prefer=prefer)
        chosen = picks["rule"]
        groups[g] = GroupScores(
            group=g,
            ids=gids,
            f_miou=f,
            f_miou_trimmed=ft,
            per_class_iou=dict(zip(gids, acc.per_class_iou, strict=True)),
            degenerate=tuple(deg),
            pick=chosen,
            untrimmed_pick=picks["f_miou"],
            score_used=rule.text,
            undecided_fraction=acc.undecided_pixels / acc.pixels if acc.pixels else float("nan"),
            table=tables[g],
            picks=picks,
            broken=broken,
            confidence=group_confidence(
                rule,
                chosen,
                {v: p for v, p in picks.items() if v != "rule"},
                centre_bound=_centre_bound(g, plan, centre),
                half_picks=None
                if half_tables is None
                else [
                    rule.pick(h[g].drop(index=list(anywhere), errors="ignore"), prefer) for h in half_tables
                ],
                images=len(plan.subset_ids),
                family_picks=family_picks(eligible, prefer),
            ),
        )
    return groups


def _broken(ids: Sequence[str], acc: FusionAccumulator, table: pd.DataFrame) -> dict[str, str]:
    """The group's broken candidates (:mod:`selection.decision.guard`), on their own predictions and
    source-val mIoU, never on agreement."""
    source = None
    if "source_val_miou" in table.columns:
        source = {i: float(table.at[i, "source_val_miou"]) for i in ids if i in table.index}
    return broken_reasons(ids, class_shares(acc.confusion), source)


def _centre_bound(group: str, plan: VotePlan, centre: CentreBias) -> bool | None:
    """The diagnostic's verdict on the group's parameter (a grid: True if any parameter is centre-bound);
    None where it could not assess."""
    params = list(plan.candidates[0].params) if group == GRID_GROUP else [group]
    found = [centre.verdicts[p].centre_bound for p in params if p in centre.verdicts]
    if any(v is True for v in found):
        return True
    return False if any(v is False for v in found) else None


def group_notes(groups: Mapping[str, GroupScores], trim_rule: TrimRule | None) -> list[str]:
    """Sentences for people about each group: no decision, too few to discriminate, trimming, and
    where the rule's pick differs from the paper's F-mIoU pick."""
    notes: list[str] = []
    for g, gs in groups.items():
        label = f"sweep {g!r}" if g != GRID_GROUP else "the grid"
        if gs.pick is None:
            notes.append(
                f"In {label} the rule {gs.score_used} has no finite value for any candidate: no pick "
                "(the parameter stays at its default)."
            )
        if len(gs.ids) == 2:
            notes.append(
                f"{label[0].upper() + label[1:]} has only 2 candidates: any disagreement is a tie, "
                "so the vote cannot discriminate between them."
            )
        if gs.degenerate:
            assert trim_rule is not None  # degenerates exist only under a trim rule
            scores_txt = ", ".join(f"{i} {gs.f_miou[i]:.3f}" for i in gs.degenerate)
            med = float(np.nanmedian(list(gs.f_miou.values())))
            notes.append(
                f"In {label}, {len(gs.degenerate)} candidate(s) scored far below the rest and are reported "
                f"as degenerate ({scores_txt}; median {med:.3f}; rule: {trim_rule.describe()}). "
                "The trimmed vote (f_miou_trimmed) was redone without them and does not rank them."
            )
        if gs.pick is not None and gs.pick != gs.untrimmed_pick:
            notes.append(
                f"In {label}, the rule {gs.score_used} picks {gs.pick}; the paper's F-mIoU would pick "
                f"{gs.untrimmed_pick}."
            )
    return notes


def seed_scores(plan: VotePlan, first: PlanAccumulator) -> tuple[dict[str, float], np.ndarray | None]:
    """Seed agreement per candidate (empty if no candidate has 2 replicates) and the (k, k)
    candidate-vs-candidate agreement (None when not tracked), both from the pairwise sums."""
    seed: dict[str, float] = {}
    agreement = None
    if first.agreement is not None:
        mat = first.agreement.matrix()
        k = {m: i for i, m in enumerate(plan.members)}
        prim = [k[i] for i in plan.candidate_ids]
        agreement = mat[np.ix_(prim, prim)]
        for cid in plan.candidate_ids:
            reps = [k[m] for m in plan.replicates[cid]]
            seed[cid] = mean_pair_agreement(mat[np.ix_(reps, reps)]) if len(reps) >= 2 else float("nan")
    if not any(np.isfinite(v) for v in seed.values()):
        seed = {}
    return seed, agreement
