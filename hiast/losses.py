"""Losses of HIAST: self-training objective (Eq. 4, 11, 12, 14) and warm-up losses (Eq. 1-3).

Self-training (§4.4), on the student's logits of the strong view at pseudo-label resolution:

* ``ce``    L_CE of Eq. 4: mean negative log-likelihood of the pseudo-label over the *confident*
            region (pseudo != 255).
* ``r_c``   R_c, Eq. 11: mean over confident pixels of −(1/C) Σ_c log p_c (the KL divergence to
            the uniform distribution without its constant −log C); smooths confident predictions.
* ``r_i``   R_i, Eq. 12: mean over *ignored* pixels (pseudo == 255) of the entropy −Σ p log p.
* ``r_cst`` R_cst, Eq. 14: mean over ignored pixels of the soft cross-entropy −Σ q log p, with q the
            EMA teacher's softmax on the weak view (a constant: no gradient reaches the teacher).
* ``total`` = ce + λ_c r_c + λ_i r_i + λ_cst r_cst (Eq. 4).

"Mean" is per pixel (the paper's reading). ``normalization="public_code"`` reproduces the
released code, which divides R_c, R_i and R_cst by C·N instead of N (the weights it ships were
tuned that way). A region with no pixel contributes exactly 0 and keeps the graph intact, where
the released code divides 0 by 0.

Everything is computed in float32, whatever the dtype of the logits (bf16 autocast included):
log-softmax and entropies in bf16 lose too many digits.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "hiast_losses",
    "source_ce",
    "lsgan_d_loss",
    "lsgan_g_loss",
]

Normalization = Literal["paper", "public_code"]


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask``; exactly 0 (with a graph) when the mask is empty."""
    # torch.where rather than values * mask: an inf/NaN outside the region must not leak in.
    total = torch.where(mask, values, values.new_zeros(())).sum()
    return total / mask.sum().clamp_min(1).to(values.dtype)


def _check_labels(label: Tensor, num_classes: int, ignore_index: int, name: str) -> Tensor:
    if label.dtype.is_floating_point or label.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids, got dtype {label.dtype}")
    label = label.long()
    # One host sync per call, worth it: an out-of-range id is a silent device-side assert on GPU.
    bad = (label != ignore_index) & ((label < 0) | (label >= num_classes))
    if bool(bad.any()):
        raise ValueError(f"{name} holds ids outside 0..{num_classes - 1} other than {ignore_index}")
    return label


def hiast_losses(
    student_logits: Tensor,
    pseudo: Tensor,
    teacher_prob: Tensor | None = None,
    *,
    lambda_i: float,
    lambda_c: float,
    lambda_cst: float,
    normalization: Normalization = "paper",
    ignore_index: int = 255,
) -> dict[str, Tensor]:
    """Self-training losses of Eq. 4 with the region-adaptive terms of Eq. 11, 12 and 14.

    ``student_logits`` (B, C, H, W) at the resolution of ``pseudo`` (B, H, W) integer ids with
    ``ignore_index`` = ignored; ``teacher_prob`` (B, C, H, W) the teacher's softmax on the weak
    view, or None (then ``r_cst`` = 0). Returns float32 scalars ``ce, r_c, r_i, r_cst, total``;
    the weighted terms are reported unweighted.
    """
    if normalization not in ("paper", "public_code"):
        raise ValueError(f"normalization must be 'paper' or 'public_code', got {normalization!r}")
    if student_logits.ndim != 4:
        raise ValueError(f"student_logits must be (B, C, H, W), got shape {tuple(student_logits.shape)}")
    B, C, H, W = student_logits.shape
    if tuple(pseudo.shape) != (B, H, W):
        raise ValueError(f"pseudo shape {tuple(pseudo.shape)} does not match logits (B, H, W) = {(B, H, W)}")
    if teacher_prob is not None and teacher_prob.shape != student_logits.shape:
        raise ValueError(
            f"teacher_prob shape {tuple(teacher_prob.shape)} != logits {tuple(student_logits.shape)}"
        )
    pseudo = _check_labels(pseudo, C, ignore_index, "pseudo")

    log_p = F.log_softmax(student_logits.float(), dim=1)
    confident = pseudo != ignore_index
    ignored = ~confident

    # L_CE on confident pixels only (Eq. 4). nll_loss skips ignore_index; summing and dividing by
    # our own count keeps an all-ignored batch at 0 instead of the NaN of reduction="mean".
    ce = F.nll_loss(log_p, pseudo, ignore_index=ignore_index, reduction="sum")
    ce = ce / confident.sum().clamp_min(1).to(ce.dtype)

    extra = float(C) if normalization == "public_code" else 1.0
    # Eq. 11: −(1/C) Σ_c log p_c per pixel.
    r_c = _masked_mean(-log_p.mean(dim=1), confident) / extra
    # Eq. 12: entropy per pixel. exp(log_p) * log_p is finite even where p underflows to 0.
    r_i = _masked_mean(-(log_p.exp() * log_p).sum(dim=1), ignored) / extra
    if teacher_prob is not None:
        q = teacher_prob.detach().float()
        # Eq. 14: soft cross-entropy to the teacher's weak-view prediction.
        r_cst = _masked_mean(-(q * log_p).sum(dim=1), ignored) / extra
    else:
        r_cst = log_p.new_zeros(())
    total = ce + lambda_c * r_c + lambda_i * r_i + lambda_cst * r_cst
    return {"ce": ce, "r_c": r_c, "r_i": r_i, "r_cst": r_cst, "total": total}


def source_ce(logits: Tensor, label: Tensor, ignore_index: int = 255) -> Tensor:
    """Source cross-entropy (first term of Eq. 1 and Eq. 2): mean NLL over labelled pixels.

    ``logits`` (B, C, H, W) at the label's resolution, ``label`` (B, H, W). Computed in float32;
    an all-ignored batch gives 0 (with a graph) rather than NaN.
    """
    if logits.ndim != 4 or tuple(label.shape) != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"expected logits (B, C, H, W), label (B, H, W); got {tuple(logits.shape)}, {tuple(label.shape)}"
        )
    label = _check_labels(label, logits.shape[1], ignore_index, "label")
    loss = F.cross_entropy(logits.float(), label, ignore_index=ignore_index, reduction="sum")
    return loss / (label != ignore_index).sum().clamp_min(1).to(loss.dtype)


# Least-squares adversarial losses of the warm-up (§3.3). Convention, from the text of §3.3: the
# discriminator D labels source outputs 1 and target outputs 0; the segmentation model tries to
# make D(target) look like source, i.e. -> 1 (Eq. 2). Eq. 3 as printed ("max_D" of
# D(s)^2 + (D(t)-1)^2) is not a well-posed objective (it grows without bound), so D *minimises*
# the standard LSGAN loss with the text's labels instead.


def lsgan_d_loss(d_source: Tensor, d_target: Tensor) -> Tensor:
    """Discriminator loss (Eq. 3, text's labels): mean((D(s) − 1)²) + mean(D(t)²), in float32.

    Pass the discriminator's outputs on *detached* segmentation outputs so only D is trained.
    """
    return ((d_source.float() - 1.0) ** 2).mean() + (d_target.float() ** 2).mean()


def lsgan_g_loss(d_target: Tensor) -> Tensor:
    """Adversarial term of the segmentation model (Eq. 2, without λ_AT): mean((D(t) − 1)²)."""
    return ((d_target.float() - 1.0) ** 2).mean()
