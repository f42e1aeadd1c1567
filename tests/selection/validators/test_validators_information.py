"""Mean entropy and confidence, IM, BNM against loops and full-matrix references, and hand answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy
from validators_naive import naive_information

from selection.errors import SelectionError
from selection.validators import ProbabilityStats, bnm, im, mean_confidence, mean_entropy
from selection.validators.information import row_entropy


def _probs(rng, shape, sharp=3.0):
    x = rng.random(shape) ** sharp
    return x / x.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("shape", [(1, 2), (7, 3), (33, 19), (2, 17, 5), (3, 101, 7)])
def test_against_naive(shape):
    p = _probs(np.random.default_rng(sum(shape)), shape)
    ref = naive_information(p)
    assert mean_entropy(p) == pytest.approx(ref["entropy"], rel=1e-12)
    assert mean_confidence(p) == pytest.approx(ref["confidence"], rel=1e-12)
    assert im(p) == pytest.approx(ref["im"], rel=1e-9, abs=1e-12)
    assert bnm(p) == pytest.approx(ref["bnm"], rel=1e-9)


def test_entropy_agrees_with_scipy():
    p = _probs(np.random.default_rng(0), (50, 6))
    assert mean_entropy(p) == pytest.approx(np.mean(scipy_entropy(p, axis=1)), rel=1e-12)


@pytest.mark.parametrize("chunk", [1, 33, 999, 1001])
def test_chunked_updates_and_merges_equal_one_pass(chunk):
    p = _probs(np.random.default_rng(5), (2000, 9)).astype(np.float16)
    whole = ProbabilityStats.of(p)
    parts = [ProbabilityStats.of(p[a : a + chunk]) for a in range(0, len(p), chunk)]
    merged = parts[0]
    for q in parts[1:]:
        merged = merged.merge(q)
    streamed = ProbabilityStats(9)
    for a in range(0, len(p), chunk):
        streamed.update(p[a : a + chunk])
    for name in ("mean_entropy", "mean_confidence", "im", "bnm"):
        assert getattr(merged, name) == pytest.approx(getattr(whole, name), rel=1e-10)
        assert getattr(streamed, name) == pytest.approx(getattr(whole, name), rel=1e-10)


def test_known_answers():
    onehot = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert mean_entropy(onehot) == 0.0 and mean_confidence(onehot) == 1.0
    assert im(onehot) == pytest.approx(math.log(2))  # diverse and certain
    assert bnm(onehot) == pytest.approx(1.0)  # singular values 1, 1; / N = 2
    flat = np.full((2, 2), 0.5)
    assert mean_entropy(flat) == pytest.approx(math.log(2)) and mean_confidence(flat) == 0.5
    assert im(flat) == pytest.approx(0.0, abs=1e-15)
    assert bnm(flat) == pytest.approx(0.5)  # rank 1, singular value 1
    collapsed = np.array([[1.0, 0.0, 0.0]] * 4)  # one class everywhere: certain, not diverse
    assert mean_entropy(collapsed) == 0.0 and im(collapsed) == 0.0 and bnm(collapsed) == pytest.approx(0.5)


def test_errors():
    with pytest.raises(SelectionError, match="NaN"):
        mean_entropy(np.array([[np.nan, 1.0]]))
    with pytest.raises(SelectionError, match="C >= 2"):
        bnm(np.ones((3, 1)))
    with pytest.raises(SelectionError, match="no pixel"):
        _ = ProbabilityStats(3).mean_entropy
    with pytest.raises(SelectionError, match="expected 4"):
        ProbabilityStats(4).update(np.ones((2, 3)) / 3)


def test_row_entropy_by_hand():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(row_entropy(p), [0.0, math.log(2), 1.5 * math.log(2)])


def test_a_single_pixel():
    p = np.array([[0.25, 0.75]])
    assert mean_confidence(p) == 0.75
    assert im(p) == pytest.approx(0.0, abs=1e-15)  # the mean prediction is the pixel's own
    assert bnm(p) == pytest.approx(math.hypot(0.25, 0.75))  # one singular value: the row's norm


def test_ties_in_the_max_count_once():
    assert mean_confidence(np.array([[0.5, 0.5], [0.4, 0.6]])) == pytest.approx(0.55)


def test_stats_of_different_class_counts_do_not_merge():
    with pytest.raises(SelectionError, match="cannot merge stats of 3 and 2 classes"):
        ProbabilityStats(2).merge(ProbabilityStats(3))
    with pytest.raises(SelectionError, match="no pixel"):
        im(np.ones((0, 3)))
