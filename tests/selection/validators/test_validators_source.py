"""Source-val mIoU (selection.validators.source): the recorded scalar, checked to be a fraction."""

from __future__ import annotations

import math

import pytest

from selection.errors import SelectionError
from selection.validators import source_val_miou
from selection.validators.source import SCALAR


def test_reads_the_recorded_scalar():
    assert SCALAR == "source_val_miou"  # the evidence writer's key: renaming it breaks stored files
    assert source_val_miou({"source_val_miou": 0.42}) == 0.42
    assert source_val_miou({"source_val_miou": 0.42, "dev": 3.0}) == 0.42  # other scalars are ignored


@pytest.mark.parametrize("value", [0.0, 1.0, 0, 1])
def test_the_ends_of_the_unit_interval_are_fractions(value):
    assert source_val_miou({SCALAR: value}) == float(value)
    assert isinstance(source_val_miou({SCALAR: value}), float)


def test_nan_means_not_measured_and_passes_through():
    assert math.isnan(source_val_miou({SCALAR: float("nan")}))


def test_a_missing_scalar_says_where_it_comes_from():
    with pytest.raises(SelectionError, match=r"no 'source_val_miou' recorded \(is data.source_val set\?\)"):
        source_val_miou({})


@pytest.mark.parametrize("value", [42.0, -0.01, 1.0000001, float("inf"), -float("inf")])
def test_a_value_outside_zero_one_is_refused(value):
    # a percentage (42.0) instead of a fraction is the mistake this guards against
    with pytest.raises(SelectionError, match=r"must be a fraction in \[0, 1\]"):
        source_val_miou({SCALAR: value})
