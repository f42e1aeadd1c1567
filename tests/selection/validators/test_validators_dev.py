"""DEV and IWCV: the control-variate formula against a hand computation and the reference code's
numbers, the density ratios against a case whose true ratio is known, and the pixel version's
behaviour on shifts whose direction is known."""

from __future__ import annotations

import numpy as np
import pytest

from selection.errors import SelectionError
from selection.validators import dev, iwcv
from selection.validators.dev import (
    DEV_SCALARS,
    L2_GRID,
    DEVResult,
    density_ratios,
    dev_from_pixels,
    dev_risk,
    iwcv_risk,
)


def test_dev_risk_by_hand() -> None:
    w = np.array([0.5, 1.0, 1.5, 2.0])
    loss = np.array([1.0, 0.0, 1.0, 1.0])
    # L = w * loss = [0.5, 0, 1.5, 2]: mean 1.0; mean(w) 1.25.
    # Cov(L, w) = (0.375 + 0.25 + 0.125 + 0.75) / 3 = 0.5; Var(w) = 1.25 / 3; eta = -1.2.
    # R_DEV = 1.0 + (-1.2)(1.25) - (-1.2) = 0.7.
    risk, eta = dev_risk(w, loss)
    assert eta == pytest.approx(-1.2)
    assert risk == pytest.approx(0.7)
    assert iwcv_risk(w, loss) == pytest.approx(1.0)


def test_dev_risk_matches_the_reference_implementation() -> None:
    # thuml/Deep-Embedded-Validation dev.py get_dev_risk(weight, error) on these arrays (run once on
    # its code, numpy only) gave 0.09177595902437899; its IWCV (mean weighted error) 0.09734831992883464.
    rng = np.random.default_rng(7)
    w = rng.gamma(2.0, 0.5, size=(50, 1))
    error = (rng.random((50, 1)) < 0.3).astype(float)
    risk, _ = dev_risk(w, error)
    assert risk == pytest.approx(0.09177595902437899, rel=1e-12)
    assert iwcv_risk(w, error) == pytest.approx(0.09734831992883464, rel=1e-12)


def test_constant_weights_leave_the_mean_loss() -> None:
    risk, eta = dev_risk(np.ones(5), np.arange(5.0))
    assert (risk, eta) == (2.0, 0.0)


def test_density_ratios_recover_a_known_ratio() -> None:
    # Source N(0, 1), target N(1, 1): p_t / p_s = exp(x - 1/2), linear in x in the log, so the
    # logistic classifier is the right model and its ratios must approach the truth.
    rng = np.random.default_rng(0)
    source = rng.normal(0.0, 1.0, (20000, 1))
    target = rng.normal(1.0, 1.0, (20000, 1))
    at = np.array([[-1.0], [0.0], [0.5], [1.0], [2.0]])
    w = density_ratios(source, target, at, l2=1e-4)
    np.testing.assert_allclose(w, np.exp(at[:, 0] - 0.5), rtol=0.08)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _pixels(rng: np.random.Generator, images: int, confident: float) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (images, 200, 3) and labels: right with confidence ``confident`` on class 0
    pixels, wrong and unsure on class 1 pixels."""
    labels = rng.integers(0, 2, (images, 200))
    logits = rng.normal(0, 0.3, (images, 200, 3))
    logits[..., 0] += np.where(labels == 0, confident, 0.5)
    return _softmax(logits).astype(np.float16), labels.astype(np.uint8)


def test_same_domain_weights_near_one_and_dev_near_the_source_loss() -> None:
    rng = np.random.default_rng(1)
    sp, sl = _pixels(rng, 20, 3.0)
    tp, _ = _pixels(rng, 20, 3.0)
    r = dev_from_pixels(sp, sl, tp, seed=0)
    assert r.mean_weight == pytest.approx(1.0, abs=0.05)
    assert r.iwcv == pytest.approx(r.source_loss, rel=0.05)
    assert r.dev == pytest.approx(r.source_loss, rel=0.05)
    assert r.pixels == sp.shape[0] * sp.shape[1]


def test_a_target_like_the_hard_source_pixels_raises_the_risk() -> None:
    # The target holds mostly pixels that look like the source pixels the model gets wrong
    # (its class-1 output pattern): weighting must move the risk up from the plain source loss.
    rng = np.random.default_rng(2)
    sp, sl = _pixels(rng, 20, 3.0)
    logits = rng.normal(0, 0.3, (20, 200, 3))
    logits[..., 0] += 0.5
    tp = _softmax(logits).astype(np.float16)
    r = dev_from_pixels(sp, sl, tp, seed=0)
    assert r.iwcv > 1.3 * r.source_loss and r.dev > 1.3 * r.source_loss
    again = dev_from_pixels(sp, sl, tp, seed=0)
    assert again == r  # seeded: the same draw and fit


def test_ignore_pixels_are_left_out_and_bad_input_is_named() -> None:
    rng = np.random.default_rng(3)
    sp, sl = _pixels(rng, 4, 3.0)
    sl[:, :100] = 255
    r = dev_from_pixels(sp, sl, sp, seed=0)
    assert r.pixels == 4 * 100
    with pytest.raises(SelectionError, match="expected source"):
        dev_from_pixels(sp[0], sl, sp)
    with pytest.raises(SelectionError, match="at least 2"):
        dev_from_pixels(sp[:1], sl[:1], sp)
    with pytest.raises(SelectionError, match="error must be"):
        dev_from_pixels(sp, sl, sp, error="hinge")


def test_the_recorded_scalars_are_read_back() -> None:
    r = DEVResult(dev=0.7, iwcv=1.0, eta=-1.2, source_loss=0.9, mean_weight=1.25, l2=1e-3, pixels=4)
    assert r.scalars() == {"dev": 0.7, "iwcv": 1.0, "dev_eta": -1.2}
    assert tuple(r.scalars()) == DEV_SCALARS  # what the evidence writer stores, in its order
    assert dev(r.scalars()) == 0.7 and iwcv(r.scalars()) == 1.0
    with pytest.raises(SelectionError, match="no 'dev' recorded .*labelled source-val"):
        dev({"iwcv": 1.0})
    with pytest.raises(SelectionError, match="no 'iwcv' recorded"):
        iwcv({})


def test_risks_refuse_mismatched_or_too_short_inputs() -> None:
    with pytest.raises(SelectionError, match="equal-length weights and losses .*got 3, 2"):
        dev_risk(np.ones(3), np.ones(2))
    with pytest.raises(SelectionError, match=r"\(>= 2\), got 1, 1"):
        dev_risk(np.ones(1), np.ones(1))
    with pytest.raises(SelectionError, match="non-empty"):
        iwcv_risk(np.ones(0), np.ones(0))
    assert iwcv_risk(np.array([2.0]), np.array([0.25])) == 0.5  # one sample is enough for IWCV


def test_zero_one_error_counts_wrong_argmaxes() -> None:
    rng = np.random.default_rng(5)
    sp, sl = _pixels(rng, 6, 3.0)
    r = dev_from_pixels(sp, sl, sp, seed=0, error="zero_one")
    # every source pixel is weighted, so the unweighted loss is the error rate of the argmax
    assert r.source_loss == pytest.approx(float((sp.argmax(-1) != sl).mean()))
    assert r.l2 in L2_GRID


def test_a_label_beyond_the_classes_is_refused() -> None:
    rng = np.random.default_rng(6)
    sp, sl = _pixels(rng, 2, 3.0)
    sl[0, 0] = 3  # 3 classes: 0..2, or the ignore label
    with pytest.raises(SelectionError, match="class >= 3 that is not the ignore index"):
        dev_from_pixels(sp, sl, sp)


def test_the_fit_runs_blas_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Beside a busy trainer, BLAS threads made the fit cost 6x the CPU (bench/README.md), and a
    # thread count that depends on the machine would change the sums' order.
    import importlib

    import threadpoolctl

    dev_module = importlib.import_module("selection.validators.dev")  # the package face's dev is the function
    seen, real = [], dev_module.minimize

    def spy(*args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas")
        return real(*args, **kwargs)

    monkeypatch.setattr(dev_module, "minimize", spy)
    rng = np.random.default_rng(0)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        density_ratios(rng.normal(size=(50, 3)), rng.normal(1.0, 1.0, (50, 3)), rng.normal(size=(5, 3)), 1e-3)
        fitted = len(seen)
        probs = rng.dirichlet(np.ones(3), size=(4, 20))
        dev_from_pixels(probs, rng.integers(0, 3, (4, 20)), rng.dirichlet(np.ones(3), size=(4, 20)))
    assert fitted and len(seen) > fitted and set(seen) == {1}
