"""MixVal adapted to segmentation (Hu et al., "Mixed Samples as Probes for Unsupervised Model
Selection in Domain Adaptation", NeurIPS 2023; reference code LHXXHB/MixVal, classification).

MixVal mixes two target inputs, x = w * x_a + (1 - w) * x_b with w = 0.55, labels the mix with the
candidate's own pseudo-label of the dominant input a, and scores the candidate's accuracy on the
mixes. Two probes: "inter-cluster" mixes (the candidate's pseudo-labels of a and b differ: the mix
must keep a's class against b's) and "intra-cluster" mixes (same pseudo-label). Higher is better.

Segmentation, as done here:

* Every subset image a is mixed with one partner b (:func:`selection.validators.mixval_pairs`, the
  same pairs for every candidate), whole images in input space, b resized to a's size
  (:func:`hiast.evidence.predict_mixed`). One extra inference pass over the subset.
* Per pixel, the label of the mix is the candidate's own label of a at that pixel (w > 0.5, so a
  dominates, as in MixVal's mixed one-hot labels). A pixel belongs to the inter probe where the
  candidate's labels of a and b differ there, to the intra probe where they agree. Pixels where a
  or b is labelled ignore (255) are left out; a mix pixel labelled ignore counts as wrong.
* Counts per image, probe and class of a (:func:`mixval_counts`: pixels, correct), summed over the
  subset; stored in the evidence file (``mixval_counts``, (n, 2, C, 2) int64, ~150 KB for 500
  images and 19 classes), not the maps.
* ``mixval_inter`` / ``mixval_intra``: accuracy over the probe's pixels (``average="pixel"``, as
  MixVal's accuracy) or the mean over a's classes of the per-class accuracy (``average="class"``).
  ``mixval``: the mean of the two probes (skada's ``ice_type="both"``). NaN when a probe has no
  pixel: a candidate whose labels never differ between two images has collapsed, and rules rank
  NaN last.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selection.errors import SelectionError
from selection.fusion.majority import IGNORE_INDEX, mean_over_present

__all__ = ["mixval_counts", "mixval", "mixval_inter", "mixval_intra", "probe_accuracy"]

_PROBES = ("inter", "intra")
_AVERAGES = ("pixel", "class")


def mixval_counts(
    labels_a: Any, labels_b: Any, labels_mix: Any, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """(2, C, 2) int64: [probe (inter, intra), class of a, (pixels, correct)] for one mixed pair.

    ``labels_a``/``labels_b``: the candidate's label maps of the two images (b at a's size);
    ``labels_mix``: its label map of the mix. All (H, W) uint8, same shape.
    """
    a, b, m = (np.asarray(x) for x in (labels_a, labels_b, labels_mix))
    if not (a.shape == b.shape == m.shape) or a.ndim != 2:
        raise SelectionError(
            f"MixVal: label maps must be (H, W) of one shape, got {a.shape}, {b.shape}, {m.shape}"
        )
    c = int(num_classes)
    for name, x in (("a", a), ("b", b), ("mix", m)):
        if not np.issubdtype(x.dtype, np.integer):
            raise SelectionError(f"MixVal: labels of {name} must be integers, got {x.dtype}")
        bad = (x < 0) | ((x >= c) & (x != ignore_index))
        if bad.any():
            raise SelectionError(
                f"MixVal: label {int(x[bad][0])} of {name} is neither a class nor {ignore_index}"
            )
    a, b, m = (x.reshape(-1).astype(np.int64) for x in (a, b, m))
    valid = (a != ignore_index) & (b != ignore_index)
    correct = m == a
    out = np.zeros((2, c, 2), np.int64)
    for k, mask in enumerate((valid & (a != b), valid & (a == b))):
        out[k, :, 0] = np.bincount(a[mask], minlength=c)[:c]
        out[k, :, 1] = np.bincount(a[mask & correct], minlength=c)[:c]
    return out


def _totals(counts: Any) -> np.ndarray:
    cnt = np.asarray(counts)
    if cnt.ndim < 3 or cnt.shape[-3] != 2 or cnt.shape[-1] != 2:
        raise SelectionError(f"MixVal counts must be (..., 2, C, 2), got shape {cnt.shape}")
    if (cnt < 0).any() or (cnt[..., 1] > cnt[..., 0]).any():
        raise SelectionError("MixVal counts must be >= 0 with correct <= pixels")
    return cnt.reshape(-1, *cnt.shape[-3:]).sum(axis=0, dtype=np.int64)


def probe_accuracy(counts: Any, probe: str, average: str = "pixel") -> float:
    """Accuracy on one probe ("inter" or "intra") from (..., 2, C, 2) counts summed over images."""
    if probe not in _PROBES:
        raise SelectionError(f"MixVal probe must be one of {_PROBES}, got {probe!r}")
    if average not in _AVERAGES:
        raise SelectionError(f"MixVal average must be one of {_AVERAGES}, got {average!r}")
    t = _totals(counts)[_PROBES.index(probe)].astype(np.float64)
    if average == "pixel":
        return float(t[:, 1].sum() / t[:, 0].sum()) if t[:, 0].sum() > 0 else float("nan")
    per_class = np.full(t.shape[0], np.nan)
    np.divide(t[:, 1], t[:, 0], out=per_class, where=t[:, 0] > 0)
    return float(mean_over_present(per_class))


def mixval_inter(counts: Any, average: str = "pixel") -> float:
    """Accuracy on mixes of pixels the candidate labels differently in the two images (higher is better)."""
    return probe_accuracy(counts, "inter", average)


def mixval_intra(counts: Any, average: str = "pixel") -> float:
    """Accuracy on mixes of pixels the candidate labels alike in the two images (higher is better)."""
    return probe_accuracy(counts, "intra", average)


def mixval(counts: Any, average: str = "pixel") -> float:
    """Mean of the inter and intra probes' accuracies; NaN if either probe is empty (higher is better)."""
    return float(np.mean([mixval_inter(counts, average), mixval_intra(counts, average)]))
