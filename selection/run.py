"""The selection sequence, written once: stream stored predictions, vote, trim, diagnose, choose, audit.

:func:`run_selection` is the only place that runs it. Pass 1 votes every group and window; if the
trim rule flags degenerate candidates, pass 2 re-votes only the affected groups without them. Each
pass splits the subset's images into chunks and runs :func:`selection.plan.accumulate` on every
chunk through ``map_chunks``: in this process by default, or anywhere the caller likes (the Ray
vote actor passes one that fans the chunks out over Ray tasks). Counts add exactly, so the result
does not depend on the chunking. :func:`score_from_accumulators` then runs the scoring steps in
order (:mod:`selection.scoring`, :mod:`selection.centre_bias`, :mod:`selection.tables`,
:mod:`selection.choice`, :mod:`selection.audit`). How the choice is made: :mod:`selection.choice`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from selection.audit import audit_selection
from selection.candidates import GRID_GROUP, Candidate
from selection.centre_bias import assess_centre_bias, windows_table
from selection.choice import choose
from selection.errors import SelectionError
from selection.fusion import IGNORE_INDEX
from selection.plan import PlanAccumulator, VotePlan, accumulate, image_chunks, make_plan, merge_accumulators
from selection.result import SelectionResult
from selection.scores import ScoreValues
from selection.scoring import (
    check_extra_scores,
    check_trimmed,
    check_true_miou,
    group_notes,
    group_scores,
    scores_of,
    seed_scores,
)
from selection.tables import build_results_table
from selection.trimming import DEFAULT_TRIM_RULE, TrimRule

__all__ = ["ChunkMap", "SelectionResult", "accumulate_chunks", "run_selection", "score_from_accumulators"]

ChunkMap = Callable[[VotePlan, Sequence[tuple[int, int]]], Sequence[PlanAccumulator]]
"""``map_chunks(plan, chunks)``: ``accumulate(plan, start, stop)`` for every (start, stop) chunk, run
wherever the caller likes, returned as a list (any order: merging adds counts)."""


def accumulate_chunks(
    plan: VotePlan, chunks: Sequence[tuple[int, int]], *, device: str | None = None
) -> list[PlanAccumulator]:
    """The default :data:`ChunkMap`: every chunk in this process, one after the other."""
    return [accumulate(plan, start, stop, device=device) for start, stop in chunks]


def _run_pass(
    plan: VotePlan, map_chunks: ChunkMap | None, num_chunks: int, device: str | None
) -> PlanAccumulator:
    n = len(plan.subset_ids)
    chunks = image_chunks(n, num_chunks) or [(0, n)]
    parts = list(
        map_chunks(plan, chunks) if map_chunks is not None else accumulate_chunks(plan, chunks, device=device)
    )
    total = parts[0] if len(parts) == 1 else merge_accumulators(parts)
    if total.images != n:  # a map function that lost or repeated a chunk would miscount silently
        raise SelectionError(
            f"the {plan.stage} pass accumulated {total.images} of the subset's {n} images over "
            f"{len(parts)} part(s) for {len(chunks)} chunk(s): map_chunks must run every chunk once"
        )
    return total


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
) -> SelectionResult:
    """Score every candidate from its stored predictions and choose (two passes at most).

    ``prediction_uris``: candidate id -> predictions file (local path or URI), or a list of
    replicate files (the first votes; all feed seed agreement). ``subset_ids``: the subset, in the
    files' order. ``extra_scores``: name -> values per candidate id; known names (mean_confidence,
    mean_entropy, rescale_consistency, source_val_miou) take their registered direction, others
    need :class:`~selection.scores.ScoreValues`. ``true_miou``: candidate id -> mIoU on labelled
    data; enables the audit. ``agreement=False`` skips the candidate-vs-candidate matrix (the
    costliest part on large maps). ``num_chunks``: image chunks per pass, each accumulated by
    ``map_chunks`` (default: :func:`accumulate_chunks`, in this process on ``device``).
    Raises SelectionError/PredictionStoreError naming candidate, image or file; bad scores or
    labels before any file is read.
    """
    ids = [c.id for c in candidates]
    check_extra_scores(extra_scores, ids)
    check_true_miou(true_miou, ids)
    plan = make_plan(
        candidates,
        prediction_uris,
        subset_ids,
        num_classes,
        ignore_index=ignore_index,
        trim_rule=trim_rule if trim_outliers else None,
        centre_bias=centre_bias,
        agreement=agreement,
    )
    first = _run_pass(plan, map_chunks, num_chunks, device)
    second_plan = plan.trimmed(first)
    second = _run_pass(second_plan, map_chunks, num_chunks, device) if second_plan is not None else None
    return score_from_accumulators(plan, first, second, extra_scores=extra_scores, true_miou=true_miou)


def score_from_accumulators(
    plan: VotePlan,
    first: PlanAccumulator,
    trimmed: PlanAccumulator | None = None,
    *,
    extra_scores: Mapping[str, ScoreValues | Mapping[str, float]] | None = None,
    true_miou: Mapping[str, float] | None = None,
) -> SelectionResult:
    """Turn merged pass-1 (and, if trimming flagged anyone, pass-2) counts into a SelectionResult.

    The scoring half of :func:`run_selection` (arguments as there), for counts accumulated elsewhere.
    """
    if first.plan.groups != plan.groups or first.plan.members != plan.members:
        raise SelectionError("the pass-1 accumulator was not built from this plan")
    ids = list(plan.candidate_ids)
    extra, extra_dirs = check_extra_scores(extra_scores, ids)
    check_true_miou(true_miou, ids)
    mode = "grid" if plan.vote_groups == (GRID_GROUP,) else "sweep"

    degenerate_in = check_trimmed(plan, first, trimmed)
    groups = group_scores(plan, first, trimmed, degenerate_in)
    notes = group_notes(groups, plan.trim_rule)
    degenerate = sorted({i for v in degenerate_in.values() for i in v}, key=ids.index)
    window_scores = {w.name: scores_of(first.fusion[w.name], w.candidate_ids) for w in plan.windows}
    centre = assess_centre_bias(plan.windows, window_scores, mode, plan.groups, degenerate)
    notes += centre.notes
    seed, agreement = seed_scores(plan, first)
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
    )
    windows = windows_table(plan.windows, window_scores, centre.picks, degenerate, true_miou)
    audit = None
    if true_miou is not None:
        audit = audit_selection(groups, plan.candidates, true_miou, extra, extra_dirs, seed)
    return SelectionResult(
        table, choice, list(choice.notes), windows, list(plan.subset_ids), audit, centre.verdicts
    )
