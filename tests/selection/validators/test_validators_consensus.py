"""EnsV (soft vote) and leave-neighbours-out F-mIoU against loop references and hand answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from validators_naive import naive_ensv, naive_scored_against_vote

from selection.errors import SelectionError
from selection.validators import (
    LeaveNeighboursOut,
    SoftVoteAccumulator,
    ensv,
    f_miou_lno,
    leave_out,
    neighbours,
)


def _probs(rng, shape):
    x = rng.random(shape) ** 2
    return (x / x.sum(axis=-1, keepdims=True)).astype(np.float16)


# ----------------------------------------------------------------------------------------------
# EnsV


@pytest.mark.parametrize("n,npix,c", [(2, 1, 2), (3, 17, 7), (5, 101, 19), (4, 60, 3)])
def test_ensv_against_naive(n, npix, c):
    p = _probs(np.random.default_rng(n * npix + c), (n, npix, c))
    np.testing.assert_allclose(ensv(p), naive_ensv(p), rtol=0, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("chunk", [1, 7, 33, 64])
def test_ensv_chunks_merge_exactly(chunk):
    p = _probs(np.random.default_rng(9), (3, 4, 50, 6))  # (n, images, pixels, C)
    whole = SoftVoteAccumulator(3, 6)
    whole.update(p)
    flat = p.reshape(3, -1, 6)
    parts = []
    for a in range(0, flat.shape[1], chunk):
        acc = SoftVoteAccumulator(3, 6)
        acc.update(flat[:, a : a + chunk])
        parts.append(acc)
    merged = parts[0]
    for q in parts[1:]:
        merged = merged.merge(q)
    np.testing.assert_array_equal(merged.confusion, whole.confusion)
    np.testing.assert_array_equal(merged.scores, whole.scores)


def test_ensv_known_answer_with_a_tie():
    # 3 candidates, 4 pixels, 3 classes; pixel 2's summed probabilities tie between classes 0 and 1
    p = np.array(
        [
            [[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.5, 0.5, 0.0], [0.2, 0.2, 0.6]],  # labels 0 1 0(tie) 2
            [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.25, 0.75, 0.0], [0.1, 0.1, 0.8]],  # labels 0 0 1 2
            [[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.75, 0.25, 0.0], [0.3, 0.4, 0.3]],  # labels 1 1 0 1
        ],
        dtype=np.float16,
    )
    # ensemble: 0, 1, 0 (tie -> lowest class), 2
    np.testing.assert_allclose(ensv(p), [1.0, 4 / 9, 5 / 18], rtol=1e-12)


def test_ensv_errors():
    with pytest.raises(SelectionError, match="at least 2"):
        ensv(np.ones((1, 3, 2)) / 2)
    acc = SoftVoteAccumulator(2, 3)
    with pytest.raises(SelectionError, match=r"expected \(2, ..., 3\)"):
        acc.update(np.ones((3, 4, 3)))
    with pytest.raises(SelectionError, match="no pixels"):
        _ = acc.scores


# ----------------------------------------------------------------------------------------------
# neighbours and leave-out


@dataclass(frozen=True)
class _Cand:
    """What neighbours() reads of a candidate: its id, parameters and vote groups."""

    id: str
    params: dict
    sweeps: tuple


def _sweep():
    # The default sits in both sweeps; listed out of value order, as neighbours() must sort.
    return [
        _Cand("alpha=0.9", {"alpha": 0.9, "gamma": 8.0}, ("alpha",)),
        _Cand("default", {"alpha": 0.5, "gamma": 8.0}, ("alpha", "gamma")),
        _Cand("alpha=0.1", {"alpha": 0.1, "gamma": 8.0}, ("alpha",)),
        _Cand("alpha=0.3", {"alpha": 0.3, "gamma": 8.0}, ("alpha",)),
        _Cand("alpha=0.7", {"alpha": 0.7, "gamma": 8.0}, ("alpha",)),
        _Cand("gamma=16", {"alpha": 0.5, "gamma": 16.0}, ("gamma",)),
        _Cand("gamma=2", {"alpha": 0.5, "gamma": 2.0}, ("gamma",)),
    ]


def _grid(alphas, gammas):
    return [
        _Cand(f"alpha={a},gamma={g}", {"alpha": float(a), "gamma": float(g)}, ("grid",))
        for a in alphas
        for g in gammas
    ]


def test_sweep_neighbours_and_ends():
    nb = neighbours(_sweep(), "alpha")
    assert nb == {
        "alpha=0.1": ("alpha=0.3",),
        "alpha=0.3": ("alpha=0.1", "default"),
        "default": ("alpha=0.3", "alpha=0.7"),
        "alpha=0.7": ("default", "alpha=0.9"),
        "alpha=0.9": ("alpha=0.7",),
    }
    assert neighbours(_sweep(), "gamma") == {
        "gamma=2": ("default",),
        "default": ("gamma=2", "gamma=16"),
        "gamma=16": ("default",),
    }


def test_grid_neighbours_are_one_step_along_one_parameter():
    cands = _grid([0.1, 0.5], [2, 8, 16])
    nb = neighbours(cands, "grid")
    assert set(nb["alpha=0.1,gamma=8"]) == {"alpha=0.5,gamma=8", "alpha=0.1,gamma=2", "alpha=0.1,gamma=16"}
    assert set(nb["alpha=0.5,gamma=2"]) == {"alpha=0.1,gamma=2", "alpha=0.5,gamma=8"}
    with pytest.raises(SelectionError, match="no vote group"):
        neighbours(cands, "alpha")


def test_leave_out_modes():
    ids5 = ["a", "b", "c", "d", "e"]
    line = {
        x: tuple(y for y in (ids5[i - 1] if i else None, ids5[i + 1] if i < 4 else None) if y)
        for i, x in enumerate(ids5)
    }
    out, mode = leave_out(ids5, line)
    assert mode == "neighbours" and out == [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4]]
    for n in (2, 3, 4):  # someone would keep fewer than 2 voters: the whole group leaves one out
        ids = ids5[:n]
        nb = {
            x: tuple(y for y in (ids[i - 1] if i else None, ids[i + 1] if i < n - 1 else None) if y)
            for i, x in enumerate(ids)
        }
        out, mode = leave_out(ids, nb)
        assert mode == "one" and out == [[j] for j in range(n)]
    with pytest.raises(SelectionError, match="at least 2"):
        leave_out(["a"], {})


@pytest.mark.parametrize("n,c,shape", [(3, 2, (3, 5)), (5, 4, (7, 3)), (6, 19, (4, 9))])
def test_f_miou_lno_against_naive(n, c, shape):
    rng = np.random.default_rng(n + c)
    stacks = []
    for _ in range(3):
        base = rng.integers(0, c, shape)
        s = np.where(rng.random((n, *shape)) < 0.6, base, rng.integers(0, c, (n, *shape))).astype(np.uint8)
        s[rng.random(s.shape) < 0.1] = 255
        stacks.append(s)
    ids = [f"c{k}" for k in range(n)]
    nb = {x: tuple(ids[k] for k in (i - 1, i + 1) if 0 <= k < n) for i, x in enumerate(ids)}
    exclude, _ = leave_out(ids, nb)
    got = f_miou_lno(stacks, c, exclude)
    want = [
        naive_scored_against_vote(stacks, j, [k for k in range(n) if k not in exclude[j]], c)
        for j in range(n)
    ]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, equal_nan=True)


def test_f_miou_lno_known_answer_three_candidates():
    stack = np.array([[0, 0, 1, 1], [0, 1, 1, 255], [0, 0, 0, 1]], dtype=np.uint8).reshape(3, 1, 4)
    exclude, mode = leave_out(["a", "b", "c"], {"a": ("b",), "b": ("a", "c"), "c": ("b",)})
    assert mode == "one"
    np.testing.assert_allclose(f_miou_lno([stack], 2, exclude), [1.0, 0.25, 0.5])


def test_lno_merge_equals_one_pass():
    rng = np.random.default_rng(3)
    stacks = [rng.integers(0, 4, (5, 6, 6)).astype(np.uint8) for _ in range(4)]
    exclude, _ = leave_out(list("abcde"), {"c": ("b", "d")})
    a = LeaveNeighboursOut(5, 4, exclude)
    b = LeaveNeighboursOut(5, 4, exclude)
    for k, s in enumerate(stacks):
        (a if k < 2 else b).update(s)
    np.testing.assert_array_equal(a.merge(b).scores, f_miou_lno(stacks, 4, exclude))
    with pytest.raises(SelectionError, match="different voters"):
        a.merge(LeaveNeighboursOut(5, 4, [[j] for j in range(5)]))


def test_lno_errors():
    with pytest.raises(SelectionError, match="leaves nobody to vote"):
        LeaveNeighboursOut(2, 3, [[0, 1], [1]], names=["x", "y"])
    with pytest.raises(SelectionError, match="no images"):
        f_miou_lno([], 3, [[0], [1]])


def test_ensv_of_two_candidates_at_one_pixel():
    # the ensemble is the argmax of the summed probabilities: 0.4 + 0.9 for class 1
    p = np.array([[[0.6, 0.4]], [[0.1, 0.9]]])
    np.testing.assert_array_equal(ensv(p), [0.0, 1.0])


def test_ensv_averages_only_classes_present_in_either_labelling():
    # 3 classes, class 2 appears nowhere: the mean is over classes 0 and 1 only
    p = np.array([[[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]], [[0.8, 0.2, 0.0], [0.7, 0.3, 0.0]]])
    # ensemble 0, 1 (0.2 + 0.7 < 0.8 + 0.3); candidate 1 says 0, 0: class 0 1/2, class 1 0/1
    np.testing.assert_allclose(ensv(p), [1.0, 0.25])


def test_ensv_refuses_non_finite_probabilities():
    p = np.full((2, 3, 2), 0.5)
    p[1, 2, 0] = np.nan
    with pytest.raises(SelectionError, match="NaN or infinite"):
        ensv(p)


def test_soft_votes_of_other_candidates_do_not_merge():
    with pytest.raises(SelectionError, match="different candidates or classes"):
        SoftVoteAccumulator(2, 3).merge(SoftVoteAccumulator(3, 3))
    with pytest.raises(SelectionError, match="different candidates or classes"):
        SoftVoteAccumulator(2, 3).merge(SoftVoteAccumulator(2, 4))


def test_grid_neighbours_skip_a_parameter_that_does_not_vary():
    cands = _grid([0.5], [2, 8, 16])  # alpha is constant: only gamma steps count
    assert neighbours(cands, "grid") == {
        "alpha=0.5,gamma=2": ("alpha=0.5,gamma=8",),
        "alpha=0.5,gamma=8": ("alpha=0.5,gamma=2", "alpha=0.5,gamma=16"),
        "alpha=0.5,gamma=16": ("alpha=0.5,gamma=8",),
    }


def test_two_steps_or_a_diagonal_are_no_neighbours():
    nb = neighbours(_grid([0.1, 0.5, 0.9], [2, 8]), "grid")
    assert "alpha=0.9,gamma=2" not in nb["alpha=0.1,gamma=2"]  # two steps along alpha
    assert "alpha=0.5,gamma=8" not in nb["alpha=0.1,gamma=2"]  # one step along each
    assert set(nb["alpha=0.5,gamma=2"]) == {"alpha=0.1,gamma=2", "alpha=0.9,gamma=2", "alpha=0.5,gamma=8"}


def test_leave_out_ignores_neighbours_outside_the_group():
    out, mode = leave_out(["a", "b", "c", "d", "e"], {"c": ("b", "d", "zz")})
    assert mode == "neighbours" and out == [[0], [1], [1, 2, 3], [3], [4]]
    # a stricter minimum falls back to leave-one-out for the whole group
    out, mode = leave_out(["a", "b", "c", "d", "e"], {"c": ("b", "d")}, min_voters=3)
    assert mode == "one" and out == [[0], [1], [2], [3], [4]]


def test_two_candidates_are_each_scored_against_the_other():
    stack = np.array([[0, 0, 1, 1], [0, 1, 1, 1]], np.uint8).reshape(2, 1, 4)
    exclude, mode = leave_out(["a", "b"], {"a": ("b",), "b": ("a",)})
    assert mode == "one"
    # a vs b's labels: class 0 1/2, class 1 2/3; symmetric
    np.testing.assert_allclose(f_miou_lno([stack], 2, exclude), [(1 / 2 + 2 / 3) / 2] * 2)


def test_lno_refuses_a_stack_of_the_wrong_size():
    acc = LeaveNeighboursOut(3, 2, [[0], [1], [2]])
    with pytest.raises(SelectionError, match="image 'img7': expected a stack of 3 label maps"):
        acc.update(np.zeros((2, 4, 4), np.uint8), image_id="img7")
    with pytest.raises(SelectionError, match="exclude lists 2 candidates, expected 3"):
        LeaveNeighboursOut(3, 2, [[0], [1]])
