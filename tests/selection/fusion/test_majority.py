"""Vote and F-mIoU: hand-worked answers, naive references over odd chunkings, properties, bad inputs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from selection_naive import naive_agreement, naive_f_miou, naive_vote, random_stacks

from selection import SelectionError
from selection.fusion.majority import FusionAccumulator, PairwiseAgreement, f_miou, majority_vote

X = 255

# Three candidates, one 1x6 image, worked by hand (see the comments per pixel).
#  px:      0  1  2  3  4  5
A1 = [0, 0, 1, 2, X, 1]
B1 = [0, 1, 1, X, X, 2]
C1 = [0, 1, 2, X, X, 0]
#  fused:   0  1  1  2  X  X    (px3: one vote; px4: nobody votes; px5: three-way tie)
IMG1 = np.array([[A1], [B1], [C1]], dtype=np.uint8)
FUSED1 = np.array([[0, 1, 1, 2, X, X]], dtype=np.uint8)
# A: class0 1/2, class1 1/2, class2 1/1 -> 2/3.  B: 1, 1, 0 (abstains on px3: a miss) -> 2/3.
# C: 1, 1/2, 0/2 -> 1/2.
F1 = np.array([2 / 3, 2 / 3, 1 / 2])
# A second 1x2 image: A [2,2], B [2,2], C [0,2] -> fused [2,2].
IMG2 = np.array([[[2, 2]], [[2, 2]], [[0, 2]]], dtype=np.uint8)
# Summed over both: A 2/3; B (1 + 1 + 2/3)/3 = 8/9; C (1/2 + 1/2 + 1/4)/3 = 5/12.
F12 = np.array([2 / 3, 8 / 9, 5 / 12])


def test_vote_known_answer():
    assert np.array_equal(majority_vote(IMG1, 3), FUSED1)
    assert np.array_equal(majority_vote(torch.from_numpy(IMG1), 3).numpy(), FUSED1)  # tensor in, out
    assert np.array_equal(majority_vote(IMG1, 3, backend="torch").numpy(), FUSED1)


@pytest.mark.parametrize(
    "votes, expected",
    [
        ([0, 0, 1, 1, 2], X),  # two classes tie for the most votes
        ([0, 0, 1, 1, X], X),  # tie among the voters, one abstains
        ([0, 0, 1, X, X], 0),  # two abstentions do not outvote anything
        ([X, X, X, X, X], X),  # nobody votes
        ([3, X, X, X, X], 3),  # a single vote decides
        ([1, 2, 2, 1, 2], 2),
    ],
)
def test_vote_ties_and_abstentions(votes, expected):
    stack = np.array(votes, dtype=np.uint8).reshape(5, 1, 1)
    assert majority_vote(stack, 4)[0, 0] == expected


def test_f_miou_known_answer_one_image():
    np.testing.assert_allclose(f_miou([IMG1], 3), F1)


def test_absent_class_is_left_out_of_the_mean():
    # classes 3..6 never appear: same answer as with 3 classes, not diluted by zeros or NaN
    np.testing.assert_allclose(f_miou([IMG1], 7), F1)


def test_f_miou_sums_over_images_before_dividing():
    np.testing.assert_allclose(f_miou([IMG1, IMG2], 3), F12)
    per_image_mean = (f_miou([IMG1], 3) + f_miou([IMG2], 3)) / 2
    assert not np.allclose(per_image_mean, F12)  # B would get 5/6, not 8/9


def test_accumulator_parts_known_answer():
    acc = FusionAccumulator(3, 3, names=["A", "B", "C"])
    acc.update(IMG1, "img1")
    assert acc.undecided_pixels == 2
    assert acc.fused_counts.tolist() == [1, 2, 1]
    assert acc.abstained[1].tolist() == [0, 0, 1]  # B abstained on the pixel fused as 2
    np.testing.assert_array_equal(acc.confusion[0], [[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(acc.per_class_iou[2], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(acc.f_miou, F1)


def test_agreement_known_answer():
    acc = FusionAccumulator(3, 3)
    acc.update(IMG1)
    # A vs B over all 6 pixels: class0 1/2, class1 1/3, class2 0/2 -> 5/18
    assert acc.agreement[0, 1] == pytest.approx(5 / 18)
    np.testing.assert_allclose(np.diag(acc.agreement), 1.0)
    np.testing.assert_allclose(acc.agreement, naive_agreement([IMG1], 3))


@pytest.mark.parametrize("n", [2, 3, 5, 8, 17])
@pytest.mark.parametrize("num_classes", [1, 2, 5, 19])
def test_vote_matches_naive_reference(n, num_classes):
    rng = np.random.default_rng(n * 100 + num_classes)
    for stack in random_stacks(rng, n, 3, num_classes, shape=(4, 9)):
        ref = naive_vote(stack, num_classes)
        assert np.array_equal(majority_vote(stack, num_classes), ref)
        assert np.array_equal(majority_vote(stack, num_classes, backend="torch").numpy(), ref)


@pytest.mark.parametrize("chunk", [1, 3, 7, 33])
@pytest.mark.parametrize("n", [2, 3, 6])
def test_f_miou_matches_naive_over_odd_chunkings(chunk, n):
    rng = np.random.default_rng(chunk + 10 * n)
    num_classes = 5
    stacks = random_stacks(rng, n, 11, num_classes, shape=(3, 5))
    ref = naive_f_miou(stacks, num_classes)
    np.testing.assert_allclose(f_miou(stacks, num_classes), ref)
    parts = []
    for i in range(0, len(stacks), chunk):  # what parallel workers would hold, then merge
        acc = FusionAccumulator(n, num_classes)
        for s in stacks[i : i + chunk]:
            acc.update(s)
        parts.append(acc)
    total = parts[0]
    for p in parts[1:]:
        total.merge(p)
    np.testing.assert_allclose(total.f_miou, ref)
    np.testing.assert_allclose(total.agreement, naive_agreement(stacks, num_classes))
    assert total.images == len(stacks)


def test_non_voters_are_scored_against_the_voters_fusion():
    rng = np.random.default_rng(4)
    stacks = random_stacks(rng, 5, 4, 4)
    acc = FusionAccumulator(5, 4, voters=[0, 2, 3], pairwise=False)
    for s in stacks:
        acc.update(s)
    np.testing.assert_allclose(acc.f_miou, naive_f_miou(stacks, 4, voters=[0, 2, 3]))
    # a non-voter does not move the fusion: a wild candidate 1 changes only its own score
    wild = [s.copy() for s in stacks]
    for s in wild:
        s[1] = 3
    acc2 = FusionAccumulator(5, 4, voters=[0, 2, 3], pairwise=False)
    for s in wild:
        acc2.update(s)
    np.testing.assert_allclose(acc2.f_miou[[0, 2, 3, 4]], acc.f_miou[[0, 2, 3, 4]])


LABEL = st.sampled_from([0, 1, 2, 3, X])


@st.composite
def stacks_strategy(draw, min_n=2, max_n=6):
    n = draw(st.integers(min_n, max_n))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    flat = draw(st.lists(LABEL, min_size=k * n * h * w, max_size=k * n * h * w))
    arr = np.array(flat, dtype=np.uint8).reshape(k, n, h, w)
    return [arr[i] for i in range(k)]


@settings(max_examples=60, deadline=None)
@given(stacks_strategy(), st.randoms(use_true_random=False))
def test_permuting_candidates_permutes_scores(stacks, rnd):
    n = stacks[0].shape[0]
    perm = list(range(n))
    rnd.shuffle(perm)
    base = f_miou(stacks, 4)
    moved = f_miou([s[perm] for s in stacks], 4)
    np.testing.assert_allclose(moved, base[perm], equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(stacks_strategy())
def test_a_candidate_equal_to_the_fusion_scores_one(stacks):
    fused = [majority_vote(s, 4) for s in stacks]
    with_fusion = [np.concatenate([s, f[None]]) for s, f in zip(stacks, fused, strict=True)]
    # adding the fusion as a voter leaves the fusion unchanged ...
    for s, f in zip(with_fusion, fused, strict=True):
        assert np.array_equal(majority_vote(s, 4), f)
    score = f_miou(with_fusion, 4)[-1]
    if any((f != X).any() for f in fused):
        assert score == pytest.approx(1.0)
    else:
        assert np.isnan(score)  # nothing decided: F-mIoU undefined, reported as NaN


@settings(max_examples=80, deadline=None)
@given(stacks_strategy(max_n=5), st.data())
def test_adding_a_copy_of_a_candidate_never_lowers_its_score(stacks, data):
    n = stacks[0].shape[0]
    j = data.draw(st.integers(0, n - 1))
    copied = [np.concatenate([s, s[j : j + 1]]) for s in stacks]
    before = f_miou(stacks, 4)[j]
    after = f_miou(copied, 4)[j]
    if np.isnan(after):
        # Undefined, not lower: the copy turned every decided pixel into a tie (e.g. votes 0,1,0 ->
        # 0,1,0,1), so no pixel is decided at all. Only possible when j scored 0 before.
        assert all((majority_vote(s, 4) == X).all() for s in copied)
        assert np.isnan(before) or before == 0.0
        return
    if np.isnan(before):
        return  # nothing was decided before; any score after is an improvement
    assert after >= before - 1e-12


@settings(max_examples=40, deadline=None)
@given(stacks_strategy())
def test_scores_lie_in_unit_interval_and_match_naive(stacks):
    got = f_miou(stacks, 4)
    np.testing.assert_allclose(got, naive_f_miou(stacks, 4), equal_nan=True)
    finite = got[np.isfinite(got)]
    assert ((finite >= 0) & (finite <= 1)).all()


def test_fewer_than_two_candidates_fail():
    with pytest.raises(SelectionError, match="at least 2 candidates"):
        FusionAccumulator(1, 3)
    with pytest.raises(SelectionError, match="at least 2 candidates"):
        f_miou([np.zeros((1, 2, 2), np.uint8)], 3)


def test_label_out_of_range_names_candidate_and_image():
    stack = np.zeros((3, 2, 2), np.uint8)
    stack[2, 1, 0] = 7
    acc = FusionAccumulator(3, 5, names=["a", "b", "c"])
    with pytest.raises(SelectionError, match=r"candidate 'c' \(index 2\), image 'img9': label 7"):
        acc.update(stack, "img9")
    assert acc.images == 0 and acc.counts.sum() == 0  # a failed update leaves nothing behind
    with pytest.raises(SelectionError, match="candidate 'c'.*label 7"):
        FusionAccumulator(3, 5, names=["a", "b", "c"], backend="torch").update(
            torch.from_numpy(stack), "img9"
        )
    with pytest.raises(SelectionError, match="candidate 2.*label 7"):
        majority_vote(stack, 5)
    with pytest.raises(SelectionError, match="label 7"):
        PairwiseAgreement(3, 5).update(stack)


def test_wrong_candidate_count_dtype_and_classes():
    acc = FusionAccumulator(3, 5)
    with pytest.raises(SelectionError, match="image 'x': stack holds 2 candidates"):
        acc.update(np.zeros((2, 2, 2), np.uint8), "x")
    with pytest.raises(SelectionError, match="integer"):
        acc.update(np.zeros((3, 2, 2), np.float32))
    with pytest.raises(SelectionError, match="does not fit uint8"):
        acc.update(np.full((3, 2, 2), 300, np.int32))
    with pytest.raises(SelectionError, match="ignore_index"):
        FusionAccumulator(3, 5, ignore_index=2)
    with pytest.raises(SelectionError, match="different num_classes"):
        acc.merge(FusionAccumulator(3, 6))


def test_integer_maps_other_than_uint8_are_accepted():
    np.testing.assert_allclose(f_miou([IMG1.astype(np.int64)], 3), F1)


BENCH = Path(__file__).resolve().parents[3] / "bench"


def run_bench(name, argv, monkeypatch, capsys):
    """Run a bench script's main() in this process (no second torch import), return its stdout."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(sys, "argv", [name, *argv])
    assert mod.main() == 0
    return capsys.readouterr().out


def test_bench_vote_runs_and_reports_equal_scores(monkeypatch, capsys):
    argv = [
        "--images",
        "2",
        "--candidates",
        "3",
        "--height",
        "32",
        "--width",
        "48",
        "--repeats",
        "1",
        "--min-ratio",
        "0",
    ]
    report = json.loads(run_bench("bench_vote", argv, monkeypatch, capsys).splitlines()[0])
    assert report["scores_equal"] is True and report["max_abs_diff"] == 0


def test_gpu_vote_smoke_runs_on_cpu(monkeypatch, capsys):
    argv = ["--smoke", "--images", "2", "--candidates", "3", "--size", "32", "64", "--repeats", "1"]
    rec = json.loads(run_bench("gpu_vote", argv, monkeypatch, capsys).splitlines()[1])
    assert rec["equal_to_numpy_path"] is True and rec["n_candidates"] == 3 and rec["hw"] == [32, 64]
