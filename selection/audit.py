"""Audit of label-free scores wherever true labels exist (synthscape, or a labelled target val split).

Per vote group (sweep) and per score:

* ``spearman``, ``kendall`` (tau-b): rank correlation of the score with true mIoU over the group's
  candidates. The score is oriented first (lower-is-better scores negated), so +1 always means
  "orders candidates exactly as true mIoU does" and -1 "exactly backwards". NaN with fewer than
  2 candidates or a constant score.
* ``regret``: true mIoU of the group's best candidate minus true mIoU of the score's pick (the
  best-scored eligible candidate; ties go to the first in the group's order). 0 is perfect.

Two reference rows per group: ``centre`` (always pick the middle of the sweep, lower middle for an
even count; for a grid, the candidate at every parameter's middle value) and ``random`` (expected
regret of a uniform pick: best minus mean). A score whose regret is no better than ``centre`` has
not shown it sees anything the grid layout does not.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "rankdata",
    "spearman",
    "kendall_tau_b",
    "pick",
    "AuditScore",
    "audit_group",
    "summarize_audit",
    "AUDIT_COLUMNS",
]

AUDIT_COLUMNS = [
    "group",
    "score",
    "higher_is_better",
    "n_candidates",
    "spearman",
    "kendall",
    "pick",
    "pick_true_miou",
    "best",
    "best_true_miou",
    "regret",
]


def rankdata(x: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (as scipy.stats.rankdata 'average')."""
    a = np.asarray(x, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=np.float64)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson of average ranks); NaN if n < 2 or either is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"spearman: lengths differ ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return float("nan")
    rx, ry = rankdata(x) - (len(x) + 1) / 2.0, rankdata(y) - (len(y) + 1) / 2.0
    den = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties adjusted, as scipy.stats.kendalltau's default); NaN if undefined."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"kendall: lengths differ ({len(x)} vs {len(y)})")
    iu = np.triu_indices(len(x), k=1)
    dx = np.sign(x[:, None] - x[None, :])[iu]
    dy = np.sign(y[:, None] - y[None, :])[iu]
    nx, ny = np.count_nonzero(dx), np.count_nonzero(dy)
    if nx == 0 or ny == 0:
        return float("nan")
    return float((dx * dy).sum() / np.sqrt(float(nx) * float(ny)))


def pick(
    ids: Sequence[str],
    values: Mapping[str, float],
    higher_is_better: bool,
    eligible: Collection[str] | None = None,
) -> str | None:
    """The best-scored candidate among ``eligible`` with a finite score; first in ``ids`` on ties."""
    best_id, best_v = None, None
    for i in ids:
        if eligible is not None and i not in eligible:
            continue
        v = values.get(i, float("nan"))
        if v is None or not np.isfinite(v):
            continue
        v = v if higher_is_better else -v
        if best_v is None or v > best_v:
            best_id, best_v = i, v
    return best_id


@dataclass(frozen=True)
class AuditScore:
    """A score to audit: values per candidate, direction, and who may be picked (None: everyone)."""

    values: Mapping[str, float]
    higher_is_better: bool
    eligible: Collection[str] | None = None


def audit_group(
    group: str,
    ids: Sequence[str],
    true_miou: Mapping[str, float],
    scores: Mapping[str, AuditScore],
    centre_id: str | None,
) -> list[dict]:
    """Audit rows (see AUDIT_COLUMNS) for one vote group: every score, then centre and random."""
    known = [i for i in ids if i in true_miou and np.isfinite(true_miou[i])]
    rows: list[dict] = []
    if not known:
        return rows
    best = max(known, key=lambda i: true_miou[i])
    best_t = float(true_miou[best])

    def row(
        score: str, hib: bool | None, n: int, rho: float, tau: float, chosen: str | None, chosen_t: float
    ):
        return {
            "group": group,
            "score": score,
            "higher_is_better": hib,
            "n_candidates": n,
            "spearman": rho,
            "kendall": tau,
            "pick": chosen,
            "pick_true_miou": chosen_t,
            "best": best,
            "best_true_miou": best_t,
            "regret": best_t - chosen_t,
        }

    for name, sc in scores.items():
        both = [i for i in known if i in sc.values and np.isfinite(sc.values[i])]
        if not both:
            continue
        sign = 1.0 if sc.higher_is_better else -1.0
        s = [sign * float(sc.values[i]) for i in both]
        t = [float(true_miou[i]) for i in both]
        chosen = pick(ids, sc.values, sc.higher_is_better, sc.eligible)
        chosen_t = float(true_miou[chosen]) if chosen in true_miou else float("nan")
        rows.append(
            row(name, sc.higher_is_better, len(both), spearman(s, t), kendall_tau_b(s, t), chosen, chosen_t)
        )
    if centre_id is not None and centre_id in true_miou:
        rows.append(
            row(
                "centre", None, len(known), float("nan"), float("nan"), centre_id, float(true_miou[centre_id])
            )
        )
    rows.append(
        row(
            "random",
            None,
            len(known),
            float("nan"),
            float("nan"),
            None,
            float(np.mean([true_miou[i] for i in known])),
        )
    )
    return rows


def summarize_audit(audit: pd.DataFrame) -> pd.DataFrame:
    """Per score over all groups: mean and max regret, how often it picked the best, mean correlations."""
    if audit.empty:
        return pd.DataFrame(
            columns=[
                "score",
                "groups",
                "mean_regret",
                "max_regret",
                "picked_best",
                "mean_spearman",
                "mean_kendall",
            ]
        )
    g = audit.groupby("score", sort=False)
    out = pd.DataFrame(
        {
            "groups": g.size(),
            "mean_regret": g["regret"].mean(),
            "max_regret": g["regret"].max(),
            "picked_best": g.apply(lambda d: int((d["regret"] <= 1e-12).sum()), include_groups=False),
            "mean_spearman": g["spearman"].mean(),
            "mean_kendall": g["kendall"].mean(),
        }
    )
    return out.reset_index()
