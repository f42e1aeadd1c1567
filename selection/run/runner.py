"""The selection sequence, written once: stream stored outputs, vote, trim, score, diagnose, choose, audit.

:func:`run_selection` is the only place that runs it. Pass 1 votes every group and window, runs
the leave-neighbours-out votes and accumulates every evidence validator from the evidence files;
if the trim rule flags degenerate candidates, pass 2 re-votes only the affected groups without
them. Each pass splits the subset's images into chunks and runs :func:`selection.run.plan.accumulate`
on every chunk through ``map_chunks``: in this process by default, or anywhere the caller likes
(the Ray vote actor passes one that fans the chunks out over Ray tasks). Counts add exactly, so the
result does not depend on the chunking; each chunk keeps the subset's two halves apart, which
gives every score on each half too. :func:`score_from_accumulators` then runs the scoring steps in
order (:mod:`.validator_table`, :mod:`selection.decision.centre_bias`, :mod:`.group_scoring` with
the rule and :mod:`selection.decision.confidence`, :mod:`selection.tables`,
:mod:`selection.outputs.choice`, :mod:`selection.decision.audit`, :mod:`selection.outputs.sweeps`).
How the choice is made: :mod:`selection.outputs.choice`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from selection.candidates import GRID_GROUP, Candidate
from selection.decision.audit import audit_selection
from selection.decision.centre_bias import assess_centre_bias, windows_table
from selection.decision.rules import PAPER_RULE, Rule, parse_rule
from selection.errors import SelectionError
from selection.outputs.choice import choose
from selection.outputs.result import SelectionResult
from selection.outputs.sweeps import sweep_table
from selection.run.group_scoring import (
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
from selection.run.plan import (
    ChunkCounts,
    PlanAccumulator,
    VotePlan,
    accumulate,
    image_chunks,
    make_plan,
    merge_chunks,
)
from selection.run.spec import ChunkMap, SelectionSpec
from selection.run.validator_table import group_tables
from selection.tables import build_results_table
from selection.validators import EVIDENCE_VALIDATORS
from selection.validators.registry import ScoreValues

__all__ = [
    "ChunkMap",
    "Halves",
    "SelectionResult",
    "accumulate_chunks",
    "run_selection",
    "score_from_accumulators",
]

Halves = tuple[tuple[PlanAccumulator, PlanAccumulator | None], tuple[PlanAccumulator, PlanAccumulator | None]]
"""The (pass 1, pass 2) counts of each half of the subset (:data:`selection.run.plan.HALVES`)."""


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
    spec: SelectionSpec,
    *,
    extra_scores: Mapping[str, ScoreValues | Mapping[str, float]] | None = None,
    true_miou: Mapping[str, float] | None = None,
    centre_bias: bool = True,
    agreement: bool = True,
    device: str | None = None,
    evidence_uris: Mapping[str, str | os.PathLike[str]] | None = None,
) -> SelectionResult:
    """Score every candidate by every validator its outputs allow; choose by the rule (two passes at most).

    ``prediction_uris``: candidate id -> predictions file (local path or URI), or a list of
    replicate files (the first votes; all feed seed agreement); ``spec``: the subset (in the files'
    order), the classes and the settings (:class:`~selection.run.spec.SelectionSpec`; image chunks
    default to :func:`accumulate_chunks`, in this process on ``device``). ``evidence_uris``:
    candidate id -> evidence file (:mod:`selection.validators.evidence`; candidates without one get
    NaN evidence scores), checked against ``spec.evidence_settings`` when given. ``extra_scores``:
    name -> values per candidate id for scores computed elsewhere; a registered validator the
    selection does not compute here takes its registered direction (and rules may use it), others
    need :class:`~selection.validators.registry.ScoreValues`. ``true_miou``: candidate id -> mIoU
    on labelled data; enables the audit. ``agreement=False`` skips the candidate-vs-candidate
    matrix (the costliest part on large maps). Raises SelectionError/PredictionStoreError naming
    candidate, image or file; a bad rule, scores or labels before any file is read.
    """
    ids = [c.id for c in candidates]
    parsed = parse_rule(spec.rule)
    check_extra_scores(extra_scores, ids, computed_scores(bool(evidence_uris)))
    check_true_miou(true_miou, ids)
    _check_rule_inputs(parsed, prediction_uris, evidence_uris, extra_scores)
    plan = make_plan(
        candidates,
        prediction_uris,
        spec.subset_ids,
        spec.num_classes,
        ignore_index=spec.ignore_index,
        trim_rule=spec.trim_rule if spec.trim_outliers else None,
        centre_bias=centre_bias,
        agreement=agreement,
        evidence_uris=evidence_uris,
        evidence_settings=spec.evidence_settings,
    )
    first, first_halves = _run_pass(plan, spec.map_chunks, spec.num_chunks, device)
    second_plan = plan.trimmed(first)
    second, second_halves = None, (None, None)
    if second_plan is not None:
        second, second_halves = _run_pass(second_plan, spec.map_chunks, spec.num_chunks, device)
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
