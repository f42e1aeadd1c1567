"""Candidate-vs-candidate agreement: per-class intersections over unions, summed over images.

Streams like :class:`selection.fusion.majority.FusionAccumulator` (numpy on CPU, torch for CUDA; identical
counts) and merges exactly across workers. Seed agreement (a candidate's replicates) is read from
it, and the job's candidate-vs-candidate agreement columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from selection.errors import SelectionError
from selection.fusion import numpy_backend, torch_backend
from selection.fusion.arrays import (
    IGNORE_INDEX,
    as_pixels,
    check_backend,
    check_classes,
    images_in,
    iou_from_counts,
    is_torch,
    mean_over_present,
    raise_bad_label,
    to_numpy,
)

__all__ = ["PairwiseAgreement"]


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
        check_classes(num_classes, ignore_index)
        check_backend(backend)
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
        """Add one image's (n, H, W) stack (or a batch (n, B, H, W): B images)."""
        p = as_pixels(stack, self.n, self.names, image_id, self.device, self.backend)
        self.add_pixels(p, image_id, images=images_in(stack.shape))

    def add_pixels(self, p: Any, image_id: Any = None, *, images: int = 1) -> None:
        """Add pixels already flattened by :func:`selection.fusion.arrays.as_pixels` (``images`` of them).

        For :class:`~selection.fusion.majority.FusionAccumulator`, which flattens each stack once for both.
        """
        c = self.num_classes
        if is_torch(p):
            raw = to_numpy(torch_backend.label_histogram(p, self.ignore_index))
        else:
            raw = numpy_backend.label_histogram(p)
        bad = raw[:, c:].copy()
        bad[:, self.ignore_index - c] = 0
        if bad.any():
            raise_bad_label(p, int(np.argmax(bad.any(axis=1))), c, self.ignore_index, self.names, image_id)
        if self.pairs:
            back_end = torch_backend if is_torch(p) else numpy_backend
            self.inter = self.inter + to_numpy(back_end.pair_intersections(p, self.pairs, c))
        self.hist = self.hist + raw[:, :c]
        self.images += int(images)

    def merge(self, other: PairwiseAgreement) -> PairwiseAgreement:
        """Add another worker's sums (same candidates, classes and pairs).

        New arrays, never in place: ``other``'s and this one's may be read-only (what ``ray.get``
        hands back) and must stay as they were.
        """
        for attr in ("n", "num_classes", "ignore_index", "pairs", "names"):
            if getattr(self, attr) != getattr(other, attr):
                raise SelectionError(f"cannot merge agreement accumulators with different {attr}")
        self.hist = self.hist + other.hist
        self.inter = self.inter + other.inter
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
