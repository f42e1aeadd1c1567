"""The two colour tables: agreement between candidates, and per-class IoU against the fusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from selection.errors import SelectionError
from selection.report.inputs import Facts, as_list, finite

__all__ = ["HeatCell", "Heatmap", "agreement_heatmap", "per_class_heatmap"]

AGREEMENT_PREFIX = "agreement__"
_LIGHT, _DARK = (247, 251, 255), (8, 48, 107)


@dataclass(frozen=True)
class HeatCell:
    text: str
    background: str = ""
    colour: str = ""


@dataclass(frozen=True)
class Heatmap:
    columns: list[str]
    rows: list[tuple[str, list[HeatCell]]]
    low: float
    high: float


def _cell(value: object, lo: float, hi: float) -> HeatCell:
    x = finite(value)
    if x is None:
        return HeatCell("–")
    t = 1.0 if hi - lo < 1e-12 else min(1.0, max(0.0, (x - lo) / (hi - lo)))
    r, g, b = (round(a + (c - a) * t) for a, c in zip(_LIGHT, _DARK, strict=True))
    return HeatCell(f"{x:.3f}", f"#{r:02x}{g:02x}{b:02x}", "#ffffff" if t > 0.55 else "#111111")


def _heatmap(frame: pd.DataFrame, lo: float, hi: float) -> Heatmap:
    rows = [(str(idx), [_cell(v, lo, hi) for v in row.tolist()]) for idx, row in frame.iterrows()]
    return Heatmap([str(c) for c in frame.columns], rows, lo, hi)


def agreement_heatmap(facts: Facts) -> Heatmap | None:
    """Candidate x candidate agreement; colour from the lowest to the highest off-diagonal value."""
    cols = [c for c in facts.df.columns if c.startswith(AGREEMENT_PREFIX)]
    if not cols:
        return None
    mat = facts.df[cols].apply(pd.to_numeric, errors="coerce")
    mat.index = facts.df["candidate_id"].tolist()
    mat.columns = [c[len(AGREEMENT_PREFIX) :] for c in cols]
    # Failed candidates have no predictions: their empty rows and columns carry nothing.
    mat = mat.dropna(how="all", axis=0).dropna(how="all", axis=1)
    if mat.empty:
        return None
    values = mat.to_numpy(dtype=float)
    off = values[~np.eye(*values.shape, dtype=bool)] if values.shape[0] == values.shape[1] else values
    off = off[np.isfinite(off)]
    if off.size == 0:
        off = values[np.isfinite(values)]
    return _heatmap(mat, float(off.min()), float(off.max()))


def _class_labels(facts: Facts, n: int) -> list[str]:
    names = facts.class_names
    if names is None:
        return [f"class {i}" for i in range(n)]
    if len(names) != n:
        raise SelectionError(f"class_names: {len(names)} names given, per_class_iou holds {n} classes")
    return list(names)


def per_class_heatmap(facts: Facts) -> Heatmap | None:
    """Each voted candidate's IoU per class against the fusion (colour 0 to 1), restricted to the
    classes the run's mIoU averages (``data.eval_classes``); classes absent everywhere are dropped."""
    if "per_class_iou" not in facts.df.columns:
        return None
    rows = facts.voted(facts.df)
    lists = [[finite(x) for x in as_list(v)] for v in rows["per_class_iou"]]
    n = max((len(v) for v in lists), default=0)
    if n == 0:
        return None
    arr = np.full((len(lists), n), np.nan)
    for i, v in enumerate(lists):
        arr[i, : len(v)] = [np.nan if x is None else x for x in v]
    frame = pd.DataFrame(arr, columns=_class_labels(facts, n), index=rows["candidate_id"].tolist())
    eval_classes = (facts.config.get("data") or {}).get("eval_classes")
    if eval_classes:
        frame = frame.iloc[:, [c for c in eval_classes if 0 <= c < n]]
    frame = frame.dropna(how="all", axis=1)
    return None if frame.empty else _heatmap(frame, 0.0, 1.0)
