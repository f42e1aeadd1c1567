"""Seed agreement between replicates (selection.validators.agreement): loop references and hand answers."""

from __future__ import annotations

import numpy as np
import pytest
from validators_naive import naive_pair_miou

from selection.errors import SelectionError
from selection.validators import seed_agreement
from selection.validators.agreement import mean_pair_agreement


@pytest.mark.parametrize("r,c,shape", [(2, 2, (1, 3)), (3, 5, (4, 7)), (4, 19, (9, 5))])
def test_seed_agreement_against_naive(r, c, shape):
    rng = np.random.default_rng(r * c)
    stacks = []
    for _ in range(3):
        base = rng.integers(0, c, shape)
        stacks.append(
            np.where(rng.random((r, *shape)) < 0.7, base, rng.integers(0, c, (r, *shape))).astype(np.uint8)
        )
    want = np.mean([naive_pair_miou(stacks, a, b, c) for a in range(r) for b in range(a + 1, r)])
    assert seed_agreement(stacks, c) == pytest.approx(want, rel=1e-12)


def test_seed_agreement_known_answers():
    same = np.array([[[0, 1, 1]], [[0, 1, 1]]], np.uint8)
    assert seed_agreement([same], 2) == 1.0
    half = np.array([[[0, 0, 1, 1]], [[0, 1, 1, 0]]], np.uint8)
    # class 0: 1 shared of 3 pixels; class 1: 1 of 3
    assert seed_agreement([half], 2) == pytest.approx(1 / 3)


def test_seed_agreement_errors():
    with pytest.raises(SelectionError, match=">= 2 replicates"):
        seed_agreement([np.zeros((1, 2, 2), np.uint8)], 3)
    with pytest.raises(SelectionError, match="no images"):
        seed_agreement([], 3)


def test_mean_pair_agreement_of_a_matrix():
    m = np.array([[1.0, 0.8, 0.6], [0.8, 1.0, 0.7], [0.6, 0.7, 1.0]])
    assert mean_pair_agreement(m) == pytest.approx(0.7)
    assert np.isnan(mean_pair_agreement(np.ones((1, 1))))
    with pytest.raises(SelectionError, match="square"):
        mean_pair_agreement(np.ones((2, 3)))


def test_mean_pair_agreement_skips_pairs_without_a_value():
    nan = float("nan")
    m = np.array([[1.0, nan, 0.4], [nan, 1.0, 0.6], [0.4, 0.6, 1.0]])
    assert mean_pair_agreement(m) == pytest.approx(0.5)  # the (0, 1) pair has no shared class
    assert np.isnan(mean_pair_agreement(np.array([[1.0, nan], [nan, 1.0]])))
    # only the upper triangle counts: an asymmetric lower triangle is not read
    assert mean_pair_agreement(np.array([[1.0, 0.2], [0.9, 1.0]])) == pytest.approx(0.2)


def test_mean_pair_agreement_refuses_what_is_no_matrix():
    with pytest.raises(SelectionError, match=r"square agreement matrix, got shape \(3,\)"):
        mean_pair_agreement(np.ones(3))


def test_an_ignore_pixel_counts_in_the_other_replicates_union():
    # pixel 2 is ignore in replicate 1 and class 1 in replicate 0: it is no agreement on class 1
    # (PairwiseAgreement counts over all pixels). class 0: 2 of 2; class 1: 1 of 2 -> 0.75
    stack = np.array([[[0, 1, 1, 0]], [[0, 1, 255, 0]]], np.uint8)
    assert seed_agreement([stack], 2) == pytest.approx(0.75)
    # a pixel both replicates ignore adds nothing
    both = np.array([[[0, 1, 255, 0]], [[0, 1, 255, 0]]], np.uint8)
    assert seed_agreement([both], 2) == 1.0
    # a custom ignore label is honoured too
    both7 = np.where(both == 255, 7, both).astype(np.uint8)
    assert seed_agreement([both7], 2, ignore_index=7) == 1.0


def test_seed_agreement_sums_over_images_before_dividing():
    # image 0 agrees on class 0 (2 px); image 1 disagrees on 1 px of class 1: IoU over the stream
    first = np.array([[[0, 0]], [[0, 0]]], np.uint8)
    second = np.array([[[1, 1]], [[1, 0]]], np.uint8)
    # class 0: inter 2, union 3; class 1: inter 1, union 2 -> (2/3 + 1/2) / 2
    assert seed_agreement([first, second], 2) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_seed_agreement_of_three_replicates_is_the_mean_over_pairs():
    a = [0, 0, 1, 1]
    stack = np.array([[a], [a], [[1, 1, 0, 0]]], np.uint8)
    # pairs (0, 1) agree fully; (0, 2) and (1, 2) share nothing -> (1 + 0 + 0) / 3
    assert seed_agreement([stack], 2) == pytest.approx(1 / 3)
