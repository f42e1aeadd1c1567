"""Seed agreement between replicates and source-val mIoU: loop references and hand answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from validators_naive import naive_pair_miou

from selection.errors import SelectionError
from selection.validators import seed_agreement, source_val_miou
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


def test_source_val_miou():
    assert source_val_miou({"source_val_miou": 0.42}) == 0.42
    assert math.isnan(source_val_miou({"source_val_miou": float("nan")}))
    with pytest.raises(SelectionError, match="data.source_val"):
        source_val_miou({})
    with pytest.raises(SelectionError, match=r"fraction in \[0, 1\]"):
        source_val_miou({"source_val_miou": 42.0})


def test_mean_pair_agreement_of_a_matrix():
    m = np.array([[1.0, 0.8, 0.6], [0.8, 1.0, 0.7], [0.6, 0.7, 1.0]])
    assert mean_pair_agreement(m) == pytest.approx(0.7)
    assert np.isnan(mean_pair_agreement(np.ones((1, 1))))
    with pytest.raises(SelectionError, match="square"):
        mean_pair_agreement(np.ones((2, 3)))
