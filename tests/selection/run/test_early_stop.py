"""Label-free early stopping's decision, on hand-made validator tables with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from selection.errors import SelectionError
from selection.run.early_stop import decide

NAN = float("nan")


def _table(scores: dict[str, float], column: str = "f_miou") -> pd.DataFrame:
    return pd.DataFrame({column: list(scores.values())}, index=list(scores))


def test_bottom_half_of_a_sweep_stops_and_records_scores_and_ranks() -> None:
    # 4 candidates besides the default, keep 0.5: ceil(2) = 2 go on, and the default.
    t = _table({"a=1": 0.50, "a=2": 0.40, "default": 0.30, "a=4": 0.20, "a=5": 0.10})
    d = decide({"a": t}, "f_miou", 0.5, "default")
    assert d.stopped == ["a=4", "a=5"]
    assert [d.records[c].rank for c in t.index] == [1, 2, 3, 4, 5]
    assert d.records["a=4"].score == pytest.approx(0.20) and d.records["a=4"].f_miou == pytest.approx(0.20)
    assert not d.records["a=5"].kept and d.records["default"].kept


def test_keep_one_stops_nobody() -> None:
    t = _table({"x": 0.9, "default": 0.1, "y": 0.0})
    assert decide({"a": t}, "f_miou", 1.0, "default").stopped == []


def test_default_at_the_bottom_is_kept_without_taking_a_place() -> None:
    t = _table({"x": 0.9, "y": 0.8, "z": 0.7, "default": 0.1})
    d = decide({"a": t}, "f_miou", 0.5, "default")
    assert d.stopped == ["z"]  # x and y take the two places; the default goes on besides
    assert d.records["default"].kept and d.records["default"].rank == 4


def test_ties_at_the_cut_all_go_on() -> None:
    t = _table({"x": 0.9, "y": 0.5, "default": 0.5, "z": 0.5, "w": 0.1})
    # keep 0.4 of 5: 2 places (x, then default: ties go to the default first); y and z tie with it.
    assert decide({"a": t}, "f_miou", 0.4, "default").stopped == ["w"]


def test_nan_scores_rank_last_and_stop() -> None:
    t = _table({"x": NAN, "default": 0.3, "y": 0.6, "z": 0.2})
    d = decide({"a": t}, "f_miou", 0.5, "default")
    assert d.stopped == ["x"]  # y and z take the ceil(1.5) = 2 places; x (NaN) is last
    assert d.records["x"].rank == 4 and math.isnan(d.records["x"].score)


def test_lower_is_better_validator_is_oriented() -> None:
    # A lower-is-better validator (entropy-like): the rule negates it, so the highest value stops.
    from selection.validators import VALIDATORS

    name = next(n for n, s in VALIDATORS.items() if not s.higher_is_better)
    t = _table({"x": 0.1, "default": 0.2, "y": 0.9}, column=name)
    assert decide({"a": t}, name, 0.5, "default").stopped == ["y"]


def test_default_is_never_stopped_in_two_sweeps_and_each_sweep_is_cut_on_its_own() -> None:
    a = _table({"a=1": 0.9, "default": 0.1, "a=3": 0.5})
    b = _table({"b=1": 0.2, "default": 0.0, "b=3": 0.8})
    d = decide({"a": a, "b": b}, "f_miou", 1.0, "default")
    assert d.stopped == []
    d = decide({"a": a, "b": b}, "f_miou", 0.5, "default")  # ceil(0.5 * 2) = 1 place per sweep
    assert d.stopped == ["a=3", "b=1"]  # the default, at the bottom of both, goes on
    assert d.records["default"].kept


def test_a_candidate_in_two_groups_stops_only_if_it_is_below_the_cut_in_both() -> None:
    g1 = _table({"p": 0.9, "q": 0.1, "r": 0.2})
    g2 = _table({"p": 0.1, "q": 0.9, "r": 0.3})
    d = decide({"g1": g1, "g2": g2}, "f_miou", 0.3, None)  # ceil(0.9) = one place per group
    assert d.stopped == ["r"]
    assert d.records["q"].group == "g2" and d.records["q"].rank == 1


def test_rank_average_rule() -> None:
    # Ranks (1 = worst): f_miou x4 d3 y1 z2; f_miou_trimmed x1 d4 y2 z3 -> means x2.5 d3.5 y1.5 z2.5.
    t = pd.DataFrame(
        {"f_miou": [0.9, 0.5, 0.1, 0.2], "f_miou_trimmed": [0.1, 0.6, 0.2, 0.3]},
        index=["x", "default", "y", "z"],
    )
    d = decide({"a": t}, {"rank_average": ["f_miou", "f_miou_trimmed"]}, 0.5, "default")
    # ceil(1.5) = 2 places besides the default: x and z (tied at 2.5).
    assert d.stopped == ["y"]
    # One place (ceil(0.25 * 3)): x; z ties with x and goes on; never fewer than one besides the
    # default, so the group can still vote.
    d = decide({"a": t}, {"rank_average": ["f_miou", "f_miou_trimmed"]}, 0.25, "default")
    assert d.stopped == ["y"]
    d = decide({"a": _table({"default": 0.9, "x": 0.5, "y": 0.1})}, "f_miou", 0.01, "default")
    assert d.stopped == ["y"]


def test_bad_keep_is_refused_naming_the_field() -> None:
    with pytest.raises(SelectionError, match="selection.early_stop.keep"):
        decide({"a": _table({"x": 1.0})}, "f_miou", 0.0, None)


def test_decision_as_json() -> None:
    t = _table({"x": NAN, "default": 0.3, "y": 0.6})
    doc = decide({"a": t}, "f_miou", 0.5, "default").as_dict()
    assert doc["stopped"] == ["x"] and doc["candidates"]["x"]["score"] is None
