"""The numpy back-end on its own: vote and counts on worked pixels, against the naive reference."""

from __future__ import annotations

import numpy as np
from selection_naive import naive_sums, naive_vote, random_stacks

from selection.fusion import numpy_backend as fusion_numpy
from selection.fusion.arrays import as_pixels

X = 255


def test_vote_and_counts_on_worked_pixels():
    # per pixel: a majority, a tie, one voter, nobody
    p = np.array([[1, 0, X, X], [1, 2, X, X], [0, X, 2, X]], dtype=np.uint8)
    fused = fusion_numpy.vote(p, X)
    assert fused.tolist() == [1, X, 2, X]
    counts, bad = fusion_numpy.counts(p, fused, 3, X)
    assert bad is None and counts.shape == (3, 4, 4)
    # candidate 2: said 0 where the fusion says 1 (row 1, col 0), said 2 where fused 2, abstained twice
    # on undecided pixels (row C, col C)
    assert counts[2, 1, 0] == 1 and counts[2, 2, 2] == 1 and counts[2, 3, 3] == 2
    p[1, 3] = 9
    assert fusion_numpy.counts(p, fusion_numpy.vote(p, X), 3, X)[1] == 1


def test_matches_the_naive_reference_and_pair_counts():
    rng = np.random.default_rng(2)
    for stack in random_stacks(rng, 5, 4, 4):
        p = as_pixels(stack, 5, None, None, None)
        assert np.array_equal(fusion_numpy.vote(p, X).reshape(stack.shape[1:]), naive_vote(stack, 4))
        counts, _ = fusion_numpy.counts(p, fusion_numpy.vote(p, X), 4, X)
        inter, union = naive_sums([stack], 4)
        got_inter = np.diagonal(counts[:, :4, :4], axis1=1, axis2=2)
        fused_total = counts[:, :4, :].sum(axis=2)  # every decided pixel of the class, abstentions too
        pred_total = counts[:, :4, :4].sum(axis=1)
        np.testing.assert_array_equal(got_inter, inter)
        np.testing.assert_array_equal(pred_total + fused_total - got_inter, union)
        hist = fusion_numpy.label_histogram(p)
        assert hist.shape == (5, 256) and (hist.sum(axis=1) == p.shape[1]).all()
        both = fusion_numpy.pair_intersections(p, [(0, 1), (2, 4)], 4)
        for row, (a, b) in zip(both, [(0, 1), (2, 4)], strict=True):
            assert row.tolist() == [int(((p[a] == c) & (p[b] == c)).sum()) for c in range(4)]
