"""What the dashboard reads (selection.report.inputs): the cell helpers, the checks that refuse what
the project does not write, and the facts every section derives the same way."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from report_tables import CONFIG, DEGENERATE_ID, FAILED_ID, IDS, choice, facts, sweep_table, table

from selection.errors import SelectionError
from selection.report.inputs import STATUSES, as_list, as_names, finite


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (0.5, 0.5),
        (3, 3.0),
        (np.float32(0.25), 0.25),
        (np.int64(2), 2.0),
        (None, None),
        (float("nan"), None),
        (float("inf"), None),
        (-float("inf"), None),
        (True, None),  # a flag is no score
        (np.bool_(False), None),
        ("0.5", None),  # text is never parsed into a number
        ([0.5], None),
        (object(), None),
    ],
)
def test_finite(value: Any, want: float | None) -> None:
    assert finite(value) == want


def test_list_cells_from_python_and_parquet() -> None:
    assert as_list([1, 2]) == [1, 2] and as_list((1,)) == [1]
    assert as_list(np.array(["a", "b"])) == ["a", "b"]  # what Parquet gives back
    assert as_list(None) == [] and as_list(float("nan")) == [] and as_list("alpha") == []
    assert as_names(np.array([1, "x"], dtype=object)) == ["1", "x"]


def test_the_facts_of_the_tiny_table() -> None:
    f = facts()
    assert f.groups == ["alpha", "gamma"]  # the choice's order
    assert f.params == ["alpha", "gamma"] and f.mode == "sweep"
    assert f.defaults == {"alpha": 0.5, "gamma": 8.0}  # the default candidate's values
    assert f.degenerate == {DEGENERATE_ID: ["alpha"]}
    assert f.broken == {} and f.total == 5 and f.has_true
    assert f.notes == ["gamma=16 failed before the vote"]
    assert f.pick_id("alpha") == "default" and f.pick_id("gamma") == "gamma=2"
    assert f.pick_id("k") is None and f.score_used("k") == "f_miou"
    assert f.group_of("alpha") == "alpha"


def test_members_voted_and_per_group_columns() -> None:
    f = facts()
    assert f.members("alpha")["candidate_id"].tolist() == ["alpha=0.1", "default", "alpha=0.9"]
    assert f.members("gamma")["candidate_id"].tolist() == ["default", "gamma=2", FAILED_ID]
    assert f.voted(f.members("gamma"))["candidate_id"].tolist() == ["default", "gamma=2"]
    assert f.group_column("f_miou", "alpha") == "f_miou__alpha"
    assert f.group_column("mean_entropy", "alpha") == "mean_entropy"  # no per-group copy


def test_pending_rows_and_rows_without_a_score_did_not_vote() -> None:
    t = table()
    t.loc[0, "status"] = "pending"
    t.loc[2, "f_miou"] = np.nan
    f = facts(t)
    assert f.voted(f.df)["candidate_id"].tolist() == ["default", "gamma=2"]


def test_a_table_without_status_is_all_done_and_ids_become_text() -> None:
    t = table().drop(columns=["status", "error"]).iloc[:4]
    t["candidate_id"] = [1, 2, 3, 4]
    f = facts(t, None)
    assert f.df["status"].tolist() == ["done"] * 4
    assert f.df["candidate_id"].tolist() == ["1", "2", "3", "4"]


def test_grid_mode_has_one_group() -> None:
    t = table().iloc[:4].assign(sweep=["grid", "default", "grid", "grid"], sweeps=[["grid"]] * 4)
    config = {"selection": {"mode": "grid", "parameters": {"alpha": [0.1, 0.5, 0.9], "gamma": [2, 8]}}}
    f = facts(t, None, config)
    assert f.groups == ["grid"] and f.mode == "grid" and f.params == ["alpha", "gamma"]
    assert f.group_of("alpha") == f.group_of("gamma") == "grid"


def test_groups_without_a_choice_or_config_come_from_the_table() -> None:
    f = facts(ch=None, config=None)
    assert f.choice is None and f.groups == ["alpha", "gamma"] and f.params == ["alpha", "gamma"]
    assert f.pick_id("alpha") is None and f.config == {}


def test_a_choice_without_a_vote_keeps_only_its_notes() -> None:
    f = facts(ch={"parameters": {}, "candidate_id": None, "notes": ["1 candidate(s) can vote"]})
    assert f.choice is None and f.notes == ["1 candidate(s) can vote"]


def test_broken_from_the_table_and_the_choice() -> None:
    t = table().assign(
        broken=[False, np.nan, True, False, np.nan], broken_reason=["", "", "all road", "", ""]
    )
    ch = {**choice(), "broken": {"gamma=2": "all sky", "alpha=0.9": "ignored: the table said it first"}}
    assert facts(t, ch).broken == {"alpha=0.9": "all road", "gamma=2": "all sky"}


def test_the_total_is_never_below_the_table() -> None:
    assert facts(total_candidates=11).total == 11
    assert facts(total_candidates=2).total == 5
    assert facts(ch={**choice(), "total": 7}).total == 7


def test_config_from_a_model_dump() -> None:
    class Model:
        def model_dump(self, mode: str) -> dict[str, Any]:
            assert mode == "json"
            return CONFIG

    assert facts(config=Model()).config == CONFIG


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns=["f_miou", "sweep"]), "results table: missing column(s) sweep, f_miou"),
        (lambda t: t.assign(candidate_id=["a", "b", "a", "c", "c"]), "candidate_id repeats ['a', 'c']"),
        (lambda t: t.assign(status="running"), f"status holds ['running']; expected one of {list(STATUSES)}"),
        (lambda t: t.assign(f_miou="high"), "column f_miou holds values that are not numbers"),
        (lambda t: t.assign(true_miou=[0.1, "x", 0.2, 0.3, 0.4]), "column true_miou holds values that"),
    ],
)
def test_tables_the_project_does_not_write_are_refused(change: Any, message: str) -> None:
    with pytest.raises(SelectionError, match=re.escape(message)):
        facts(change(table()))


def test_choices_and_configs_the_project_does_not_write_are_refused() -> None:
    with pytest.raises(SelectionError, match="choice must be a mapping, got list"):
        facts(ch=[])
    broken = choice()
    del broken["trim_rule"], broken["mode"]
    with pytest.raises(SelectionError, match=re.escape("choice: missing key(s) mode, trim_rule")):
        facts(ch=broken)
    broken = choice()
    del broken["per_sweep"]["gamma"]["untrimmed_pick"]
    with pytest.raises(SelectionError, match="choice: per_sweep.gamma lacks untrimmed_pick"):
        facts(ch=broken)
    with pytest.raises(SelectionError, match="config must be a mapping or a pydantic model, got str"):
        facts(config="tiny")
    with pytest.raises(SelectionError, match="config: not plain JSON"):
        facts(config={"seed": {1, 2}})
    with pytest.raises(SelectionError, match="class_names: 2 names given, the choice has num_classes 3"):
        facts(class_names=["road", "sky"])
    with pytest.raises(SelectionError, match=re.escape("sweep table alpha: missing column(s) picked")):
        facts(sweeps={"alpha": sweep_table().drop(columns="picked")})


def test_sweep_tables_are_kept_by_group() -> None:
    f = facts(sweeps={"alpha": sweep_table().set_index("candidate_id", drop=False)})
    assert list(f.sweeps) == ["alpha"] and isinstance(f.sweeps["alpha"].index, pd.RangeIndex)
    assert f.sweeps["alpha"]["candidate_id"].tolist() == IDS[:3]


def test_no_true_miou_column_or_no_value_means_no_audit() -> None:
    assert not facts(table().drop(columns="true_miou")).has_true
    assert not facts(table().assign(true_miou=math.nan)).has_true
