"""Geometry of the per-parameter charts (selection.report.charts), worked out by hand on the table
of ``report_tables``: 540 x 300 canvas, margins 58 left, 26 top, 58 bottom, 62 right with true mIoU
(20 without), so a plot of 420 x 216 with three categories 140 wide."""

from __future__ import annotations

import numpy as np
import pytest
from report_tables import choice, facts, table

from selection.report.charts import TRUE_OFFSET, Category, Point, Tick, score_label, sweep_chart

LEFT, TOP, PLOT_W, PLOT_H = 58.0, 26.0, 420.0, 216.0


def _fy(v: float, lo: float = 0.576, hi: float = 0.824) -> float:
    return TOP + PLOT_H * (1 - (v - lo) / (hi - lo))


def test_score_label() -> None:
    assert score_label("f_miou") == score_label("f_miou__alpha") == "F-mIoU"
    assert score_label("f_miou_trimmed") == score_label("f_miou_trimmed__gamma") == "F-mIoU (trimmed)"


def test_the_alpha_chart_by_hand() -> None:
    c = sweep_chart(facts(), "alpha")
    assert c is not None and c.param == "alpha" and c.score_label == "F-mIoU"
    assert (c.left, c.top, c.plot_width, c.plot_height) == (LEFT, TOP, PLOT_W, PLOT_H)
    assert (c.right, c.bottom, c.middle) == (478.0, 242.0, 134.0)
    assert c.categories == [
        Category(128.0, "0.1", False),
        Category(268.0, "0.5", True),
        Category(408.0, "0.9", False),
    ]
    assert c.band == (198.0, 140.0)  # the pick's (the default's) column
    # F-mIoU in alpha: 0.6, 0.8, 0.7, padded by 12% of the range: 0.576 .. 0.824
    assert c.score_ticks[0] == Tick(242.0, "0.576") and c.score_ticks[-1] == Tick(26.0, "0.824")
    assert len(c.score_ticks) == 6
    # true mIoU 0.50 .. 0.60, padded by 0.012
    assert [t.label for t in c.true_ticks] == ["0.488", "0.513", "0.538", "0.562", "0.587", "0.612"]
    assert c.score_line == "128.0,221.1 268.0,46.9 408.0,134.0"
    by_x = {p.x: p for p in c.points}
    assert by_x[268.0] == Point(
        268.0,
        pytest.approx(_fy(0.8)),
        "default: alpha=0.5, F-mIoU=0.8000, status=done, true mIoU=0.5500",
        "ok",
        ring=True,
    )
    assert by_x[408.0].kind == "degenerate" and not by_x[408.0].ring
    assert sorted(p.x for p in c.true_points) == [
        128.0 + TRUE_OFFSET,
        268.0 + TRUE_OFFSET,
        408.0 + TRUE_OFFSET,
    ]


def test_the_default_is_scored_by_its_own_sweeps_column() -> None:
    # the default's F-mIoU differs between sweeps (0.8 in alpha, 0.7 in gamma)
    c = sweep_chart(facts(), "gamma")
    assert [cat.label for cat in c.categories] == ["2", "8", "16"]
    default = next(p for p in c.points if p.tip.startswith("default:"))
    assert "F-mIoU=0.7000" in default.tip and not default.ring
    assert next(p for p in c.points if p.tip.startswith("gamma=2:")).ring


def test_a_failed_candidate_is_a_cross_on_the_axis() -> None:
    c = sweep_chart(facts(), "gamma")
    failed = [p for p in c.points if p.kind == "failed"]
    assert failed == [
        Point(408.0, 237.0, "gamma=16: gamma=16, F-mIoU=–, status=failed, true mIoU=–", "failed")
    ]
    assert all(not tp.tip.startswith("gamma=16") for tp in c.true_points)


def test_without_truth_the_plot_is_wider_and_has_no_right_axis() -> None:
    c = sweep_chart(facts(table().drop(columns="true_miou")), "alpha")
    assert c.plot_width == 540 - 58 - 20
    assert c.true_ticks == [] and c.true_line == "" and c.true_points == []
    assert "true mIoU" not in c.points[0].tip


def test_no_chart_before_the_group_voted() -> None:
    assert sweep_chart(facts(ch=None), "alpha") is None
    ch = choice()
    del ch["per_sweep"]["gamma"]
    assert sweep_chart(facts(ch=ch), "gamma") is None
    t = table()
    t["alpha"] = np.nan  # no value to place anyone at
    assert sweep_chart(facts(t), "alpha") is None


def test_pending_candidates_are_not_drawn_and_one_value_draws_no_line() -> None:
    t = table()
    t.loc[t["candidate_id"].isin(["alpha=0.1", "alpha=0.9"]), "status"] = "pending"
    c = sweep_chart(facts(t), "alpha")
    assert [cat.label for cat in c.categories] == ["0.5"]
    assert c.score_line == "" and len(c.points) == 1


def test_a_flat_score_still_has_a_range() -> None:
    t = table()
    t["f_miou__alpha"] = [0.5, 0.5, 0.5, np.nan, np.nan]
    c = sweep_chart(facts(t), "alpha")
    assert (c.score_ticks[0].label, c.score_ticks[-1].label) == ("0.490", "0.510")  # at least 0.01


def test_axes_stay_within_zero_and_one() -> None:
    t = table()
    t["f_miou__alpha"] = [0.0, 1.0, 0.5, np.nan, np.nan]
    c = sweep_chart(facts(t), "alpha")
    assert (c.score_ticks[0].label, c.score_ticks[-1].label) == ("0.000", "1.000")


def test_a_trimmed_rule_plots_its_own_column() -> None:
    t = table().assign(f_miou_trimmed=[0.61, 0.81, np.nan, 0.74, np.nan])
    ch = choice()
    ch["per_sweep"]["alpha"]["score_used"] = "f_miou_trimmed"
    c = sweep_chart(facts(t, ch), "alpha")
    assert c.score_label == "F-mIoU (trimmed)"
    # the trimmed-away candidate has no value there and is left off the score axis
    assert len(c.points) == 2 and "F-mIoU (trimmed)=0.8100" in next(p.tip for p in c.points if p.ring)


def test_in_a_grid_every_candidate_is_drawn_spread_sideways() -> None:
    t = table().iloc[:4].assign(sweep=["grid", "default", "grid", "grid"], sweeps=[["grid"]] * 4)
    ch = choice()
    ch["mode"] = "grid"
    ch["per_sweep"] = {"grid": {**ch["per_sweep"]["alpha"], "candidate_id": "gamma=2"}}
    f = facts(t, ch, {"selection": {"mode": "grid", "parameters": {"alpha": [], "gamma": []}}})
    c = sweep_chart(f, "alpha")
    xs = {p.tip.split(":")[0]: p.x for p in c.points}
    # two candidates share alpha = 0.5: the first 10 px left of the centre, the next 5 px left
    assert xs == {"alpha=0.1": 118.0, "default": 258.0, "alpha=0.9": 398.0, "gamma=2": 263.0}
    assert [p.ring for p in c.points].count(True) == 1
    assert c.score_line.count(",") == 3  # the line joins the means per value, one point each


def test_a_rule_that_is_no_f_miou_charts_f_miou() -> None:
    ch = choice()
    ch["per_sweep"]["alpha"]["score_used"] = "mean_entropy"
    c = sweep_chart(facts(ch=ch), "alpha")
    default = next(p for p in c.points if p.tip.startswith("default:"))
    assert "F-mIoU=0.8000" in default.tip  # its f_miou__alpha, not its mean_entropy 0.2
