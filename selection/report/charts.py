"""Geometry of the per-parameter charts; the template's SVG macros draw what this computes.

One chart per swept parameter: the score the vote picked with (left axis) against the
parameter's values, true mIoU on its own right axis when target labels exist, the pick's column
shaded and its point ringed, degenerate candidates hollow, failed ones as a cross on the axis.
In a grid every candidate is drawn at its value of the parameter (spread sideways so that none
hides another) and the lines join the means per value (the marginal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from selection.candidates import format_value
from selection.report.inputs import Facts, finite

__all__ = ["Category", "Point", "Tick", "SweepChart", "sweep_chart", "score_label"]

WIDTH, HEIGHT = 540, 300
_MARGIN_LEFT, _MARGIN_TOP, _MARGIN_BOTTOM = 58, 26, 58
# True mIoU sits a few pixels right of the vote's score: with two independently scaled axes the
# two series can coincide, and the pick is made on the vote's score, which stays on top.
TRUE_OFFSET = 7.0
_LEVELS = [i / 5 for i in range(6)]


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Category:
    x: float
    label: str
    is_default: bool


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    tip: str
    kind: str  # "ok", "degenerate" or "failed"
    ring: bool = False


@dataclass
class SweepChart:
    param: str
    score_label: str
    left: float
    top: float
    plot_width: float
    plot_height: float
    categories: list[Category]
    band: tuple[float, float] | None
    score_ticks: list[Tick]
    true_ticks: list[Tick]
    score_line: str
    true_line: str
    points: list[Point] = field(default_factory=list)
    true_points: list[Point] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def right(self) -> float:
        return self.left + self.plot_width

    @property
    def bottom(self) -> float:
        return self.top + self.plot_height

    @property
    def middle(self) -> float:
        return self.top + self.plot_height / 2


def score_label(column: str) -> str:
    return "F-mIoU (trimmed)" if column.startswith("f_miou_trimmed") else "F-mIoU"


def _padded_range(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.12, 0.01)
    low, high = lo - pad, hi + pad
    # Scores live in [0, 1]: padding never pushes an axis past either end.
    if lo >= 0.0:
        low = max(low, 0.0)
    if hi <= 1.0:
        high = min(high, 1.0)
    return low, high


def _score_column(facts: Facts, group: str, rows: pd.DataFrame) -> str:
    # The chart's axis is an F-mIoU: the rule's own score only when the rule scores by one.
    used = facts.score_used(group)
    first = used if used in ("f_miou", "f_miou_trimmed") else "f_miou"
    for col in (facts.group_column(first, group), facts.group_column("f_miou", group)):
        if col in rows.columns and rows[col].notna().any():
            return col
    return "f_miou"


def sweep_chart(facts: Facts, param: str) -> SweepChart | None:
    """The chart of one swept parameter, or None while its vote group has not voted."""
    group = facts.group_of(param)
    if facts.choice is None or group not in facts.choice["per_sweep"]:
        return None
    rows = facts.members(group) if facts.mode == "sweep" else facts.df
    rows = rows[rows["status"] != "pending"]
    values = sorted({float(v) for v in rows[param] if finite(v) is not None})
    if not values:
        return None
    ycol = _score_column(facts, group, rows)
    pick_id = facts.pick_id(group)
    picked = rows[rows["candidate_id"] == pick_id]
    pick_value = float(picked.iloc[0][param]) if len(picked) else None

    right_margin = 62 if facts.has_true else 20
    left, top = float(_MARGIN_LEFT), float(_MARGIN_TOP)
    pw, ph = WIDTH - _MARGIN_LEFT - right_margin, HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM
    step = pw / len(values)

    def cx(v: float) -> float:
        return left + step * (values.index(v) + 0.5)

    voted = facts.voted(rows)
    f_lo, f_hi = _padded_range([x for x in (finite(v) for v in voted[ycol]) if x is not None])
    t_vals = [x for x in (finite(v) for v in voted["true_miou"]) if x is not None] if facts.has_true else []
    t_lo, t_hi = _padded_range(t_vals)

    def fy(v: float) -> float:
        return top + ph * (1 - (v - f_lo) / (f_hi - f_lo))

    def ty(v: float) -> float:
        return top + ph * (1 - (v - t_lo) / (t_hi - t_lo))

    default = facts.defaults.get(param)
    chart = SweepChart(
        param=param,
        score_label=score_label(ycol),
        left=left,
        top=top,
        plot_width=pw,
        plot_height=ph,
        categories=[Category(cx(v), format_value(v), default is not None and v == default) for v in values],
        band=(cx(pick_value) - step / 2, step) if pick_value is not None else None,
        # Six grid lines; the right axis labels the same lines on the true-mIoU scale.
        score_ticks=[Tick(top + ph * (1 - a), f"{f_lo + (f_hi - f_lo) * a:.3f}") for a in _LEVELS],
        true_ticks=[Tick(top + ph * (1 - a), f"{t_lo + (t_hi - t_lo) * a:.3f}") for a in _LEVELS]
        if facts.has_true
        else [],
        score_line=_mean_line(voted, param, ycol, cx, fy, 0.0),
        true_line=_mean_line(voted, param, "true_miou", cx, ty, TRUE_OFFSET) if facts.has_true else "",
    )
    crowded = len(rows) > len(values)
    seen: dict[float, int] = {}
    for _, row in rows.iterrows():
        v = float(row[param])
        j = seen.get(v, 0)
        seen[v] = j + 1
        x = cx(v) + ((j % 5) - 2) * 5.0 * crowded
        cid = str(row["candidate_id"])
        y_val, t_val = finite(row[ycol]), finite(row.get("true_miou"))
        tip = (
            f"{cid}: {param}={format_value(v)}, {chart.score_label}="
            f"{'–' if y_val is None else f'{y_val:.4f}'}, status={row['status']}"
        )
        if facts.has_true:
            tip += f", true mIoU={'–' if t_val is None else f'{t_val:.4f}'}"
        if row["status"] == "failed":
            chart.points.append(Point(x, top + ph - 5, tip, "failed"))
            continue
        if y_val is None:  # finished, but its sweep could not vote (yet)
            continue
        kind = "degenerate" if cid in facts.degenerate else "ok"
        chart.points.append(Point(x, fy(y_val), tip, kind, ring=cid == pick_id))
        if t_val is not None:
            chart.true_points.append(Point(x + TRUE_OFFSET, ty(t_val), tip, kind))
    return chart


def _mean_line(rows: pd.DataFrame, param: str, col: str, cx, scale, dx: float) -> str:
    """Polyline points through the mean per value (one point per value in a sweep)."""
    means = pd.to_numeric(rows[col], errors="coerce").groupby(rows[param].astype(float)).mean().dropna()
    if len(means) < 2:
        return ""
    return " ".join(f"{cx(float(v)) + dx:.1f},{scale(float(m)):.1f}" for v, m in means.sort_index().items())
