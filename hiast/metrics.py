"""Dataset-level segmentation metrics (mIoU), mmsegmentation style.

The maths is pure functions over arrays; ``SegmentationMetric`` only accumulates their outputs.
Intersections and unions are *summed over the whole dataset and divided once*: the mean of
per-image IoUs is a different (and, for rare classes, noisier) number that no paper reports.

Conventions:
- ``confusion_matrix`` rows are label classes, columns predicted classes; int64 counts.
- Pixels whose *label* is ``ignore_index`` are left out entirely.
- Pixels with a valid label whose *prediction* is outside ``[0, C)`` (e.g. 255 from a thresholded
  pseudo-label) cannot sit in a C x C matrix. They are wrong predictions, so they are counted per
  label class in a separate ``misses`` vector and added to that class's union only: the label
  class loses IoU, and no predicted class gains a false positive it did not make.
- A class with an empty union (absent from labels and predictions) has IoU NaN, and means skip
  NaNs; an average over classes that are all NaN is NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "confusion_matrix",
    "confusion_and_misses",
    "iou_from_confusion",
    "mean_iou",
    "SegmentationMetric",
]


def _as_int_array(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "ui":
        raise TypeError(f"{what} must hold integer class ids (an argmax, not scores), got {arr.dtype}")
    return arr


def confusion_and_misses(
    pred: Any, label: Any, num_classes: int, ignore_index: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    """The (C, C) confusion matrix and the (C,) per-label-class count of out-of-range predictions.

    ``pred`` and ``label`` are integer numpy arrays or torch tensors of one shape (any number of
    dimensions: one image or a batch). Raises ValueError on a shape mismatch or a label value
    outside ``[0, C)`` that is not ``ignore_index``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    p = _as_int_array(pred, "pred")
    t = _as_int_array(label, "label")
    if p.shape != t.shape:
        raise ValueError(f"pred shape {p.shape} differs from label shape {t.shape}")
    c = int(num_classes)
    # int64 before any arithmetic: label * C overflows uint8 and uint16 alike.
    t = t.reshape(-1).astype(np.int64, copy=False)
    p = p.reshape(-1).astype(np.int64, copy=False)
    valid = t != ignore_index
    bad_label = valid & ((t < 0) | (t >= c))
    if bad_label.any():
        raise ValueError(
            f"label holds values {np.unique(t[bad_label])[:10].tolist()} outside 0..{c - 1} "
            f"that are not ignore_index {ignore_index}"
        )
    pred_ok = (p >= 0) & (p < c)
    hit = valid & pred_ok
    cm = np.bincount(t[hit] * c + p[hit], minlength=c * c).reshape(c, c)
    misses = np.bincount(t[valid & ~pred_ok], minlength=c)
    return cm.astype(np.int64, copy=False), misses.astype(np.int64, copy=False)


def confusion_matrix(pred: Any, label: Any, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """(C, C) int64 confusion matrix, rows = label, cols = prediction; ignore-label pixels left out.

    Labelled pixels with an out-of-range prediction are not in the matrix: use
    ``confusion_and_misses`` (or ``SegmentationMetric``) when predictions may hold 255.
    """
    return confusion_and_misses(pred, label, num_classes, ignore_index)[0]


def iou_from_confusion(cm: np.ndarray, misses: np.ndarray | None = None) -> np.ndarray:
    """Per-class IoU = TP / (label area + predicted area - TP + misses); NaN where the union is 0."""
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got shape {cm.shape}")
    inter = np.diag(cm)
    union = cm.sum(axis=1) + cm.sum(axis=0) - inter
    if misses is not None:
        misses = np.asarray(misses, dtype=np.int64)
        if misses.shape != inter.shape:
            raise ValueError(f"misses must have shape {inter.shape}, got {misses.shape}")
        union = union + misses
    iou = np.full(inter.shape, np.nan, dtype=np.float64)
    np.divide(inter, union, out=iou, where=union > 0)
    return iou


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")  # no RuntimeWarning on all-NaN


def _check_classes(classes: Sequence[int], num_classes: int) -> np.ndarray:
    idx = np.asarray(list(classes), dtype=np.int64)
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError("a class list must be a non-empty list of class indices")
    if (idx < 0).any() or (idx >= num_classes).any():
        raise ValueError(f"class list {idx.tolist()} has indices outside 0..{num_classes - 1}")
    if len(set(idx.tolist())) != idx.size:
        raise ValueError(f"class list {idx.tolist()} names a class twice")
    return idx


def mean_iou(cm: np.ndarray, classes: Sequence[int] | None = None, misses: np.ndarray | None = None) -> float:
    """NaN-aware mean IoU over ``classes`` (all classes when None), e.g. ``MIOU16_CLASSES``.

    A plain mean over the listed classes: SYNTHIA's mIoU-16/13 are *not* ``mean(iou19) * 19/16``
    (HIAST's shortcut), which only agrees when the dropped classes score exactly 0.
    """
    iou = iou_from_confusion(cm, misses)
    if classes is not None:
        iou = iou[_check_classes(classes, len(iou))]
    return _nanmean(iou)


class SegmentationMetric:
    """Accumulates confusion counts over a dataset; ``compute()`` divides once.

    Args:
        num_classes: C; predictions and labels are class indices in ``[0, C)``.
        ignore_index: label value left out of every count.
        class_names: optional names for the per-class table (length C).
        class_lists: named subsets to average, e.g. ``{"miou16": MIOU16_CLASSES}``; each name
            becomes a key of ``compute()``.
    """

    _RESERVED = ("miou", "iou", "aacc", "class_names")

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        class_lists: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        names = class_names if class_names is not None else [str(i) for i in range(num_classes)]
        self.class_names = list(names)
        self.class_lists: dict[str, list[int]] = {}
        for key, classes in (class_lists or {}).items():
            if key in self._RESERVED:
                raise ValueError(f"class list name {key!r} clashes with a result key {self._RESERVED}")
            self.class_lists[key] = _check_classes(classes, self.num_classes).tolist()
        self.reset()

    def reset(self) -> None:
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.misses = np.zeros(self.num_classes, dtype=np.int64)

    def update(self, pred: Any, label: Any) -> None:
        """Add one image or a batch (any matching shapes)."""
        cm, misses = confusion_and_misses(pred, label, self.num_classes, self.ignore_index)
        self.confusion += cm
        self.misses += misses

    def merge(self, other: SegmentationMetric) -> None:
        """Add another accumulator's counts (e.g. from another worker)."""
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError("cannot merge metrics with different num_classes or ignore_index")
        self.confusion += other.confusion
        self.misses += other.misses

    def iou(self) -> np.ndarray:
        return iou_from_confusion(self.confusion, self.misses)

    def compute(self) -> dict[str, Any]:
        """``miou`` (all classes), ``iou`` (list, NaN for absent classes), ``aacc`` (pixel accuracy),
        ``class_names``, and one mean per named class list."""
        iou = self.iou()
        labelled = self.confusion.sum() + self.misses.sum()
        out: dict[str, Any] = {
            "miou": _nanmean(iou),
            "iou": iou.tolist(),
            "aacc": float(np.trace(self.confusion) / labelled) if labelled else float("nan"),
            "class_names": list(self.class_names),
        }
        for key, classes in self.class_lists.items():
            out[key] = _nanmean(iou[classes])
        return out

    def table(self) -> str:
        """Per-class IoU as a plain-text table (percent), then the means."""
        res = self.compute()
        width = max(len(n) for n in self.class_names)
        rows = zip(self.class_names, res["iou"], strict=True)
        lines = [f"{name:<{width}}  {100 * v:6.2f}" for name, v in rows]
        lines.append(f"{'mIoU':<{width}}  {100 * res['miou']:6.2f}")
        lines += [f"{key:<{width}}  {100 * res[key]:6.2f}" for key in self.class_lists]
        return "\n".join(lines)
