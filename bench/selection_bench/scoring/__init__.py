"""The score stage: the job's outputs and selection on every trained candidate, and the rows it adds to
the committed tables.
"""

from __future__ import annotations

from selection_bench.scoring.rows import COUNTS_FILE, group_rows, round1_truth, target_counts
from selection_bench.scoring.score import (
    Scored,
    read_scores,
    rule_tables,
    score_all,
    score_seed,
    seed_candidates,
    subset_of,
    tables_of,
    write_outputs,
)

__all__ = [
    "COUNTS_FILE",
    "Scored",
    "group_rows",
    "read_scores",
    "round1_truth",
    "rule_tables",
    "score_all",
    "score_seed",
    "seed_candidates",
    "subset_of",
    "tables_of",
    "target_counts",
    "write_outputs",
]
