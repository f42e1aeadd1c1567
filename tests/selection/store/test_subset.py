"""The image subset and its record."""

from __future__ import annotations

import json

import pytest

from selection import SelectionError
from selection.store.subset import load_subset, save_subset, select_subset, subset_hash

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
