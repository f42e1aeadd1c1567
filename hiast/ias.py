"""Instance adaptive selector (IAS): pseudo-label generation of HIAST (§4.2, Algorithm 1).

For each target instance the generator gives, per pixel, the arg-max class and its softmax
probability. IAS keeps one threshold per class and, instance after instance:

1. computes a *local* threshold per class from the instance alone (Eq. 8, with the hard-class
   weight decay θ^γ of §4.2.2),
2. smooths it into the running threshold with an exponential moving average (Eq. 7),
3. keeps a pixel's arg-max class iff its probability passes the new threshold of that class
   (Eq. 6, Algorithm 1 line 10); every other pixel becomes 255 (ignored).

Two readings of the local threshold are offered (see ``docs``/reference "IAS"):

``variant="paper"`` (default)
    Eq. 8 literally: sort the class's probabilities in the instance in descending order and take
    the element at index ⌊α·θ^γ·|P|⌋ (clipped to the last element). A class absent from the
    instance keeps its threshold (its local value is θ itself, so Eq. 7 leaves it unchanged).
    Keep iff ``p > θ_new`` (Eq. 6 is a strict inequality).

``variant="public_code"``
    The released code: the linearly interpolated quantile (``numpy.quantile``'s default method)
    at level ``1 − α·θ^γ`` of the class's probabilities *with θ_old appended to the list* — so an
    absent class keeps θ, and a present one is pulled slightly towards θ. Keep iff ``p ≥ θ_new``.
    The released code also casts probabilities to float16 and pools two images per step; we do
    neither (float64, one instance per step) so that results are exact and do not depend on
    loader batching.

Everything is computed in float64.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = ["IAS", "IGNORE_INDEX"]

IGNORE_INDEX = 255

Variant = Literal["paper", "public_code"]


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """numpy view of a numpy array or torch tensor (any device/dtype), without importing torch."""
    if isinstance(x, np.ndarray):
        return x
    # Duck-typed torch.Tensor: detach from any graph and move to host memory. bfloat16 has no numpy
    # dtype, so floating tensors are widened to float64 on the torch side first.
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        t = x.detach().cpu()
        if t.is_floating_point():
            t = t.double()
        return t.numpy()
    raise ValueError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


class IAS:
    """Instance adaptive selector (Algorithm 1): one ``step`` per target instance.

    Parameters
    ----------
    num_classes:
        C, the number of classes (1..255; 255 is the ignore value of the output).
    alpha:
        α ∈ (0, 1], the proportion of Eq. 8.
    beta:
        β ∈ [0, 1), the EMA momentum of Eq. 7.
    gamma:
        γ ≥ 0, the hard-class weight decay exponent of Eq. 8 (§4.2.2).
    init_threshold:
        θ_0 ∈ (0, 1] for every class (Algorithm 1 line 1: 0.9).
    variant:
        ``"paper"`` or ``"public_code"`` (module docstring).

    Attributes after each :meth:`step`:
        ``thresholds`` (C,) float64, the updated θ_t; ``last_local_thresholds`` (C,) the local
        values Ψ of Eq. 8 (θ_{t-1} for absent classes); ``last_class_counts`` (C,) pixels per
        arg-max class; ``last_kept_counts`` (C,) kept pixels per class (the class statistics
        stored beside the pseudo-labels); ``last_kept_ratio`` the fraction of the instance's
        pixels that were kept; ``steps`` the number of instances seen since the last reset.
    """

    def __init__(
        self,
        num_classes: int,
        alpha: float = 0.5,
        beta: float = 0.9,
        gamma: float = 8.0,
        init_threshold: float = 0.9,
        variant: Variant = "paper",
    ) -> None:
        if not isinstance(num_classes, (int, np.integer)) or not 1 <= int(num_classes) <= 255:
            raise ValueError(f"num_classes must be an integer in 1..255 (255 = ignore), got {num_classes!r}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta!r}")
        if not gamma >= 0.0 or not np.isfinite(gamma):
            raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
        if not 0.0 < init_threshold <= 1.0:
            raise ValueError(f"init_threshold must be in (0, 1], got {init_threshold!r}")
        if variant not in ("paper", "public_code"):
            raise ValueError(f"variant must be 'paper' or 'public_code', got {variant!r}")
        self.num_classes = int(num_classes)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.init_threshold = float(init_threshold)
        self.variant: Variant = variant
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Every threshold back to ``init_threshold`` (each self-training round restarts, §4.2)."""
        self._theta = np.full(self.num_classes, self.init_threshold, dtype=np.float64)
        self.last_local_thresholds = self._theta.copy()
        self.last_class_counts = np.zeros(self.num_classes, dtype=np.int64)
        self.last_kept_counts = np.zeros(self.num_classes, dtype=np.int64)
        self.last_kept_ratio = float("nan")
        self.steps = 0

    @property
    def thresholds(self) -> np.ndarray:
        """θ_t, float64 (C,) — a copy, so callers cannot change the selector's state by accident."""
        return self._theta.copy()

    # ------------------------------------------------------------------ core
    def _validate(self, prob_max: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
        p = _to_numpy(prob_max, "prob_max")
        y = _to_numpy(label, "label")
        if p.ndim != 2:
            raise ValueError(f"prob_max must be 2-D (H, W), got shape {p.shape}")
        if y.shape != p.shape:
            raise ValueError(f"label shape {y.shape} differs from prob_max shape {p.shape}")
        if p.size == 0:
            raise ValueError("empty instance: prob_max has no pixels")
        if not np.issubdtype(p.dtype, np.floating):
            raise ValueError(f"prob_max must hold floating probabilities, got dtype {p.dtype}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"label must hold integer class ids (the arg-max), got dtype {y.dtype}")
        p = p.astype(np.float64, copy=False)
        if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
            raise ValueError("prob_max must be finite probabilities in [0, 1]")
        if y.min() < 0 or y.max() >= self.num_classes:
            raise ValueError(
                f"label holds class ids in {int(y.min())}..{int(y.max())}, "
                f"expected 0..{self.num_classes - 1} (an arg-max map has no ignore value)"
            )
        return p, y

    def _local_thresholds(self, p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ψ(x_t, θ_{t-1}) of Eq. 8 for every class, and the per-class pixel counts."""
        C = self.num_classes
        theta = self._theta
        # Class ids are validated < C <= 255, so uint8 is lossless and lets numpy use its radix
        # sort (several times faster than sorting intp on a 768x1536 map).
        y_flat = y.ravel().astype(np.uint8, copy=False)
        p_flat = p.ravel()
        counts = np.bincount(y_flat, minlength=C)
        # Group the pixels by class once (a stable integer sort), so each class's probabilities
        # are a contiguous slice; then only a partial sort per present class is needed.
        order = np.argsort(y_flat, kind="stable")
        grouped = p_flat[order]
        ends = np.cumsum(counts)
        starts = ends - counts
        # α·θ^γ: the proportion of §4.2.2, smaller for hard classes (lower θ) -> stricter.
        proportion = self.alpha * theta**self.gamma
        local = theta.copy()  # absent classes: local value θ, so Eq. 7 leaves them unchanged
        for c in np.flatnonzero(counts):
            seg = grouped[starts[c] : ends[c]]
            n = seg.size
            if self.variant == "paper":
                # Descending index i = ⌊α θ^γ |P|⌋ clipped to n-1; as an ascending index n-1-i.
                i = min(int(np.floor(proportion[c] * n)), n - 1)
                k = n - 1 - i
                local[c] = np.partition(seg, k)[k]
            else:
                level = float(np.clip(1.0 - proportion[c], 0.0, 1.0))
                local[c] = np.quantile(np.append(seg, theta[c]), level)
        return local, counts

    def step(self, prob_max: Any, label: Any) -> np.ndarray:
        """Process one instance x_t (Algorithm 1, lines 3-10); return its pseudo-label.

        ``prob_max`` is the (H, W) maximum softmax probability and ``label`` the (H, W) arg-max
        class, numpy or torch. Returns numpy uint8 (H, W) holding the arg-max where it passes
        the updated threshold of its class and 255 elsewhere. Updates :attr:`thresholds`.
        """
        p, y = self._validate(prob_max, label)
        local, counts = self._local_thresholds(p, y)
        # Eq. 7: θ_t = β θ_{t-1} + (1-β) Ψ.
        self._theta = self.beta * self._theta + (1.0 - self.beta) * local
        thr = self._theta[y]
        keep = p > thr if self.variant == "paper" else p >= thr
        out = np.full(y.shape, IGNORE_INDEX, dtype=np.uint8)
        out[keep] = y[keep]
        self.last_local_thresholds = local
        self.last_class_counts = counts
        self.last_kept_counts = np.bincount(y[keep].astype(np.intp), minlength=self.num_classes)
        self.last_kept_ratio = float(keep.mean())
        self.steps += 1
        return out
