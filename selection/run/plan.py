"""What one pass over the stored predictions accumulates, and how parallel workers share it.

A :class:`VotePlan` lists the files to stream (one "member" per candidate, plus replicates, plus
each candidate's evidence file), the vote groups (each sweep, or the grid), the centre-bias
windows (each re-voted as its own group), the member pairs whose agreement is tracked, and each
vote group's leave-neighbours-out votes. A :class:`PlanAccumulator` holds one
:class:`~selection.fusion.majority.FusionAccumulator` per group/window, one
:class:`~selection.validators.LeaveNeighboursOut` per vote group (f_miou_lno), one
:class:`~selection.fusion.pairwise.PairwiseAgreement` and one
:class:`~selection.validators.EvidenceAccumulator` (every evidence validator); everything is
counts or sums over images, so accumulators built on disjoint image chunks merge exactly.

Halves: :func:`accumulate` keeps the counts of the subset's even and odd positions apart
(:class:`ChunkCounts`), so the same pass also gives every score on each half of the subset (what
:mod:`selection.decision.confidence` measures noise with) at no extra reading or compute.

Pass 1 uses the full plan. If trimming flags degenerate candidates, :meth:`VotePlan.trimmed` gives
a smaller plan for pass 2: only the affected groups, voting without the degenerates (who are still
scored against that fusion), reading only those groups' files. The passes themselves, chunked and
merged, are run by :func:`selection.run.runner.run_selection` (the one place that sequences them).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from selection.candidates import Candidate, lines, vote_groups
from selection.decision.centre_bias import Window, windows_for_line
from selection.decision.trimming import DEFAULT_TRIM_RULE, TrimRule, find_degenerate
from selection.errors import SelectionError
from selection.fusion.majority import IGNORE_INDEX, FusionAccumulator
from selection.fusion.pairwise import PairwiseAgreement
from selection.store.predictions_reader import stream_stacks
from selection.validators import EvidenceAccumulator, LeaveNeighboursOut, leave_out, neighbours, open_evidence
from selection.validators.evidence import EvidenceSettings

__all__ = [
    "VotePlan",
    "PlanAccumulator",
    "ChunkCounts",
    "make_plan",
    "accumulate",
    "merge_accumulators",
    "merge_chunks",
    "replicate_member_id",
    "image_chunks",
    "HALVES",
]

HALVES = ("even", "odd")
"""The two halves of the subset: images at even and at odd positions of its (sorted) order."""


def replicate_member_id(candidate_id: str, k: int) -> str:
    """Member id of replicate k (k = 0 is the candidate itself, the one that votes)."""
    return candidate_id if k == 0 else f"{candidate_id}#r{k}"


@dataclass(frozen=True)
class VotePlan:
    """Everything a pass needs, picklable and free of open files.

    ``groups``: vote group or window name -> candidate ids (all are scored). ``voters``: for a group
    listed there, the ids that vote (trimmed pass); otherwise all vote. ``windows``: the centre-bias
    windows (also present in ``groups`` under their names). ``members``: stream order of files.
    ``lno``: vote group -> per candidate, the indices (into the group) left out of its vote, and
    ``lno_mode`` how they were chosen (:func:`selection.validators.leave_out`). ``evidence``:
    candidate id -> evidence file (those without one get NaN evidence scores).
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
    lno: dict[str, tuple[tuple[int, ...], ...]] = field(default_factory=dict)
    lno_mode: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    evidence_settings: EvidenceSettings | None = None

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
            lno={},
            lno_mode={},
            evidence={},
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
    evidence_uris: Mapping[str, str | os.PathLike[str]] | None = None,
    evidence_settings: EvidenceSettings | None = None,
) -> VotePlan:
    """Build the pass-1 plan. ``prediction_uris``: candidate id -> file, or a list of replicate files
    (the first votes; all feed seed agreement). Every candidate needs a file; every group >= 2.
    ``evidence_uris``: candidate id -> evidence file (any subset of the candidates), read by every
    chunk of pass 1 and checked against ``evidence_settings`` when given."""
    ids = [c.id for c in candidates]
    if len(ids) != len(set(ids)):
        raise SelectionError("candidate ids are not unique")
    if len(ids) < 2:
        raise SelectionError(f"a selection needs at least 2 candidates, got {len(ids)}: {ids}")
    missing = [i for i in ids if i not in prediction_uris]
    if missing:
        raise SelectionError(f"no predictions file given for candidate(s) {missing}")
    for what, given_for in (("predictions", prediction_uris), ("evidence", evidence_uris or {})):
        unknown = [i for i in given_for if i not in set(ids)]
        if unknown:
            raise SelectionError(f"{what} given for unknown candidate(s) {unknown}")
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
    lno, lno_mode = {}, {}
    for g, v in groups.items():
        exclude, lno_mode[g] = leave_out(v, neighbours(candidates, g))
        lno[g] = tuple(tuple(e) for e in exclude)
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
        lno=lno,
        lno_mode=lno_mode,
        evidence={str(k): os.fspath(v) for k, v in (evidence_uris or {}).items()},
        evidence_settings=evidence_settings,
    )


class PlanAccumulator:
    """The counts of one pass (or one chunk of it): a FusionAccumulator per group, the
    leave-neighbours-out votes, one agreement, and the evidence validators' sums (set by
    :func:`accumulate`, None without evidence)."""

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
        self.lno = {
            g: LeaveNeighboursOut(
                len(plan.groups[g]),
                plan.num_classes,
                exclude,
                plan.ignore_index,
                names=list(plan.groups[g]),
                device=device,
            )
            for g, exclude in plan.lno.items()
        }
        self.evidence: EvidenceAccumulator | None = None
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
        for g, lno in self.lno.items():
            lno.update(stack[self._rows[g]], image_id)
        if self.agreement is not None:
            self.agreement.update(stack, image_id)
        self.images += 1

    def merge(self, other: PlanAccumulator) -> PlanAccumulator:
        if other.plan.groups != self.plan.groups or other.plan.members != self.plan.members:
            raise SelectionError("cannot merge accumulators of different plans")
        for g, acc in self.fusion.items():
            acc.merge(other.fusion[g])
        for g, lno in self.lno.items():
            lno.merge(other.lno[g])
        if other.evidence is not None:  # EvidenceAccumulator.merge returns a new one
            self.evidence = other.evidence if self.evidence is None else self.evidence.merge(other.evidence)
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


@dataclass
class ChunkCounts:
    """What :func:`accumulate` returns for subset images ``start:stop``: the counts of the images at
    even and at odd positions (:data:`HALVES`), kept apart."""

    start: int
    stop: int
    halves: tuple[PlanAccumulator, PlanAccumulator]

    @property
    def whole(self) -> PlanAccumulator:
        """Both halves merged: the counts of every image of the chunk."""
        return merge_accumulators(list(self.halves))


def accumulate(
    plan: VotePlan, start: int = 0, stop: int | None = None, *, device: str | None = None
) -> ChunkCounts:
    """Stream the plan's files over subset images ``start:stop`` into fresh accumulators, one per half."""
    n = len(plan.subset_ids)
    stop = n if stop is None else stop
    halves = (PlanAccumulator(plan, device=device), PlanAccumulator(plan, device=device))
    uris = {m: plan.member_uris[m] for m in plan.members}
    for pos, (image_id, stack) in enumerate(
        stream_stacks(uris, plan.subset_ids, num_classes=plan.num_classes, start=start, stop=stop), start
    ):
        halves[pos % 2].update(stack, image_id)
    if plan.evidence:
        files = open_evidence(
            plan.evidence,
            num_classes=plan.num_classes,
            subset_ids=plan.subset_ids,
            settings=plan.evidence_settings,
        )
        empty = EvidenceAccumulator.start(files, {g: plan.groups[g] for g in plan.vote_groups})
        for h, half in enumerate(halves):
            half.evidence = copy.deepcopy(empty)  # ATC is fitted once per chunk, not per half
            half.evidence.update(files, [p for p in range(start, stop) if p % 2 == h])
    return ChunkCounts(start, stop, halves)


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


def merge_chunks(
    plan: VotePlan, chunks: Sequence[ChunkCounts]
) -> tuple[PlanAccumulator, tuple[PlanAccumulator, PlanAccumulator]]:
    """The whole pass and its two halves from chunk counts given in any order; the chunks must
    cover the subset's images exactly once (a lost or repeated chunk would miscount silently)."""
    n = len(plan.subset_ids)
    spans = sorted((c.start, c.stop) for c in chunks)
    ends = [0] + [b for _, b in spans]
    if not spans or any(a != e for (a, _), e in zip(spans, ends, strict=False)) or ends[-1] != n:
        raise SelectionError(
            f"the {plan.stage} pass got image chunks {spans} for the subset's {n} images: every image "
            "must be accumulated exactly once"
        )
    halves = tuple(merge_accumulators([c.halves[h] for c in chunks]) for h in range(len(HALVES)))
    return merge_accumulators(list(halves)), (halves[0], halves[1])
