"""The selection sequence, written once: stream stored outputs, vote, trim, score, diagnose, choose, audit.

:func:`run_selection` is the only place that runs it. Pass 1 votes every group and window, runs
the leave-neighbours-out votes and accumulates every evidence validator from the evidence files;
if the trim rule flags degenerate candidates, pass 2 re-votes only the affected groups without
them. Each pass splits the subset's images into chunks and runs :func:`selection.plan.accumulate`
on every chunk through ``map_chunks``: in this process by default, or anywhere the caller likes
(the Ray vote actor passes one that fans the chunks out over Ray tasks). Counts add exactly, so the
result does not depend on the chunking; each chunk keeps the subset's two halves apart, which
gives every score on each half too. :func:`score_from_accumulators` then runs the scoring steps in
order (:mod:`selection.validator_table`, :mod:`selection.centre_bias`, :mod:`selection.scoring`
with the rule and :mod:`selection.confidence`, :mod:`selection.tables`, :mod:`selection.choice`,
:mod:`selection.audit`, :mod:`selection.sweeps`). How the choice is made: :mod:`selection.choice`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from selection.audit import audit_selection
from selection.candidates import GRID_GROUP, Candidate
from selection.centre_bias import assess_centre_bias, windows_table
from selection.choice import choose
from selection.errors import SelectionError
from selection.evidence import EvidenceSettings
from selection.fusion import IGNORE_INDEX
from selection.plan import (
    ChunkCounts,
    PlanAccumulator,
    VotePlan,
    accumulate,
    image_chunks,
    make_plan,
    merge_chunks,
)
from selection.result import SelectionResult
from selection.rules import PAPER_RULE, Rule, parse_rule
from selection.scores import ScoreValues
from selection.scoring import (
    COMPUTED_SCORES,
    check_extra_scores,
    check_trimmed,
    check_true_miou,
    computed_scores,
    group_notes,
    group_scores,
    scores_of,
    seed_scores,
)
from selection.sweeps import sweep_table
from selection.tables import build_results_table
from selection.trimming import DEFAULT_TRIM_RULE, TrimRule
from selection.validator_table import group_tables
from selection.validators import EVIDENCE_VALIDATORS

__all__ = [
    "ChunkMap",
    "Halves",
    "SelectionResult",
    "accumulate_chunks",
    "run_selection",
    "score_from_accumulators",
]

ChunkMap = Callable[[VotePlan, Sequence[tuple[int, int]]], Sequence[ChunkCounts]]
"""``map_chunks(plan, chunks)``: ``accumulate(plan, start, stop)`` for every (start, stop) chunk, run
wherever the caller likes, returned as a list (any order: merging adds counts)."""

Halves = tuple[tuple[PlanAccumulator, PlanAccumulator | None], tuple[PlanAccumulator, PlanAccumulator | None]]
"""The (pass 1, pass 2) counts of each half of the subset (:data:`selection.plan.HALVES`)."""


def accumulate_chunks(
    plan: VotePlan, chunks: Sequence[tuple[int, int]], *, device: str | None = None
) -> list[ChunkCounts]:
    """The default :data:`ChunkMap`: every chunk in this process, one after the other."""
    return [accumulate(plan, start, stop, device=device) for start, stop in chunks]


def _run_pass(
    plan: VotePlan, map_chunks: ChunkMap | None, num_chunks: int, device: str | None
) -> tuple[PlanAccumulator, tuple[PlanAccumulator, PlanAccumulator]]:
    """The whole pass and its two halves (merge_chunks checks every image was counted once)."""
    n = len(plan.subset_ids)
    chunks = image_chunks(n, num_chunks) or [(0, n)]
    parts = list(
        map_chunks(plan, chunks) if map_chunks is not None else accumulate_chunks(plan, chunks, device=device)
    )
    return merge_chunks(plan, parts)


def run_selection(
    candidates: Sequence[Candidate],
    prediction_uris: Mapping[str, str | os.PathLike[str] | Sequence[str | os.PathLike[str]]],
    subset_ids: Sequence[str],
    num_classes: int,
    *,
    extra_scores: Mapping[str, ScoreValues | Mapping[str, float]] | None = None,
    true_miou: Mapping[str, float] | None = None,
    ignore_index: int = IGNORE_INDEX,
    trim_outliers: bool = True,
    trim_rule: TrimRule = DEFAULT_TRIM_RULE,
    centre_bias: bool = True,
    agreement: bool = True,
    device: str | None = None,
    map_chunks: ChunkMap | None = None,
    num_chunks: int = 1,
    evidence_uris: Mapping[str, str | os.PathLike[str]] | None = None,
    evidence_settings: EvidenceSettings | None = None,
    rule: Any = PAPER_RULE,
) -> SelectionResult:
    """Score every candidate by every validator its outputs allow; choose by ``rule`` (two passes at most).

    ``prediction_uris``: candidate id -> predictions file (local path or URI), or a list of
    replicate files (the first votes; all feed seed agreement). ``subset_ids``: the subset, in the
    files' order. ``evidence_uris``: candidate id -> evidence file (:mod:`selection.evidence`;
    candidates without one get NaN evidence scores), checked against ``evidence_settings`` when
    given. ``rule``: ``selection.rule``'s value or a :class:`~selection.rules.Rule` (default: the
    paper's F-mIoU). ``extra_scores``: name -> values per candidate id for scores computed
    elsewhere; a registered validator the selection does not compute here takes its registered
    direction (and rules may use it), others need :class:`~selection.scores.ScoreValues`.
    ``true_miou``: candidate id -> mIoU on labelled data; enables the audit. ``agreement=False``
    skips the candidate-vs-candidate matrix (the costliest part on large maps). ``num_chunks``:
    image chunks per pass, each accumulated by ``map_chunks`` (default: :func:`accumulate_chunks`,
    in this process on ``device``). Raises SelectionError/PredictionStoreError naming candidate,
    image or file; a bad rule, scores or labels before any file is read.
    """
    ids = [c.id for c in candidates]
    parsed = parse_rule(rule)
    check_extra_scores(extra_scores, ids, computed_scores(bool(evidence_uris)))
    check_true_miou(true_miou, ids)
    _check_rule_inputs(parsed, prediction_uris, evidence_uris, extra_scores)
    plan = make_plan(
        candidates,
        prediction_uris,
        subset_ids,
        num_classes,
        ignore_index=ignore_index,
        trim_rule=trim_rule if trim_outliers else None,
        centre_bias=centre_bias,
        agreement=agreement,
        evidence_uris=evidence_uris,
        evidence_settings=evidence_settings,
    )
    first, first_halves = _run_pass(plan, map_chunks, num_chunks, device)
    second_plan = plan.trimmed(first)
    second, second_halves = None, (None, None)
    if second_plan is not None:
        second, second_halves = _run_pass(second_plan, map_chunks, num_chunks, device)
    halves = ((first_halves[0], second_halves[0]), (first_halves[1], second_halves[1]))
    return score_from_accumulators(
        plan, first, second, halves=halves, extra_scores=extra_scores, true_miou=true_miou, rule=parsed
    )


def _check_rule_inputs(
    rule: Rule,
    prediction_uris: Mapping[str, Any],
    evidence_uris: Mapping[str, Any] | None,
    extra_scores: Mapping[str, Any] | None,
) -> None:
    """Refuse, before any file is read, a rule whose validators nothing given here can compute."""
    can = set(COMPUTED_SCORES) - {"seed_agreement"} | set(extra_scores or {})
    if evidence_uris:
        can |= set(EVIDENCE_VALIDATORS)
    if any(not isinstance(u, (str, os.PathLike)) and len(u) >= 2 for u in prediction_uris.values()):
        can.add("seed_agreement")
    missing = sorted(rule.requires - can)
    if missing:
        raise SelectionError(
            f"rule {rule.text} uses {', '.join(missing)}, which this selection cannot compute "
            "(evidence validators need evidence_uris; seed_agreement needs replicate files)"
        )


def score_from_accumulators(
    plan: VotePlan,
    first: PlanAccumulator,
    trimmed: PlanAccumulator | None = None,
    *,
    halves: Halves | None = None,
    extra_scores: Mapping[str, ScoreValues | Mapping[str, float]] | None = None,
    true_miou: Mapping[str, float] | None = None,
    rule: Any = PAPER_RULE,
) -> SelectionResult:
    """Turn merged pass-1 (and, if trimming flagged anyone, pass-2) counts into a SelectionResult.

    The scoring half of :func:`run_selection` (arguments as there), for counts accumulated elsewhere.
    ``halves``: the same counts of each half of the subset (:data:`Halves`), for the confidence's
    noise check; without them that check reports that it could not be made.
    """
    if first.plan.groups != plan.groups or first.plan.members != plan.members:
        raise SelectionError("the pass-1 accumulator was not built from this plan")
    ids = list(plan.candidate_ids)
    parsed = parse_rule(rule)
    extra, extra_dirs = check_extra_scores(extra_scores, ids, computed_scores(bool(plan.evidence)))
    check_true_miou(true_miou, ids)
    mode = "grid" if plan.vote_groups == (GRID_GROUP,) else "sweep"

    degenerate_in = check_trimmed(plan, first, trimmed)
    degenerate = sorted({i for v in degenerate_in.values() for i in v}, key=ids.index)
    window_scores = {w.name: scores_of(first.fusion[w.name], w.candidate_ids) for w in plan.windows}
    centre = assess_centre_bias(plan.windows, window_scores, mode, plan.groups, degenerate)
    seed, agreement = seed_scores(plan, first)
    tables = group_tables(plan, first, trimmed, degenerate_in, seed_agreement=seed, extra=extra)
    half_tables = None
    if halves is not None:
        half_tables = [
            group_tables(plan, f, t, degenerate_in, seed_agreement=seed_scores(plan, f)[0], extra=extra)
            for f, t in halves
        ]
    groups = group_scores(
        plan,
        first,
        trimmed,
        degenerate_in,
        tables=tables,
        half_tables=half_tables,
        rule=parsed,
        centre=centre,
    )
    notes = group_notes(groups, plan.trim_rule) + centre.notes
    table = build_results_table(
        list(plan.candidates),
        groups,
        agreement=agreement,
        extra_scores=extra,
        seed_agreement=seed,
        replicates={c: len(plan.replicates[c]) for c in ids},
        centre_bound_ids=centre.candidate_ids,
        true_miou=true_miou,
    )
    choice = choose(
        plan.candidates,
        groups,
        mode=mode,
        centre=centre,
        degenerate=degenerate,
        trim_rule=plan.trim_rule,
        subset_ids=plan.subset_ids,
        num_classes=plan.num_classes,
        notes=notes,
        rule=parsed,
    )
    windows = windows_table(plan.windows, window_scores, centre.picks, degenerate, true_miou)
    audit = None
    if true_miou is not None:
        audit = audit_selection(groups, plan.candidates, true_miou, extra, extra_dirs, parsed)
    sweeps = {g: sweep_table(gs, plan.candidates, parsed, true_miou) for g, gs in groups.items()}
    return SelectionResult(
        table,
        choice,
        list(choice.notes),
        windows,
        list(plan.subset_ids),
        audit,
        centre.verdicts,
        validators=tables,
        sweeps=sweeps,
    )
