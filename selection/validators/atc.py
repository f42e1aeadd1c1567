"""Per-class ATC (Garg et al., "Leveraging Unlabeled Data to Predict Out-of-Distribution
Performance", ICLR 2022; reference code saurabhgarg1996/ATC_code) turned into a predicted target mIoU.

ATC fits a threshold t on a confidence score on labelled source-val data so that the share of
samples scoring above t equals the source accuracy, then predicts target accuracy as the share of
target samples above t. The score here is ATC-NE's negative entropy (``score="neg_entropy"``,
the better variant in the paper) or the max probability (``score="max_conf"``).

Segmentation, per class, as done here (all on the evidence's sampled pixels):

1. Thresholds per predicted class k, from the candidate's own source-val predictions: among the
   source pixels it labels k (ignore pixels left out), K_k are correct; t_k is the K_k-th highest
   score. Ties at t_k (float16 probabilities tie often) get a fractional share q_k so that exactly
   K_k source pixels count as above: count(s > t_k) + q_k * count(s == t_k) = K_k. ATC_code's
   ``find_ATC_threshold`` minimises |FP - FN| over sorted scores, which is the same threshold up
   to its inclusive comparison (it counts one more source sample above t).
   A class the candidate never predicts on source-val gets the threshold fitted on all its
   source-val pixels together.
2. Predicted true positives on the target: TP_k = count(s > t_k) + q_k * count(s == t_k) over the
   target pixels labelled k; P_k = all target pixels labelled k; FP_k = P_k - TP_k.
3. Missed pixels, which ATC cannot see directly: the FP_k pixels are wrong, so they belong to
   other classes; they are shared out over the other classes c in the proportions pi(k->c) in
   which the candidate's wrong source-val predictions of k truly belong to c (pooled over all
   predicted classes where k has no wrong source prediction). So G_c (estimated target pixels of
   class c) = TP_c + sum_k FP_k pi(k->c), and sum_c G_c = sum_c P_c, as it must.
4. Predicted IoU_c = TP_c / (P_c + G_c - TP_c); ``atc`` = mean over classes with a non-empty
   predicted union. Higher is better.

Needs the labelled source-val split (``data.source_val``); the source-val pass is shared with
``source_val_miou``. Known blind spot: like every calibration method, ATC trusts that the
candidate's confidence ranks its errors on the target as on the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from selection.errors import SelectionError
from selection.fusion.majority import IGNORE_INDEX, mean_over_present
from selection.validators.information import row_entropy

__all__ = [
    "atc",
    "atc_per_class",
    "ATCFit",
    "fit_atc",
    "atc_counts",
    "atc_iou",
    "atc_threshold",
    "atc_count",
    "confidence_score",
    "ATC_SCORES",
]

ATC_SCORES = ("neg_entropy", "max_conf")


def confidence_score(probs: np.ndarray, score: str = "neg_entropy") -> np.ndarray:
    """Per-row confidence of (N, C) float64 probabilities: negative entropy or max probability."""
    if score == "neg_entropy":
        return -row_entropy(probs)
    if score == "max_conf":
        return probs.max(axis=1)
    raise SelectionError(f"ATC score must be one of {ATC_SCORES}, got {score!r}")


def atc_threshold(scores: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """(t, q): count(s > t) + q * count(s == t) = number correct. (inf, 0) if none is correct."""
    s = np.asarray(scores, dtype=np.float64)
    k = int(np.count_nonzero(correct))
    if s.size == 0:
        raise SelectionError("ATC threshold of an empty set of scores")
    if k == 0:
        return float("inf"), 0.0
    t = float(np.sort(s)[::-1][k - 1])
    above, tied = int(np.count_nonzero(s > t)), int(np.count_nonzero(s == t))
    return t, (k - above) / tied


def atc_count(scores: np.ndarray, t: float, q: float) -> float:
    """Predicted number of correct samples: count(s > t) + q * count(s == t)."""
    s = np.asarray(scores, dtype=np.float64)
    return float(np.count_nonzero(s > t) + q * np.count_nonzero(s == t))


def _rows(probs: Any, name: str) -> np.ndarray:
    p = np.asarray(probs)
    if p.ndim < 2:
        raise SelectionError(f"ATC: {name} probabilities must be (..., C), got shape {p.shape}")
    p = p.reshape(-1, p.shape[-1]).astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise SelectionError(f"ATC: {name} probabilities hold NaN or infinite values")
    return p


@dataclass(frozen=True)
class ATCFit:
    """What ATC learns from one candidate's source-val pixels (steps 1 and 3 of the module docstring).

    ``threshold``/``tie_share``: (t_k, q_k) per predicted class k; ``share``: (C, C) row k = the
    proportions pi(k->c) in which the target pixels wrongly labelled k are shared out.
    """

    threshold: np.ndarray
    tie_share: np.ndarray
    share: np.ndarray
    score: str

    @property
    def num_classes(self) -> int:
        return int(self.share.shape[0])


def fit_atc(
    source_probs: Any, source_labels: Any, *, score: str = "neg_entropy", ignore_index: int = IGNORE_INDEX
) -> ATCFit:
    """Fit the per-class thresholds and the missed-pixel shares on source-val pixels."""
    sp = _rows(source_probs, "source-val")
    c = sp.shape[1]
    lab = np.asarray(source_labels).reshape(-1)
    if lab.shape[0] != sp.shape[0]:
        raise SelectionError(f"ATC: {sp.shape[0]} source-val pixels but {lab.shape[0]} labels")
    keep = lab != ignore_index
    if ((lab[keep] < 0) | (lab[keep] >= c)).any():
        raise SelectionError(f"ATC: source-val labels must be classes 0..{c - 1} or {ignore_index}")
    if not keep.any():
        raise SelectionError("ATC: every source-val pixel is ignore; no threshold can be fitted")
    sp, lab = sp[keep], lab[keep].astype(np.int64)
    s_src, pred_src = confidence_score(sp, score), sp.argmax(axis=1)
    correct_src = pred_src == lab
    pooled = atc_threshold(s_src, correct_src)
    thresholds = np.empty(c)
    ties = np.empty(c)
    for k in range(c):
        on_src = pred_src == k
        thresholds[k], ties[k] = atc_threshold(s_src[on_src], correct_src[on_src]) if on_src.any() else pooled
    wrong = np.zeros((c, c))
    np.add.at(wrong, (pred_src[~correct_src], lab[~correct_src]), 1.0)
    pooled_wrong = wrong.sum(axis=0)
    share = np.zeros((c, c))
    for k in range(c):
        row = wrong[k] if wrong[k].sum() > 0 else np.where(np.arange(c) == k, 0.0, pooled_wrong)
        if row.sum() > 0:
            share[k] = row / row.sum()
    return ATCFit(thresholds, ties, share, score)


def atc_counts(fit: ATCFit, target_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, TP): per class, target pixels labelled k and the predicted correct ones among them.

    Both are sums over pixels, so counts of disjoint sets of target images add up (streaming).
    """
    tp_ = _rows(target_probs, "target")
    c = fit.num_classes
    if tp_.shape[1] != c:
        raise SelectionError(f"ATC: target has {tp_.shape[1]} classes, source-val {c}")
    s_tgt, pred_tgt = confidence_score(tp_, fit.score), tp_.argmax(axis=1)
    predicted = np.bincount(pred_tgt, minlength=c).astype(np.float64)
    tp = np.zeros(c)
    for k in np.unique(pred_tgt):
        tp[k] = atc_count(s_tgt[pred_tgt == k], fit.threshold[k], fit.tie_share[k])
    return predicted, tp


def atc_iou(fit: ATCFit, predicted: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """(C,) predicted target IoU per class from summed :func:`atc_counts` (NaN: empty predicted union)."""
    missed = (predicted - tp) @ fit.share
    union = predicted + missed  # = P_c + G_c - TP_c, since G_c = TP_c + missed_c
    iou = np.full(fit.num_classes, np.nan)
    np.divide(tp, union, out=iou, where=union > 0)
    return iou


def atc_per_class(
    target_probs: Any,
    source_probs: Any,
    source_labels: Any,
    *,
    score: str = "neg_entropy",
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """(C,) predicted target IoU per class (NaN where the predicted union is empty)."""
    fit = fit_atc(source_probs, source_labels, score=score, ignore_index=ignore_index)
    return atc_iou(fit, *atc_counts(fit, target_probs))


def atc(
    target_probs: Any,
    source_probs: Any,
    source_labels: Any,
    *,
    score: str = "neg_entropy",
    ignore_index: int = IGNORE_INDEX,
) -> float:
    """Predicted target mIoU from per-class ATC (higher is better)."""
    iou = atc_per_class(target_probs, source_probs, source_labels, score=score, ignore_index=ignore_index)
    return float(mean_over_present(iou))
