"""Scores computed outside the selection: their direction comes from the one registry, VALIDATORS."""

from __future__ import annotations

import pytest

from selection import VALIDATORS, ScoreValues, SelectionError
from selection.scores import direction


def test_one_registry_holds_every_score_the_outputs_name():
    # the names candidates.parquet has always used are the validators' names now
    assert VALIDATORS["mean_confidence"].higher_is_better and not VALIDATORS["mean_entropy"].higher_is_better
    assert {"f_miou", "f_miou_trimmed", "source_val_miou", "seed_agreement", "dev"} <= set(VALIDATORS)


def test_directions():
    assert direction("mean_entropy", {"a": 1.0}) is False
    assert direction("atc", {"a": 1.0}) is True
    assert direction("my_score", ScoreValues({"a": 1.0}, higher_is_better=False)) is False
    with pytest.raises(SelectionError, match="not a registered validator"):
        direction("my_score", {"a": 1.0})
