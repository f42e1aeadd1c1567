"""IAS (Algorithm 1, Eq. 6-8): known answers worked out by hand, validation, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hiast.ias import IAS

EIGHT = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92]).reshape(2, 4)
ZEROS = np.zeros((2, 4), dtype=np.int64)


# ---------------------------------------------------------------- paper variant, by hand
def test_paper_eight_pixels_one_step() -> None:
    ias = IAS(num_classes=3, alpha=0.5, beta=0.9, gamma=8.0, init_threshold=0.9)
    out = ias.step(EIGHT, ZEROS)
    # index = ⌊α θ^γ |P|⌋ = ⌊0.5 · 0.9^8 · 8⌋ = ⌊0.5 · 0.43046721 · 8⌋ = ⌊1.72186884⌋ = 1
    # descending list [0.99, 0.98, ...][1] = 0.98 -> local 0.98
    # θ_new = 0.9 · 0.9 + 0.1 · 0.98 = 0.81 + 0.098 = 0.908
    assert ias.last_local_thresholds[0] == pytest.approx(0.98, abs=1e-15)
    assert ias.thresholds[0] == pytest.approx(0.908, abs=1e-12)
    # Classes 1 and 2 are absent: they keep 0.9.
    assert ias.thresholds[1] == 0.9 and ias.thresholds[2] == 0.9
    # All 8 probabilities (min 0.92) exceed 0.908: everything kept.
    assert out.dtype == np.uint8 and out.shape == (2, 4)
    np.testing.assert_array_equal(out, np.zeros((2, 4), np.uint8))
    assert ias.last_kept_ratio == 1.0
    assert ias.thresholds.dtype == np.float64 and ias.thresholds.shape == (3,)
    assert list(ias.last_class_counts) == [8, 0, 0]
    assert list(ias.last_kept_counts) == [8, 0, 0]


def test_paper_multiple_steps() -> None:
    ias = IAS(num_classes=2, alpha=0.5, beta=0.9, gamma=8.0, init_threshold=0.9)
    ias.step(EIGHT, ZEROS)  # θ0 = 0.908 (previous test)
    # Step 2: class 0 has 4 pixels [0.5, 0.4, 0.3, 0.2].
    # 0.908^8 = 0.46204767..., index = ⌊0.5 · 0.46204767 · 4⌋ = ⌊0.92409535⌋ = 0 -> local 0.5
    # θ0 = 0.9 · 0.908 + 0.1 · 0.5 = 0.8172 + 0.05 = 0.8672; all four p <= 0.8672 -> all 255.
    p2 = np.array([[0.5, 0.4], [0.3, 0.2]])
    out = ias.step(p2, np.zeros((2, 2), np.uint8))
    assert ias.thresholds[0] == pytest.approx(0.8672, abs=1e-12)
    assert (out == 255).all() and ias.last_kept_ratio == 0.0
    # Step 3: the eight pixels again. 0.8672^8 = 0.31985574..., index = ⌊4 · 0.31985574⌋ =
    # ⌊1.27942297⌋ = 1 -> 0.98; θ0 = 0.9 · 0.8672 + 0.098 = 0.78048 + 0.098 = 0.87848.
    ias.step(EIGHT, ZEROS)
    assert ias.thresholds[0] == pytest.approx(0.87848, abs=1e-12)
    assert ias.thresholds[1] == 0.9  # never present
    assert ias.steps == 3


def test_gamma_zero_index_is_alpha_times_count() -> None:
    ias = IAS(num_classes=1, alpha=0.5, beta=0.9, gamma=0.0)
    ias.step(EIGHT, ZEROS)
    # γ = 0: index = ⌊0.5 · 8⌋ = 4 -> descending[4] = 0.95; θ = 0.81 + 0.095 = 0.905
    assert ias.thresholds[0] == pytest.approx(0.905, abs=1e-12)


def test_alpha_one_index_clipped_to_last() -> None:
    ias = IAS(num_classes=1, alpha=1.0, beta=0.9, gamma=0.0)
    ias.step(EIGHT, ZEROS)
    # index = ⌊1 · 1 · 8⌋ = 8, clipped to 7 -> descending[7] = 0.92; θ = 0.81 + 0.092 = 0.902
    assert ias.thresholds[0] == pytest.approx(0.902, abs=1e-12)


def test_single_pixel_class() -> None:
    ias = IAS(num_classes=2, alpha=1.0, beta=0.5, gamma=0.0)
    ias.step(np.array([[0.7, 0.95]]), np.array([[1, 0]]))
    # each class has one pixel: index ⌊1 · 1⌋ = 1 -> clipped to 0 -> its own value
    # θ = 0.5 · 0.9 + 0.5 · [0.95, 0.7] = [0.925, 0.8]
    np.testing.assert_allclose(ias.thresholds, [0.925, 0.8], atol=1e-15)


def test_tie_at_threshold_paper_drops_public_code_keeps() -> None:
    # γ = 0, α = 0.5, β = 0 (θ_new = local exactly).
    p = np.array([[0.95, 0.96, 0.97, 0.98]])
    y = np.zeros((1, 4), np.uint8)
    paper = IAS(num_classes=1, alpha=0.5, beta=0.0, gamma=0.0, variant="paper")
    out = paper.step(p, y)
    # paper: index ⌊0.5 · 4⌋ = 2 of [0.98, 0.97, 0.96, 0.95] -> 0.96; keep p > 0.96
    assert paper.thresholds[0] == 0.96
    np.testing.assert_array_equal(out, [[255, 255, 0, 0]])
    code = IAS(num_classes=1, alpha=0.5, beta=0.0, gamma=0.0, variant="public_code")
    out = code.step(p, y)
    # public_code: quantile at level 1 - 0.5 = 0.5 of [0.9, 0.95, 0.96, 0.97, 0.98] (θ appended):
    # virtual index (5 - 1) · 0.5 = 2 exactly -> 0.96; keep p >= 0.96
    assert code.thresholds[0] == 0.96
    np.testing.assert_array_equal(out, [[255, 0, 0, 0]])


# ---------------------------------------------------------------- public_code variant, by hand
def test_public_code_eight_pixels_by_hand() -> None:
    ias = IAS(num_classes=2, alpha=0.5, beta=0.9, gamma=8.0, variant="public_code")
    ias.step(EIGHT, ZEROS)
    # level q = 1 - α θ^γ = 1 - 0.5 · 0.43046721 = 0.784766395
    # values with θ appended, ascending: [0.90, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99]
    # linear method: h = (9 - 1) · q = 6.27813116 -> v[6] + 0.27813116 · (v[7] - v[6])
    #               = 0.97 + 0.27813116 · 0.01 = 0.9727813116
    # θ_new = 0.9 · 0.9 + 0.1 · 0.9727813116 = 0.81 + 0.09727813116 = 0.90727813116
    local = 0.97 + 0.27813116 * 0.01
    assert ias.last_local_thresholds[0] == pytest.approx(local, abs=1e-12)
    q = 1 - 0.5 * 0.9**8
    assert local == pytest.approx(np.quantile(np.append(EIGHT.ravel(), 0.9), q), abs=1e-12)
    assert ias.thresholds[0] == pytest.approx(0.90727813116, abs=1e-12)
    assert ias.thresholds[1] == 0.9  # absent: quantile of [θ] alone is θ


def test_absent_class_keeps_threshold_over_steps() -> None:
    for variant in ("paper", "public_code"):
        ias = IAS(num_classes=4, init_threshold=0.8, variant=variant)
        rng = np.random.default_rng(0)
        for _ in range(5):
            p = rng.uniform(0.3, 1.0, (5, 6))
            y = rng.integers(0, 2, (5, 6))  # classes 2 and 3 never appear
            ias.step(p, y)
        assert ias.thresholds[2] == 0.8 and ias.thresholds[3] == 0.8
        assert ias.thresholds[0] != 0.8


def test_reset_restores_init() -> None:
    ias = IAS(num_classes=3, init_threshold=0.7)
    ias.step(EIGHT, ZEROS)
    assert ias.thresholds[0] != 0.7
    ias.reset()
    np.testing.assert_array_equal(ias.thresholds, [0.7, 0.7, 0.7])
    assert ias.steps == 0


def test_thresholds_property_is_a_copy() -> None:
    ias = IAS(num_classes=2)
    t = ias.thresholds
    t[:] = 0.0
    assert (ias.thresholds == 0.9).all()


def test_torch_inputs_match_numpy() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.2, 1.0, (6, 7)).astype(np.float32)
    y = rng.integers(0, 3, (6, 7))
    a, b = IAS(num_classes=3), IAS(num_classes=3)
    out_np = a.step(p, y)
    out_t = b.step(torch.from_numpy(p), torch.from_numpy(y))
    np.testing.assert_array_equal(out_np, out_t)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    # bf16 probabilities are widened to float64 (no numpy bf16 dtype) and still work.
    c = IAS(num_classes=3)
    out_bf = c.step(torch.from_numpy(p).bfloat16(), torch.from_numpy(y))
    assert out_bf.dtype == np.uint8 and c.thresholds.dtype == np.float64


@pytest.mark.parametrize(
    ("p", "y", "match"),
    [
        (np.ones((2, 3)) * 0.5, np.zeros((3, 2), int), "shape"),
        (np.ones((2, 3, 1)) * 0.5, np.zeros((2, 3, 1), int), "2-D"),
        (np.ones((2, 3)) * 0.5, np.full((2, 3), 3), "class ids"),
        (np.ones((2, 3)) * 0.5, np.full((2, 3), -1), "class ids"),
        (np.ones((2, 3)) * 0.5, np.full((2, 3), 255, np.uint8), "class ids"),
        (np.ones((2, 3)) * 0.5, np.zeros((2, 3)), "integer"),
        (np.ones((2, 3)) * 1.5, np.zeros((2, 3), int), r"\[0, 1\]"),
        (np.full((2, 3), np.nan), np.zeros((2, 3), int), r"\[0, 1\]"),
        (np.ones((0, 3)), np.zeros((0, 3), int), "empty"),
        ([[0.5]], [[0]], "numpy array or a torch tensor"),
    ],
)
def test_step_validation(p: np.ndarray, y: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        IAS(num_classes=3).step(p, y)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_classes": 0},
        {"num_classes": 256},
        {"num_classes": 3, "alpha": 0.0},
        {"num_classes": 3, "alpha": 1.5},
        {"num_classes": 3, "beta": 1.0},
        {"num_classes": 3, "gamma": -1.0},
        {"num_classes": 3, "init_threshold": 0.0},
        {"num_classes": 3, "variant": "other"},
    ],
)
def test_constructor_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        IAS(**kwargs)


# ---------------------------------------------------------------- naive reference + properties
def _naive_step(theta, p, y, alpha, beta, gamma, variant):
    """Per-class, per-pixel Python transcription of Algorithm 1 (slow, obviously right)."""
    theta = np.array(theta, dtype=np.float64)
    proportion = alpha * theta**gamma  # same float expression as the implementation
    local = theta.copy()
    H, W = p.shape
    for c in range(theta.size):
        vals = [float(p[i, j]) for i in range(H) for j in range(W) if y[i, j] == c]
        if not vals:
            continue
        if variant == "paper":
            desc = sorted(vals, reverse=True)
            local[c] = desc[min(math.floor(proportion[c] * len(desc)), len(desc) - 1)]
        else:
            v = sorted([*vals, float(theta[c])])
            h = (len(v) - 1) * min(max(1.0 - proportion[c], 0.0), 1.0)
            lo = math.floor(h)
            hi = min(lo + 1, len(v) - 1)
            local[c] = v[lo] + (h - lo) * (v[hi] - v[lo])
    new = beta * theta + (1 - beta) * local
    out = np.full((H, W), 255, np.uint8)
    for i in range(H):
        for j in range(W):
            t = new[y[i, j]]
            keep = p[i, j] > t if variant == "paper" else p[i, j] >= t
            if keep:
                out[i, j] = y[i, j]
    return new, out


C = 3


@st.composite
def instances(draw):
    n = draw(st.integers(1, 4))
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    out = []
    for _ in range(n):
        p = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))
        y = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, C - 1)))
        out.append((p, y))
    return out


@settings(max_examples=100, deadline=None)
@given(
    data=instances(),
    alpha=st.floats(0.01, 1.0),
    beta=st.floats(0.0, 0.99),
    gamma=st.floats(0.0, 10.0),
    init=st.floats(0.05, 1.0),
    variant=st.sampled_from(["paper", "public_code"]),
)
def test_properties_and_naive_agreement(data, alpha, beta, gamma, init, variant) -> None:
    ias = IAS(num_classes=C, alpha=alpha, beta=beta, gamma=gamma, init_threshold=init, variant=variant)
    theta = np.full(C, init)
    p_min = init
    for p, y in data:
        out = ias.step(p, y)
        theta, ref = _naive_step(theta, p, y, alpha, beta, gamma, variant)
        p_min = min(p_min, float(p.min()))
        th = ias.thresholds
        # Thresholds stay within [min(init, every p seen), 1].
        assert (th >= p_min - 1e-12).all() and (th <= 1.0 + 1e-12).all()
        # Output holds input labels or 255 only, and a kept pixel keeps its arg-max.
        kept = out != 255
        assert set(np.unique(out[kept]).tolist()) <= set(np.unique(y).tolist())
        np.testing.assert_array_equal(out[kept], y[kept])
        # Kept pixels pass the new threshold of their class; dropped ones do not.
        if variant == "paper":
            assert (p[kept] > th[y[kept]]).all() and (p[~kept] <= th[y[~kept]]).all()
        else:
            assert (p[kept] >= th[y[kept]]).all() and (p[~kept] < th[y[~kept]]).all()
        assert ias.last_kept_ratio == pytest.approx(kept.mean())
        np.testing.assert_array_equal(ias.last_kept_counts, np.bincount(out[kept], minlength=C))
        # Same thresholds as the naive transcription (the public_code quantile to rounding).
        np.testing.assert_allclose(th, theta, rtol=0, atol=1e-12)
        if variant == "paper":
            np.testing.assert_array_equal(out, ref)
