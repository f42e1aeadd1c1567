"""Deep Embedded Validation (You et al., ICML 2019; reference code thuml/Deep-Embedded-Validation,
``dev.py``) and IWCV (Sugiyama et al., JMLR 2007) for segmentation, on the evidence's pixels.

Both estimate the candidate's risk on the target from its loss on labelled source-val samples,
each weighted by the density ratio w(x) = p_target(x) / p_source(x). The ratio comes from a domain
classifier d(x) = P(target | x): w = (n_s / n_t) * d / (1 - d), n_s and n_t the classifier's
training counts. IWCV is mean(w * loss). DEV adds the control variate of the reference's
``get_dev_risk``: with L = w * loss, eta = -Cov(L, w) / Var(w) (sample statistics, ddof 1) and
R_DEV = mean(L) + eta * mean(w) - eta; since E[w] = 1, the correction has mean zero and removes
the part of mean(L)'s variance that follows the weights. Lower is better for both.

Segmentation, as done here:

* **Samples are pixels**, the ones every evidence file samples per image (source-val and target
  subset; ``EvidenceSettings.n_pix`` each), not pooled image features. The validators must work
  from what the Train worker stores, and a pooled image feature would discard where in the image
  the shift is; pixels give thousands of samples where images give hundreds. The price is that
  pixels of one image are correlated: the classifier is L2-regularised (strength chosen on
  held-out log-loss, as the reference chooses its MLP's decay on held-out accuracy), and no
  sample is weighted by a classifier that saw it (cross-fitting below).
* **Features are the candidate's log-probabilities** at those pixels (standardised): the last
  layer of the network, which the evidence holds (the reference uses a deep feature layer; that
  would need a new evidence format and more storage). So the classifier sees how the candidate's
  output distribution differs between domains.
* **Classifier**: logistic regression (linear in the log-probabilities), fitted by L-BFGS. The
  reference's MLP is not deterministic; this is, given ``seed``.
* **Cross-fitting**: source-val and target images are split in two folds by position; the
  classifier fitted on one fold weights the source pixels of the other, so every source pixel
  gets a weight from a classifier that never saw it, and all of them count.
* **Loss**: per-pixel cross-entropy of the candidate's probability of the true label (pixels with
  the ignore label left out). ``error="zero_one"`` uses the 0/1 error instead, as the reference's
  classification example does.

``max_pixels`` caps the pixels per domain and fold (a seeded draw) so a 500-image subset costs
seconds, not minutes. Needs labelled source-val (``data.source_val``, or the held-out split).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from threadpoolctl import threadpool_limits

from selection.errors import SelectionError
from selection.fusion.majority import IGNORE_INDEX

__all__ = [
    "DEVResult",
    "DEV_SCALARS",
    "L2_GRID",
    "density_ratios",
    "dev",
    "dev_from_pixels",
    "dev_risk",
    "iwcv",
    "iwcv_risk",
]

# What the evidence writer records per candidate (:meth:`DEVResult.scalars`): the fit runs once,
# when the candidate's evidence is written, not at every vote.
DEV_SCALARS = ("dev", "iwcv", "dev_eta")

# Candidate L2 strengths (per sample, on standardised features), chosen by held-out log-loss.
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
_EPS = 1e-6


@dataclass(frozen=True)
class DEVResult:
    """``dev``: R_DEV; ``iwcv``: mean weighted loss; ``eta``: the control variate's coefficient;
    ``source_loss``: the unweighted mean loss; ``mean_weight``: mean(w) (1 in expectation);
    ``l2``: the chosen regularisation; ``pixels``: source pixels weighted."""

    dev: float
    iwcv: float
    eta: float
    source_loss: float
    mean_weight: float
    l2: float
    pixels: int

    def scalars(self) -> dict[str, float]:
        return {"dev": self.dev, "iwcv": self.iwcv, "dev_eta": self.eta}


def dev_risk(weights: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """(R_DEV, eta) for per-sample density ratios and losses (1-D, same length >= 2)."""
    w = np.asarray(weights, np.float64).reshape(-1)
    loss = np.asarray(losses, np.float64).reshape(-1)
    if w.shape != loss.shape or w.size < 2:
        raise SelectionError(
            f"dev_risk: need equal-length weights and losses (>= 2), got {w.size}, {loss.size}"
        )
    weighted = w * loss
    var_w = np.var(w, ddof=1)
    if var_w == 0:
        return float(weighted.mean()), 0.0  # constant weights: nothing to correct
    eta = -np.cov(weighted, w, ddof=1)[0, 1] / var_w
    return float(weighted.mean() + eta * w.mean() - eta), float(eta)


def iwcv_risk(weights: np.ndarray, losses: np.ndarray) -> float:
    """Importance-weighted mean loss (IWCV)."""
    w = np.asarray(weights, np.float64).reshape(-1)
    loss = np.asarray(losses, np.float64).reshape(-1)
    if w.shape != loss.shape or w.size == 0:
        raise SelectionError(
            f"iwcv_risk: need equal-length, non-empty weights and losses, got {w.size}, {loss.size}"
        )
    return float((w * loss).mean())


# DEV's BLAS work is products of a (pixels x features) matrix with a vector, hundreds per L-BFGS fit:
# too small for BLAS threads, which cost 6x the CPU beside a busy trainer (bench/README.md, DEV's
# cost), and one thread sums in one order on every machine, so DEV does not depend on core count.
_ONE_BLAS_THREAD = threadpool_limits.wrap(limits=1, user_api="blas")


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Weights (intercept last) of an L2-regularised logistic regression of y (0/1) on x."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    n = len(x)

    def loss_grad(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = xb @ beta
        # -log-likelihood: log(1 + e^z) - y z, in a stable form.
        nll = -(y * log_expit(z) + (1 - y) * log_expit(-z)).sum() / n
        grad = xb.T @ (expit(z) - y) / n
        pen = beta[:-1]
        return nll + 0.5 * l2 * float(pen @ pen), grad + np.append(l2 * pen, 0.0)

    res = minimize(loss_grad, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x


def _logit(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return x @ beta[:-1] + beta[-1]


def _log_loss(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    z = _logit(x, beta)
    return float(-(y * log_expit(z) + (1 - y) * log_expit(-z)).mean())


@_ONE_BLAS_THREAD
def density_ratios(
    source_fit: np.ndarray, target_fit: np.ndarray, source_eval: np.ndarray, l2: float
) -> np.ndarray:
    """w(x) at ``source_eval`` from a classifier of target (1) vs source (0) fitted on the ``*_fit``
    features: (n_s / n_t) * d / (1 - d), as the reference computes it."""
    x = np.vstack([source_fit, target_fit])
    y = np.concatenate([np.zeros(len(source_fit)), np.ones(len(target_fit))])
    return _ratios(_fit_logistic(x, y, l2), len(source_fit), len(target_fit), source_eval)


def _ratios(beta: np.ndarray, n_source: int, n_target: int, at: np.ndarray) -> np.ndarray:
    # d / (1 - d) = exp(logit): no division by a probability that rounds to 0.
    return n_source / n_target * np.exp(_logit(at, beta))


def _features(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs.astype(np.float64), _EPS, 1.0))


def _draw(rows: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    return rows if len(rows) <= cap else np.sort(rng.choice(rows, cap, replace=False))


@_ONE_BLAS_THREAD
def dev_from_pixels(
    source_probs: np.ndarray,
    source_labels: np.ndarray,
    target_probs: np.ndarray,
    *,
    max_pixels: int = 20000,
    seed: int = 0,
    error: str = "cross_entropy",
    ignore_index: int = IGNORE_INDEX,
) -> DEVResult:
    """DEV and IWCV of one candidate from its evidence: ``source_probs`` (M, P, C) with
    ``source_labels`` (M, P) on source-val images, ``target_probs`` (N, P, C) on the subset."""
    if error not in ("cross_entropy", "zero_one"):
        raise SelectionError(f"dev: error must be 'cross_entropy' or 'zero_one', got {error!r}")
    sp, tp = np.asarray(source_probs), np.asarray(target_probs)
    labels = np.asarray(source_labels)
    if sp.ndim != 3 or tp.ndim != 3 or sp.shape[2] != tp.shape[2] or labels.shape != sp.shape[:2]:
        raise SelectionError(
            f"dev: expected source (M, P, C), labels (M, P) and target (N, P, C); got {sp.shape}, "
            f"{labels.shape}, {tp.shape}"
        )
    if sp.shape[0] < 2 or tp.shape[0] < 2:
        raise SelectionError("dev: needs at least 2 source-val and 2 target images (two folds)")
    rng = np.random.default_rng(seed)
    c = sp.shape[2]
    s_feat = _features(sp.reshape(-1, c))
    t_feat = _features(tp.reshape(-1, c))
    flat = labels.reshape(-1).astype(np.int64)
    valid = flat != ignore_index
    if np.any(flat[valid] >= c):
        raise SelectionError(f"dev: source labels hold a class >= {c} that is not the ignore index")
    s_img = np.repeat(np.arange(sp.shape[0]), sp.shape[1])
    t_img = np.repeat(np.arange(tp.shape[0]), tp.shape[1])
    folds = []
    for k in (0, 1):
        s_rows = _draw(np.flatnonzero((s_img % 2 == k) & valid), max_pixels, rng)
        t_rows = _draw(np.flatnonzero(t_img % 2 == k), max_pixels, rng)
        if len(s_rows) == 0:
            raise SelectionError("dev: a source-val fold has no labelled pixel")
        folds.append((s_rows, t_rows))
    mean = np.vstack([s_feat[folds[0][0]], t_feat[folds[0][1]]]).mean(axis=0)
    std = np.vstack([s_feat[folds[0][0]], t_feat[folds[0][1]]]).std(axis=0) + 1e-8
    s_x, t_x = (s_feat - mean) / std, (t_feat - mean) / std

    def fold_xy(k: int) -> tuple[np.ndarray, np.ndarray]:
        s_rows, t_rows = folds[k]
        return np.vstack([s_x[s_rows], t_x[t_rows]]), np.r_[np.zeros(len(s_rows)), np.ones(len(t_rows))]

    # The L2 strength with the lowest held-out log-loss, each fold predicting the other.
    # The fits of the chosen strength are the ones that weight the source pixels (density_ratios'
    # classifier on the same rows), so each is fitted once.
    scores, fits = [], {}
    for l2 in L2_GRID:
        held_out = 0.0
        for k in (0, 1):
            x, y = fold_xy(k)
            xo, yo = fold_xy(1 - k)
            fits[l2, k] = _fit_logistic(x, y, l2)
            held_out += _log_loss(xo, yo, fits[l2, k])
        scores.append(held_out)
    l2 = L2_GRID[int(np.argmin(scores))]

    weights, losses = [], []
    for k in (0, 1):
        s_fit, t_fit = folds[k]
        s_eval = folds[1 - k][0]
        weights.append(_ratios(fits[l2, k], len(s_fit), len(t_fit), s_x[s_eval]))
        p_true = sp.reshape(-1, c)[s_eval, flat[s_eval]].astype(np.float64)
        if error == "cross_entropy":
            losses.append(-np.log(np.clip(p_true, _EPS, 1.0)))
        else:
            losses.append((sp.reshape(-1, c)[s_eval].argmax(axis=1) != flat[s_eval]).astype(np.float64))
    w, loss = np.concatenate(weights), np.concatenate(losses)
    dev, eta = dev_risk(w, loss)
    return DEVResult(
        dev=dev,
        iwcv=iwcv_risk(w, loss),
        eta=eta,
        source_loss=float(loss.mean()),
        mean_weight=float(w.mean()),
        l2=l2,
        pixels=int(w.size),
    )


def _recorded(scalars: Mapping[str, float], name: str) -> float:
    if name not in scalars:
        raise SelectionError(f"no {name!r} recorded (is there a labelled source-val split?)")
    return float(scalars[name])


def dev(scalars: Mapping[str, float]) -> float:
    """The R_DEV the evidence writer recorded for a candidate (lower is better)."""
    return _recorded(scalars, "dev")


def iwcv(scalars: Mapping[str, float]) -> float:
    """The IWCV risk the evidence writer recorded for a candidate (lower is better)."""
    return _recorded(scalars, "iwcv")
