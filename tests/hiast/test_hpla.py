"""HPLA (Algorithm 2, Eq. 9-10): class index, hard classes, sampling, copy-paste."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hiast.hpla import ClassIndex, HardAwareCopyPaste, hard_classes, sampling_probabilities


# ---------------------------------------------------------------- ClassIndex
def _labels() -> list[np.ndarray]:
    return [
        np.array([[0, 0], [255, 1]], np.uint8),
        np.array([[255, 255], [255, 255]], np.uint8),
        np.array([[1, 3], [3, 255]], np.uint8),
    ]


def test_class_index_from_labels() -> None:
    idx = ClassIndex.from_labels(_labels(), num_classes=5)
    assert idx.num_images == 3
    np.testing.assert_array_equal(idx.images_with(0), [0])
    np.testing.assert_array_equal(idx.images_with(1), [0, 2])
    np.testing.assert_array_equal(idx.images_with(2), [])
    np.testing.assert_array_equal(idx.images_with(3), [2])
    np.testing.assert_array_equal(idx.present, [True, True, False, True, False])
    assert idx.images_with(1).dtype == np.int64


def test_class_index_round_trip_json() -> None:
    idx = ClassIndex.from_labels(_labels(), num_classes=5)
    d = json.loads(json.dumps(idx.to_dict()))
    back = ClassIndex.from_dict(d)
    assert back == idx
    np.testing.assert_array_equal(back.present, idx.present)
    for c in range(5):
        np.testing.assert_array_equal(back.images_with(c), idx.images_with(c))


def test_class_index_validation() -> None:
    with pytest.raises(ValueError, match="outside"):
        ClassIndex.from_labels([np.array([[0, 7]], np.uint8)], num_classes=5)
    with pytest.raises(ValueError, match="integer"):
        ClassIndex.from_labels([np.array([[0.0, 1.0]])], num_classes=5)
    idx = ClassIndex.from_labels(_labels(), num_classes=5)
    with pytest.raises(ValueError):
        idx.images_with(5)
    with pytest.raises(ValueError, match="missing"):
        ClassIndex.from_dict({"num_classes": 5})
    with pytest.raises(ValueError, match="indices"):
        ClassIndex(2, 1, [np.array([0]), np.array([3])])


# ---------------------------------------------------------------- Eq. 9
def test_hard_classes_ascending_stable() -> None:
    theta = np.array([0.9, 0.6, 0.8, 0.6, 0.95])
    # ascending: 0.6 (class 1), 0.6 (class 3, tie -> after 1), 0.8 (2), 0.9 (0), 0.95 (4)
    np.testing.assert_array_equal(hard_classes(theta, 2), [1, 3])
    np.testing.assert_array_equal(hard_classes(theta, 3), [1, 3, 2])
    np.testing.assert_array_equal(hard_classes(theta, 10), [1, 3, 2, 0, 4])
    np.testing.assert_array_equal(hard_classes(theta, 0), [])
    # Only present classes are eligible: class 1 absent -> [3, 2].
    present = np.array([True, False, True, True, True])
    np.testing.assert_array_equal(hard_classes(theta, 2, present), [3, 2])
    assert hard_classes(theta, 2).dtype == np.int64


def test_hard_classes_validation() -> None:
    with pytest.raises(ValueError):
        hard_classes(np.array([0.5, 1.5]), 1)
    with pytest.raises(ValueError):
        hard_classes(np.array([0.5, 0.6]), -1)
    with pytest.raises(ValueError):
        hard_classes(np.array([0.5, 0.6]), 1, present=np.array([1, 0]))


# ---------------------------------------------------------------- Eq. 10
def test_sampling_probabilities_by_hand() -> None:
    theta = np.array([0.9, 0.6, 0.8, 0.95])
    # 1 - θ = [0.1, 0.4, 0.2, 0.05], sum 0.75 -> [0.1/0.75, 0.4/0.75, 0.2/0.75, 0.05/0.75]
    r = sampling_probabilities(theta, np.ones(4, bool))
    np.testing.assert_allclose(r, [0.13333333333, 0.53333333333, 0.26666666667, 0.06666666667], atol=1e-10)
    # class 1 not drawable: [0.1, 0, 0.2, 0.05] / 0.35
    r = sampling_probabilities(theta, np.array([True, False, True, True]))
    np.testing.assert_allclose(r, [0.28571428571, 0.0, 0.57142857143, 0.14285714286], atol=1e-10)
    assert r[1] == 0.0


def test_sampling_probabilities_fallbacks() -> None:
    # every drawable class at θ = 1: uniform over drawable
    r = sampling_probabilities(np.array([1.0, 0.5, 1.0]), np.array([True, False, True]))
    np.testing.assert_array_equal(r, [0.5, 0.0, 0.5])
    # nothing drawable: all zeros
    r = sampling_probabilities(np.array([0.3, 0.5]), np.array([False, False]))
    np.testing.assert_array_equal(r, [0.0, 0.0])


# ---------------------------------------------------------------- copy-paste
def _three_by_three():
    # current sample: class 0 and ignored only
    cur_img = np.zeros((3, 3, 3), np.uint8)
    cur_lab = np.array([[0, 0, 255], [0, 255, 0], [0, 0, 0]], np.uint8)
    # donor: pixel (i, j) has colour 10 · (3i + j + 1) on every channel
    don_img = np.repeat((10 * np.arange(1, 10, dtype=np.uint8)).reshape(3, 3, 1), 3, axis=2)
    don_lab = np.array([[1, 2, 255], [3, 1, 0], [2, 2, 1]], np.uint8)
    return cur_img, cur_lab, don_img, don_lab


def test_paste_by_hand_3x3() -> None:
    cur_img, cur_lab, don_img, don_lab = _three_by_three()
    index = ClassIndex.from_labels([cur_lab, don_lab], num_classes=4)
    # θ: hard classes with k = 2 are the two lowest: class 1 (0.5) and class 2 (0.6).
    theta = np.array([0.95, 0.5, 0.6, 0.9])
    hpla = HardAwareCopyPaste(theta, k=2, class_index=index, num_classes=4)
    np.testing.assert_array_equal(hpla.hard, [1, 2])
    store = {0: (cur_img, cur_lab), 1: (don_img, don_lab)}
    calls = []

    def fetch(i: int):
        calls.append(i)
        return store[i]

    for seed in range(20):
        img, lab, info = hpla(cur_img, cur_lab, np.random.default_rng(seed), fetch, self_index=0)
        # Whatever class is drawn, the donor is image 1 (class 0 is also in image 0 = self,
        # excluded because image 1 has it too).
        assert info["donor"] == 1
        # Donor pixels of classes {1, 2}: (0,0)=1, (0,1)=2, (1,1)=1, (2,0)=2, (2,1)=2, (2,2)=1.
        expected_lab = np.array([[1, 2, 255], [0, 1, 0], [2, 2, 1]], np.uint8)
        # colours 10·(3i+j+1) at those positions: 10, 20, 50, 70, 80, 90; zeros elsewhere.
        expected_img = np.array([[10, 20, 0], [0, 50, 0], [70, 80, 90]], np.uint8)
        np.testing.assert_array_equal(lab, expected_lab)
        np.testing.assert_array_equal(img[..., 0], expected_img)
        np.testing.assert_array_equal(img[..., 2], expected_img)
        assert info["pasted_pixels"] == 6
    assert set(calls) == {1}
    # inputs untouched
    assert (cur_img == 0).all()
    np.testing.assert_array_equal(cur_lab, _three_by_three()[1])


def test_absent_class_never_drawn() -> None:
    # Class 2 is in no pseudo-label; give it the lowest threshold (it would dominate r).
    labels = [np.array([[0, 1]], np.uint8), np.array([[1, 3]], np.uint8), np.array([[0, 255]], np.uint8)]
    index = ClassIndex.from_labels(labels, num_classes=4)
    theta = np.array([0.9, 0.7, 0.05, 0.8])
    hpla = HardAwareCopyPaste(theta, k=2, class_index=index, num_classes=4)
    assert hpla.probabilities[2] == 0.0
    # Hard classes restricted to present ones: 1 (0.7), 3 (0.8); not the absent class 2.
    np.testing.assert_array_equal(hpla.hard, [1, 3])
    rng = np.random.default_rng(1234)
    img = np.zeros((1, 2, 3), np.uint8)
    lab = np.array([[0, 0]], np.uint8)
    counts = np.zeros(4, int)
    for _ in range(3000):
        _, _, info = hpla(img, lab, rng, lambda i: (img, labels[i]))
        counts[info["class"]] += 1
    assert counts[2] == 0
    # r = [0.1, 0.3, 0, 0.2] / 0.6 = [1/6, 1/2, 0, 1/3]; 3000 draws, loose 5-sigma-ish bounds.
    np.testing.assert_allclose(counts / 3000, [1 / 6, 1 / 2, 0, 1 / 3], atol=0.05)


def test_unrestricted_hard_classes_follow_eq9() -> None:
    labels = [np.array([[0, 1]], np.uint8)]
    index = ClassIndex.from_labels(labels, num_classes=3)
    hpla = HardAwareCopyPaste(
        np.array([0.9, 0.7, 0.05]), k=2, class_index=index, num_classes=3, restrict_hard_to_present=False
    )
    np.testing.assert_array_equal(hpla.hard, [2, 1])


def test_nothing_drawable_is_noop() -> None:
    index = ClassIndex.from_labels([np.full((2, 2), 255, np.uint8)], num_classes=3)
    hpla = HardAwareCopyPaste(np.array([0.9, 0.5, 0.6]), k=2, class_index=index, num_classes=3)
    img = np.full((2, 2, 3), 7, np.uint8)
    lab = np.full((2, 2), 255, np.uint8)

    def fetch(i: int):
        raise AssertionError("must not fetch")

    out_img, out_lab, info = hpla(img, lab, np.random.default_rng(0), fetch)
    assert info == {"class": None, "donor": None, "pasted_pixels": 0}
    np.testing.assert_array_equal(out_img, img)
    assert out_img is not img and out_lab is not lab


def _random_set(n: int, rng: np.random.Generator):
    imgs = [rng.integers(0, 256, (8, 10, 3), dtype=np.uint8) for _ in range(n)]
    labs = [rng.choice(np.array([0, 1, 2, 3, 4, 255], np.uint8), size=(8, 10)) for _ in range(n)]
    return imgs, labs


def test_deterministic_for_a_seed() -> None:
    imgs, labs = _random_set(6, np.random.default_rng(5))
    index = ClassIndex.from_labels(labs, num_classes=5)
    theta = np.array([0.95, 0.6, 0.7, 0.8, 0.9])
    hpla = HardAwareCopyPaste(theta, k=3, class_index=index, num_classes=5)

    def fetch(i: int):
        return imgs[i], labs[i]

    runs = []
    for _ in range(2):
        rng = np.random.default_rng(42)
        runs.append([hpla(imgs[t], labs[t], rng, fetch, self_index=t) for t in range(6)])
    for (i1, l1, f1), (i2, l2, f2) in zip(*runs, strict=True):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(l1, l2)
        assert f1 == f2
    # A donor never equals self here (every class is in several images).
    for t, (_, _, info) in enumerate(runs[0]):
        assert info["donor"] != t


def test_donor_of_other_size_is_resized() -> None:
    cur_img = np.zeros((3, 4, 3), np.uint8)
    cur_lab = np.zeros((3, 4), np.uint8)
    # 6x8 donor: left half class 1, right half class 2
    don_lab = np.zeros((6, 8), np.uint8)
    don_lab[:, :4] = 1
    don_lab[:, 4:] = 2
    don_img = np.where(don_lab[..., None] == 1, 100, 200).astype(np.uint8).repeat(3, axis=2)
    index = ClassIndex.from_labels([cur_lab, don_lab], num_classes=3)
    hpla = HardAwareCopyPaste(np.array([0.9, 0.5, 0.95]), k=1, class_index=index, num_classes=3)
    rng = np.random.default_rng(0)
    seen = False
    for _ in range(20):
        img, lab, info = hpla(cur_img, cur_lab, rng, lambda i: (don_img, don_lab), self_index=0)
        assert img.shape == (3, 4, 3) and lab.shape == (3, 4)
        assert set(np.unique(lab).tolist()) <= {0, 1}  # nearest: no new ids; only hard class 1 pasted
        if info["donor"] == 1:
            seen = True
            np.testing.assert_array_equal(lab, [[1, 1, 0, 0]] * 3)
            # PIL's bilinear downscale antialiases: column 1 mixes in some of the class-2 colour.
            assert (img[:, 0] == 100).all() and (img[:, 2:] == 0).all()
            assert ((img[:, 1] >= 100) & (img[:, 1] < 200)).all()
            assert info["pasted_pixels"] == 6
    assert seen


def test_copy_paste_validation() -> None:
    index = ClassIndex.from_labels([np.zeros((2, 2), np.uint8)], num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        HardAwareCopyPaste(np.array([0.5, 0.5]), k=1, class_index=index, num_classes=3)
    hpla = HardAwareCopyPaste(np.array([0.5, 0.6, 0.7]), k=1, class_index=index, num_classes=3)
    with pytest.raises(ValueError, match="image"):
        hpla(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), np.random.default_rng(0), None)
    with pytest.raises(ValueError, match="label shape"):
        hpla(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2), np.uint8), np.random.default_rng(0), None)
