"""MixVal probe counts and scores against a pixel loop, with ignore pixels, and hand answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from validators_naive import naive_mixval_counts

from selection.errors import SelectionError
from selection.validators import mixval, mixval_counts, mixval_inter, mixval_intra
from selection.validators.mixval import probe_accuracy


@pytest.mark.parametrize("c,shape", [(2, (1, 1)), (3, (5, 7)), (19, (13, 11))])
def test_counts_against_naive(c, shape):
    rng = np.random.default_rng(c)
    a, b, m = (rng.integers(0, c, shape).astype(np.uint8) for _ in range(3))
    for x in (a, b, m):
        x[rng.random(shape) < 0.15] = 255
    np.testing.assert_array_equal(mixval_counts(a, b, m, c), naive_mixval_counts(a, b, m, c))


def test_known_answer():
    a = np.array([[0, 0, 1, 1, 2, 255]], np.uint8)
    b = np.array([[0, 1, 1, 0, 2, 0]], np.uint8)
    m = np.array([[0, 0, 0, 1, 255, 0]], np.uint8)
    cnt = mixval_counts(a, b, m, 3)
    # inter (a != b): pixel 1 (class 0, right), pixel 3 (class 1, right)
    # intra (a == b): pixel 0 (class 0, right), pixel 2 (class 1, wrong), pixel 4 (class 2, mix ignore: wrong)
    np.testing.assert_array_equal(cnt[0], [[1, 1], [1, 1], [0, 0]])
    np.testing.assert_array_equal(cnt[1], [[1, 1], [1, 0], [1, 0]])
    assert mixval_inter(cnt) == 1.0 and mixval_intra(cnt) == pytest.approx(1 / 3)
    assert mixval(cnt) == pytest.approx((1 + 1 / 3) / 2)
    assert mixval_intra(cnt, average="class") == pytest.approx((1 + 0 + 0) / 3)


def test_sums_over_images_and_class_average():
    cnt = np.zeros((2, 2, 3, 2), np.int64)
    cnt[0, 0, 0] = [10, 9]  # image 0, inter, class 0: 9 of 10
    cnt[1, 0, 2] = [2, 0]  # image 1, inter, class 2: 0 of 2
    cnt[:, 1, 1] = [5, 5]  # intra, class 1: all right
    assert mixval_inter(cnt) == pytest.approx(9 / 12)
    assert mixval_inter(cnt, average="class") == pytest.approx((0.9 + 0.0) / 2)
    assert mixval_intra(cnt) == 1.0


def test_collapsed_candidate_has_no_inter_probe():
    a = np.zeros((4, 4), np.uint8)
    cnt = mixval_counts(a, a, a, 3)
    assert math.isnan(mixval_inter(cnt)) and mixval_intra(cnt) == 1.0 and math.isnan(mixval(cnt))


def test_errors():
    z = np.zeros((2, 2), np.uint8)
    with pytest.raises(SelectionError, match="one shape"):
        mixval_counts(z, z[:1], z, 3)
    with pytest.raises(SelectionError, match="label 5 of mix"):
        mixval_counts(z, z, z + 5, 3)
    with pytest.raises(SelectionError, match="integers"):
        mixval_counts(z.astype(float), z, z, 3)
    with pytest.raises(SelectionError, match=r"\(..., 2, C, 2\)"):
        mixval(np.zeros((3, 2)))
    with pytest.raises(SelectionError, match="correct <= pixels"):
        mixval(np.array([[[1, 2]], [[0, 0]]]))
    with pytest.raises(SelectionError, match="average"):
        mixval(np.zeros((2, 3, 2), np.int64), average="image")


def test_empty_counts_leave_both_probes_without_a_value():
    cnt = np.zeros((2, 3, 2), np.int64)
    assert math.isnan(mixval_inter(cnt)) and math.isnan(mixval_intra(cnt, average="class"))
    assert math.isnan(mixval(cnt))


def test_probe_accuracy_by_name_and_a_bad_probe():
    cnt = np.array([[[4, 3]], [[2, 1]]])  # one class: inter 3 of 4, intra 1 of 2
    assert probe_accuracy(cnt, "inter") == 0.75 and probe_accuracy(cnt, "intra") == 0.5
    with pytest.raises(SelectionError, match="probe must be one of"):
        probe_accuracy(cnt, "cross")


def test_a_custom_ignore_label():
    a = np.array([[0, 1, 7]], np.uint8)
    b = np.array([[1, 1, 0]], np.uint8)
    cnt = mixval_counts(a, b, a, 2, ignore_index=7)  # pixel 2 is ignore in a: left out
    np.testing.assert_array_equal(cnt[:, :, 0], [[1, 0], [0, 1]])
    with pytest.raises(SelectionError, match="label 255 of a is neither a class nor 7"):
        mixval_counts(np.full((1, 1), 255, np.uint8), b[:, :1], b[:, :1], 2, ignore_index=7)


def test_negative_counts_are_refused():
    with pytest.raises(SelectionError, match=">= 0"):
        mixval(np.array([[[-1, 0]], [[0, 0]]]))
