"""The limits beside the rules: what picking with labels would achieve on the same benchmark.

* **Per-seed oracle** (:func:`per_seed_oracle_scores`): pick by that seed's own target-val mIoU,
  judged like every rule against the truth averaged over the seeds. A label-free rule sees one
  seed's models; this is the best any rule that sees them can do (seed noise it cannot remove).
* **Few-label oracles** (:func:`few_label_draws`, :func:`few_label_scores`): pick by the mIoU on N
  target-val images drawn at random (without replacement), :data:`FEW_LABEL_DRAWS` draws per
  (regime, seed), every figure averaged over the draws. One draw labels N images once and scores
  every candidate of the seed on them, as a user with N labels would. A regime with fewer than N
  target-val images has no figure (the table says so) rather than one that quietly uses them all.

Ties go to the default, then to the first in the group's order, as the rules' do.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from selection_bench.tables import Group, subset_miou

__all__ = [
    "FEW_LABEL_DRAWS",
    "FEW_LABEL_N",
    "FEW_LABEL_SEED",
    "ORACLE",
    "best_of",
    "few_label_draws",
    "few_label_label",
    "few_label_scores",
    "per_seed_oracle_scores",
]

ORACLE = "oracle: per seed"
FEW_LABEL_N = (10, 50)
FEW_LABEL_DRAWS = 20
FEW_LABEL_SEED = 16  # the number; fixed before any draw was looked at


def few_label_label(n: int) -> str:
    return f"oracle: {n} labels"


def best_of(scores: Mapping[str, float], ids: Sequence[str], prefer: str | None = "default") -> str | None:
    """The highest finite score; ties to ``prefer`` when among them, else the first in ``ids``."""
    finite = {i: scores[i] for i in ids if np.isfinite(scores.get(i, np.nan))}
    if not finite:
        return None
    top = max(finite.values())
    tied = [i for i in ids if finite.get(i) == top]
    return prefer if prefer in tied else tied[0]


def per_seed_oracle_scores(group: Group) -> dict[str, float]:
    return {i: group.seed_truth[i] for i in group.ids}


def few_label_draws(
    regime: str, seed: int, images: Sequence[str], n: int, draws: int = FEW_LABEL_DRAWS
) -> list[list[str]]:
    """``draws`` sets of ``n`` image ids of ``images`` (sorted first), the same for every group and
    candidate of (regime, seed); [] when the regime has fewer than ``n`` images."""
    pool = sorted(images)
    if len(pool) < n:
        return []
    rng = np.random.default_rng([FEW_LABEL_SEED, n, seed, zlib.crc32(regime.encode())])
    return [[pool[j] for j in sorted(rng.choice(len(pool), size=n, replace=False))] for _ in range(draws)]


def few_label_scores(
    group: Group, counts: Mapping[str, tuple[list[str], np.ndarray, np.ndarray]], draw: Sequence[str]
) -> dict[str, float]:
    """Per candidate of the group: its mIoU (points) on the images of ``draw``."""
    out = {}
    for cid in group.ids:
        if cid not in counts:
            raise ValueError(f"{group.regime} seed {group.seed}: no per-image target-val counts for {cid}")
        images, inter, union = counts[cid]
        index = {im: k for k, im in enumerate(images)}
        try:
            rows = [index[im] for im in draw]
        except KeyError as e:
            raise ValueError(f"{group.regime} seed {group.seed} {cid}: no counts for image {e}") from None
        out[cid] = subset_miou(inter[rows], union[rows])
    return out
