"""Fusion: the majority vote over candidates' label maps and what it scores them by.

* :mod:`.majority` — ``majority_vote``, ``f_miou`` (paper §4.5) and ``FusionAccumulator``
  (streaming, mergeable);
* :mod:`.pairwise` — ``PairwiseAgreement``, candidate-vs-candidate agreement;
* :mod:`.numpy_backend`, :mod:`.torch_backend` — the two back-ends (identical counts);
* :mod:`.arrays` — the array helpers they and the predictions store share.
"""

from selection.fusion.arrays import IGNORE_INDEX, iou_from_counts, mean_over_present
from selection.fusion.majority import FusionAccumulator, f_miou, majority_vote
from selection.fusion.pairwise import PairwiseAgreement

__all__ = [
    "IGNORE_INDEX",
    "FusionAccumulator",
    "PairwiseAgreement",
    "f_miou",
    "iou_from_counts",
    "majority_vote",
    "mean_over_present",
]
