"""Trimmed vote: the degenerate rule's known answers, and trimming end to end."""

from __future__ import annotations

import pytest
from selection_families import (
    degenerate_pair_family,
    true_miou,
)

from selection import run_selection
from selection.decision.trimming import TrimRule, explain_trim, find_degenerate
from selection.run import SelectionSpec

TABLE8 = {  # paper Table 8, F-mIoU per sweep: ordinary spread, nothing degenerate
    "alpha": [85.4, 92.4, 95.2, 83.5, 71.3],
    "gamma": [88.4, 93.9, 96.2, 91.8, 86.0],
    "lambda_i": [84.5, 92.9, 96.6, 91.5, 87.7],
    "lambda_cst": [95.8, 96.5, 94.8, 91.4, 83.6],
    "k": [91.1, 93.9, 89.6],
}


@pytest.mark.parametrize("sweep", sorted(TABLE8))
def test_paper_table8_flags_nothing(sweep):
    scores = {f"v{i}": s / 100 for i, s in enumerate(TABLE8[sweep])}
    assert find_degenerate(scores) == []


def test_trim_rule_known_answers():
    assert find_degenerate({"a": 0.92, "b": 0.73, "c": 0.73, "d": 0.08, "e": 0.08}) == ["d", "e"]
    split = explain_trim({"a": 0.92, "b": 0.73, "c": 0.73, "d": 0.08, "e": 0.08})
    assert split.gap == pytest.approx(0.65) and split.threshold == pytest.approx(0.2)
    assert find_degenerate({"a": 0.9, "b": 0.88, "c": 0.2}) == ["c"]
    assert find_degenerate({"a": 0.9, "b": 0.2}) == []  # too few to tell who is odd
    assert find_degenerate({"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.85}) == []  # 0.05 < min_gap
    assert find_degenerate({"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.85}, TrimRule(min_gap=0.01)) == ["d"]
    assert find_degenerate({"a": 0.9, "b": float("nan"), "c": 0.88, "d": 0.1}) == ["d"]
    # at most a minority: with half the group low, nobody is "the outlier"
    assert find_degenerate({"a": 0.9, "b": 0.9, "c": 0.1, "d": 0.1}) == []


def test_two_correlated_degenerates_are_trimmed_and_the_pick_restored(tmp_path):
    cands, uris, ids, maps, truth, roles = degenerate_pair_family(tmp_path)
    tm = true_miou(maps, truth, 5)
    res = run_selection(cands, uris, SelectionSpec(ids, 5, rule="f_miou_trimmed"), true_miou=tm)
    by_role = {r: cid for cid, r in roles.items()}
    info = res.choice.as_dict()["per_sweep"]["alpha"]
    assert sorted(res.choice.as_dict()["degenerate"]) == sorted([by_role["D1"], by_role["D2"]])
    assert info["untrimmed_pick"] == by_role["B"]  # the paper's vote is led astray ...
    assert info["candidate_id"] == by_role["A"]  # ... the trimmed vote finds the best
    assert res.choice.as_dict()["picks"]["alpha"]["f_miou"] == by_role["B"]
    # the trimmed vote does not rank the candidates it left out
    assert res.validators["alpha"].loc[[by_role["D1"], by_role["D2"]], "f_miou_trimmed"].isna().all()
    assert max(tm, key=tm.get) == by_role["A"]
    t = res.table.set_index("candidate_id")
    assert t.loc[by_role["D1"], "degenerate"] and not t.loc[by_role["A"], "degenerate"]
    assert t.loc[by_role["A"], "f_miou_trimmed"] > t.loc[by_role["A"], "f_miou"]
    audit = res.audit.set_index("score")
    assert audit.loc["f_miou_trimmed", "regret"] == 0 < audit.loc["f_miou", "regret"]
    assert any("degenerate" in n for n in res.notes)
    assert any(f"the paper's F-mIoU would pick {by_role['B']}" in n for n in res.notes)
    # windows holding a degenerate are not assessed for centre bias
    assert res.windows.set_index("window")["assessed"].tolist() == [False, True, False]
    # trimming off: the paper's pick stands, nobody is flagged
    plain = run_selection(cands, uris, SelectionSpec(ids, 5, trim_outliers=False, rule="f_miou_trimmed"))
    assert plain.choice.as_dict()["per_sweep"]["alpha"]["candidate_id"] == by_role["B"]
    assert (
        run_selection(cands, uris, SelectionSpec(ids, 5)).choice.as_dict()["per_sweep"]["alpha"][
            "candidate_id"
        ]
        == by_role["B"]
    )
    assert (
        plain.choice.as_dict()["degenerate"] == []
        and plain.choice.as_dict()["score_used"] == "f_miou_trimmed"
    )
