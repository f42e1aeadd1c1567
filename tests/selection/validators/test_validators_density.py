"""SND against the full-matrix reference (pytorch-adapt's test formula) and hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from validators_naive import naive_snd, naive_snd_image

from selection.errors import SelectionError
from selection.validators import SNDAccumulator, snd
from selection.validators.density import DEFAULT_TEMPERATURE, snd_row_entropies


def _probs(rng, shape):
    x = np.exp(rng.normal(size=shape) * 2)
    return x / x.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("temperature", [0.01, 0.05, 0.5, 1.0])
@pytest.mark.parametrize("chunk", [1, 7, 33, 1000])
@pytest.mark.parametrize("n_pix,c", [(2, 3), (10, 13), (41, 19)])
def test_rows_against_naive(temperature, chunk, n_pix, c):
    p = _probs(np.random.default_rng(n_pix * c), (n_pix, c))
    np.testing.assert_allclose(
        snd_row_entropies(p, temperature, chunk), naive_snd_image(p, temperature), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("chunk", [3, 999, 1001])
def test_images_are_separate_neighbourhoods(chunk):
    p = _probs(np.random.default_rng(1), (3, 25, 5)).astype(np.float16)
    assert snd(p, 0.05, chunk) == pytest.approx(naive_snd(p.astype(np.float64), 0.05), rel=1e-9)
    # not the same as one pooled neighbourhood of all 75 pixels
    assert snd(p, 0.05, chunk) != pytest.approx(snd(p.reshape(1, 75, 5), 0.05, chunk), rel=1e-3)


def test_streaming_and_merge():
    p = _probs(np.random.default_rng(2), (6, 30, 4))
    a, b = SNDAccumulator(0.05, 8), SNDAccumulator(0.05, 8)
    for k, image in enumerate(p):
        (a if k % 2 else b).update(image)
    assert a.merge(b).value == pytest.approx(snd(p), rel=1e-12)
    with pytest.raises(SelectionError, match="temperatures"):
        a.merge(SNDAccumulator(0.1))


def test_known_answers():
    two = np.array([[[0.9, 0.1], [0.2, 0.8]]])
    assert snd(two) == 0.0  # one neighbour each: a certain distribution
    same = np.array([[[0.7, 0.3]] * 3])
    assert snd(same) == pytest.approx(math.log(2))  # two equally close neighbours each
    # two tight pairs far apart: each pixel's mass sits on its twin -> near 0; a uniform cloud -> log(n-1)
    pairs = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    e = math.exp(-20.0)  # cosine 0 / T = 0 against the twin's 1 / T = 20
    q = [1 / (1 + 2 * e), e / (1 + 2 * e), e / (1 + 2 * e)]
    assert snd(pairs) == pytest.approx(-sum(x * math.log(x) for x in q), rel=1e-9)  # ~8.7e-8
    assert snd(pairs, temperature=1e6) == pytest.approx(math.log(3), rel=1e-5)


def test_errors():
    with pytest.raises(SelectionError, match="P >= 2"):
        snd(np.ones((2, 1, 3)) / 3)
    with pytest.raises(SelectionError, match="temperature"):
        snd(np.ones((1, 3, 3)) / 3, temperature=0)
    with pytest.raises(SelectionError, match="all zeros"):
        snd(np.zeros((1, 3, 3)))


def test_one_image_as_a_matrix_equals_a_batch_of_one():
    p = _probs(np.random.default_rng(4), (9, 3))
    acc = SNDAccumulator()
    acc.update(p)
    assert acc.count == 9 and acc.value == pytest.approx(snd(p[None]), rel=1e-12)
    assert DEFAULT_TEMPERATURE == 0.05  # the paper's T; evidence files record SND computed at it


def test_an_empty_accumulator_and_a_bad_chunk_size_are_refused():
    with pytest.raises(SelectionError, match="no pixels were added"):
        _ = SNDAccumulator().value
    with pytest.raises(SelectionError, match="chunk_size must be >= 1"):
        snd_row_entropies(np.full((3, 2), 0.5), chunk_size=0)
    with pytest.raises(SelectionError, match="temperature must be > 0"):
        snd_row_entropies(np.full((3, 2), 0.5), temperature=float("nan"))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_probabilities_are_refused_naming_them(bad):
    p = np.full((1, 3, 2), 0.5)
    p[0, 1, 0] = bad
    with pytest.raises(SelectionError, match="NaN or infinite"):
        snd(p)
