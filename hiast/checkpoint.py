"""Checkpoints: atomic writes, safe (``weights_only``) reads, strict state loading.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (the run's config goes in
as ``cfg.model_dump(mode="json")``). Keeping to those types is what lets every read use
``torch.load(..., weights_only=True)``, which never executes pickled code, so ``save_checkpoint``
refuses anything else at save time rather than leaving a file that cannot be loaded at resume time.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "strip_prefix",
    "state_dict_problems",
]

# What ``torch.load(weights_only=True)`` can rebuild without extra allow-listing. Types are compared
# exactly: subclasses such as numpy.float64 (a float) or an IntEnum pickle as their own class, which
# the weights-only reader refuses.
_SCALARS = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.Size)
_MAPPINGS = (dict, OrderedDict)
_SEQUENCES = (list, tuple)


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read; the message names the file."""


def _check_payload(value: Any, where: str) -> None:
    if isinstance(value, torch.Tensor) or type(value) in _SCALARS:
        return
    if type(value) in _MAPPINGS:
        for k, v in value.items():
            if type(k) not in (str, int):
                raise TypeError(
                    f"checkpoint entry {where} has a key of type {type(k).__name__}; use str or int keys"
                )
            _check_payload(v, f"{where}.{k}")
        return
    if type(value) in _SEQUENCES:
        for i, v in enumerate(value):
            _check_payload(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"checkpoint entry {where} is a {type(value).__name__}, which weights_only loading cannot "
        "read back; store tensors, numbers, strings, lists or dicts (e.g. str(path), "
        "torch.from_numpy(array), cfg.model_dump(mode='json'))"
    )


def save_checkpoint(path: str | Path, **payload: Any) -> Path:
    """Write ``payload`` to ``path`` atomically and return the path.

    The dict is written to a temporary file in the same folder and moved over ``path`` with
    ``os.replace``, so a crash or error mid-write leaves the previous file (if any) untouched and
    no partial file under the final name; the temporary file is removed on error. Parent folders
    are created.

    Raises:
        TypeError: a payload value could not be read back with ``weights_only=True``.
    """
    path = Path(path)
    for key, value in payload.items():
        _check_payload(value, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target: os.replace is only atomic within one file system.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            # Without fsync a power loss after the rename can leave an empty file under the final name.
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # BaseException too: a KeyboardInterrupt or a Ray actor being killed must not leave debris.
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, corrupt, not a torch file, holds types that
            ``weights_only`` loading refuses, or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"{path}: cannot read checkpoint (truncated, corrupt or not written by save_checkpoint): "
            f"{type(e).__name__}: {e}"
        ) from e
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(payload).__name__}")
    return payload


def strip_prefix(state_dict: Mapping[str, Any], prefix: str = "module.") -> dict[str, Any]:
    """Remove ``prefix`` from every key that starts with it (DDP saves keys as ``module.<name>``).

    Each key is checked on its own, so a dict that mixes prefixed and bare keys is handled; two keys
    that become the same name raise RuntimeError instead of one silently replacing the other.
    """
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        new = key[len(prefix) :] if key.startswith(prefix) else key
        if new in out:
            raise RuntimeError(f"state dict holds both {new!r} and {prefix}{new!r}")
        out[new] = value
    return out


def state_dict_problems(expected: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """Every missing key, unexpected key and shape mismatch of ``given`` against ``expected``."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    problems = [f"missing key: {k}" for k in missing] + [f"unexpected key: {k}" for k in unexpected]
    for key, ref in expected.items():
        value = given.get(key)
        if isinstance(ref, torch.Tensor) and isinstance(value, torch.Tensor) and value.shape != ref.shape:
            problems.append(f"shape mismatch: {key}: expected {tuple(ref.shape)}, got {tuple(value.shape)}")
    return problems


def load_model_state(model: nn.Module, state_dict: Mapping[str, Any], *, what: str = "state dict") -> None:
    """Load ``state_dict`` into ``model`` strictly.

    A ``module.`` (DDP) prefix is removed when ``model`` itself does not use one. Nothing is
    loaded unless every key matches in name and shape.

    Args:
        model: the module to fill.
        state_dict: parameters and buffers, e.g. ``load_checkpoint(p)["model"]``.
        what: how the source is named in the error message (e.g. a file path).

    Raises:
        RuntimeError: listing every missing key, unexpected key and shape mismatch.
    """
    expected = model.state_dict()
    if not any(k.startswith("module.") for k in expected):
        state_dict = strip_prefix(state_dict)
    problems = state_dict_problems(expected, state_dict)
    if problems:
        raise RuntimeError(
            f"{what} does not match {type(model).__name__} ({len(problems)} problems; was it saved "
            "from a model built with the same architecture, width and class count?):\n  "
            + "\n  ".join(problems)
        )
    model.load_state_dict(state_dict, strict=True)
