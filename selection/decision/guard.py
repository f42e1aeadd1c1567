"""A broken-candidate guard that is not a vote: what marks a candidate as broken, and why.

Disagreeing with the majority is not being broken: the best candidate of a sweep can be the one
whose predictions differ most from the others (the consensus "degenerate" mark of
:mod:`selection.decision.trimming` stays, as a diagnostic: "far from the vote"). A candidate counts as
**broken** here only on evidence of its own, each against its vote group (the same sweep, trained
from the same warm-up):

* **source-val collapse**: its mIoU on the labelled source-val split is below ``source_ratio`` times
  the group's median (a model that forgot the labelled domain; needs a source-val split);
* **one class swallows the image**: a class takes more than ``swallow_share`` of its predicted
  subset pixels while, in the group's median candidate, that class takes less than
  ``swallow_median``;
* **classes vanish**: of the classes that most of the group predict on at least ``present_share``
  of the pixels, it predicts at least ``vanish_fraction`` on less than ``vanish_share``.

The group stands in for the warm-up: the warm-up's predictions of the subset are not stored.
Every threshold was set before the selection benchmark's per-candidate table existed (no figure
was looked at to choose them); the benchmark measures them. Broken candidates are never picked by
any rule or validator (:func:`selection.run.group_scoring.group_scores` leaves them out of the table it
picks from) and are reported with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from selection.errors import SelectionError

__all__ = ["GuardRule", "GUARD", "class_shares", "broken_reasons"]


@dataclass(frozen=True)
class GuardRule:
    source_ratio: float = 0.5
    swallow_share: float = 0.9
    swallow_median: float = 0.5
    present_share: float = 0.01
    vanish_share: float = 0.001
    vanish_fraction: float = 0.5

    def __post_init__(self) -> None:
        for name in ("source_ratio", "swallow_share", "swallow_median", "present_share", "vanish_fraction"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise SelectionError(f"guard {name} must be in (0, 1], got {v!r}")
        if not 0 <= self.vanish_share < self.present_share:
            raise SelectionError("guard vanish_share must be in [0, present_share)")

    def describe(self) -> str:
        return (
            f"source-val mIoU < {self.source_ratio:g} x the group median; or one class > "
            f"{self.swallow_share:.0%} of the pixels (group median < {self.swallow_median:.0%}); or "
            f">= {self.vanish_fraction:.0%} of the group's classes (>= {self.present_share:.0%} of "
            f"pixels in most candidates) below {self.vanish_share:.1%}"
        )


GUARD = GuardRule()


def class_shares(confusion: np.ndarray) -> np.ndarray:
    """(n, C) share of each class among each candidate's predicted pixels, from a vote's (n, C, C)
    confusion (fused class in rows, the candidate's in columns); rows of zeros without pixels."""
    conf = np.asarray(confusion)
    if conf.ndim != 3 or conf.shape[1] != conf.shape[2]:
        raise SelectionError(f"class_shares: expected an (n, C, C) confusion, got {conf.shape}")
    predicted = conf.sum(axis=1).astype(np.float64)
    total = predicted.sum(axis=1, keepdims=True)
    return np.divide(predicted, total, out=np.zeros_like(predicted), where=total > 0)


def broken_reasons(
    ids: Sequence[str],
    shares: np.ndarray,
    source_val_miou: Mapping[str, float] | None = None,
    rule: GuardRule = GUARD,
) -> dict[str, str]:
    """Candidate id -> why it is broken, for the broken ones of one group (``shares``: (n, C) from
    :func:`class_shares`, rows in ``ids`` order; ``source_val_miou``: per candidate, NaN or missing
    where unknown)."""
    shares = np.asarray(shares, np.float64)
    if shares.shape[0] != len(ids):
        raise SelectionError(f"broken_reasons: {len(ids)} ids but {shares.shape[0]} rows of class shares")
    out: dict[str, list[str]] = {i: [] for i in ids}
    source = {i: float((source_val_miou or {}).get(i, np.nan)) for i in ids}
    known = [v for v in source.values() if np.isfinite(v)]
    if len(known) >= 2:
        median = float(np.median(known))
        for i, v in source.items():
            if np.isfinite(v) and v < rule.source_ratio * median:
                out[i].append(
                    f"source-val mIoU {v:.3f} < {rule.source_ratio:g} x the group median {median:.3f}"
                )
    has_pixels = shares.sum(axis=1) > 0
    if has_pixels.sum() >= 2:
        median_share = np.median(shares[has_pixels], axis=0)
        present = (shares[has_pixels] >= rule.present_share).mean(axis=0) > 0.5
        for k, i in enumerate(ids):
            if not has_pixels[k]:
                continue
            top = int(np.argmax(shares[k]))
            if shares[k, top] > rule.swallow_share and median_share[top] < rule.swallow_median:
                out[i].append(
                    f"class {top} takes {shares[k, top]:.0%} of its pixels "
                    f"(group median {median_share[top]:.0%})"
                )
            gone = np.flatnonzero(present & (shares[k] < rule.vanish_share))
            if present.sum() and len(gone) >= rule.vanish_fraction * present.sum():
                out[i].append(
                    f"{len(gone)} of the group's {int(present.sum())} common classes vanish "
                    f"({', '.join(map(str, gone))})"
                )
    return {i: "; ".join(r) for i, r in out.items() if r}
