"""The label-free scores side by side (selection.report.score_table): which columns are scores, and
what each picks per vote group, on the hand-made table of ``report_tables``."""

from __future__ import annotations

import numpy as np
import pytest
from report_tables import facts, table

from selection.report import ScoreColumn, score_columns
from selection.report.score_table import AUDIT_SCORE, PickCell, group_values, pick_rows
from selection.validators import VALIDATORS


def test_score_columns_in_registry_order_then_the_audit() -> None:
    cols = score_columns(table())
    assert [c.name for c in cols] == ["f_miou", "mean_entropy", AUDIT_SCORE]
    assert [c.higher_is_better for c in cols] == [True, False, True]
    assert [c.audit for c in cols] == [False, False, True]
    assert cols[1] == ScoreColumn("mean_entropy", False, VALIDATORS["mean_entropy"].description)


def test_columns_without_a_value_and_other_columns_are_no_scores() -> None:
    t = table().assign(snd=np.nan, bnm="n/a", digest="abc", im=[0.1, None, None, None, None])
    assert [c.name for c in score_columns(t)] == ["f_miou", "im", "mean_entropy", AUDIT_SCORE]
    assert score_columns(t[["candidate_id", "alpha"]]) == []


def test_group_values_read_the_per_group_column_of_voted_candidates() -> None:
    f = facts()
    got = group_values(f, "f_miou", "gamma")
    assert got.to_dict() == {"default": 0.7, "gamma=2": 0.75}  # the failed gamma=16 did not vote
    assert group_values(f, "mean_entropy", "alpha").to_dict() == {
        "alpha=0.1": 0.3,
        "default": 0.2,
        "alpha=0.9": 0.2,
    }
    assert group_values(f, "snd", "alpha").empty  # no such column


def test_each_score_picks_within_each_group() -> None:
    rows = {r.score.name: r for r in pick_rows(facts())}
    assert list(rows) == ["f_miou", "mean_entropy", AUDIT_SCORE]
    f_miou = rows["f_miou"]
    assert f_miou.cells == [PickCell("0.5", "default", agrees=True), PickCell("2", "gamma=2", agrees=True)]
    assert (f_miou.same, f_miou.comparable) == (2, 2)
    # lower is better: alpha's two 0.2 values tie, which is no pick; gamma's lowest is the default
    entropy = rows["mean_entropy"]
    assert entropy.cells == [PickCell("tie: 0.5, 0.9", tie=True), PickCell("8", "default")]
    assert (entropy.same, entropy.comparable) == (0, 2)
    truth = rows[AUDIT_SCORE]
    assert truth.cells[0] == PickCell("0.9", "alpha=0.9", degenerate=True)
    assert truth.score.audit


def test_a_group_where_a_score_has_no_value_shows_a_dash() -> None:
    t = table()
    t["mean_entropy"] = [0.3, np.nan, 0.1, np.nan, np.nan]  # nothing in gamma
    row = next(r for r in pick_rows(facts(t)) if r.score.name == "mean_entropy")
    assert row.cells == [PickCell("0.9", "alpha=0.9", degenerate=True), PickCell("–")]
    assert row.comparable == 1


def test_near_equal_values_tie() -> None:
    t = table()
    t["f_miou__gamma"] = [np.nan, 0.75, np.nan, 0.75 + 1e-12, np.nan]
    row = next(r for r in pick_rows(facts(t)) if r.score.name == "f_miou")
    assert row.cells[1] == PickCell("tie: 8, 2", tie=True)


def test_grid_cells_show_candidate_ids_and_without_a_choice_nothing_agrees() -> None:
    t = table().iloc[:4].assign(sweep=["grid", "default", "grid", "grid"], sweeps=[["grid"]] * 4)
    config = {"selection": {"mode": "grid", "parameters": {"alpha": [0.1, 0.5, 0.9], "gamma": [2, 8]}}}
    rows = {r.score.name: r for r in pick_rows(facts(t, None, config))}
    # f_miou: default and gamma=2 both at 0.75
    assert rows["f_miou"].cells == [PickCell("tie: default, gamma=2", tie=True)]
    assert rows[AUDIT_SCORE].cells == [PickCell("alpha=0.9", "alpha=0.9", degenerate=True)]
    assert all(r.same == 0 for r in rows.values())


@pytest.mark.parametrize("score", ["f_miou", "mean_entropy"])
def test_the_pick_follows_the_registry_direction(score: str) -> None:
    values = group_values(facts(), score, "gamma")
    row = next(r for r in pick_rows(facts()) if r.score.name == score)
    best = values.idxmax() if VALIDATORS[score].higher_is_better else values.idxmin()
    assert row.cells[1].candidate_id == best
