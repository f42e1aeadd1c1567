"""The scoring steps after the passes: input checks, the trim check, group scores and notes, seed agreement.

Each step is a small function of the plan and the merged counts; :func:`selection.run.score_from_accumulators`
runs them in order, with the centre-bias (:mod:`selection.centre_bias`), choice
(:mod:`selection.choice`) and audit (:mod:`selection.audit`) steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from selection.audit import pick
from selection.candidates import GRID_GROUP
from selection.errors import SelectionError
from selection.fusion import FusionAccumulator
from selection.plan import PlanAccumulator, VotePlan
from selection.scores import ScoreValues, direction, seed_agreement
from selection.tables import GroupScores
from selection.trimming import TrimRule, find_degenerate

__all__ = [
    "COMPUTED_SCORES",
    "check_extra_scores",
    "check_true_miou",
    "check_trimmed",
    "scores_of",
    "group_scores",
    "group_notes",
    "seed_scores",
]

# Scores the selection computes itself; a caller may not pass them in.
COMPUTED_SCORES = frozenset({"f_miou", "f_miou_trimmed", "seed_agreement"})


def check_extra_scores(
    extra_scores: Mapping[str, ScoreValues | Mapping[str, float]] | None, ids: Sequence[str]
) -> tuple[dict[str, dict[str, float]], dict[str, bool]]:
    """Extra label-free scores as plain floats per candidate id, and each one's direction."""
    values: dict[str, dict[str, float]] = {}
    dirs: dict[str, bool] = {}
    for name, given in (extra_scores or {}).items():
        if name in COMPUTED_SCORES:
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


def group_scores(
    plan: VotePlan,
    first: PlanAccumulator,
    trimmed: PlanAccumulator | None,
    degenerate: Mapping[str, tuple[str, ...]],
) -> dict[str, GroupScores]:
    """Per vote group: F-mIoU (pass 1), trimmed F-mIoU (pass 2, or pass 1 if nobody was trimmed), picks."""
    use_trim = plan.trim_rule is not None
    groups: dict[str, GroupScores] = {}
    for g in plan.vote_groups:
        gids = plan.groups[g]
        acc = first.fusion[g]
        f = scores_of(acc, gids)
        deg = degenerate.get(g, ())
        ft = scores_of(trimmed.fusion[g], gids) if deg else dict(f)
        eligible = [i for i in gids if i not in deg]
        groups[g] = GroupScores(
            group=g,
            ids=gids,
            f_miou=f,
            f_miou_trimmed=ft,
            per_class_iou=dict(zip(gids, acc.per_class_iou, strict=True)),
            degenerate=tuple(deg),
            pick=pick(gids, ft if use_trim else f, True, eligible),
            untrimmed_pick=pick(gids, f, True),
            score_used="f_miou_trimmed" if use_trim else "f_miou",
            undecided_fraction=acc.undecided_pixels / acc.pixels if acc.pixels else float("nan"),
        )
    return groups


def group_notes(groups: Mapping[str, GroupScores], trim_rule: TrimRule | None) -> list[str]:
    """Sentences for people about each group: no decision, too few to discriminate, trimming."""
    notes: list[str] = []
    for g, gs in groups.items():
        label = f"sweep {g!r}" if g != GRID_GROUP else "the grid"
        if gs.pick is None:
            notes.append(f"In {label} no candidate has a finite F-mIoU: the vote decided no pixel.")
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
                "The vote was redone without them; they cannot be picked."
            )
            if gs.pick != gs.untrimmed_pick:
                notes.append(
                    f"In {label}, trimming changed the pick from {gs.untrimmed_pick} (paper F-mIoU) "
                    f"to {gs.pick}."
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
            seed[cid] = seed_agreement(mat[np.ix_(reps, reps)]) if len(reps) >= 2 else float("nan")
    if not any(np.isfinite(v) for v in seed.values()):
        seed = {}
    return seed, agreement
