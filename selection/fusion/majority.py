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

Two back-ends give identical counts: :mod:`.numpy_backend` (uint8 pairwise-agreement vote,
one ``bincount`` per candidate; ~20x the straightforward loop on CPU) and :mod:`.torch_backend`
(sort-based vote, runs on CUDA). This module is the public API and picks the back-end; candidate-vs-
candidate agreement is :mod:`.pairwise`, the shared array helpers :mod:`.arrays`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from selection.errors import SelectionError
from selection.fusion import numpy_backend, torch_backend
from selection.fusion.arrays import (
    IGNORE_INDEX,
    as_pixels,
    check_backend,
    check_classes,
    first_bad_candidate,
    images_in,
    iou_from_counts,
    is_torch,
    mean_over_present,
    raise_bad_label,
    to_numpy,
)
from selection.fusion.pairwise import PairwiseAgreement

__all__ = [
    "IGNORE_INDEX",
    "majority_vote",
    "f_miou",
    "FusionAccumulator",
    "PairwiseAgreement",
    "iou_from_counts",
    "mean_over_present",
]


def majority_vote(
    preds: Any, num_classes: int, ignore_index: int = IGNORE_INDEX, *, backend: str = "auto"
) -> Any:
    """Fuse (n, H, W) uint8 label maps into one (H, W) uint8 map by majority vote.

    Each candidate votes its label; ``ignore_index`` abstains. The class with the most votes wins;
    a tie for the most votes, or no vote, gives ``ignore_index``. A torch tensor in gives a tensor
    out (CUDA tensors computed on their device; ``backend`` as in :class:`FusionAccumulator`); any
    label that is neither a class nor ignore raises :class:`SelectionError` naming the candidate.
    """
    check_classes(num_classes, ignore_index)
    arr = preds if is_torch(preds) else np.asarray(preds)
    if arr.ndim < 2 or arr.shape[0] < 1:
        raise SelectionError(f"majority_vote expects (n_candidates, H, W) maps, got shape {tuple(arr.shape)}")
    n = arr.shape[0]
    p = as_pixels(arr, n, None, None, None, backend)
    if is_torch(p):
        import torch

        bad = (p >= num_classes) & (p != ignore_index)
        rows = bad.any(dim=1)
        if bool(rows.any()):
            raise_bad_label(p, int(rows.int().argmax()), num_classes, ignore_index, None, None)
        fused = torch_backend.vote(p, ignore_index).to(torch.uint8)
    else:
        j = first_bad_candidate(p, num_classes, ignore_index)
        if j is not None:
            raise_bad_label(p, j, num_classes, ignore_index, None, None)
        fused = numpy_backend.vote(p, ignore_index)
        if is_torch(preds):  # a CPU tensor in: computed with numpy (faster), handed back as a tensor
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
        check_classes(num_classes, ignore_index)
        check_backend(backend)
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
        p = as_pixels(stack, self.n, self.names, image_id, self.device, self.backend)
        if is_torch(p):
            import torch

            v = p if self.voters is None else p[torch.tensor(self.voters, device=p.device)]
            fused = torch_backend.vote(v, self.ignore_index).to(torch.uint8)
            counts, bad = torch_backend.counts(p, fused, self.num_classes, self.ignore_index)
        else:
            v = p if self.voters is None else p[self.voters]
            fused = numpy_backend.vote(v, self.ignore_index)
            counts, bad = numpy_backend.counts(p, fused, self.num_classes, self.ignore_index)
        if bad is not None:  # checked before anything is added: a failed update leaves no trace
            raise_bad_label(p, bad, self.num_classes, self.ignore_index, self.names, image_id)
        if self._pairwise is not None:
            self._pairwise.add_pixels(p, image_id, images=images_in(stack.shape))
        if is_torch(counts):
            if counts.device.type == "cpu":
                counts = counts.numpy()
            elif not is_torch(self._counts):
                # Keep the running sum on the GPU: no device-to-host copy per update.
                self._counts = counts.new_tensor(self._counts)
        elif is_torch(self._counts):
            self._counts = to_numpy(self._counts)
        self._counts = self._counts + counts
        self.images += images_in(stack.shape)
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
        self._counts = to_numpy(self._counts) + to_numpy(other._counts)
        self.images += other.images
        self.pixels += other.pixels
        if self._pairwise is not None:
            self._pairwise.merge(other._pairwise)
        return self

    def __getstate__(self) -> dict:
        # Ship plain numpy between processes (a Ray task's accumulator may live on a GPU).
        state = dict(self.__dict__)
        state["_counts"] = to_numpy(self._counts)
        return state

    # -- results -----------------------------------------------------------------------------

    @property
    def counts(self) -> np.ndarray:
        """(n, C+1, C+1) int64: ``[j, fused, label]``, index C meaning ignore/undecided."""
        return to_numpy(self._counts).copy()

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
