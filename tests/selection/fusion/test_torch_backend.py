"""The torch back-end: the same counts as numpy, batches exact."""

from __future__ import annotations

import numpy as np
import torch
from selection_naive import random_stacks

from selection.fusion.majority import FusionAccumulator, f_miou


def test_torch_backend_gives_identical_counts_and_batches_are_exact():
    rng = np.random.default_rng(3)
    stacks = random_stacks(rng, 7, 6, 19, shape=(16, 24))
    ref = FusionAccumulator(7, 19)
    for s in stacks:
        ref.update(s)
    tor = FusionAccumulator(7, 19, backend="torch")
    for s in stacks:
        tor.update(s)
    batched = FusionAccumulator(7, 19, backend="torch")
    batched.update(torch.from_numpy(np.stack(stacks, axis=1)))  # (n, B, H, W): six images at once
    np_batched = FusionAccumulator(7, 19)
    np_batched.update(np.stack(stacks, axis=1))
    for acc in (tor, batched, np_batched):
        np.testing.assert_array_equal(acc.counts, ref.counts)
        np.testing.assert_allclose(acc.agreement, ref.agreement)
    assert batched.images == 6
    np.testing.assert_allclose(f_miou(stacks, 19, backend="torch"), ref.f_miou)
    np.testing.assert_allclose(f_miou(stacks, 19, device="cpu"), ref.f_miou)  # numpy on CPU
