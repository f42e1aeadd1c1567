"""Subset selection and its record; sweep/grid candidates, ids, lines and field-naming errors."""

from __future__ import annotations

import json
import warnings

import pytest

from selection import (
    SelectionError,
    build_candidates,
    format_value,
    lines,
    load_subset,
    save_subset,
    select_subset,
    subset_hash,
    vote_groups,
)

POOL = [f"frankfurt_{i:06d}" for i in range(300)]


def test_subset_depends_on_the_set_and_seed_only():
    a = select_subset(POOL, 50, seed=3)
    b = select_subset(list(reversed(POOL)), 50, seed=3)
    assert a == b == sorted(a) and len(set(a)) == 50 and set(a) <= set(POOL)
    assert select_subset(POOL, 50, seed=4) != a


def test_subset_smaller_is_nested_in_larger():
    small, large = select_subset(POOL, 20, seed=1), select_subset(POOL, 120, seed=1)
    assert set(small) <= set(large)


def test_subset_size_errors_and_clipping():
    with pytest.raises(SelectionError, match="subset_size is 301 but .* only 300"):
        select_subset(POOL, 301, seed=0)
    with pytest.warns(UserWarning, match="using all 300"):
        assert select_subset(POOL, 500, seed=0, allow_smaller=True) == sorted(POOL)
    with pytest.raises(SelectionError, match="'x' appears more than once"):
        select_subset(["x", "y", "x"], 1, seed=0)
    with pytest.raises(SelectionError, match=">= 1"):
        select_subset(POOL, 0, seed=0)


def test_subset_record_round_trip_and_tamper_check(tmp_path):
    ids = select_subset(POOL, 10, seed=0)
    path = tmp_path / "run" / "subset.json"
    save_subset(path, ids, seed=0, dataset="cityscapes/train")
    assert load_subset(path) == ids
    doc = json.loads(path.read_text())
    assert doc["hash"] == subset_hash(ids) and doc["seed"] == 0 and doc["dataset"] == "cityscapes/train"
    assert [p.name for p in path.parent.iterdir()] == ["subset.json"]  # atomic: no temp left
    doc["image_ids"][0] = "munich_000000"
    path.write_text(json.dumps(doc))
    with pytest.raises(SelectionError, match="hash do not match"):
        load_subset(path)
    with pytest.raises(SelectionError, match="not found"):
        load_subset(tmp_path / "missing.json")


DEFAULTS = {"alpha": 0.5, "beta": 0.9, "gamma": 8.0, "k": 14}


def test_sweep_has_the_default_once_and_stable_ids():
    cands = build_candidates(DEFAULTS, {"alpha": [0.1, 0.5, 0.3], "k": [12, 14, 16]}, "sweep")
    ids = [c.id for c in cands]
    assert ids == ["default", "alpha=0.1", "alpha=0.3", "k=12", "k=16"]
    default = cands[0]
    assert default.is_default and default.sweeps == ("alpha", "k") and default.params == DEFAULTS
    assert cands[1].params == {**DEFAULTS, "alpha": 0.1} and cands[1].sweeps == ("alpha",)
    assert cands[1].varied == ("alpha",)
    again = build_candidates(DEFAULTS, {"alpha": [0.3, 0.5, 0.1], "k": [16, 12, 14]}, "sweep")
    assert [c.digest for c in again] == [c.digest for c in cands]
    assert vote_groups(cands) == {
        "alpha": ["alpha=0.1", "alpha=0.3", "default"],
        "k": ["k=12", "default", "k=16"],
    }


def test_sweep_adds_the_default_value_when_missing():
    cands = build_candidates(DEFAULTS, {"gamma": [4.0, 16.0]}, "sweep")
    assert vote_groups(cands) == {"gamma": ["gamma=4", "default", "gamma=16"]}


def test_grid_is_the_product():
    cands = build_candidates(DEFAULTS, {"gamma": [4.0, 8.0], "alpha": [0.3, 0.5, 0.7]}, "grid")
    assert len(cands) == 6 and len({c.id for c in cands}) == 6
    assert cands[0].id == "alpha=0.3,gamma=4" and all(c.sweeps == ("grid",) for c in cands)
    assert [c.is_default for c in cands].count(True) == 1
    ls = lines(cands)
    by_param = {p: [ln for ln in ls if ln.parameter == p] for p in ("alpha", "gamma")}
    assert len(by_param["alpha"]) == 2 and len(by_param["gamma"]) == 3
    assert by_param["alpha"][0].name == "alpha|gamma=4" and by_param["alpha"][0].values == (0.3, 0.5, 0.7)


@pytest.mark.parametrize(
    "params, mode, message",
    [
        ({"alpha": [0.1]}, "random", "selection.mode must be one of sweep, grid"),
        ({}, "grid", "selection.parameters is empty"),
        ({}, "sweep", "selection.parameters is empty"),
        ({"delta": [1.0]}, "sweep", "selection.parameters.delta: unknown parameter"),
        ({"alpha": []}, "grid", "selection.parameters.alpha is an empty list"),
        ({"alpha": [0.1, 0.1]}, "sweep", "selection.parameters.alpha lists a value twice"),
        ({"alpha": ["x"]}, "sweep", "selection.parameters.alpha holds 'x'"),
        ({"alpha": [float("nan")]}, "sweep", "not a finite number"),
        ({"alpha": [0.5]}, "sweep", "selection.parameters.alpha: the sweep holds only the default"),
    ],
)
def test_bad_set_ups_name_the_field(params, mode, message):
    with pytest.raises(ValueError, match=message):
        build_candidates(DEFAULTS, params, mode)


def test_format_value_is_unambiguous():
    assert format_value(8.0) == "8" and format_value(14) == "14" and format_value(0.3) == "0.3"
    assert format_value(0.1234567) != format_value(0.1234568)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert format_value(1e-5) == "1e-05"
