"""Majority-vote fusion of candidate label maps and each candidate's F-mIoU against it.

Paper §4.5 (Alg. 3, Fig. 6) says "majority voting" and "mIoU against the fusion" and nothing more;
the public HIAST code has no vote at all. The semantics here are ours, fixed and tested:

* Every candidate votes its label at each pixel; a candidate's ``ignore_index`` (255) abstains.
* The fused label is the class with the most votes. A tie for the most votes, or no vote at all,
  gives ``ignore_index`` ("undecided").
* F-mIoU of candidate j (higher is better, in [0, 1]): intersections and unions of j's labels
  against the fusion, summed over all images of the subset before dividing. Pixels where the fusion
  is undecided are excluded; j's own abstention on a decided pixel counts as a miss (it adds to the
  fused class's union, never to an intersection). IoU per class, mean over the classes whose union
  is non-empty. NaN only when the fusion decided no pixel at all.

Everything streams: a :class:`FusionAccumulator` holds one small count array per candidate,
``counts[j, a, b]`` = pixels fused as ``a`` where candidate j said ``b`` (index ``C`` standing for
ignore on both axes). Counts add exactly, so accumulators from parallel workers merge by addition.

Two back-ends give identical counts: numpy (uint8 pairwise-agreement vote, one ``bincount`` per
candidate; ~20x the straightforward loop on CPU) and torch (sort-based vote, runs on CUDA).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from selection.errors import SelectionError

__all__ = [
    "IGNORE_INDEX",
    "majority_vote",
    "f_miou",
    "FusionAccumulator",
    "PairwiseAgreement",
    "iou_from_counts",
    "mean_over_present",
]

IGNORE_INDEX = 255

# Histogram bins one torch.bincount call may use and still fit CUDA shared memory (48 KB of int64):
# above that, bincount falls back to global atomics, which serialise on the hot diagonal bins.
_TORCH_BINS_PER_CALL = 6000


# ----------------------------------------------------------------------------------------------
# small helpers


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _check_classes(num_classes: int, ignore_index: int) -> None:
    if not 1 <= int(num_classes) <= 255:
        raise SelectionError(f"num_classes must be in 1..255 (labels are uint8), got {num_classes}")
    if not num_classes <= int(ignore_index) <= 255:
        raise SelectionError(
            f"ignore_index must be in {num_classes}..255 (not a class id, fits uint8), got {ignore_index}"
        )


def _who(names: Sequence[str] | None, j: int, image_id: Any) -> str:
    cand = f"candidate {names[j]!r} (index {j})" if names is not None else f"candidate {j}"
    return cand if image_id is None else f"{cand}, image {image_id!r}"


def _use_torch(stack: Any, device: str | None, backend: str) -> bool:
    """numpy on CPU (faster there), torch for CUDA tensors/devices; ``backend`` forces one."""
    if backend not in ("auto", "numpy", "torch"):
        raise SelectionError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    if backend != "auto":
        return backend == "torch"
    if device is not None:
        return str(device) != "cpu"
    return _is_torch(stack) and stack.device.type != "cpu"


def _as_pixels(
    stack: Any, n: int, names: Sequence[str] | None, image_id: Any, device: str | None, backend: str = "auto"
):
    """(n, *pixels) label stack -> C-contiguous (n, P) uint8 numpy array, or tensor on ``device``."""
    if _use_torch(stack, device, backend):
        import torch

        arr = stack if _is_torch(stack) else torch.from_numpy(np.ascontiguousarray(stack))
        if device is not None:
            arr = arr.to(device)
    else:
        arr = stack.detach().cpu().numpy() if _is_torch(stack) else np.asarray(stack)
    where = f"image {image_id!r}: " if image_id is not None else ""
    if arr.ndim < 2:
        raise SelectionError(f"{where}expected a stack (n_candidates, H, W), got shape {tuple(arr.shape)}")
    if arr.shape[0] != n:
        raise SelectionError(f"{where}stack holds {arr.shape[0]} candidates, the accumulator expects {n}")
    if _is_torch(arr):
        import torch

        if arr.dtype != torch.uint8:
            arr = _to_uint8_torch(arr, names, image_id)
        return arr.reshape(n, -1).contiguous()
    if arr.dtype != np.uint8:
        arr = _to_uint8_numpy(arr, names, image_id)
    return np.ascontiguousarray(arr.reshape(n, -1))


def _to_uint8_numpy(arr: np.ndarray, names, image_id) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.integer):
        raise SelectionError(f"label maps must be integer (uint8) arrays, got dtype {arr.dtype}")
    flat = arr.reshape(arr.shape[0], -1)
    bad = (flat < 0) | (flat > 255)
    if bad.any():
        j = int(np.argmax(bad.any(axis=1)))
        raise SelectionError(
            f"{_who(names, j, image_id)}: label {int(flat[j][bad[j]][0])} does not fit uint8"
        )
    return arr.astype(np.uint8)


def _to_uint8_torch(t, names, image_id):
    import torch

    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise SelectionError(f"label maps must be integer (uint8) tensors, got dtype {t.dtype}")
    flat = t.reshape(t.shape[0], -1)
    bad = (flat < 0) | (flat > 255)
    if bool(bad.any()):
        j = int(bad.any(dim=1).int().argmax())
        raise SelectionError(
            f"{_who(names, j, image_id)}: label {int(flat[j][bad[j]][0])} does not fit uint8"
        )
    return t.to(torch.uint8)


def _raise_bad_label(p, j: int, num_classes: int, ignore_index: int, names, image_id) -> None:
    row = p[j]
    bad = (row >= num_classes) & (row != ignore_index)
    value = int(row[bad][0])
    raise SelectionError(
        f"{_who(names, j, image_id)}: label {value} is neither a class (0..{num_classes - 1}) "
        f"nor the ignore index {ignore_index}"
    )


def _first_bad_candidate_numpy(p: np.ndarray, num_classes: int, ignore_index: int) -> int | None:
    if int(p.max()) < num_classes:  # fast path: no label at or above C, not even ignore
        return None
    bad = (p >= num_classes) & (p != ignore_index)
    rows = bad.any(axis=1)
    return int(np.argmax(rows)) if rows.any() else None


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


# ----------------------------------------------------------------------------------------------
# numpy back-end


def _vote_numpy(v: np.ndarray, ignore_index: int) -> np.ndarray:
    """Fused labels (P,) of the voters' maps ``v`` (nv, P), uint8 throughout.

    agree[k] = number of voters whose label equals voter k's (itself included), 0 where k abstains;
    the most-voted class belongs to the voters with the largest ``agree``. If those voters do not
    all carry the same label (hi != lo among them) it is a tie. O(nv^2) uint8 passes, which beats a
    (C, P) count array for the candidate counts a sweep has (measured: 8 voters, 19 classes).
    """
    nv, npix = v.shape
    valid8 = (v != ignore_index).view(np.uint8)
    agree = valid8.copy()
    eq = np.empty(npix, dtype=bool)
    eq8 = eq.view(np.uint8)
    for i in range(nv):
        for k in range(i + 1, nv):
            np.equal(v[i], v[k], out=eq)
            agree[i] += eq8
            agree[k] += eq8
    agree *= valid8
    top = agree.max(axis=0)
    hi = np.zeros(npix, dtype=np.uint8)
    lo = np.full(npix, 255, dtype=np.uint8)
    at = np.empty(npix, dtype=bool)
    mask = np.empty(npix, dtype=np.uint8)
    tmp = np.empty(npix, dtype=np.uint8)
    for k in range(nv):
        np.equal(agree[k], top, out=at)
        np.negative(at.view(np.uint8), out=mask)  # 0 or 255: select without branches
        np.bitwise_and(v[k], mask, out=tmp)
        np.maximum(hi, tmp, out=hi)
        np.invert(mask, out=mask)
        np.bitwise_or(v[k], mask, out=tmp)
        np.minimum(lo, tmp, out=lo)
    # top == 0 means every voter abstained: then all maps hold ignore, hi == lo == ignore.
    return np.where(hi == lo, hi, np.uint8(ignore_index))


def _counts_numpy(p: np.ndarray, fused: np.ndarray, num_classes: int, ignore_index: int):
    """(n, C+1, C+1) counts of (fused, candidate) label pairs and the first invalid candidate or None."""
    n, npix = p.shape
    c = num_classes
    rows = c + 1
    f16 = np.minimum(fused, np.uint8(c)).astype(np.uint16)  # undecided (and invalid) -> row C
    f16 *= 256
    code = np.empty(npix, dtype=np.uint16)
    raw = np.empty((n, rows * 256), dtype=np.int64)
    for j in range(n):
        np.add(f16, p[j], out=code)
        raw[j] = np.bincount(code, minlength=rows * 256)
    raw = raw.reshape(n, rows, 256)
    # Label validation for free: a column >= C other than ignore holds pixels only if a label is bad.
    per_label = raw.sum(axis=1)
    per_label[:, ignore_index] = 0
    bad = per_label[:, c:].any(axis=1)
    first_bad = int(np.argmax(bad)) if bad.any() else None
    counts = np.concatenate([raw[:, :, :c], raw[:, :, ignore_index : ignore_index + 1]], axis=2)
    return counts, first_bad


def _pair_inter_numpy(p: np.ndarray, pairs: Sequence[tuple[int, int]], num_classes: int) -> np.ndarray:
    npix = p.shape[1]
    eq = np.empty(npix, dtype=bool)
    mask = np.empty(npix, dtype=np.uint8)
    both = np.empty(npix, dtype=np.uint8)
    out = np.empty((len(pairs), num_classes), dtype=np.int64)
    for idx, (a, b) in enumerate(pairs):
        np.equal(p[a], p[b], out=eq)
        np.negative(eq.view(np.uint8), out=mask)
        np.invert(mask, out=mask)  # 255 where they differ
        np.bitwise_or(p[a], mask, out=both)  # the shared label, or 255 (never a class)
        out[idx] = np.bincount(both, minlength=256)[:num_classes]
    return out


def _hist_numpy(p: np.ndarray) -> np.ndarray:
    return np.stack([np.bincount(row, minlength=256) for row in p])


# ----------------------------------------------------------------------------------------------
# torch back-end (same counts; written for CUDA, also runs on CPU)


def _vote_torch(v, ignore_index: int):
    """Sort each pixel's votes; the longest run of equal valid labels wins, unless two runs tie.

    ``runs[i]`` counts how far the run of equal values ending at sorted position i reaches, so a run
    of length L hits the value ``top`` exactly once when L == top: the number of hits is the number
    of classes sharing the most votes. Ignore sorts last and is masked out.
    """
    import torch

    nv = v.shape[0]
    s = torch.sort(v, dim=0).values
    runs = torch.ones_like(s)
    for i in range(1, nv):
        torch.mul(runs[i - 1], s[i] == s[i - 1], out=runs[i])
        runs[i].add_(1)
    valid = s != ignore_index
    runs.mul_(valid)
    top = runs.amax(dim=0)
    at = (runs == top) & valid
    label = (s * at).amax(dim=0)
    return torch.where(at.sum(dim=0) == 1, label, torch.full_like(label, ignore_index))


def _counts_torch(p, fused, num_classes: int, ignore_index: int):
    """Same counts as :func:`_counts_numpy`, in few full passes over small dtypes (GPU memory traffic)."""
    import torch

    n = p.shape[0]
    c = num_classes
    k = c + 1
    per = k * k
    chunk = max(1, _TORCH_BINS_PER_CALL // per)
    code_dtype = torch.int16 if chunk * per <= 32767 else torch.int32
    col = torch.clamp(p, max=c)  # uint8; ignore and any invalid label land in column C
    fk = torch.clamp(fused, max=c).to(code_dtype) * k
    parts = []
    for j0 in range(0, n, chunk):
        j1 = min(n, j0 + chunk)
        off = (torch.arange(j1 - j0, device=p.device, dtype=code_dtype) * per)[:, None]
        parts.append(torch.bincount((col[j0:j1] + (fk + off)).reshape(-1), minlength=(j1 - j0) * per))
    counts = torch.cat(parts).reshape(n, k, k)
    # Column C holds ignore and invalid labels alike: every one of them must be the ignore index.
    bad = counts[:, :, c].sum(dim=1) != (p == ignore_index).sum(dim=1)
    first_bad = int(bad.int().argmax()) if bool(bad.any()) else None
    return counts, first_bad


def _pair_inter_torch(p, pairs: Sequence[tuple[int, int]], num_classes: int):
    import torch

    c = num_classes
    per = c + 1  # bin C collects "differ or not a class"
    chunk = max(1, _TORCH_BINS_PER_CALL // per)
    col = torch.clamp(p, max=c).to(torch.int32)
    out = []
    for q0 in range(0, len(pairs), chunk):
        sel = pairs[q0 : q0 + chunk]
        a = torch.tensor([x for x, _ in sel], device=p.device)
        b = torch.tensor([y for _, y in sel], device=p.device)
        shared = torch.where(p[a] == p[b], col[a], c)
        off = (torch.arange(len(sel), device=p.device, dtype=torch.int32) * per)[:, None]
        out.append(torch.bincount((shared + off).reshape(-1), minlength=len(sel) * per).reshape(-1, per))
    return torch.cat(out)[:, :c]


def _hist_torch(p, ignore_index: int):
    import torch

    n = p.shape[0]
    off = (torch.arange(n, device=p.device, dtype=torch.int32) * 256)[:, None]
    return torch.bincount((p.to(torch.int32) + off).reshape(-1), minlength=n * 256).reshape(n, 256)


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if _is_torch(x) else x


# ----------------------------------------------------------------------------------------------
# public API


def majority_vote(
    preds: Any, num_classes: int, ignore_index: int = IGNORE_INDEX, *, backend: str = "auto"
) -> Any:
    """Fuse (n, H, W) uint8 label maps into one (H, W) uint8 map by majority vote.

    Each candidate votes its label; ``ignore_index`` abstains. The class with the most votes wins;
    a tie for the most votes, or no vote, gives ``ignore_index``. A torch tensor in gives a tensor
    out (CUDA tensors computed on their device; ``backend`` as in :class:`FusionAccumulator`); any
    label that is neither a class nor ignore raises :class:`SelectionError` naming the candidate.
    """
    _check_classes(num_classes, ignore_index)
    arr = preds if _is_torch(preds) else np.asarray(preds)
    if arr.ndim < 2 or arr.shape[0] < 1:
        raise SelectionError(f"majority_vote expects (n_candidates, H, W) maps, got shape {tuple(arr.shape)}")
    n = arr.shape[0]
    p = _as_pixels(arr, n, None, None, None, backend)
    if _is_torch(p):
        import torch

        bad = (p >= num_classes) & (p != ignore_index)
        rows = bad.any(dim=1)
        if bool(rows.any()):
            _raise_bad_label(p, int(rows.int().argmax()), num_classes, ignore_index, None, None)
        fused = _vote_torch(p, ignore_index).to(torch.uint8)
    else:
        j = _first_bad_candidate_numpy(p, num_classes, ignore_index)
        if j is not None:
            _raise_bad_label(p, j, num_classes, ignore_index, None, None)
        fused = _vote_numpy(p, ignore_index)
        if _is_torch(preds):  # a CPU tensor in: computed with numpy (faster), handed back as a tensor
            import torch

            fused = torch.from_numpy(fused)
    return fused.reshape(tuple(arr.shape[1:]))


class FusionAccumulator:
    """Streaming vote + per-candidate confusion against the fusion; exact to merge across workers.

    Args:
        n: number of candidates in every stack passed to :meth:`update` (at least 2).
        num_classes: C; labels are 0..C-1 or ``ignore_index``.
        ignore_index: the abstain / undecided label (255).
        voters: indices of the candidates that vote (default: all). The others are scored against
            the voters' fusion without influencing it (the trimmed vote uses this).
        pairwise: also accumulate candidate-vs-candidate agreement (:attr:`agreement`); costs one
            bincount per pair per image, so :func:`f_miou` turns it off.
        names: candidate ids used in error messages and tables.
        device: where to compute: ``"cuda"`` uses the torch back-end there; None or ``"cpu"`` uses
            numpy (faster on CPU), except for CUDA tensors, computed on their device.
        backend: ``"auto"`` (as above), or force ``"numpy"`` / ``"torch"``. Results are identical.

    ``update`` takes one image (n, H, W) or several concatenated along extra axes (n, B, H, W):
    the vote is per pixel and counts are sums, so batching images is exact.
    Directions: ``f_miou`` and ``per_class_iou`` and ``agreement`` are higher-is-better.
    """

    higher_is_better = True

    def __init__(
        self,
        n: int,
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
        *,
        voters: Sequence[int] | None = None,
        pairwise: bool = True,
        names: Sequence[str] | None = None,
        device: str | None = None,
        backend: str = "auto",
    ) -> None:
        _check_classes(num_classes, ignore_index)
        _use_torch(None, None, backend)  # validates the name
        if n < 2:
            raise SelectionError(
                f"a vote needs at least 2 candidates, got {n}" + (f": {list(names)}" if names else "")
            )
        if names is not None and len(names) != n:
            raise SelectionError(f"{len(names)} names given for {n} candidates")
        self.n = int(n)
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.names = list(names) if names is not None else None
        if voters is not None:
            voters = sorted(set(int(v) for v in voters))
            if len(voters) < 1 or voters[0] < 0 or voters[-1] >= n:
                raise SelectionError(f"voters must be indices in 0..{n - 1}, got {voters}")
            if len(voters) == n:
                voters = None
        self.voters = voters
        self.device = device
        self.backend = backend
        self._counts: Any = np.zeros((n, num_classes + 1, num_classes + 1), dtype=np.int64)
        self.images = 0
        self.pixels = 0
        self._pairwise = (
            PairwiseAgreement(n, num_classes, ignore_index, names=names, device=device, backend=backend)
            if pairwise
            else None
        )

    # -- streaming ---------------------------------------------------------------------------

    def update(self, stack: Any, image_id: Any = None) -> Any:
        """Add one image's (n, H, W) stack (or a batch (n, B, H, W)); returns the fused map."""
        p = _as_pixels(stack, self.n, self.names, image_id, self.device, self.backend)
        if _is_torch(p):
            import torch

            v = p if self.voters is None else p[torch.tensor(self.voters, device=p.device)]
            fused = _vote_torch(v, self.ignore_index).to(torch.uint8)
            counts, bad = _counts_torch(p, fused, self.num_classes, self.ignore_index)
        else:
            v = p if self.voters is None else p[self.voters]
            fused = _vote_numpy(v, self.ignore_index)
            counts, bad = _counts_numpy(p, fused, self.num_classes, self.ignore_index)
        if bad is not None:  # checked before anything is added: a failed update leaves no trace
            _raise_bad_label(p, bad, self.num_classes, self.ignore_index, self.names, image_id)
        if self._pairwise is not None:
            self._pairwise._add_pixels(p, image_id)
        if _is_torch(counts):
            if counts.device.type == "cpu":
                counts = counts.numpy()
            elif not _is_torch(self._counts):
                # Keep the running sum on the GPU: no device-to-host copy per update.
                self._counts = counts.new_tensor(self._counts)
        elif _is_torch(self._counts):
            self._counts = _numpy(self._counts)
        self._counts = self._counts + counts
        self.images += 1 if len(tuple(stack.shape)) <= 3 else int(np.prod(tuple(stack.shape)[1:-2]))
        self.pixels += int(p.shape[1])
        return fused.reshape(tuple(stack.shape)[1:])

    def merge(self, other: FusionAccumulator) -> FusionAccumulator:
        """Add another accumulator's counts (same candidates, classes, voters) into this one."""
        if not isinstance(other, FusionAccumulator):
            raise SelectionError(f"can only merge a FusionAccumulator, got {type(other).__name__}")
        for attr in ("n", "num_classes", "ignore_index", "voters", "names"):
            if getattr(self, attr) != getattr(other, attr):
                raise SelectionError(
                    f"cannot merge accumulators with different {attr}: "
                    f"{getattr(self, attr)} vs {getattr(other, attr)}"
                )
        if (self._pairwise is None) != (other._pairwise is None):
            raise SelectionError("cannot merge an accumulator with pairwise agreement into one without")
        self._counts = _numpy(self._counts) + _numpy(other._counts)
        self.images += other.images
        self.pixels += other.pixels
        if self._pairwise is not None:
            self._pairwise.merge(other._pairwise)
        return self

    def __getstate__(self) -> dict:
        # Ship plain numpy between processes (a Ray task's accumulator may live on a GPU).
        state = dict(self.__dict__)
        state["_counts"] = _numpy(self._counts)
        return state

    # -- results -----------------------------------------------------------------------------

    @property
    def counts(self) -> np.ndarray:
        """(n, C+1, C+1) int64: ``[j, fused, label]``, index C meaning ignore/undecided."""
        return _numpy(self._counts).copy()

    @property
    def confusion(self) -> np.ndarray:
        """(n, C, C) int64: pixels the fusion labels ``a`` (rows) and candidate j labels ``b`` (cols)."""
        c = self.num_classes
        return self.counts[:, :c, :c]

    @property
    def abstained(self) -> np.ndarray:
        """(n, C) int64: decided pixels of fused class c where candidate j abstained (misses)."""
        c = self.num_classes
        return self.counts[:, :c, c]

    @property
    def fused_counts(self) -> np.ndarray:
        """(C,) int64: pixels the fusion assigned to each class."""
        return self.counts[0, : self.num_classes, :].sum(axis=1)

    @property
    def undecided_pixels(self) -> int:
        """Pixels where the vote tied or nobody voted (excluded from F-mIoU)."""
        return int(self.counts[0, self.num_classes, :].sum())

    @property
    def per_class_iou(self) -> np.ndarray:
        """(n, C) IoU of each candidate against the fusion per class; NaN where the union is empty."""
        conf = self.confusion
        inter = np.diagonal(conf, axis1=1, axis2=2)
        fused_total = conf.sum(axis=2) + self.abstained  # every decided pixel of class c
        pred_total = conf.sum(axis=1)  # j's class-c pixels where the fusion decided
        return iou_from_counts(inter, pred_total, fused_total)

    @property
    def f_miou(self) -> np.ndarray:
        """(n,) F-mIoU per candidate, higher is better, in [0, 1] (NaN if nothing was decided)."""
        return mean_over_present(self.per_class_iou, axis=1)

    @property
    def agreement(self) -> np.ndarray:
        """(n, n) mIoU-style agreement between candidates over all pixels (see PairwiseAgreement)."""
        if self._pairwise is None:
            raise SelectionError("this accumulator was built with pairwise=False; no agreement tracked")
        return self._pairwise.matrix()


def f_miou(
    stacks: Iterable[Any],
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
    *,
    device: str | None = None,
    backend: str = "auto",
) -> np.ndarray:
    """F-mIoU of every candidate against the majority-vote fusion over a stream of images.

    ``stacks`` yields one (n, H, W) uint8 stack per image (images may differ in size; n may not).
    Returns (n,) floats, higher is better (see the module docstring for the exact semantics).
    Memory stays O(n*H*W): only one stack is held at a time. ``device="cuda"`` computes on the
    GPU (same results); see :class:`FusionAccumulator` for ``backend``.
    """
    acc: FusionAccumulator | None = None
    for i, stack in enumerate(stacks):
        if acc is None:
            n = int(stack.shape[0]) if hasattr(stack, "shape") else len(stack)
            acc = FusionAccumulator(
                n, num_classes, ignore_index, pairwise=False, device=device, backend=backend
            )
        acc.update(stack, image_id=i)
    if acc is None:
        raise SelectionError("f_miou got no images (an empty iterable of stacks)")
    return acc.f_miou


class PairwiseAgreement:
    """Candidate-vs-candidate agreement: per-class intersections over unions, summed over images.

    For candidates a and b and class c: inter = pixels where both say c; union = pixels where either
    says c. Over all pixels (not only where a fusion decided): where a abstains and b says c, that
    pixel adds to c's union. agreement[a, b] = mean of inter/union over classes with a non-empty
    union; symmetric; 1 on the diagonal; higher is better. Only the listed ``pairs`` are tracked
    (default all), NaN elsewhere: seed agreement needs only replicate pairs.
    """

    higher_is_better = True

    def __init__(
        self,
        n: int,
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
        *,
        pairs: Sequence[tuple[int, int]] | None = None,
        names: Sequence[str] | None = None,
        device: str | None = None,
        backend: str = "auto",
    ) -> None:
        _check_classes(num_classes, ignore_index)
        _use_torch(None, None, backend)
        if pairs is None:
            pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
        norm = sorted({(min(a, b), max(a, b)) for a, b in pairs if a != b})
        for a, b in norm:
            if a < 0 or b >= n:
                raise SelectionError(f"pair {(a, b)} outside 0..{n - 1}")
        self.n, self.num_classes, self.ignore_index = int(n), int(num_classes), int(ignore_index)
        self.pairs = norm
        self.names = list(names) if names is not None else None
        self.device = device
        self.backend = backend
        self.hist = np.zeros((n, num_classes), dtype=np.int64)
        self.inter = np.zeros((len(norm), num_classes), dtype=np.int64)
        self.images = 0

    def update(self, stack: Any, image_id: Any = None) -> None:
        """Add one image's (n, H, W) stack (or a batch (n, B, H, W))."""
        p = _as_pixels(stack, self.n, self.names, image_id, self.device, self.backend)
        self._add_pixels(p, image_id)

    def _add_pixels(self, p: Any, image_id: Any) -> None:
        c = self.num_classes
        if _is_torch(p):
            raw = _numpy(_hist_torch(p, self.ignore_index))
        else:
            raw = _hist_numpy(p)
        bad = raw[:, c:].copy()
        bad[:, self.ignore_index - c] = 0
        if bad.any():
            _raise_bad_label(p, int(np.argmax(bad.any(axis=1))), c, self.ignore_index, self.names, image_id)
        if self.pairs:
            inter = (
                _pair_inter_torch(p, self.pairs, c) if _is_torch(p) else _pair_inter_numpy(p, self.pairs, c)
            )
            self.inter += _numpy(inter)
        self.hist += raw[:, :c]
        self.images += 1

    def merge(self, other: PairwiseAgreement) -> PairwiseAgreement:
        """Add another worker's sums (same candidates, classes and pairs)."""
        for attr in ("n", "num_classes", "ignore_index", "pairs", "names"):
            if getattr(self, attr) != getattr(other, attr):
                raise SelectionError(f"cannot merge agreement accumulators with different {attr}")
        self.hist += other.hist
        self.inter += other.inter
        self.images += other.images
        return self

    def per_class(self) -> np.ndarray:
        """(n_pairs, C) IoU per tracked pair and class; NaN where the pair's union is empty."""
        a = np.array([x for x, _ in self.pairs], dtype=np.intp)
        b = np.array([y for _, y in self.pairs], dtype=np.intp)
        return iou_from_counts(self.inter, self.hist[a], self.hist[b])

    def matrix(self) -> np.ndarray:
        """(n, n) agreement; NaN for untracked pairs and for candidates that never voted."""
        out = np.full((self.n, self.n), np.nan)
        if self.pairs:
            vals = mean_over_present(self.per_class(), axis=1)
            for (a, b), v in zip(self.pairs, vals, strict=True):
                out[a, b] = out[b, a] = v
        voted = self.hist.sum(axis=1) > 0
        out[np.arange(self.n)[voted], np.arange(self.n)[voted]] = 1.0
        return out
