"""EMA teacher (Eq. 13)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hiast.ema import EMATeacher, unwrap_model


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))


def _fill(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_teacher_is_frozen_copy_in_eval_mode() -> None:
    student = _net()
    ema = EMATeacher(student, tau=0.99)
    assert ema.model is not student
    assert not ema.model.training
    assert all(not p.requires_grad for p in ema.model.parameters())
    assert all(p.requires_grad for p in student.parameters())  # student untouched
    for a, b in zip(ema.model.parameters(), student.parameters(), strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()


def test_one_update_by_hand() -> None:
    student = _net()
    ema = EMATeacher(student, tau=0.9)
    _fill(ema.model, 1.0)
    _fill(student, 3.0)
    ptrs = [p.data_ptr() for p in ema.model.parameters()]
    ema.update(student)
    # w̄ = 0.9 · 1 + 0.1 · 3 = 0.9 + 0.3 = 1.2
    for p in ema.model.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 1.2))
    # Second step: 0.9 · 1.2 + 0.1 · 3 = 1.08 + 0.3 = 1.38
    ema.update(student)
    for p in ema.model.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 1.38))
    # Updated in place: no reallocation.
    assert ptrs == [p.data_ptr() for p in ema.model.parameters()]
    # Student unchanged.
    assert all((p == 3.0).all() for p in student.parameters())


def test_tau_zero_copies_student() -> None:
    student = _net()
    ema = EMATeacher(student, tau=0.0)
    _fill(student, -2.5)
    ema.update(student)
    for a, b in zip(ema.model.parameters(), student.parameters(), strict=True):
        assert torch.equal(a, b)


def test_buffers_follow_student() -> None:
    student = _net()
    ema = EMATeacher(student, tau=0.999)
    student.train()
    student(torch.randn(8, 2) * 5 + 3)  # moves BN running stats
    bn_s, bn_t = student[1], ema.model[1]
    assert not torch.equal(bn_s.running_mean, bn_t.running_mean)
    ema.update(student)
    assert torch.equal(bn_s.running_mean, bn_t.running_mean)
    assert torch.equal(bn_s.running_var, bn_t.running_var)
    assert int(bn_t.num_batches_tracked) == int(bn_s.num_batches_tracked) == 1


def test_dataparallel_wrapper_is_unwrapped() -> None:
    student = _net()
    wrapped = nn.DataParallel(student)
    assert unwrap_model(wrapped) is student
    ema = EMATeacher(wrapped, tau=0.5)
    assert not isinstance(ema.model, nn.DataParallel)
    _fill(ema.model, 0.0)
    _fill(student, 2.0)
    ema.update(wrapped)
    for p in ema.model.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 1.0))  # 0.5 · 0 + 0.5 · 2


def test_ddp_wrapper_is_unwrapped(tmp_path) -> None:
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("gloo backend not available")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        student = _net()
        ddp = nn.parallel.DistributedDataParallel(student)
        ema = EMATeacher(ddp, tau=0.5)
        assert isinstance(ema.model, nn.Sequential)
        _fill(ema.model, 0.0)
        _fill(student, 4.0)
        ema.update(ddp)
        for p in ema.model.parameters():
            torch.testing.assert_close(p, torch.full_like(p, 2.0))
    finally:
        dist.destroy_process_group()


def test_state_dict_round_trip_and_copy_from() -> None:
    student = _net()
    a = EMATeacher(student, tau=0.9)
    _fill(student, 5.0)
    a.update(student)
    b = EMATeacher(_net(), tau=0.9)
    b.load_state_dict(a.state_dict())
    for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    with pytest.raises(RuntimeError):
        b.load_state_dict({"0.weight": torch.zeros(2, 2)})  # strict: missing keys fail loudly
    b.copy_from(student)
    for x, y in zip(b.model.parameters(), student.parameters(), strict=True):
        assert torch.equal(x, y)


def test_architecture_mismatch_raises() -> None:
    ema = EMATeacher(_net(), tau=0.9)
    with pytest.raises(ValueError, match="match"):
        ema.update(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError):
        EMATeacher(_net(), tau=1.5)
