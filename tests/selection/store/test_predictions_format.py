"""The predictions format's label check, shared by the writer and the reader."""

from __future__ import annotations

import numpy as np

from selection.store.predictions_format import PREDICTIONS_SCHEMA, label_problem


def test_label_problem_names_the_first_invalid_label():
    ok = np.array([[0, 1], [255, 2]], dtype=np.uint8)
    assert label_problem(ok, 3, 255) is None
    bad = np.array([[0, 7], [9, 2]], dtype=np.uint8)
    assert label_problem(bad, 3, 255) == "label 7 is neither a class (0..2) nor the ignore index 255"
    assert PREDICTIONS_SCHEMA.names == ["image_id", "height", "width", "labels"]
