"""What one pass over the stored predictions accumulates, and how parallel workers share it.

A :class:`VotePlan` lists the files to stream (one "member" per candidate, plus replicates), the
vote groups (each sweep, or the grid), the centre-bias windows (each re-voted as its own group),
and the member pairs whose agreement is tracked. A :class:`PlanAccumulator` holds one
:class:`~selection.fusion.FusionAccumulator` per group/window and one
:class:`~selection.agreement.PairwiseAgreement`; everything is counts, so accumulators built on
disjoint image chunks merge exactly.

Pass 1 uses the full plan. If trimming flags degenerate candidates, :meth:`VotePlan.trimmed` gives
a smaller plan for pass 2: only the affected groups, voting without the degenerates (who are still
scored against that fusion), reading only those groups' files. The passes themselves, chunked and
merged, are run by :func:`selection.run.run_selection` (the one place that sequences them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from selection.agreement import PairwiseAgreement
from selection.candidates import Candidate, lines, vote_groups
from selection.centre_bias import Window, windows_for_line
from selection.errors import SelectionError
from selection.fusion import IGNORE_INDEX, FusionAccumulator
from selection.store import stream_stacks
from selection.trimming import DEFAULT_TRIM_RULE, TrimRule, find_degenerate

__all__ = [
    "VotePlan",
    "PlanAccumulator",
    "make_plan",
    "accumulate",
    "merge_accumulators",
    "replicate_member_id",
    "image_chunks",
]


def replicate_member_id(candidate_id: str, k: int) -> str:
    """Member id of replicate k (k = 0 is the candidate itself, the one that votes)."""
    return candidate_id if k == 0 else f"{candidate_id}#r{k}"


@dataclass(frozen=True)
class VotePlan:
    """Everything a pass needs, picklable and free of open files.

    ``groups``: vote group or window name -> candidate ids (all are scored). ``voters``: for a group
    listed there, the ids that vote (trimmed pass); otherwise all vote. ``windows``: the centre-bias
    windows (also present in ``groups`` under their names). ``members``: stream order of files.
    """

    candidates: tuple[Candidate, ...]
    candidate_ids: tuple[str, ...]
    members: tuple[str, ...]
    member_uris: dict[str, str]
    replicates: dict[str, tuple[str, ...]]
    groups: dict[str, tuple[str, ...]]
    vote_groups: tuple[str, ...]
    windows: tuple[Window, ...]
    pairs: tuple[tuple[str, str], ...]
    subset_ids: tuple[str, ...]
    num_classes: int
    ignore_index: int = IGNORE_INDEX
    voters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    trim_rule: TrimRule | None = DEFAULT_TRIM_RULE
    stage: str = "first"

    def trimmed(self, first: PlanAccumulator) -> VotePlan | None:
        """The pass-2 plan: groups with degenerates re-voted without them; None if there are none."""
        if self.trim_rule is None:
            return None
        redo: dict[str, tuple[str, ...]] = {}
        voters: dict[str, tuple[str, ...]] = {}
        for g in self.vote_groups:
            ids = self.groups[g]
            scores = dict(zip(ids, first.fusion[g].f_miou.tolist(), strict=True))
            bad = set(find_degenerate(scores, self.trim_rule))
            if bad:
                keep = tuple(i for i in ids if i not in bad)
                if len(keep) < 2:
                    continue  # cannot happen with the median rule; guard anyway
                redo[g], voters[g] = ids, keep
        if not redo:
            return None
        needed = tuple(m for m in self.candidate_ids if any(m in ids for ids in redo.values()))
        return replace(
            self,
            members=needed,
            member_uris={m: self.member_uris[m] for m in needed},
            groups=redo,
            vote_groups=tuple(redo),
            windows=(),
            pairs=(),
            voters=voters,
            stage="trimmed",
        )

    def degenerate(self) -> dict[str, tuple[str, ...]]:
        """For a trimmed plan: group -> the candidates left out of its vote."""
        return {g: tuple(i for i in self.groups[g] if i not in v) for g, v in self.voters.items()}


def make_plan(
    candidates: Sequence[Candidate],
    prediction_uris: Mapping[str, str | os.PathLike[str] | Sequence[str | os.PathLike[str]]],
    subset_ids: Sequence[str],
    num_classes: int,
    *,
    ignore_index: int = IGNORE_INDEX,
    trim_rule: TrimRule | None = DEFAULT_TRIM_RULE,
    centre_bias: bool = True,
    agreement: bool = True,
) -> VotePlan:
    """Build the pass-1 plan. ``prediction_uris``: candidate id -> file, or a list of replicate files
    (the first votes; all feed seed agreement). Every candidate needs a file; every group >= 2."""
    ids = [c.id for c in candidates]
    if len(ids) != len(set(ids)):
        raise SelectionError("candidate ids are not unique")
    if len(ids) < 2:
        raise SelectionError(f"a selection needs at least 2 candidates, got {len(ids)}: {ids}")
    missing = [i for i in ids if i not in prediction_uris]
    if missing:
        raise SelectionError(f"no predictions file given for candidate(s) {missing}")
    unknown = [i for i in prediction_uris if i not in set(ids)]
    if unknown:
        raise SelectionError(f"predictions given for unknown candidate(s) {unknown}")
    member_uris: dict[str, str] = {}
    replicates: dict[str, tuple[str, ...]] = {}
    for cid in ids:
        given = prediction_uris[cid]
        files = [given] if isinstance(given, (str, os.PathLike)) else list(given)
        if not files:
            raise SelectionError(f"candidate {cid!r}: empty list of predictions files")
        mids = tuple(replicate_member_id(cid, k) for k in range(len(files)))
        replicates[cid] = mids
        for m, f in zip(mids, files, strict=True):
            member_uris[m] = os.fspath(f)
    primaries = list(ids)
    extra = [m for cid in ids for m in replicates[cid][1:]]
    members = tuple(primaries + extra)

    groups = {g: tuple(v) for g, v in vote_groups(candidates).items()}
    for g, v in groups.items():
        if len(v) < 2:
            raise SelectionError(
                f"vote group {g!r} has {len(v)} candidate(s) ({list(v)}); a vote needs at least 2"
            )
    windows: list[Window] = []
    if centre_bias:
        for line in lines(candidates):
            windows.extend(windows_for_line(line))
    all_groups = dict(groups)
    for w in windows:
        all_groups[w.name] = w.candidate_ids
    pairs: list[tuple[str, str]] = []
    if agreement:
        pairs += [(a, b) for i, a in enumerate(primaries) for b in primaries[i + 1 :]]
    for cid in ids:  # replicate pairs feed seed agreement; always tracked
        r = replicates[cid]
        pairs += [(a, b) for i, a in enumerate(r) for b in r[i + 1 :] if (a, b) not in pairs]
    return VotePlan(
        candidates=tuple(candidates),
        candidate_ids=tuple(ids),
        members=members,
        member_uris=member_uris,
        replicates=replicates,
        groups=all_groups,
        vote_groups=tuple(groups),
        windows=tuple(windows),
        pairs=tuple(pairs),
        subset_ids=tuple(str(i) for i in subset_ids),
        num_classes=int(num_classes),
        ignore_index=int(ignore_index),
        trim_rule=trim_rule,
    )


class PlanAccumulator:
    """The counts of one pass (or one chunk of it): a FusionAccumulator per group, one agreement."""

    def __init__(self, plan: VotePlan, *, device: str | None = None) -> None:
        self.plan = plan
        index = {m: k for k, m in enumerate(plan.members)}
        self._rows: dict[str, np.ndarray] = {}
        self.fusion: dict[str, FusionAccumulator] = {}
        for g, ids in plan.groups.items():
            self._rows[g] = np.array([index[i] for i in ids], dtype=np.intp)
            voters = None
            if g in plan.voters:
                voters = [k for k, i in enumerate(ids) if i in set(plan.voters[g])]
            self.fusion[g] = FusionAccumulator(
                len(ids),
                plan.num_classes,
                plan.ignore_index,
                voters=voters,
                pairwise=False,
                names=list(ids),
                device=device,
            )
        self.agreement: PairwiseAgreement | None = None
        if plan.pairs:
            self.agreement = PairwiseAgreement(
                len(plan.members),
                plan.num_classes,
                plan.ignore_index,
                pairs=[(index[a], index[b]) for a, b in plan.pairs],
                names=list(plan.members),
                device=device,
            )
        self.images = 0

    def update(self, stack: np.ndarray, image_id: str | None = None) -> None:
        """Add one image's stack, rows in ``plan.members`` order."""
        if stack.shape[0] != len(self.plan.members):
            raise SelectionError(
                f"image {image_id!r}: stack has {stack.shape[0]} rows, "
                f"the plan has {len(self.plan.members)} members"
            )
        for g, acc in self.fusion.items():
            acc.update(stack[self._rows[g]], image_id)
        if self.agreement is not None:
            self.agreement.update(stack, image_id)
        self.images += 1

    def merge(self, other: PlanAccumulator) -> PlanAccumulator:
        if other.plan.groups != self.plan.groups or other.plan.members != self.plan.members:
            raise SelectionError("cannot merge accumulators of different plans")
        for g, acc in self.fusion.items():
            acc.merge(other.fusion[g])
        if self.agreement is not None:
            assert other.agreement is not None
            self.agreement.merge(other.agreement)
        self.images += other.images
        return self

    def agreement_between(self, a: str, b: str) -> float:
        if self.agreement is None:
            return float("nan")
        k = {m: i for i, m in enumerate(self.plan.members)}
        return float(self.agreement.matrix()[k[a], k[b]])


def image_chunks(num_images: int, num_chunks: int) -> list[tuple[int, int]]:
    """Split ``range(num_images)`` into at most ``num_chunks`` contiguous (start, stop) slices."""
    num_chunks = max(1, min(num_chunks, num_images))
    edges = np.linspace(0, num_images, num_chunks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def accumulate(
    plan: VotePlan, start: int = 0, stop: int | None = None, *, device: str | None = None
) -> PlanAccumulator:
    """Stream the plan's files over subset images ``start:stop`` into a fresh accumulator."""
    acc = PlanAccumulator(plan, device=device)
    uris = {m: plan.member_uris[m] for m in plan.members}
    for image_id, stack in stream_stacks(
        uris, plan.subset_ids, num_classes=plan.num_classes, start=start, stop=stop
    ):
        acc.update(stack, image_id)
    return acc


def merge_accumulators(parts: Sequence[PlanAccumulator]) -> PlanAccumulator:
    """Sum chunk accumulators of one plan into a new accumulator (exact: counts add).

    The parts are left as they are: they may be read-only (arrays that ``ray.get`` hands back).
    """
    if not parts:
        raise SelectionError("no accumulators to merge")
    total = PlanAccumulator(parts[0].plan)
    for p in parts:
        total.merge(p)
    return total
