"""What a selection is asked to do: the settings every selection entry point shares, in one record.

:func:`~selection.run.runner.run_selection`, :func:`~selection.run.outcomes.vote_outcomes` and
:func:`~selection.run.early_stop.rung_selection` each take a :class:`SelectionSpec` beside what is
particular to the call (the candidates, their files, the outcomes), so a caller such as the job's
vote actor builds the spec once from its config and the entry points pass it on unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from selection.decision.rules import PAPER_RULE
from selection.decision.trimming import DEFAULT_TRIM_RULE, TrimRule
from selection.fusion.arrays import IGNORE_INDEX
from selection.run.plan import ChunkCounts, VotePlan
from selection.validators.evidence import EvidenceSettings

__all__ = ["ChunkMap", "SelectionSpec"]

ChunkMap = Callable[[VotePlan, Sequence[tuple[int, int]]], Sequence[ChunkCounts]]
"""``map_chunks(plan, chunks)``: ``accumulate(plan, start, stop)`` for every (start, stop) chunk, run
wherever the caller likes, returned as a list (any order: merging adds counts)."""


@dataclass(frozen=True)
class SelectionSpec:
    """The subset, the classes and the settings of a selection (defaults: the paper's).

    ``subset_ids``: the subset, in the predictions files' order. ``rule``: ``selection.rule``'s
    value or a :class:`~selection.decision.rules.Rule`. ``trim_outliers``: re-vote without the
    degenerate candidates ``trim_rule`` finds. ``evidence_settings``: what evidence files are
    checked against, when given. ``map_chunks``/``num_chunks``: image chunks per pass, each
    accumulated by ``map_chunks`` (default: in the calling process). ``mode``/``replicates``: the
    search's (``selection.mode``, ``selection.replicates``), read by :func:`vote_outcomes` only.
    """

    subset_ids: Sequence[str]
    num_classes: int
    rule: Any = PAPER_RULE
    trim_outliers: bool = True
    trim_rule: TrimRule = DEFAULT_TRIM_RULE
    ignore_index: int = IGNORE_INDEX
    evidence_settings: EvidenceSettings | None = None
    map_chunks: ChunkMap | None = None
    num_chunks: int = 1
    mode: str = "sweep"
    replicates: int = 1
