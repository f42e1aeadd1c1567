"""The broken-candidate guard: each kind of evidence flags what it should, a candidate that merely
disagrees with the others is not flagged, and a broken candidate is never picked."""

from __future__ import annotations

import numpy as np
import pytest
from validator_family import C, family

from selection import run_selection
from selection.decision.guard import GuardRule, broken_reasons, class_shares
from selection.errors import SelectionError
from selection.run import SelectionSpec

IDS = ["a", "b", "c", "d"]
# Four candidates over 4 classes: healthy ones spread their pixels.
HEALTHY = np.array([0.4, 0.3, 0.2, 0.1])


def shares(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=float)


def test_class_shares_from_a_confusion() -> None:
    conf = np.zeros((2, 3, 3), np.int64)
    conf[0] = [[5, 1, 0], [0, 3, 0], [0, 0, 1]]  # candidate 0 predicts 5, 4, 1 pixels of classes 0..2
    assert class_shares(conf)[0].tolist() == [0.5, 0.4, 0.1]
    assert class_shares(conf)[1].tolist() == [0.0, 0.0, 0.0]  # no pixels: zeros, not NaN
    with pytest.raises(SelectionError, match=r"\(n, C, C\)"):
        class_shares(np.zeros((2, 3)))


def test_healthy_and_merely_different_candidates_are_not_broken() -> None:
    # "d" disagrees (another mix of the same classes): that is not being broken.
    s = shares(HEALTHY, HEALTHY, HEALTHY, [0.1, 0.2, 0.3, 0.4])
    assert broken_reasons(IDS, s, {"a": 0.6, "b": 0.58, "c": 0.61, "d": 0.55}) == {}


def test_one_class_swallowing_the_image() -> None:
    s = shares(HEALTHY, HEALTHY, HEALTHY, [0.95, 0.05, 0.0, 0.0])
    out = broken_reasons(IDS, s)
    assert list(out) == ["d"] and "class 0 takes 95% of its pixels (group median 40%)" in out["d"]


def test_a_class_every_candidate_predicts_a_lot_cannot_swallow() -> None:
    # Class 0 is most of every image here: a candidate at 95% is not broken by it.
    base = [0.8, 0.1, 0.05, 0.05]
    assert broken_reasons(IDS, shares(base, base, base, [0.95, 0.03, 0.01, 0.01])) == {}


def test_common_classes_vanishing() -> None:
    s = shares(HEALTHY, HEALTHY, HEALTHY, [0.7, 0.3, 0.0, 0.0])  # loses 2 of the 4 common classes
    out = broken_reasons(IDS, s)
    assert list(out) == ["d"] and "2 of the group's 4 common classes vanish (2, 3)" in out["d"]
    one = shares(HEALTHY, HEALTHY, HEALTHY, [0.5, 0.3, 0.2, 0.0])  # loses 1 of 4: below half
    assert broken_reasons(IDS, one) == {}


def test_source_val_collapse_and_unknown_values() -> None:
    s = shares(HEALTHY, HEALTHY, HEALTHY, HEALTHY)
    out = broken_reasons(IDS, s, {"a": 0.6, "b": 0.58, "c": 0.61, "d": 0.2})
    assert list(out) == ["d"] and "source-val mIoU 0.200 < 0.5 x the group median 0.590" in out["d"]
    # NaN (no source-val) judges nobody on it.
    assert broken_reasons(IDS, s, {"a": np.nan, "b": np.nan, "c": np.nan, "d": 0.2}) == {}


def test_rule_checks_its_thresholds() -> None:
    with pytest.raises(SelectionError, match="source_ratio"):
        GuardRule(source_ratio=0)
    with pytest.raises(SelectionError, match="vanish_share"):
        GuardRule(vanish_share=0.5, present_share=0.01)
    assert "source-val mIoU < 0.5 x the group median" in GuardRule().describe()


def test_broken_in_one_group_is_picked_in_none(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    cands, preds, evidence, ids, _ = family(tmp_path)
    real = broken_reasons

    def only_in_gamma(group_ids, shares, source=None, rule=GuardRule()):  # noqa: B008
        found = real(group_ids, shares, None, rule)
        return {**found, "default": "test: broken in gamma"} if "gamma=2" in group_ids else found

    monkeypatch.setattr("selection.run.group_scoring.broken_reasons", only_in_gamma)
    res = run_selection(cands, preds, SelectionSpec(ids, C), evidence_uris=evidence)
    for g, picks in res.choice.as_dict()["picks"].items():
        assert "default" not in picks.values(), g  # alpha too, where it was not judged broken
    assert res.table.set_index("candidate_id").loc["default", "broken"]
