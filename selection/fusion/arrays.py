"""Label stacks in, counts out: the array helpers the vote, the agreement and the store share.

A label stack is (n, H, W) (one image, one row per candidate) or (n, B, H, W) (a batch of images),
numpy or torch, uint8 labels with ``ignore_index`` (255) abstaining. The back-ends
(:mod:`.numpy_backend`, :mod:`.torch_backend`) work on the flattened (n, P) form
that :func:`as_pixels` returns. Torch is imported only when a tensor or a CUDA device is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from selection.errors import SelectionError

__all__ = [
    "IGNORE_INDEX",
    "BACKENDS",
    "is_torch",
    "to_numpy",
    "check_classes",
    "check_backend",
    "use_torch",
    "as_pixels",
    "images_in",
    "describe_candidate",
    "first_bad_candidate",
    "raise_bad_label",
    "iou_from_counts",
    "mean_over_present",
]

IGNORE_INDEX = 255
BACKENDS = ("auto", "numpy", "torch")


def is_torch(x: Any) -> bool:
    """True for a torch tensor (checked by module name: no torch import for numpy input)."""
    return type(x).__module__.split(".")[0] == "torch"


def to_numpy(x: Any) -> Any:
    """A tensor copied to a numpy array on the host; anything else returned as it is."""
    return x.detach().cpu().numpy() if is_torch(x) else x


def check_classes(num_classes: int, ignore_index: int) -> None:
    if not 1 <= int(num_classes) <= 255:
        raise SelectionError(f"num_classes must be in 1..255 (labels are uint8), got {num_classes}")
    if not num_classes <= int(ignore_index) <= 255:
        raise SelectionError(
            f"ignore_index must be in {num_classes}..255 (not a class id, fits uint8), got {ignore_index}"
        )


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise SelectionError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")


def use_torch(stack: Any, device: str | None, backend: str) -> bool:
    """numpy on CPU (faster there), torch for CUDA tensors/devices; ``backend`` forces one."""
    check_backend(backend)
    if backend != "auto":
        return backend == "torch"
    if device is not None:
        return str(device) != "cpu"
    return is_torch(stack) and stack.device.type != "cpu"


def describe_candidate(names: Sequence[str] | None, j: int, image_id: Any) -> str:
    """``candidate 'alpha=0.3' (index 2), image 'img4'`` — for error messages."""
    cand = f"candidate {names[j]!r} (index {j})" if names is not None else f"candidate {j}"
    return cand if image_id is None else f"{cand}, image {image_id!r}"


def images_in(shape: Sequence[int]) -> int:
    """Number of images in a stack of this shape: 1 for (n, H, W), B for (n, B, H, W)."""
    shape = tuple(shape)
    return 1 if len(shape) <= 3 else int(np.prod(shape[1:-2]))


def as_pixels(
    stack: Any,
    n: int,
    names: Sequence[str] | None,
    image_id: Any,
    device: str | None,
    backend: str = "auto",
) -> Any:
    """(n, *pixels) label stack -> C-contiguous (n, P) uint8 numpy array, or tensor on ``device``."""
    if use_torch(stack, device, backend):
        import torch

        arr = stack if is_torch(stack) else torch.from_numpy(np.ascontiguousarray(stack))
        if device is not None:
            arr = arr.to(device)
    else:
        arr = stack.detach().cpu().numpy() if is_torch(stack) else np.asarray(stack)
    where = f"image {image_id!r}: " if image_id is not None else ""
    if arr.ndim < 2:
        raise SelectionError(f"{where}expected a stack (n_candidates, H, W), got shape {tuple(arr.shape)}")
    if arr.shape[0] != n:
        raise SelectionError(f"{where}stack holds {arr.shape[0]} candidates, the accumulator expects {n}")
    if is_torch(arr):
        import torch

        if arr.dtype != torch.uint8:
            arr = _to_uint8_torch(arr, names, image_id)
        return arr.reshape(n, -1).contiguous()
    if arr.dtype != np.uint8:
        arr = _to_uint8_numpy(arr, names, image_id)
    return np.ascontiguousarray(arr.reshape(n, -1))


def _to_uint8_numpy(arr: np.ndarray, names: Sequence[str] | None, image_id: Any) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.integer):
        raise SelectionError(f"label maps must be integer (uint8) arrays, got dtype {arr.dtype}")
    flat = arr.reshape(arr.shape[0], -1)
    bad = (flat < 0) | (flat > 255)
    if bad.any():
        j = int(np.argmax(bad.any(axis=1)))
        raise SelectionError(
            f"{describe_candidate(names, j, image_id)}: label {int(flat[j][bad[j]][0])} does not fit uint8"
        )
    return arr.astype(np.uint8)


def _to_uint8_torch(t: Any, names: Sequence[str] | None, image_id: Any) -> Any:
    import torch

    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise SelectionError(f"label maps must be integer (uint8) tensors, got dtype {t.dtype}")
    flat = t.reshape(t.shape[0], -1)
    bad = (flat < 0) | (flat > 255)
    if bool(bad.any()):
        j = int(bad.any(dim=1).int().argmax())
        raise SelectionError(
            f"{describe_candidate(names, j, image_id)}: label {int(flat[j][bad[j]][0])} does not fit uint8"
        )
    return t.to(torch.uint8)


def first_bad_candidate(p: np.ndarray, num_classes: int, ignore_index: int) -> int | None:
    """Row of the first candidate in (n, P) uint8 ``p`` holding a label that is neither class nor ignore."""
    if int(p.max()) < num_classes:  # fast path: no label at or above C, not even ignore
        return None
    bad = (p >= num_classes) & (p != ignore_index)
    rows = bad.any(axis=1)
    return int(np.argmax(rows)) if rows.any() else None


def raise_bad_label(
    p: Any, j: int, num_classes: int, ignore_index: int, names: Sequence[str] | None, image_id: Any
) -> None:
    """Raise SelectionError naming candidate ``j`` (and the image) and its first invalid label."""
    row = p[j]
    bad = (row >= num_classes) & (row != ignore_index)
    value = int(row[bad][0])
    raise SelectionError(
        f"{describe_candidate(names, j, image_id)}: label {value} is neither a class (0..{num_classes - 1}) "
        f"nor the ignore index {ignore_index}"
    )


def iou_from_counts(inter: np.ndarray, total_a: np.ndarray, total_b: np.ndarray) -> np.ndarray:
    """Per-class IoU = inter / (a + b - inter); NaN where the union is empty (class absent from both)."""
    inter = np.asarray(inter, dtype=np.float64)
    union = np.asarray(total_a, dtype=np.float64) + np.asarray(total_b, dtype=np.float64) - inter
    out = np.full(np.broadcast(inter, union).shape, np.nan)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def mean_over_present(iou: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over the non-NaN entries (classes whose union is non-empty); NaN where there are none."""
    iou = np.asarray(iou, dtype=np.float64)
    present = ~np.isnan(iou)
    count = present.sum(axis=axis)
    total = np.where(present, iou, 0.0).sum(axis=axis)
    out = np.full(count.shape, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out
