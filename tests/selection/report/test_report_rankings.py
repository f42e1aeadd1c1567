"""Rankings per sweep (selection.report.rankings): read from the stored sweep tables, beside the truth."""

from __future__ import annotations

import numpy as np
from report_tables import facts, sweep_table, table

from selection.report.rankings import RankCell, ranking_tables
from selection.validators import VALIDATORS


def test_no_sweep_tables_no_rankings() -> None:
    assert ranking_tables(facts()) == []
    # a table for a group the choice does not have is not shown
    assert ranking_tables(facts(sweeps={"k": sweep_table()})) == []


def test_the_alpha_table_by_hand() -> None:
    (t,) = ranking_tables(facts(sweeps={"alpha": sweep_table()}))
    assert t.group == "alpha" and t.has_truth
    # validators with a value and a rank column, in registry order (snd has no rank: left out)
    assert [name for name, _ in t.columns] == ["f_miou", "mean_entropy"]
    assert t.columns[1][1] == f"{VALIDATORS['mean_entropy'].description} (lower is better)"
    assert [r.candidate_id for r in t.rows] == ["alpha=0.1", "default", "alpha=0.9"]  # sweep order
    assert [r.label for r in t.rows] == ["alpha = 0.1", "alpha = 0.5", "alpha = 0.9"]
    assert [(r.picked, r.degenerate, r.is_default) for r in t.rows] == [
        (False, False, False),
        (True, False, True),
        (False, True, False),
    ]
    assert [r.rule.rank for r in t.rows] == [3, 1, 2]
    assert t.rows[1].cells == [RankCell(1, "f_miou = 0.8000"), RankCell(1, "mean_entropy = 0.2000")]
    assert [r.truth.rank for r in t.rows] == [3, 2, 1] and t.rows[2].true_miou == 0.6
    # true mIoU's best is alpha=0.9; only mean_entropy (tied first there) ranks it first too
    assert t.agreeing_with_truth == 1


def test_cells_without_a_value_or_rank() -> None:
    s = sweep_table()
    s.loc[0, ["f_miou", "f_miou__rank"]] = np.nan
    (t,) = ranking_tables(facts(sweeps={"alpha": s}))
    assert t.rows[0].cells[0] == RankCell(None, "f_miou: no value")
    assert t.rows[0].rule.title == "rule: no value"  # the rule's rank has no value column
    assert not RankCell(None, "").best and RankCell(1, "").best and not RankCell(2, "").best


def test_without_truth_ranks_there_is_no_truth_column() -> None:
    s = sweep_table().drop(columns=["true_miou__rank"])
    (t,) = ranking_tables(facts(sweeps={"alpha": s}))
    assert not t.has_truth and all(r.truth is None and r.true_miou is None for r in t.rows)
    assert t.agreeing_with_truth == 0
    s = sweep_table().assign(true_miou__rank=np.nan)
    assert not ranking_tables(facts(sweeps={"alpha": s}))[0].has_truth


def test_grid_rows_are_labelled_by_candidate_id() -> None:
    t = table().iloc[:4].assign(sweep=["grid", "default", "grid", "grid"], sweeps=[["grid"]] * 4)
    config = {"selection": {"mode": "grid", "parameters": {"alpha": [0.1, 0.5, 0.9], "gamma": [2, 8]}}}
    (r,) = ranking_tables(facts(t, None, config, sweeps={"grid": sweep_table()}))
    assert [row.label for row in r.rows] == ["alpha=0.1", "default", "alpha=0.9"]
    assert "is_default" in sweep_table().columns  # and a table without it says False
    (r,) = ranking_tables(facts(sweeps={"alpha": sweep_table().drop(columns="is_default")}))
    assert not any(row.is_default for row in r.rows)
