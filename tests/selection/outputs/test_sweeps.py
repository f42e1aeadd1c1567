"""Per-sweep tables: rows in sweep order, every validator's value and rank, the rule's, the truth's."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from selection import SelectionError, build_candidates, parse_rule
from selection.outputs.sweeps import sweep_table
from selection.tables import GroupScores

NAN = math.nan


def test_known_answer():
    cands = build_candidates({"alpha": 0.5, "k": 3}, {"alpha": [0.1, 0.5, 0.9]}, "sweep")
    ids = ("alpha=0.1", "default", "alpha=0.9")
    table = pd.DataFrame(
        {"f_miou": [0.8, 0.9, 0.9], "f_miou_trimmed": [NAN, 0.9, 0.7], "mean_entropy": [0.5, 0.2, 0.1]},
        index=pd.Index(ids, name="candidate_id"),
    )
    gs = GroupScores("alpha", ids, {}, {}, {}, degenerate=("alpha=0.1",), pick="default", table=table)
    rule = parse_rule({"rank_average": ["f_miou", "mean_entropy"]})
    out = sweep_table(gs, cands, rule, {"alpha=0.1": 0.4, "default": 0.3, "alpha=0.9": 0.5})
    assert out.columns.tolist() == [
        "candidate_id", "alpha", "is_default", "degenerate", "picked", "rule", "rule__rank",
        "f_miou", "f_miou__rank", "f_miou_trimmed", "f_miou_trimmed__rank",
        "mean_entropy", "mean_entropy__rank", "true_miou", "true_miou__rank",
    ]  # fmt: skip
    assert out["candidate_id"].tolist() == list(ids) and out["alpha"].tolist() == [0.1, 0.5, 0.9]
    assert out["is_default"].tolist() == [False, True, False] and out["degenerate"].tolist() == [
        True,
        False,
        False,
    ]
    assert out["picked"].tolist() == [False, True, False]
    assert out["f_miou__rank"].tolist() == [3.0, 1.0, 1.0]  # ties share the best rank
    np.testing.assert_array_equal(out["f_miou_trimmed__rank"], [NAN, 1.0, 2.0])  # NaN has no rank
    assert out["mean_entropy__rank"].tolist() == [3.0, 2.0, 1.0]  # lower is better
    # mean ranks (1 = worst): f_miou 1, 2.5, 2.5; entropy 1, 2, 3 -> 1, 2.25, 2.75
    assert out["rule"].tolist() == [1.0, 2.25, 2.75] and out["rule__rank"].tolist() == [3.0, 2.0, 1.0]
    assert out["true_miou__rank"].tolist() == [2.0, 3.0, 1.0]
    assert "true_miou" not in sweep_table(gs, cands, rule).columns  # no labels, no truth columns
    with pytest.raises(SelectionError, match="no validator table"):
        sweep_table(GroupScores("alpha", ids, {}, {}, {}), cands, rule)
