"""mIoU maths on hand-computed examples, plus properties of the dataset-level accumulator."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hiast.data.classes import CITYSCAPES19_NAMES, MIOU13_CLASSES, MIOU16_CLASSES
from hiast.metrics import (
    SegmentationMetric,
    confusion_and_misses,
    confusion_matrix,
    iou_from_confusion,
    mean_iou,
)

# A 3-class example small enough to count by hand. (label, pred) pixel by pixel:
#   (0,0) (0,1) (1,1) (1,1)
#   (2,2) (2,0) (255,2) (0,255)
# The (255, 2) pixel has an ignored label: left out. The (0, 255) pixel is a labelled pixel with no
# valid prediction: a miss for class 0.
LABEL = np.array([[0, 0, 1, 1], [2, 2, 255, 0]], dtype=np.uint8)
PRED = np.array([[0, 1, 1, 1], [2, 0, 2, 255]], dtype=np.uint8)
CM = np.array(
    [
        [1, 1, 0],  # label 0: one right, one called 1 (the miss is not in the matrix)
        [0, 2, 0],  # label 1: both right
        [1, 0, 1],  # label 2: one right, one called 0
    ]
)
MISSES = np.array([1, 0, 0])
# intersection / union per class, union = label area + predicted area - intersection (+ misses)
#   class 0: 1 / (3 + 2 - 1) = 1/4   (label area 2 in the matrix + 1 miss; predicted area 2)
#   class 1: 2 / (2 + 3 - 2) = 2/3
#   class 2: 1 / (2 + 1 - 1) = 1/2
IOU = np.array([1 / 4, 2 / 3, 1 / 2])


def test_hand_computed_three_classes() -> None:
    cm, misses = confusion_and_misses(PRED, LABEL, 3)
    np.testing.assert_array_equal(cm, CM)
    np.testing.assert_array_equal(misses, MISSES)
    assert cm.dtype == np.int64 and misses.dtype == np.int64
    np.testing.assert_array_equal(confusion_matrix(PRED, LABEL, 3), CM)
    np.testing.assert_allclose(iou_from_confusion(cm, misses), IOU)
    assert mean_iou(cm, misses=misses) == pytest.approx((1 / 4 + 2 / 3 + 1 / 2) / 3)
    assert mean_iou(cm, [1, 2], misses=misses) == pytest.approx((2 / 3 + 1 / 2) / 2)
    # Without the miss counter class 0 would look better: 1 / (2 + 2 - 1).
    np.testing.assert_allclose(iou_from_confusion(cm), [1 / 3, 2 / 3, 1 / 2])


def test_missed_prediction_lowers_only_the_label_class() -> None:
    label = np.array([0, 0, 1, 1])
    good = np.array([0, 0, 1, 1])
    holes = np.array([0, 255, 1, 1])  # one road pixel left unpredicted
    metric = SegmentationMetric(2)
    metric.update(holes, label)
    iou = metric.iou()
    assert iou[0] == pytest.approx(1 / 2) and iou[1] == 1.0  # class 1 gains no false positive
    ref = SegmentationMetric(2)
    ref.update(good, label)
    assert ref.compute()["miou"] == 1.0 > metric.compute()["miou"]
    assert metric.compute()["aacc"] == pytest.approx(3 / 4)


def test_absent_class_is_nan_and_skipped() -> None:
    label = np.array([0, 0, 1, 2])
    pred = np.array([0, 0, 1, 1])
    cm = confusion_matrix(pred, label, 4)
    iou = iou_from_confusion(cm)
    assert math.isnan(iou[3])  # never labelled, never predicted: 0/0
    assert iou[2] == 0.0  # labelled but never predicted: a real 0, not NaN
    assert mean_iou(cm) == pytest.approx((1 + 1 / 2 + 0) / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an all-NaN mean must not warn
        assert math.isnan(mean_iou(cm, [3]))
    predicted_only = confusion_matrix(np.array([3]), np.array([0]), 4)
    assert iou_from_confusion(predicted_only)[3] == 0.0  # predicted but never labelled: IoU 0


def test_miou16_and_13_are_plain_means_over_the_lists() -> None:
    # Every class labelled on 10 pixels; wall, fence and pole (3, 4, 5) all predicted as terrain (9).
    label = np.repeat(np.arange(19), 10)
    pred = label.copy()
    pred[np.isin(label, [3, 4, 5])] = 9
    cm = confusion_matrix(pred, label, 19)
    iou = iou_from_confusion(cm)
    assert iou[3] == iou[4] == iou[5] == 0.0
    assert iou[9] == pytest.approx(10 / 40)  # terrain: 10 right, 30 false positives
    assert mean_iou(cm, MIOU16_CLASSES) == pytest.approx(13 / 16)  # 13 perfect classes, 3 zeros
    assert mean_iou(cm, MIOU13_CLASSES) == pytest.approx(1.0)
    # HIAST's mean(iou19) * 19/16 counts terrain's 0.25 and differs: the plain mean is what we report.
    assert np.mean(iou) * 19 / 16 != pytest.approx(13 / 16)
    with pytest.raises(ValueError, match="outside"):
        mean_iou(cm, [0, 19])


def test_torch_and_numpy_agree_and_no_uint8_overflow() -> None:
    rng = np.random.default_rng(1)
    label = rng.integers(0, 19, (2, 16, 16)).astype(np.uint8)
    label[0, 0, :3] = 255
    pred = rng.integers(0, 19, (2, 16, 16)).astype(np.uint8)
    label[1, 1, 1] = pred[1, 1, 1] = 18  # index 18 * 19 + 18 overflows uint8
    cm = confusion_matrix(pred, label, 19)
    np.testing.assert_array_equal(
        cm, confusion_matrix(torch.from_numpy(pred).long(), torch.from_numpy(label), 19)
    )
    np.testing.assert_array_equal(cm, naive_confusion(pred, label, 19)[0])
    assert cm.sum() == label.size - 3


def test_input_errors() -> None:
    with pytest.raises(TypeError, match="integer"):
        confusion_matrix(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), 3)
    with pytest.raises(ValueError, match=r"label holds values \[3\]"):
        confusion_matrix(np.zeros(2, np.uint8), np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="square"):
        iou_from_confusion(np.zeros((2, 3)))


def test_metric_results_and_names() -> None:
    metric = SegmentationMetric(
        19, class_names=CITYSCAPES19_NAMES, class_lists={"miou16": MIOU16_CLASSES, "miou13": MIOU13_CLASSES}
    )
    label = np.repeat(np.arange(19), 4).reshape(4, 19)
    metric.update(label, label)
    res = metric.compute()
    assert set(res) == {"miou", "iou", "aacc", "class_names", "miou16", "miou13"}
    assert res["miou"] == res["miou16"] == res["miou13"] == res["aacc"] == 1.0
    assert len(res["iou"]) == 19 and res["class_names"][0] == "road"
    assert "road" in metric.table() and "miou16" in metric.table()
    other = SegmentationMetric(19)
    other.update(np.zeros_like(label), label)
    metric.merge(other)
    assert metric.confusion.sum() == 2 * label.size
    metric.reset()
    assert metric.confusion.sum() == 0 and math.isnan(metric.compute()["miou"])
    with pytest.raises(ValueError, match="clashes"):
        SegmentationMetric(3, class_lists={"miou": [0, 1]})
    with pytest.raises(ValueError, match="twice"):
        SegmentationMetric(3, class_lists={"x": [0, 0]})
    with pytest.raises(ValueError, match="different"):
        metric.merge(SegmentationMetric(9))


def naive_confusion(pred: np.ndarray, label: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-by-pixel reference."""
    cm = np.zeros((c, c), np.int64)
    misses = np.zeros(c, np.int64)
    for p, t in zip(np.ravel(pred).tolist(), np.ravel(label).tolist(), strict=True):
        if t == 255:
            continue
        if 0 <= p < c:
            cm[t, p] += 1
        else:
            misses[t] += 1
    return cm, misses


@st.composite
def image_pairs(draw: st.DrawFn) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    c = draw(st.integers(1, 6))
    n = draw(st.integers(1, 4))
    pairs = []
    for _ in range(n):
        h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        labels = st.sampled_from(list(range(c)) + [255])
        preds = st.sampled_from(list(range(c)) + [255, c])  # c: out of range, not 255
        t = np.array(draw(st.lists(labels, min_size=h * w, max_size=h * w)), np.uint8).reshape(h, w)
        p = np.array(draw(st.lists(preds, min_size=h * w, max_size=h * w)), np.uint8).reshape(h, w)
        pairs.append((p, t))
    return c, pairs


@settings(max_examples=60, deadline=None)
@given(image_pairs())
def test_accumulating_images_equals_the_concatenation(case: tuple[int, list]) -> None:
    c, pairs = case
    metric = SegmentationMetric(c)
    for p, t in pairs:
        metric.update(p, t)
    all_p = np.concatenate([p.ravel() for p, _ in pairs])
    all_t = np.concatenate([t.ravel() for _, t in pairs])
    cm, misses = confusion_and_misses(all_p, all_t, c)
    np.testing.assert_array_equal(metric.confusion, cm)
    np.testing.assert_array_equal(metric.misses, misses)
    ref_cm, ref_misses = naive_confusion(all_p, all_t, c)
    np.testing.assert_array_equal(cm, ref_cm)
    np.testing.assert_array_equal(misses, ref_misses)
    np.testing.assert_allclose(metric.iou(), iou_from_confusion(cm, misses), equal_nan=True)
