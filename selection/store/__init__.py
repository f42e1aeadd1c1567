"""What every candidate writes on the selection subset: the subset itself and its label maps.

* :mod:`.subset` — the deterministic image subset and its JSON record;
* :mod:`.predictions_writer`, :mod:`.predictions_reader`, :mod:`.predictions_format` — the
  per-candidate predictions file (argmax label maps, Parquet via ``pyarrow.fs``): writing it,
  reading it back (one candidate, or all candidates aligned image by image), and the format both
  share.

The per-candidate evidence files (softmax at sampled pixels) are the validators' input and live
with them, :mod:`selection.validators.evidence`.
"""

from selection.store.predictions_reader import PredictionFile, read_predictions, stream_stacks
from selection.store.predictions_writer import PredictionWriter
from selection.store.subset import load_subset, save_subset, select_subset, subset_hash

__all__ = [
    "PredictionFile",
    "PredictionWriter",
    "load_subset",
    "read_predictions",
    "save_subset",
    "select_subset",
    "stream_stacks",
    "subset_hash",
]
