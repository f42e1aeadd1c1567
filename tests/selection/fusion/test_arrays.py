"""The shared array helpers: IoU from counts, means over present classes, stacks to pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selection import SelectionError
from selection.fusion.arrays import (
    as_pixels,
    check_backend,
    describe_candidate,
    first_bad_candidate,
    images_in,
    iou_from_counts,
    is_torch,
    mean_over_present,
    to_numpy,
    use_torch,
)


def test_iou_from_counts_and_the_mean_over_present_classes():
    iou = iou_from_counts([2, 0, 0], [3, 1, 0], [4, 0, 0])  # unions 5, 1, 0
    np.testing.assert_allclose(iou, [0.4, 0.0, np.nan])
    assert mean_over_present(iou) == pytest.approx(0.2)
    assert np.isnan(mean_over_present([np.nan, np.nan]))
    np.testing.assert_allclose(mean_over_present([[1.0, np.nan], [0.5, 0.25]], axis=1), [1.0, 0.375])


def test_stacks_become_contiguous_uint8_pixels_and_batches_count_their_images():
    stack = np.arange(2 * 3 * 4 * 5, dtype=np.int32).reshape(2, 3, 4, 5) % 7
    p = as_pixels(stack, 2, None, None, None)
    assert p.dtype == np.uint8 and p.shape == (2, 60) and p.flags.c_contiguous
    assert images_in(stack.shape) == 3 and images_in((2, 4, 5)) == 1 and images_in((2, 2, 3, 4, 5)) == 6
    t = as_pixels(torch.from_numpy(stack), 2, None, None, None, backend="torch")
    assert is_torch(t) and np.array_equal(to_numpy(t), p) and to_numpy(p) is p


def test_the_backend_choice():
    assert not use_torch(np.zeros((2, 1)), None, "auto")
    assert not use_torch(torch.zeros(2, 1), None, "auto")  # a CPU tensor: numpy is faster there
    assert use_torch(np.zeros((2, 1)), "cuda", "auto") and use_torch(None, None, "torch")
    with pytest.raises(SelectionError, match="backend must be 'auto', 'numpy' or 'torch', got 'jax'"):
        check_backend("jax")


def test_bad_labels_are_found_and_named():
    p = np.array([[0, 1, 255], [0, 7, 1]], dtype=np.uint8)
    assert first_bad_candidate(p, 3, 255) == 1 and first_bad_candidate(p, 8, 255) is None
    assert describe_candidate(["a", "b"], 1, "img3") == "candidate 'b' (index 1), image 'img3'"
    assert describe_candidate(None, 0, None) == "candidate 0"
    with pytest.raises(SelectionError, match="candidate 1: label 300 does not fit uint8"):
        as_pixels(np.array([[1, 2], [300, 0]]), 2, None, None, None)
