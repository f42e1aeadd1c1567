"""Centre-bias diagnostic: windows of a line, verdicts on constructed families, grid lines."""

from __future__ import annotations

import numpy as np
import pytest
from selection_families import (
    clear_winner_family,
    monotone_family,
    true_miou,
    write_family,
)

from selection import Line, build_candidates, run_selection
from selection.decision.centre_bias import windows_for_line
from selection.run import SelectionSpec


def _line(m):
    return Line("p", "p", "p", tuple(f"c{i}" for i in range(m)), tuple(float(i) for i in range(m)))


@pytest.mark.parametrize(
    "m, expected",
    [
        (4, []),
        (5, [(3, 0), (3, 1), (3, 2)]),  # windows of 3 and of m-2 coincide
        (6, [(3, 0), (3, 1), (3, 2), (3, 3)]),  # m-2 = 4 is even: no centre, skipped
        (7, [(3, s) for s in range(5)] + [(5, s) for s in range(3)]),
    ],
)
def test_windows_of_three_and_of_m_minus_two(m, expected):
    ws = windows_for_line(_line(m))
    assert [(w.size, w.start) for w in ws] == expected
    for w in ws:
        assert w.centre_id == f"c{w.start + w.size // 2}"


def test_monotone_family_is_centre_bound(tmp_path):
    cands, uris, ids, maps, truth = monotone_family(tmp_path)
    res = run_selection(cands, uris, SelectionSpec(ids, 2), true_miou=true_miou(maps, truth, 2))
    assert res.choice.as_dict()["centre_bound"] == ["alpha"]
    assert res.windows["picked_centre"].all() and len(res.windows) == 3
    assert res.choice.as_dict()["per_sweep"]["alpha"]["centre_bound"] is True
    assert res.table["centre_bound"].all()
    assert any("did not discriminate" in n for n in res.notes)
    assert "centre_bound" in res.summary_markdown()
    # the vote picks the grid's centre although the truth is candidate 0: regret equals the centre's
    audit = res.audit.set_index("score")
    assert audit.loc["f_miou", "regret"] == pytest.approx(audit.loc["centre", "regret"])
    assert audit.loc["f_miou", "regret"] > 0


def test_monotone_family_of_seven_uses_both_window_sizes(tmp_path):
    cands, uris, ids, _, _ = monotone_family(tmp_path, values=[0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8])
    res = run_selection(cands, uris, SelectionSpec(ids, 2))
    assert sorted(set(res.windows["size"])) == [3, 5] and len(res.windows) == 8
    assert res.choice.as_dict()["centre_bound"] == ["alpha"]


def test_clear_off_centre_winner_is_not_centre_bound(tmp_path):
    cands, uris, ids, maps, truth = clear_winner_family(tmp_path, winner_index=1)
    res = run_selection(cands, uris, SelectionSpec(ids, 4))
    assert res.choice.as_dict()["centre_bound"] == []
    assert res.choice.as_dict()["per_sweep"]["alpha"]["centre_bound"] is False
    assert not res.windows["picked_centre"].all()
    assert res.choice.as_dict()["per_sweep"]["alpha"]["candidate_id"] == "alpha=0.3"  # the clean one


def test_grid_lines_are_diagnosed_per_parameter(tmp_path):
    # 5 alphas x 2 gammas; maps drift with alpha only: every alpha line is centre-bound
    cands = build_candidates(
        {"alpha": 0.5, "gamma": 8.0}, {"alpha": [0.1, 0.3, 0.5, 0.7, 0.9], "gamma": [4.0, 8.0]}, "grid"
    )
    ids = ["i0", "i1"]
    rng = np.random.default_rng(0)
    maps = {}
    for c in cands:
        col = 10 + int(round(c.params["alpha"] * 15))
        base = np.ones((6, 40), np.uint8)
        base[:, :col] = 0
        maps[c.id] = [
            np.where(rng.random(base.shape) < 0.02 * c.params["gamma"] / 8, 1 - base, base).astype(np.uint8)
            for _ in ids
        ]
    uris = write_family(tmp_path, cands, maps, ids, 2)
    res = run_selection(cands, uris, SelectionSpec(ids, 2))
    assert res.choice.as_dict()["mode"] == "grid" and res.choice.as_dict()["centre_bound"] == ["alpha"]
    assert set(res.windows["line"]) == {"alpha|gamma=4", "alpha|gamma=8"}
    assert "gamma" not in res.choice.as_dict()["centre_bias"]  # 2 values: nothing to assess
