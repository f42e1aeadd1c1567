"""How much to trust a pick: the ``confidence`` of ``choice.json``, per vote group and overall.

A group's confidence is ``low`` when any of these holds, ``high`` otherwise (each reason that
holds is listed, in this order):

1. **No pick**: the rule has no finite value for any candidate of the group.
2. **The families disagree**: of the independent families of validators
   (:mod:`selection.decision.families`: source-side, information-based, consensus) that could pick
   in the group, no more than half pick the rule's pick (two of three must agree; ties going to the
   default candidate as the rule's do). Every validator's own pick is still counted (``agreeing``
   of ``validators``) but is no reason: the registry holds scores that rank the wrong way round
   (MixVal, SND, entropy), so "fewer than half of the validators agree" held for all 36 picks of
   the first three selection-benchmark regimes scored and said nothing.
3. **Within noise**: the subset's images are split into two halves, the even and the odd positions
   of its sorted order (a random subset, so two random halves; :data:`selection.run.plan.HALVES`);
   every validator is computed on each half from the same pass (counts kept apart per half; the
   trim decision of the whole subset is kept), and the rule picks again on each half. Noise is
   declared when on either half the rule picks a different candidate than on the whole subset,
   or none (which includes the top two swapping places). With fewer than 2 subset images this
   cannot be measured, and that is the reason given.

The centre-bias diagnostic (:mod:`selection.decision.centre_bias`: the F-mIoU vote did not
discriminate between a parameter's values) is recorded (``centre_bound``) but is no reason: on the
selection benchmark's 96 picks of the default rule, the centre-bound ones had the lower regret
(mean 0.71 mIoU points against 0.87 for the picks the families disagree on; bench/README.md,
"Confidence"), so it did not mean a worse pick. That was decided after looking at that table.

Overall: ``low`` when any group is low; its reasons are the groups' reasons prefixed with the
group. No label is ever read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ConfigDict

from selection.candidates import GRID_GROUP
from selection.decision.rules import Rule

__all__ = ["GroupConfidence", "Confidence", "group_confidence", "overall_confidence"]

_STRICT = ConfigDict(extra="forbid")


@dataclass(frozen=True, kw_only=True)
class GroupConfidence:
    """One vote group's confidence and what it was judged on."""

    __pydantic_config__ = _STRICT

    level: Literal["high", "low"]
    reasons: list[str]
    agreeing: int
    validators: int
    centre_bound: bool | None
    half_picks: list[str | None]
    family_picks: dict[str, str | None] = field(default_factory=dict)
    families_agreeing: int = 0


@dataclass(frozen=True, kw_only=True)
class Confidence:
    """The choice's confidence: overall level and reasons, and every vote group's."""

    __pydantic_config__ = _STRICT

    level: Literal["high", "low"]
    reasons: list[str]
    groups: dict[str, GroupConfidence] = field(default_factory=dict)


def group_confidence(
    rule: Rule,
    pick: str | None,
    picks: Mapping[str, str | None],
    *,
    centre_bound: bool | None,
    half_picks: Sequence[str | None] | None,
    images: int,
    family_picks: Mapping[str, str | None] | None = None,
) -> GroupConfidence:
    """The confidence of one group's pick (module docstring). ``picks``: validator -> its pick
    (None: no finite value in the group); ``half_picks``: the rule's pick on each half (None: the
    halves were not counted, which is then a reason); ``family_picks``: family -> its pick
    (:func:`selection.decision.families.family_picks`; families that could not pick are left out)."""
    reasons = []
    judged = {v: p for v, p in picks.items() if p is not None}
    agreeing = sum(p == pick for p in judged.values()) if pick is not None else 0
    families = {f: p for f, p in (family_picks or {}).items() if p is not None}
    with_pick = sorted(f for f, p in families.items() if p == pick) if pick is not None else []
    if pick is None:
        reasons.append(f"the rule {rule.text} has no finite value for any candidate: no pick")
    if pick is not None and families and 2 * len(with_pick) <= len(families):
        others = ", ".join(f"{f} {p}" for f, p in sorted(families.items()) if p != pick)
        reasons.append(
            f"the families disagree: {len(with_pick)} of the {len(families)} families pick {pick} "
            f"(not more than half; {others})"
        )
    if pick is not None:
        if images < 2:
            reasons.append("the subset has fewer than 2 images: noise between its halves cannot be measured")
        elif half_picks is None:
            reasons.append("noise between the subset's halves was not measured (no per-half counts)")
        elif any(h != pick for h in half_picks):
            shown = " and ".join(str(h) for h in half_picks)
            reasons.append(
                f"within noise: on the subset's two halves the rule picks {shown}, not {pick} on both"
            )
    return GroupConfidence(
        level="low" if reasons else "high",
        reasons=reasons,
        agreeing=agreeing,
        validators=len(judged),
        centre_bound=centre_bound,
        half_picks=list(half_picks or []),
        family_picks=dict(family_picks or {}),
        families_agreeing=len(with_pick),
    )


def overall_confidence(groups: Mapping[str, GroupConfidence]) -> Confidence:
    """Low when any group is low; the reasons name their group."""
    reasons = [f"{'the grid' if g == GRID_GROUP else g}: {r}" for g, gc in groups.items() for r in gc.reasons]
    return Confidence(level="low" if reasons else "high", reasons=reasons, groups=dict(groups))
