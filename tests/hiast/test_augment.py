"""Weak/strong views: shapes, determinism, label integrity, shared geometry."""

from __future__ import annotations

import numpy as np
import pytest

from hiast.augment import (
    STRONG_OPS,
    horizontal_flip,
    random_sized_crop,
    strong_view,
    weak_and_strong,
    weak_view,
)

H, W = 48, 96
OUT = (32, 64)


def _sample(seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    label = rng.choice(np.array([0, 3, 7, 255], np.uint8), size=(H, W))
    return image, label


def test_random_sized_crop_shapes_and_label_values() -> None:
    image, label = _sample()
    for seed in range(10):
        img, lab = random_sized_crop(image, label, np.random.default_rng(seed), (20, 40), OUT)
        assert img.shape == (*OUT, 3) and img.dtype == np.uint8
        assert lab.shape == OUT and lab.dtype == np.uint8
        # nearest resize: no id that was not in the input (no interpolated classes)
        assert set(np.unique(lab).tolist()) <= {0, 3, 7, 255}


def test_random_sized_crop_label_none_and_clipping() -> None:
    image, _ = _sample()
    # height range larger than the image: crop clipped to the whole height (and width)
    img, lab = random_sized_crop(image, None, np.random.default_rng(0), (100, 200), OUT)
    assert lab is None and img.shape == (*OUT, 3)


def test_full_crop_is_identity_when_sizes_match() -> None:
    image, label = _sample()
    # crop height H, width H·W/H = W -> the whole image, resized to its own size (no change)
    img, lab = random_sized_crop(image, label, np.random.default_rng(0), (H, H), (H, W))
    np.testing.assert_array_equal(img, image)
    np.testing.assert_array_equal(lab, label)


def test_crop_keeps_image_and_label_aligned() -> None:
    # The label is a function of the image (class = red // 64 on blocky data), so after a crop
    # with nearest resize on both, a label pixel must agree with the nearest image pixel.
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 4, (H // 8, W // 8)).astype(np.uint8)
    label = np.kron(blocks, np.ones((8, 8), np.uint8))
    image = np.repeat((label * 64 + 10)[..., None], 3, axis=2).astype(np.uint8)
    for seed in range(5):
        img, lab = random_sized_crop(image, label, np.random.default_rng(seed), (24, 48), OUT)
        # inside blocks (where bilinear cannot blend) image colour encodes the same class
        same = np.abs(img[..., 0].astype(int) - (lab.astype(int) * 64 + 10)) == 0
        assert same.mean() > 0.6


def test_determinism_per_seed() -> None:
    image, label = _sample()
    a = weak_and_strong(image, label, np.random.default_rng(7), (20, 40), OUT)
    b = weak_and_strong(image, label, np.random.default_rng(7), (20, 40), OUT)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    outs = {
        weak_and_strong(image, label, np.random.default_rng(s), (20, 40), OUT)[1].tobytes() for s in range(6)
    }
    assert len(outs) > 1


def test_flip_applied_to_image_and_label() -> None:
    image, label = _sample()
    img, lab = weak_view(image, label, np.random.default_rng(0), (H, H), (H, W), flip_p=1.0)
    np.testing.assert_array_equal(img, image[:, ::-1])
    np.testing.assert_array_equal(lab, label[:, ::-1])
    img, lab = weak_view(image, label, np.random.default_rng(0), (H, H), (H, W), flip_p=0.0)
    np.testing.assert_array_equal(img, image)
    np.testing.assert_array_equal(lab, label)
    fi, fl = horizontal_flip(image, label)
    assert fi.flags.c_contiguous and fl.flags.c_contiguous


def _eroded(mask: np.ndarray, r: int) -> np.ndarray:
    """Pixels whose whole (2r+1)² neighbourhood lies in mask."""
    h, w = mask.shape
    pad = np.pad(mask, r, constant_values=False)
    out = np.ones_like(mask)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out &= pad[dy : dy + h, dx : dx + w]
    return out


def test_strong_view_shares_geometry_with_weak_view() -> None:
    # Left half one colour / class 1, right half another / class 2. Colour ops are pointwise (blur
    # only reaches a few pixels), so away from the class boundary every pixel of a class has the
    # same strong colour: the strong view lines up with the weak view's label map.
    image = np.zeros((H, W, 3), np.uint8)
    image[:, : W // 2] = (200, 40, 90)
    image[:, W // 2 :] = (30, 160, 220)
    label = np.zeros((H, W), np.uint8)
    label[:, : W // 2] = 1
    label[:, W // 2 :] = 2
    checked = 0
    for seed in range(12):
        weak, strong, lab = weak_and_strong(image, label, np.random.default_rng(seed), (24, 40), OUT, p=1.0)
        assert strong.shape == weak.shape == (*OUT, 3)
        for c in (1, 2):
            inner = _eroded(lab == c, 7)
            if inner.any():
                checked += 1
                assert (weak[inner] == weak[inner][0]).all()
                assert (strong[inner] == strong[inner][0]).all()
    assert checked >= 12


def test_strong_view_ops_and_probabilities() -> None:
    image, _ = _sample()
    # p = 0 or n_ops = 0: unchanged
    np.testing.assert_array_equal(strong_view(image, np.random.default_rng(0), p=0.0), image)
    np.testing.assert_array_equal(strong_view(image, np.random.default_rng(0), n_ops=0), image)
    # every op runs and returns uint8 RGB of the same size
    assert len(STRONG_OPS) == 8
    rng = np.random.default_rng(0)
    from PIL import Image

    for name, op in STRONG_OPS:
        out = np.asarray(op(Image.fromarray(image), rng))
        assert out.shape == image.shape and out.dtype == np.uint8, name
        if name == "greyscale":
            assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    out = strong_view(image, np.random.default_rng(3), n_ops=8, p=1.0)
    assert out.shape == image.shape and out.dtype == np.uint8 and out.flags.writeable
    assert not np.array_equal(out, image)


def test_validation() -> None:
    image, label = _sample()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="uint8"):
        random_sized_crop(image.astype(np.float32), label, rng, (20, 40), OUT)
    with pytest.raises(ValueError, match="label"):
        random_sized_crop(image, label[:10], rng, (20, 40), OUT)
    with pytest.raises(ValueError, match="uint8"):
        random_sized_crop(image, label.astype(np.int64), rng, (20, 40), OUT)
    with pytest.raises(ValueError, match="height_range"):
        random_sized_crop(image, label, rng, (40, 20), OUT)
    with pytest.raises(ValueError, match="out_size"):
        random_sized_crop(image, label, rng, (20, 40), (0, 64))
    with pytest.raises(ValueError, match="n_ops"):
        strong_view(image, rng, n_ops=9)
    with pytest.raises(ValueError, match="p must"):
        strong_view(image, rng, p=1.5)
