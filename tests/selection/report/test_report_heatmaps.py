"""The two colour tables (selection.report.heatmaps): agreement between candidates and per-class
IoU, on the hand-made table of ``report_tables``. Colours run from #f7fbff (low) to #08306b (high)."""

from __future__ import annotations

import numpy as np
import pytest
from report_tables import VOTED, facts, table

from selection.errors import SelectionError
from selection.report.heatmaps import HeatCell, agreement_heatmap, per_class_heatmap

LOW = HeatCell("", "#f7fbff", "#111111")
HIGH = HeatCell("", "#08306b", "#ffffff")


def _colours(cell: HeatCell) -> tuple[str, str]:
    return cell.background, cell.colour


def test_agreement_of_the_voted_candidates() -> None:
    h = agreement_heatmap(facts())
    assert h is not None
    # the failed candidate has no predictions: its row and column are dropped
    assert h.columns == VOTED and [cid for cid, _ in h.rows] == VOTED
    # colours span the off-diagonal values, 0.4 .. 0.8, not the diagonal's 1
    assert (h.low, h.high) == (0.4, 0.8)
    first = dict(h.rows)["alpha=0.1"]
    assert [c.text for c in first] == ["1.000", "0.600", "0.400", "0.500"]
    assert _colours(first[0]) == _colours(HIGH)  # above the range: clipped to the darkest
    assert _colours(first[2]) == _colours(LOW)
    # 0.6 is half-way: each channel half-way (rounded), still dark text (white only past 0.55)
    assert _colours(first[1]) == ("#8096b5", "#111111")


def test_a_missing_agreement_is_a_dash() -> None:
    t = table()
    t.loc[0, "agreement__gamma=2"] = np.nan
    cell = dict(agreement_heatmap(facts(t)).rows)["alpha=0.1"][3]
    assert cell == HeatCell("–")


def test_no_agreement_columns_or_no_values_no_heatmap() -> None:
    t = table()
    assert (
        agreement_heatmap(facts(t.drop(columns=[c for c in t.columns if c.startswith("agreement__")])))
        is None
    )
    for c in [c for c in t.columns if c.startswith("agreement__")]:
        t[c] = np.nan
    assert agreement_heatmap(facts(t)) is None


def test_equal_agreements_are_all_dark() -> None:
    t = table()
    for cid in VOTED:
        t[f"agreement__{cid}"] = [0.5, 0.5, 0.5, 0.5, np.nan]
    h = agreement_heatmap(facts(t))
    assert (h.low, h.high) == (0.5, 0.5)
    assert {_colours(c) for _, row in h.rows for c in row} == {_colours(HIGH)}


def test_per_class_iou_restricted_to_the_eval_classes() -> None:
    h = per_class_heatmap(facts(class_names=["road", "sky", "car"]))
    assert h is not None and (h.low, h.high) == (0.0, 1.0)
    assert h.columns == ["road", "sky"]  # eval_classes [0, 1]
    assert [cid for cid, _ in h.rows] == VOTED  # the failed candidate has no row
    row = dict(h.rows)["alpha=0.9"]
    assert [c.text for c in row] == ["1.000", "0.000"]
    assert _colours(row[0]) == _colours(HIGH) and _colours(row[1]) == _colours(LOW)


def test_per_class_without_eval_classes_drops_classes_absent_everywhere() -> None:
    h = per_class_heatmap(facts(config={"experiment": "x"}))
    assert h.columns == ["class 0", "class 1"]  # class 2 is NaN for everyone
    h = per_class_heatmap(facts(config={"data": {"eval_classes": [1, 7]}}))
    assert h.columns == ["class 1"]  # an index beyond the lists is skipped


def test_per_class_needs_matching_class_names() -> None:
    # read_facts checks the names against the choice; without a choice the heatmap checks them
    with pytest.raises(SelectionError, match="class_names: 2 names given, per_class_iou holds 3 classes"):
        per_class_heatmap(facts(ch=None, class_names=["road", "sky"]))


def test_no_per_class_column_or_no_values_no_heatmap() -> None:
    assert per_class_heatmap(facts(table().drop(columns="per_class_iou"))) is None
    t = table()
    t["per_class_iou"] = [[], [], [], [], None]
    assert per_class_heatmap(facts(t)) is None
    t["per_class_iou"] = [[np.nan] * 3] * 4 + [None]
    assert per_class_heatmap(facts(t)) is None
