"""The benchmark's committed tables, one owner each: the per-candidate scores and the per-image target-
val counts.
"""

from __future__ import annotations

from selection_bench.tables.scores import (
    BASE_COLUMNS,
    PARAM,
    ROUND1,
    VAL,
    Group,
    ScoresTable,
    TableError,
    read_parquet_checked,
    read_scores_table,
    write_parquet_atomic,
    write_scores_table,
)
from selection_bench.tables.target_images import (
    COLUMNS,
    TargetImages,
    image_counts,
    read_target_images,
    subset_miou,
    write_target_images,
)

__all__ = [
    "BASE_COLUMNS",
    "COLUMNS",
    "Group",
    "PARAM",
    "ROUND1",
    "ScoresTable",
    "TableError",
    "TargetImages",
    "VAL",
    "image_counts",
    "read_parquet_checked",
    "read_scores_table",
    "read_target_images",
    "subset_miou",
    "write_parquet_atomic",
    "write_scores_table",
    "write_target_images",
]
