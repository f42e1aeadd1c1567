"""SelectionResult: the artefacts, written atomically and readable."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from selection_families import (
    SWEEP_CLASSES,
    sweep_setup,
)

from selection import run_selection
from selection.run import SelectionSpec

C = SWEEP_CLASSES


def test_artefacts_are_written_atomically_and_valid(tmp_path):
    cands, uris, ids, tm = sweep_setup(tmp_path / "preds")
    res = run_selection(cands, uris, SelectionSpec(ids, C), true_miou=tm)
    paths = res.write(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["candidates.parquet", "windows.parquet", "audit.parquet", "choice.json", "subset.json", "summary.md"]
        + ["sweeps"]
    )
    # one ranking table per sweep, one row per candidate of the sweep, in sweep order
    assert sorted(p.name for p in (tmp_path / "out" / "sweeps").iterdir()) == [
        "alpha.parquet",
        "gamma.parquet",
    ]
    alpha = pq.read_table(paths["sweep:alpha"]).to_pandas()
    assert alpha["candidate_id"].tolist() == list(res.validators["alpha"].index)
    assert alpha["alpha"].tolist() == sorted(alpha["alpha"])
    for col in (
        "rule",
        "rule__rank",
        "f_miou",
        "f_miou__rank",
        "f_miou_lno__rank",
        "true_miou",
        "true_miou__rank",
    ):
        assert col in alpha.columns, col
    assert alpha.loc[alpha["picked"], "candidate_id"].tolist() == [
        res.choice.as_dict()["per_sweep"]["alpha"]["candidate_id"]
    ]
    assert alpha.loc[alpha["picked"], "rule__rank"].tolist() == [1.0]
    text = (tmp_path / "out" / "choice.json").read_text()
    assert "NaN" not in text
    choice = json.loads(text)
    assert choice["parameters"] == res.choice.as_dict()["parameters"]
    assert choice["subset"]["size"] == len(ids)
    back = pq.read_table(paths["candidates"]).to_pandas()
    assert back["candidate_id"].tolist() == res.table["candidate_id"].tolist()
    assert json.loads((tmp_path / "out" / "subset.json").read_text())["image_ids"] == ids
