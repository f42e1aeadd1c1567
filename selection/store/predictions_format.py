"""The predictions file format (``hiast-select/predictions/v1``), shared by the writer and the reader.

Layout: :mod:`selection.store.predictions_writer`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from selection.fusion.arrays import first_bad_candidate

__all__ = ["PREDICTIONS_FORMAT", "META_KEY", "PREDICTIONS_SCHEMA", "label_problem"]

PREDICTIONS_FORMAT = "hiast-select/predictions/v1"
META_KEY = b"hiast_select.predictions"
PREDICTIONS_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("labels", pa.binary(), nullable=False),
    ]
)


def label_problem(labels: np.ndarray, num_classes: int, ignore_index: int) -> str | None:
    """What is wrong with a label map's labels (the first invalid one), or None."""
    bad = first_bad_candidate(labels.reshape(1, -1), num_classes, ignore_index)
    if bad is None:
        return None
    flat = labels.reshape(-1)
    value = int(flat[(flat >= num_classes) & (flat != ignore_index)][0])
    return f"label {value} is neither a class (0..{num_classes - 1}) nor the ignore index {ignore_index}"
