"""PairwiseAgreement: a batched update counts its images; merge leaves read-only parts untouched."""

from __future__ import annotations

import numpy as np
import pytest
from selection_naive import naive_agreement, random_stacks

from selection.fusion.majority import FusionAccumulator, PairwiseAgreement


def test_a_batched_update_counts_every_image_like_the_fusion_accumulator():
    rng = np.random.default_rng(3)
    batch = np.stack(random_stacks(rng, 3, 4, 5, shape=(6, 7)), axis=1)  # (n=3, B=4, H, W)
    pw = PairwiseAgreement(3, 5)
    pw.update(batch)
    fa = FusionAccumulator(3, 5)
    fa.update(batch)
    assert pw.images == fa.images == 4
    one_by_one = PairwiseAgreement(3, 5)
    for b in range(batch.shape[1]):
        one_by_one.update(batch[:, b])
    assert one_by_one.images == 4
    np.testing.assert_array_equal(pw.matrix(), one_by_one.matrix())


def test_merge_leaves_read_only_parts_untouched():
    rng = np.random.default_rng(4)
    stacks = random_stacks(rng, 3, 4, 5)
    parts = [PairwiseAgreement(3, 5), PairwiseAgreement(3, 5)]
    for k, s in enumerate(stacks):
        parts[k % 2].update(s)
    arrays = [(p.hist, p.inter) for p in parts]
    before = [(h.copy(), i.copy()) for h, i in arrays]
    for hist, inter in arrays:  # what ray.get hands back: arrays over an immutable buffer
        hist.setflags(write=False)
        inter.setflags(write=False)
    merged = parts[0].merge(parts[1])
    assert merged.images == 4
    np.testing.assert_allclose(merged.matrix(), naive_agreement(stacks, 5))
    for (hist, inter), (hist0, inter0) in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(hist, hist0)
        np.testing.assert_array_equal(inter, inter0)


def test_pairwise_subset_of_pairs():
    rng = np.random.default_rng(5)
    stacks = random_stacks(rng, 4, 3, 3)
    pw = PairwiseAgreement(4, 3, pairs=[(2, 0)])
    for s in stacks:
        pw.update(s)
    m = pw.matrix()
    ref = naive_agreement(stacks, 3)
    assert m[0, 2] == pytest.approx(ref[0, 2]) and m[2, 0] == pytest.approx(ref[0, 2])
    assert np.isnan(m[0, 1]) and np.isnan(m[1, 3])
