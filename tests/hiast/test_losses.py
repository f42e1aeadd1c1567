"""Self-training losses (Eq. 4, 11, 12, 14) and warm-up losses (Eq. 1-3)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hiast.losses import hiast_losses, lsgan_d_loss, lsgan_g_loss, source_ce

LN3 = math.log(3.0)
W = {"lambda_i": 1.0, "lambda_c": 0.1, "lambda_cst": 0.5}


def _three_pixels():
    # B=1, C=2, H=1, W=3. Softmax of (a, b) is (e^a, e^b) / (e^a + e^b):
    #   pixel 0: (0, 0)     -> p = (0.5, 0.5)
    #   pixel 1: (ln 3, 0)  -> p = (0.75, 0.25)
    #   pixel 2: (0, ln 3)  -> p = (0.25, 0.75)
    logits = torch.tensor([[[[0.0, LN3, 0.0]], [[0.0, 0.0, LN3]]]], requires_grad=True)
    pseudo = torch.tensor([[[0, 0, 255]]])  # pixels 0, 1 confident (class 0), pixel 2 ignored
    # teacher q at pixel 2 = (0.5, 0.5); other pixels are outside the ignored region (unused)
    teacher = torch.tensor([[[[0.9, 0.9, 0.5]], [[0.1, 0.1, 0.5]]]])
    return logits, pseudo, teacher


def test_three_pixels_by_hand() -> None:
    logits, pseudo, teacher = _three_pixels()
    out = hiast_losses(logits, pseudo, teacher, **W)
    # CE = mean(−ln 0.5, −ln 0.75) = (0.693147 + 0.287682) / 2 = 0.490415
    assert out["ce"].item() == pytest.approx(0.4904146265, abs=1e-6)
    # R_c = mean over pixels 0, 1 of −(1/2)(ln p0 + ln p1)
    #     = mean(0.693147, (0.287682 + 1.386294) / 2 = 0.836988) = 0.765068
    assert out["r_c"].item() == pytest.approx(0.7650676987, abs=1e-6)
    # R_i = pixel 2 entropy = −(0.25 ln 0.25 + 0.75 ln 0.75) = 0.346574 + 0.215762 = 0.562335
    assert out["r_i"].item() == pytest.approx(0.5623351446, abs=1e-6)
    # R_cst = −(0.5 ln 0.25 + 0.5 ln 0.75) = 0.693147 + 0.143841 = 0.836988
    assert out["r_cst"].item() == pytest.approx(0.8369882168, abs=1e-6)
    # total = 0.490415 + 0.1·0.765068 + 1·0.562335 + 0.5·0.836988 = 1.547751
    assert out["total"].item() == pytest.approx(1.5477506494, abs=1e-6)
    assert set(out) == {"ce", "r_c", "r_i", "r_cst", "total"}
    for v in out.values():
        assert v.dtype == torch.float32 and v.ndim == 0


def test_public_code_normalization_divides_by_c() -> None:
    logits, pseudo, teacher = _three_pixels()
    paper = hiast_losses(logits, pseudo, teacher, **W)
    code = hiast_losses(logits, pseudo, teacher, **W, normalization="public_code")
    assert code["ce"].item() == pytest.approx(paper["ce"].item())
    for k in ("r_c", "r_i", "r_cst"):
        assert code[k].item() == pytest.approx(paper[k].item() / 2)  # C = 2
    # 0.490415 + (0.1·0.765068 + 0.562335 + 0.5·0.836988) / 2 = 1.019083
    assert code["total"].item() == pytest.approx(1.0190826379, abs=1e-6)


def test_no_teacher_gives_zero_consistency() -> None:
    logits, pseudo, _ = _three_pixels()
    out = hiast_losses(logits, pseudo, None, **W)
    assert out["r_cst"].item() == 0.0
    assert out["total"].item() == pytest.approx(0.4904146265 + 0.1 * 0.7650676987 + 0.5623351446, abs=1e-6)


@pytest.mark.parametrize("fill", [255, 1])
def test_empty_region_is_zero_with_finite_grads(fill: int) -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, requires_grad=True)
    pseudo = torch.full((2, 4, 5), fill)
    teacher = torch.softmax(torch.randn(2, 3, 4, 5), dim=1)
    out = hiast_losses(logits, pseudo, teacher, **W)
    for v in out.values():
        assert torch.isfinite(v)
    if fill == 255:  # nothing confident
        assert out["ce"].item() == 0.0 and out["r_c"].item() == 0.0
        assert out["r_i"].item() > 0
    else:  # nothing ignored
        assert out["r_i"].item() == 0.0 and out["r_cst"].item() == 0.0
        assert out["ce"].item() > 0
    out["total"].backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_all_terms_empty_still_backward() -> None:
    # Only the zero-contribution terms: CE over an all-ignored batch alone.
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    out = hiast_losses(logits, torch.full((1, 2, 2), 255), None, lambda_i=0.0, lambda_c=0.0, lambda_cst=0.0)
    assert out["total"].item() == 0.0
    out["total"].backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def _naive(logits, pseudo, teacher, lambda_i, lambda_c, lambda_cst):
    """Loop over pixels, one formula per term, straight from Eq. 4, 11, 12, 14."""
    B, C, H, W_ = logits.shape
    ce, rc, ri, rcst = [], [], [], []
    for b in range(B):
        for i in range(H):
            for j in range(W_):
                logp = torch.log_softmax(logits[b, :, i, j], dim=0)
                p = logp.exp()
                y = int(pseudo[b, i, j])
                if y != 255:
                    ce.append(-logp[y])
                    rc.append(-sum(logp[c] / C for c in range(C)))
                else:
                    ri.append(-sum(p[c] * logp[c] for c in range(C)))
                    rcst.append(-sum(teacher[b, c, i, j] * logp[c] for c in range(C)))

    def mean(xs):
        return torch.stack(xs).mean() if xs else logits.new_zeros(())

    total = mean(ce) + lambda_c * mean(rc) + lambda_i * mean(ri) + lambda_cst * mean(rcst)
    return {"ce": mean(ce), "r_c": mean(rc), "r_i": mean(ri), "r_cst": mean(rcst), "total": total}


def test_gradient_matches_naive_loop() -> None:
    g = torch.Generator().manual_seed(3)
    logits = (2 * torch.randn(2, 4, 3, 3, generator=g)).requires_grad_(True)
    pseudo = torch.randint(0, 4, (2, 3, 3), generator=g)
    pseudo[torch.rand(2, 3, 3, generator=g) < 0.4] = 255
    teacher = torch.softmax(torch.randn(2, 4, 3, 3, generator=g), dim=1)
    ours = hiast_losses(logits, pseudo, teacher, **W)
    ours["total"].backward()
    grad_ours = logits.grad.clone()
    logits.grad = None
    ref = _naive(logits, pseudo, teacher, **W)
    for k in ours:
        assert ours[k].item() == pytest.approx(ref[k].item(), abs=1e-5), k
    ref["total"].backward()
    torch.testing.assert_close(grad_ours, logits.grad, atol=1e-6, rtol=1e-5)


def test_teacher_receives_no_gradient() -> None:
    logits, pseudo, teacher = _three_pixels()
    teacher = teacher.clone().requires_grad_(True)
    hiast_losses(logits, pseudo, teacher, **W)["total"].backward()
    assert teacher.grad is None


def test_bf16_logits_computed_in_float32() -> None:
    torch.manual_seed(1)
    logits = torch.randn(1, 5, 4, 4)
    pseudo = torch.randint(0, 5, (1, 4, 4))
    pseudo[0, :2] = 255
    teacher = torch.softmax(torch.randn(1, 5, 4, 4), dim=1)
    lb = logits.bfloat16()
    out = hiast_losses(lb, pseudo, teacher.bfloat16(), **W)
    ref = hiast_losses(lb.float(), pseudo, teacher.bfloat16().float(), **W)
    for k in out:
        assert out[k].dtype == torch.float32
        assert out[k].item() == pytest.approx(ref[k].item(), abs=1e-6)


def test_uint8_pseudo_accepted() -> None:
    logits, pseudo, teacher = _three_pixels()
    a = hiast_losses(logits, pseudo.to(torch.uint8), teacher, **W)
    assert a["total"].item() == pytest.approx(1.5477506494, abs=1e-6)


def test_validation() -> None:
    logits, pseudo, teacher = _three_pixels()
    with pytest.raises(ValueError, match="outside"):
        hiast_losses(logits, torch.tensor([[[0, 2, 255]]]), None, **W)
    with pytest.raises(ValueError, match="shape"):
        hiast_losses(logits, torch.zeros(1, 1, 2, dtype=torch.long), None, **W)
    with pytest.raises(ValueError, match="teacher_prob"):
        hiast_losses(logits, pseudo, teacher[:, :1], **W)
    with pytest.raises(ValueError, match="integer"):
        hiast_losses(logits, pseudo.float(), None, **W)
    with pytest.raises(ValueError, match="normalization"):
        hiast_losses(logits, pseudo, None, **W, normalization="other")
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        hiast_losses(logits[0], pseudo, None, **W)


# ---------------------------------------------------------------- warm-up losses
def test_source_ce_matches_cross_entropy() -> None:
    torch.manual_seed(2)
    logits = torch.randn(2, 4, 3, 3)
    label = torch.randint(0, 4, (2, 3, 3))
    label[0, 0] = 255
    assert source_ce(logits, label).item() == pytest.approx(
        F.cross_entropy(logits, label, ignore_index=255).item(), abs=1e-6
    )
    # all-ignored batch: 0 with a graph, not NaN
    x = logits.clone().requires_grad_(True)
    loss = source_ce(x, torch.full((2, 3, 3), 255))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError):
        source_ce(logits, label[:, :2])


def test_lsgan_losses_by_hand() -> None:
    d_s = torch.tensor([1.0, 0.5])
    d_t = torch.tensor([0.0, 0.5])
    # D: mean((d_s − 1)²) + mean(d_t²) = mean(0, 0.25) + mean(0, 0.25) = 0.125 + 0.125 = 0.25
    assert lsgan_d_loss(d_s, d_t).item() == pytest.approx(0.25)
    # G: mean((d_t − 1)²) = mean(1, 0.25) = 0.625
    assert lsgan_g_loss(d_t).item() == pytest.approx(0.625)
    # Optimum of D: source -> 1, target -> 0; the generator wants target -> 1 (source-like).
    assert lsgan_d_loss(torch.ones(3), torch.zeros(3)).item() == 0.0
    assert lsgan_g_loss(torch.ones(3)).item() == 0.0
    assert lsgan_g_loss(torch.ones(3).bfloat16()).dtype == torch.float32
