"""Mean-teacher (momentum model M̄) of HIAST, updated by Eq. 13 after every student step.

w̄_t = τ·w̄_{t-1} + (1 − τ)·w_t  (Eq. 13). Buffers (BatchNorm running statistics and counters)
are copied from the student rather than averaged, as the released code does. The teacher gives
the weak-view targets of R_cst (Eq. 14) and, at the end of a round, the next round's
pseudo-labels (§4.4.3).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["EMATeacher", "unwrap_model"]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):  # torch.compile
            model = model._orig_mod
        else:
            return model


class EMATeacher:
    """EMA copy of a student network (Eq. 13).

    ``model`` is a deep copy of the (unwrapped) student, in eval mode, with ``requires_grad``
    False on every parameter; call :meth:`update` after each optimiser step.
    """

    def __init__(self, student: nn.Module, tau: float) -> None:
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {tau!r}")
        self.tau = float(tau)
        self.model = copy.deepcopy(unwrap_model(student))
        self.model.eval()
        self.model.requires_grad_(False)
        self._param_names = [n for n, _ in self.model.named_parameters()]
        self._buffer_names = [n for n, _ in self.model.named_buffers()]

    # Looked up on every call rather than cached: ``model.to(device)`` replaces buffer tensors.
    @property
    def _params(self) -> list[Tensor]:
        return list(self.model.parameters())

    @property
    def _buffers(self) -> list[Tensor]:
        return list(self.model.buffers())

    def _student_tensors(self, student: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
        s = unwrap_model(student)
        named_p = list(s.named_parameters())
        named_b = list(s.named_buffers())
        # Same architecture check by name: zip would otherwise average mismatched tensors silently.
        if [n for n, _ in named_p] != self._param_names or [n for n, _ in named_b] != self._buffer_names:
            raise ValueError("student parameters/buffers do not match the teacher's (another architecture?)")
        return [p.detach() for _, p in named_p], [b.detach() for _, b in named_b]

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """Eq. 13 in place: w̄ ← τ w̄ + (1 − τ) w, i.e. lerp(w̄, w, 1 − τ); buffers copied."""
        s_params, s_buffers = self._student_tensors(student)
        t_params, t_buffers = self._params, self._buffers
        if t_params:
            # One fused kernel per dtype/device group, no new allocation per step.
            torch._foreach_lerp_(t_params, s_params, 1.0 - self.tau)
        if t_buffers:
            torch._foreach_copy_(t_buffers, s_buffers)

    @torch.no_grad()
    def copy_from(self, student: nn.Module) -> None:
        """Make the teacher an exact copy of the student (a new round's teacher, §4.4.3)."""
        s_params, s_buffers = self._student_tensors(student)
        t_params, t_buffers = self._params, self._buffers
        if t_params:
            torch._foreach_copy_(t_params, s_params)
        if t_buffers:
            torch._foreach_copy_(t_buffers, s_buffers)

    def state_dict(self) -> dict[str, Any]:
        """The teacher network's ``state_dict`` (loadable into a plain model of the same class)."""
        return self.model.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load a teacher ``state_dict`` strictly (missing or unexpected keys raise)."""
        self.model.load_state_dict(state, strict=True)
