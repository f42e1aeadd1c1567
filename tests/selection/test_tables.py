"""The results table's guard on column names, and the JSON writer's plain types."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selection import SelectionError, build_candidates
from selection.tables import GroupScores, build_results_table, to_jsonable, write_json


def test_names_that_would_overwrite_result_columns_are_refused():
    cands = build_candidates({"alpha": 0.5, "status_ok": 1.0}, {"alpha": [0.1]}, "sweep")
    ids = tuple(c.id for c in cands)
    gs = GroupScores(
        "alpha", ids, dict.fromkeys(ids, 0.5), dict.fromkeys(ids, 0.5), {i: np.ones(2) for i in ids}
    )
    table = build_results_table(cands, {"alpha": gs}, extra_scores={"mean_entropy": {"default": 0.1}})
    assert table["mean_entropy"].tolist()[0] == 0.1 and np.isnan(table["mean_entropy"].tolist()[1])
    with pytest.raises(SelectionError, match=r"clash with result columns: \['seed_agreement'\]"):
        build_results_table(cands, {"alpha": gs}, extra_scores={"seed_agreement": {}})


def test_json_is_written_with_plain_types_and_nan_as_null(tmp_path):
    doc = {"a": np.float32(0.5), "b": float("nan"), "c": np.arange(3), "d": {2, 1}, "e": (np.bool_(True),)}
    assert to_jsonable(doc) == {"a": 0.5, "b": None, "c": [0, 1, 2], "d": [1, 2], "e": [True]}
    write_json(doc, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text()) == to_jsonable(doc)
