"""Per-class ATC: thresholds and predicted IoU against brute-force loops, a hand example, and the
identity "predicting the source-val split itself gives its true per-class IoU"."""

from __future__ import annotations

import math

import numpy as np
import pytest
from validators_naive import naive_atc_per_class, naive_atc_threshold

from selection.errors import SelectionError
from selection.validators import atc, atc_per_class
from selection.validators.atc import (
    ATC_SCORES,
    atc_count,
    atc_counts,
    atc_iou,
    atc_threshold,
    confidence_score,
    fit_atc,
)


def _probs(rng, shape, sharp=4.0):
    x = rng.random(shape) ** sharp
    return (x / x.sum(axis=-1, keepdims=True)).astype(np.float16)


@pytest.mark.parametrize("n", [1, 2, 9, 100])
def test_threshold_against_brute_force_with_ties(n):
    rng = np.random.default_rng(n)
    scores = rng.integers(0, 6, n) / 5.0  # many ties
    correct = rng.random(n) < 0.6
    t, q = atc_threshold(scores, correct)
    assert (t, q) == pytest.approx(naive_atc_threshold(list(scores), list(correct)))
    # calibrated: on its own data the predicted number correct is the number correct
    assert atc_count(scores, t, q) == pytest.approx(correct.sum())


def test_threshold_hand_cases():
    assert atc_threshold(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 1, 0, 0])) == (0.8, 1.0)
    assert atc_threshold(np.array([0.9, 0.8, 0.8, 0.6]), np.array([1, 1, 0, 0])) == (0.8, 0.5)
    assert atc_threshold(np.array([0.5, 0.4]), np.array([0, 0])) == (math.inf, 0.0)
    assert atc_threshold(np.array([0.5, 0.4]), np.array([1, 1])) == (0.4, 1.0)


@pytest.mark.parametrize("score", ["neg_entropy", "max_conf"])
@pytest.mark.parametrize("c,n_src,n_tgt", [(2, 30, 20), (5, 200, 150), (19, 400, 300)])
def test_per_class_against_naive(score, c, n_src, n_tgt):
    rng = np.random.default_rng(c * n_src)
    src, tgt = _probs(rng, (n_src, c)), _probs(rng, (n_tgt, c))
    labels = np.where(rng.random(n_src) < 0.5, src.argmax(1), rng.integers(0, c, n_src)).astype(np.uint8)
    labels[rng.random(n_src) < 0.1] = 255
    got = atc_per_class(tgt, src, labels, score=score)
    want = naive_atc_per_class(tgt.astype(np.float64), src.astype(np.float64), labels, score)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_hand_example():
    src = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.4, 0.6], [0.5, 0.5]])
    lab = np.array([0, 0, 1, 1, 1, 0, 255])
    tgt = np.array([[0.95, 0.05], [0.8, 0.2], [0.65, 0.35], [0.3, 0.7], [0.1, 0.9]])
    # class 0: t = 0.8 (2 of 4 right); class 1: t = 0.8 (1 of 2 right); wrong 0s are truly 1, wrong 1s 0
    # target: TP0 = 2 of 3, TP1 = 1 of 2; each FP is one missed pixel of the other class
    np.testing.assert_allclose(atc_per_class(tgt, src, lab, score="max_conf"), [2 / 4, 1 / 3])
    assert atc(tgt, src, lab, score="max_conf") == pytest.approx(5 / 12)


@pytest.mark.parametrize("c", [3, 19])
def test_source_on_itself_predicts_its_true_iou(c):
    rng = np.random.default_rng(c)
    src = _probs(rng, (2, 500, c))
    pred = src.argmax(-1)
    labels = np.where(rng.random(pred.shape) < 0.7, pred, rng.integers(0, c, pred.shape)).astype(np.uint8)
    labels[rng.random(pred.shape) < 0.05] = 255
    keep = labels != 255
    p, y = pred[keep], labels[keep]
    true = [((p == k) & (y == k)).sum() / (((p == k) | (y == k)).sum() or np.nan) for k in range(c)]
    np.testing.assert_allclose(atc_per_class(src[keep], src, labels), true, rtol=1e-12, equal_nan=True)


def test_a_class_without_source_predictions_uses_the_pooled_threshold():
    src = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.3, 0.7, 0.0]])
    lab = np.array([0, 1, 1])
    tgt = np.array([[0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])  # class 2, never predicted on source
    got = atc_per_class(tgt, src, lab, score="max_conf")
    # pooled: scores 0.9, 0.6, 0.7 with 2 right -> t = 0.7: target 0.8 counts, 0.6 does not -> TP2 = 1 of 2
    # the wrong one goes by the pooled wrong-label shares (class 1 only) -> union of 1 grows by 1
    assert got[2] == pytest.approx(1 / 2) and got[1] == pytest.approx(0.0) and math.isnan(got[0])


def test_errors():
    p = np.full((3, 2), 0.5)
    with pytest.raises(SelectionError, match="every source-val pixel is ignore"):
        atc(p, p, np.full(3, 255))
    with pytest.raises(SelectionError, match="3 source-val pixels but 2 labels"):
        atc(p, p, np.zeros(2))
    with pytest.raises(SelectionError, match="classes 0..1 or 255"):
        atc(p, p, np.array([0, 1, 2]))
    with pytest.raises(SelectionError, match="score must be one of"):
        atc(p, p, np.zeros(3), score="energy")
    with pytest.raises(SelectionError, match="target has 2 classes, source-val 3"):
        atc(p, np.full((3, 3), 1 / 3), np.zeros(3))


def _reference_procedure_count(src_scores, src_correct, tgt_scores):
    """ATC_code's find_ATC_threshold / get_ATC_acc, re-expressed: walk the sorted source scores,
    keep the threshold where |false positives - false negatives| is smallest, count target >= it."""
    order = np.argsort(src_scores)
    fp, fn = int((~src_correct).sum()), 0
    best, thres = abs(fp - fn), 0.0
    for s, ok in zip(src_scores[order], src_correct[order], strict=True):
        fp, fn = (fp, fn + 1) if ok else (fp - 1, fn)
        if abs(fp - fn) < best:
            best, thres = abs(fp - fn), s
    return int((tgt_scores >= thres).sum())


@pytest.mark.parametrize("seed", range(5))
def test_same_threshold_as_the_reference_up_to_its_inclusive_count(seed):
    rng = np.random.default_rng(seed)
    src = rng.permutation(200) / 200 + 0.001  # distinct scores
    correct = rng.random(200) < 0.7
    k = int(correct.sum())
    t, q = atc_threshold(src, correct)
    assert atc_count(src, t, q) == k
    # the reference counts one more source sample above its threshold: the next lower score
    assert _reference_procedure_count(src, correct, src) == k + 1
    lower = np.sort(src)[::-1][k]
    tgt = rng.random(300)
    assert _reference_procedure_count(src, correct, tgt) == atc_count(tgt, lower, 1.0)


def test_confidence_scores_by_hand():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.8, 0.2]])
    neg_h = confidence_score(p, "neg_entropy")
    np.testing.assert_allclose(neg_h, [0.0, -math.log(2), 0.8 * math.log(0.8) + 0.2 * math.log(0.2)])
    np.testing.assert_array_equal(confidence_score(p, "max_conf"), [1.0, 0.5, 0.8])
    assert ATC_SCORES == ("neg_entropy", "max_conf")


def test_threshold_of_no_scores_is_refused():
    with pytest.raises(SelectionError, match="empty set of scores"):
        atc_threshold(np.array([]), np.array([], bool))


def test_fit_of_the_hand_example():
    src = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.4, 0.6], [0.5, 0.5]])
    lab = np.array([0, 0, 1, 1, 1, 0, 255])
    fit = fit_atc(src, lab, score="max_conf")
    # class 0 predicted on 4 pixels (0.9, 0.8, 0.7, 0.6), right on 2: t = 0.8, no tie share needed
    # class 1 predicted on 2 pixels (0.8, 0.6), right on 1: t = 0.8
    np.testing.assert_allclose(fit.threshold, [0.8, 0.8])
    np.testing.assert_allclose(fit.tie_share, [1.0, 1.0])
    # every wrong 0 is truly a 1 and the reverse: the missed pixels go to the other class
    np.testing.assert_array_equal(fit.share, [[0.0, 1.0], [1.0, 0.0]])
    assert fit.num_classes == 2 and fit.score == "max_conf"


def test_counts_of_image_chunks_add_up_to_the_whole():
    rng = np.random.default_rng(11)
    src, tgt = _probs(rng, (300, 4)), _probs(rng, (6, 50, 4))
    labels = np.where(rng.random(300) < 0.6, src.argmax(1), rng.integers(0, 4, 300))
    fit = fit_atc(src, labels)
    whole_pred, whole_tp = atc_counts(fit, tgt)
    parts = [atc_counts(fit, tgt[k : k + 1]) for k in range(6)]
    np.testing.assert_allclose(sum(p for p, _ in parts), whole_pred)
    np.testing.assert_allclose(sum(t for _, t in parts), whole_tp, rtol=1e-12)
    np.testing.assert_allclose(atc_iou(fit, whole_pred, whole_tp), atc_per_class(tgt, src, labels))


def test_a_class_nobody_predicts_or_misses_has_no_iou():
    # class 2 exists, but is never predicted on either split and no wrong pixel belongs to it
    src = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    tgt = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]])
    iou = atc_per_class(tgt, src, np.array([0, 1, 1]), score="max_conf")
    assert math.isnan(iou[2]) and np.isfinite(iou[:2]).all()
    assert atc(tgt, src, np.array([0, 1, 1]), score="max_conf") == pytest.approx(np.nanmean(iou))


def test_non_finite_probabilities_are_refused_naming_the_split():
    p = np.full((3, 2), 0.5)
    bad = p.copy()
    bad[1, 0] = np.nan
    with pytest.raises(SelectionError, match="target probabilities hold NaN"):
        atc(bad, p, np.zeros(3))
    with pytest.raises(SelectionError, match="source-val probabilities hold NaN"):
        atc(p, bad, np.zeros(3))
    with pytest.raises(SelectionError, match=r"must be \(..., C\)"):
        atc(p, np.full(3, 0.5), np.zeros(3))
