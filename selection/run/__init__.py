"""Running a selection: the vote's passes, the scoring steps, and the entry points callers use.

* :mod:`.spec` — :class:`SelectionSpec`, the subset, classes and settings every entry point takes;
* :mod:`.runner` — :func:`run_selection`, the one selection sequence (passes, pluggable chunk
  map, scoring steps);
* :mod:`.outcomes` — :func:`vote_outcomes`, a search's trial outcomes to its table and choice
  (the job's vote);
* :mod:`.early_stop` — :func:`rung_selection`, label-free early stopping's cut at a rung;
* :mod:`.plan` — what one pass accumulates (:class:`VotePlan`, :func:`accumulate`, the chunks a
  caller may count elsewhere and hand back as :class:`ChunkCounts`);
* :mod:`.group_scoring`, :mod:`.validator_table` — the scoring steps and a vote group's table of
  every validator.
"""

from selection.run.early_stop import EarlyStopDecision, rung_selection
from selection.run.outcomes import JobVote, Outcome, vote_outcomes
from selection.run.plan import ChunkCounts, VotePlan, accumulate
from selection.run.runner import run_selection
from selection.run.spec import ChunkMap, SelectionSpec

__all__ = [
    "ChunkCounts",
    "ChunkMap",
    "EarlyStopDecision",
    "JobVote",
    "Outcome",
    "SelectionSpec",
    "VotePlan",
    "accumulate",
    "rung_selection",
    "run_selection",
    "vote_outcomes",
]
