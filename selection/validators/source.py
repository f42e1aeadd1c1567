"""Source-val mIoU: the candidate's mIoU on the labelled source validation split.

Computed from full label maps in the source-val pass (:mod:`ray_jobs.candidate_outputs`, the same
definition as :func:`hiast.predict.evaluate`: dataset-level IoU, mean over ``data.eval_classes``)
and stored as the evidence scalar ``source_val_miou``. Higher is better. Blind to the domain gap:
it rewards the candidates that self-train least; kept as a baseline and as a stage of two-stage
rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from selection.errors import SelectionError

__all__ = ["source_val_miou", "SCALAR"]

SCALAR = "source_val_miou"


def source_val_miou(scalars: Mapping[str, float]) -> float:
    """The recorded source-val mIoU from a candidate's evidence scalars (a fraction in [0, 1])."""
    if SCALAR not in scalars:
        raise SelectionError(f"no {SCALAR!r} recorded (is data.source_val set?)")
    v = float(scalars[SCALAR])
    if not (math.isnan(v) or 0.0 <= v <= 1.0):
        raise SelectionError(f"{SCALAR} must be a fraction in [0, 1], got {v!r}")
    return v
