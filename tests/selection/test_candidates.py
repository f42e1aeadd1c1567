"""Sweep/grid candidates, ids, lines and field-naming errors."""

from __future__ import annotations

import warnings

import pytest

from selection import build_candidates, format_value, lines, vote_groups

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


def test_candidates_from_the_project_config_are_valid_settings():
    from ray_jobs.config import load_job_config

    cfg = load_job_config(None)  # the embedded synthscape default
    cands = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    assert sum(c.is_default for c in cands) == 1
    for c in cands:
        assert cfg.with_parameters(c.params).parameters() == pytest.approx(c.params)
