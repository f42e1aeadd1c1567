"""Consensus scores: a candidate is scored against what the other candidates of its vote group say.

=========  =====  ============================================================================
score      dir.   definition
=========  =====  ============================================================================
f_miou     high   paper §4.5: mIoU against the pixel-wise hard majority vote of all candidates
                  (:func:`selection.fusion.majority.f_miou`, kept exactly as it is)
ensv       high   soft vote (EnsV, Hu et al., NeurIPS 2024): average the candidates' softmax at
                  each sampled pixel, take its argmax as the ensemble label, and score each
                  candidate's argmax against it
f_miou_lno high   F-mIoU with the candidate and its grid neighbours left out of the vote
=========  =====  ============================================================================

Adaptations and choices:

* **ensv.** EnsV scores classification accuracy against the ensemble; the task metric here is
  mIoU, so a candidate's score is the mIoU of its labels against the ensemble labels (per-class
  intersections and unions summed over all sampled pixels of all images, mean over the classes
  whose union is non-empty), exactly as F-mIoU measures against the hard vote. It runs on the
  evidence's sampled pixels (full probability maps are not kept). The ensemble is the argmax of
  the *sum* of the candidates' float16 probabilities, computed in float64 (exact for float16
  inputs, so the result does not depend on chunking or candidate order); argmax ties go to the
  lowest class index (numpy's argmax), for the ensemble and for each candidate alike.
* **f_miou_lno.** A consensus score favours the candidate nearest everyone else, which on a 1-D
  sweep is the middle value. Leaving the candidate *and* its neighbours out of the vote scores it
  against settings unlike its own. Neighbours (:func:`neighbours`): in a sweep, the previous and
  next values (one at each end); in a grid, the settings that differ in one parameter by one
  step of its sorted values. The candidate is scored against the fusion of the remaining voters
  (it never votes itself), with the fusion semantics of :mod:`selection.fusion.majority`.
  Too few voters: if leaving neighbours out would leave any candidate of the group fewer than
  ``min_voters`` (2) voters -- every sweep of 3 or 4 values -- the whole group falls back to
  leave-one-out (each candidate against the vote of all others), so that all candidates of a
  group are scored the same way. In a 2-candidate group each is scored against the other alone.
  In a 5-value sweep the middle value is scored against the two ends' vote (pixels where they
  disagree are undecided and excluded).
* Streaming: :class:`SoftVoteAccumulator` takes chunks of pixels (any split, exact merge) and
  :class:`LeaveNeighboursOut` one image's label stack at a time (one
  :class:`~selection.fusion.majority.FusionAccumulator` per candidate, with ``voters``), like the F-mIoU pass.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from selection.candidates import GRID_GROUP, Candidate, vote_groups
from selection.errors import SelectionError
from selection.fusion.majority import (
    IGNORE_INDEX,
    FusionAccumulator,
    f_miou,
    iou_from_counts,
    mean_over_present,
)

__all__ = [
    "f_miou",
    "ensv",
    "SoftVoteAccumulator",
    "f_miou_lno",
    "LeaveNeighboursOut",
    "neighbours",
    "leave_out",
    "MIN_VOTERS",
]

MIN_VOTERS = 2


class SoftVoteAccumulator:
    """Per-candidate confusion against the soft-vote (EnsV) labels; ``update``: (n, ..., C) probs."""

    def __init__(self, n: int, num_classes: int) -> None:
        if n < 2:
            raise SelectionError(f"a soft vote needs at least 2 candidates, got {n}")
        self.n, self.num_classes = int(n), int(num_classes)
        self.confusion = np.zeros((self.n, self.num_classes, self.num_classes), np.int64)
        self.pixels = 0

    def update(self, probs: Any) -> None:
        p = np.asarray(probs)
        c = self.num_classes
        if p.ndim < 2 or p.shape[0] != self.n or p.shape[-1] != c:
            raise SelectionError(f"expected ({self.n}, ..., {c}) probabilities, got shape {p.shape}")
        p = p.reshape(self.n, -1, c)
        if not np.all(np.isfinite(p)):
            raise SelectionError("probabilities hold NaN or infinite values")
        ensemble = p.sum(axis=0, dtype=np.float64).argmax(axis=1)
        labels = p.argmax(axis=2)
        code = ensemble[None, :] * c + labels
        counts = np.stack([np.bincount(row, minlength=c * c) for row in code]).reshape(self.n, c, c)
        self.confusion = self.confusion + counts  # rebind: may be read-only after a Ray round trip
        self.pixels += p.shape[1]

    def merge(self, other: SoftVoteAccumulator) -> SoftVoteAccumulator:
        if (other.n, other.num_classes) != (self.n, self.num_classes):
            raise SelectionError("cannot merge soft-vote accumulators of different candidates or classes")
        out = SoftVoteAccumulator(self.n, self.num_classes)
        out.confusion = self.confusion + other.confusion
        out.pixels = self.pixels + other.pixels
        return out

    @property
    def per_class_iou(self) -> np.ndarray:
        """(n, C): rows of ``confusion`` are ensemble labels, columns the candidate's."""
        inter = np.diagonal(self.confusion, axis1=1, axis2=2)
        return iou_from_counts(inter, self.confusion.sum(axis=1), self.confusion.sum(axis=2))

    @property
    def scores(self) -> np.ndarray:
        if self.pixels == 0:
            raise SelectionError("EnsV: no pixels were added")
        return mean_over_present(self.per_class_iou, axis=1)


def ensv(probs: Any) -> np.ndarray:
    """(n,) EnsV scores of n candidates from their (n, ..., C) probabilities at the same pixels."""
    p = np.asarray(probs)
    acc = SoftVoteAccumulator(p.shape[0] if p.ndim else 0, p.shape[-1] if p.ndim else 0)
    acc.update(p)
    return acc.scores


def neighbours(candidates: Sequence[Candidate], group: str) -> dict[str, tuple[str, ...]]:
    """Candidate id -> its neighbours in vote group ``group`` (sweep: adjacent values; grid: one step)."""
    groups = vote_groups(candidates)
    if group not in groups:
        raise SelectionError(f"no vote group {group!r}; groups: {sorted(groups)}")
    ids = groups[group]
    if group != GRID_GROUP:
        return {cid: tuple(ids[k] for k in (i - 1, i + 1) if 0 <= k < len(ids)) for i, cid in enumerate(ids)}
    by_id = {c.id: c for c in candidates}
    members = [by_id[i] for i in ids]
    varying = [p for p in members[0].params if len({float(c.params[p]) for c in members}) > 1]
    pos = {p: {v: k for k, v in enumerate(sorted({float(c.params[p]) for c in members}))} for p in varying}

    def step(a: Candidate, b: Candidate) -> bool:
        diff = [p for p in varying if float(a.params[p]) != float(b.params[p])]
        return (
            len(diff) == 1
            and abs(pos[diff[0]][float(a.params[diff[0]])] - pos[diff[0]][float(b.params[diff[0]])]) == 1
        )

    return {a.id: tuple(b.id for b in members if step(a, b)) for a in members}


def leave_out(
    ids: Sequence[str], neighbour_ids: Mapping[str, Collection[str]], min_voters: int = MIN_VOTERS
) -> tuple[list[list[int]], str]:
    """Per candidate, the indices left out of its vote, and the mode used ("neighbours" or "one")."""
    index = {cid: k for k, cid in enumerate(ids)}
    n = len(ids)
    if n < 2:
        raise SelectionError(f"leave-out scores need at least 2 candidates, got {n}")
    with_nb = [
        sorted({j} | {index[b] for b in neighbour_ids.get(cid, ()) if b in index})
        for j, cid in enumerate(ids)
    ]
    if all(n - len(out) >= min_voters for out in with_nb):
        return with_nb, "neighbours"
    return [[j] for j in range(n)], "one"


class LeaveNeighboursOut:
    """Streaming F-mIoU of each candidate against the vote of the candidates not in ``exclude[j]``.

    ``exclude[j]``: indices left out of candidate j's vote (j itself is always left out).
    """

    def __init__(
        self,
        n: int,
        num_classes: int,
        exclude: Sequence[Collection[int]],
        ignore_index: int = IGNORE_INDEX,
        *,
        names: Sequence[str] | None = None,
        device: str | None = None,
    ) -> None:
        if len(exclude) != n:
            raise SelectionError(f"exclude lists {len(exclude)} candidates, expected {n}")
        self.n, self.num_classes = int(n), int(num_classes)
        self.rows: list[np.ndarray] = []
        self._accs: list[FusionAccumulator] = []
        for j in range(n):
            voters = [k for k in range(n) if k != j and k not in set(exclude[j])]
            if not voters:
                who = names[j] if names is not None else j
                raise SelectionError(
                    f"candidate {who!r}: leaving out {sorted(exclude[j])} leaves nobody to vote"
                )
            rows = np.array([*voters, j], dtype=np.intp)
            self.rows.append(rows)
            self._accs.append(
                FusionAccumulator(
                    len(rows),
                    num_classes,
                    ignore_index,
                    voters=list(range(len(voters))),
                    pairwise=False,
                    names=[names[k] for k in rows] if names is not None else None,
                    device=device,
                )
            )

    def update(self, stack: Any, image_id: Any = None) -> None:
        """Add one image's (n, H, W) label stack."""
        arr = np.asarray(stack)
        if arr.ndim < 2 or arr.shape[0] != self.n:
            raise SelectionError(
                f"image {image_id!r}: expected a stack of {self.n} label maps, got {arr.shape}"
            )
        for rows, acc in zip(self.rows, self._accs, strict=True):
            acc.update(arr[rows], image_id)

    def merge(self, other: LeaveNeighboursOut) -> LeaveNeighboursOut:
        if len(other.rows) != len(self.rows) or any(
            not np.array_equal(a, b) for a, b in zip(self.rows, other.rows, strict=True)
        ):
            raise SelectionError("cannot merge leave-out accumulators with different voters")
        for a, b in zip(self._accs, other._accs, strict=True):
            a.merge(b)
        return self

    @property
    def scores(self) -> np.ndarray:
        """(n,) F-mIoU of each candidate against its own leave-out fusion; higher is better."""
        return np.array([float(acc.f_miou[-1]) for acc in self._accs])


def f_miou_lno(
    stacks: Iterable[Any],
    num_classes: int,
    exclude: Sequence[Collection[int]],
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """(n,) leave-out F-mIoU over a stream of (n, H, W) label stacks (see the module docstring)."""
    acc = LeaveNeighboursOut(len(exclude), num_classes, exclude, ignore_index)
    seen = False
    for i, stack in enumerate(stacks):
        acc.update(stack, image_id=i)
        seen = True
    if not seen:
        raise SelectionError("f_miou_lno got no images")
    return acc.scores
