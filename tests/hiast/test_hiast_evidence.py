"""hiast.evidence: the sampled-pixel, labelled and mixed passes agree with hiast.predict's own outputs."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from hiast.config import load_config
from hiast.data import build_dataset, normalize
from hiast.data.base import DatasetError, Sample, SegDataset
from hiast.evidence import predict_labelled_with_pixels, predict_mixed, predict_with_pixels
from hiast.models import build_model, segment
from hiast.predict import predict_labels, predict_probabilities

TINY = {
    "data.synthscape.image_size": [32, 64],
    "data.synthscape.n_source_train": 4,
    "data.synthscape.n_target_train": 5,
    "data.synthscape.n_source_val": 3,
    "data.synthscape.n_target_val": 2,
    "model.width": 8,
}


@pytest.fixture(scope="module")
def cfg():
    return load_config(None, TINY)


@pytest.fixture(scope="module")
def model(cfg):
    torch.manual_seed(0)
    return build_model(cfg.model, cfg.data.num_classes).eval()


def _pixels(image_id, shape):
    rng = np.random.default_rng([zlib.crc32(image_id.encode()), *shape])
    return np.sort(rng.choice(shape[0] * shape[1], 20, replace=False))


@pytest.mark.parametrize("size", [None, (16, 40)])
def test_pixels_pass_matches_predict(cfg, model, size):
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    ids = target.ids[:3][::-1]
    seen = []

    def pixels(image_id, shape):
        seen.append((image_id, shape))
        return _pixels(image_id, shape)

    out = list(predict_with_pixels(model, target, ids, pixels, size=size, batch_size=2))
    labels = list(predict_labels(model, target, ids, size=size, batch_size=2))
    probs = list(predict_probabilities(model, target, ids, size=size, batch_size=2))
    expected_shape = size or (32, 64)
    assert [o[0] for o in out] == ids and [s for s in seen] == [(i, tuple(expected_shape)) for i in ids]
    for (sid, lab, at), (_, ref_lab), (_, ref_p) in zip(out, labels, probs, strict=True):
        assert lab.dtype == np.uint8 and lab.shape == tuple(expected_shape)
        np.testing.assert_array_equal(lab, ref_lab)
        idx = _pixels(sid, lab.shape)
        assert at.dtype == np.float32 and at.shape == (20, cfg.data.num_classes)
        np.testing.assert_array_equal(at, ref_p.reshape(ref_p.shape[0], -1)[:, idx].T.numpy())


@pytest.mark.parametrize("size", [None, (16, 40)])
def test_labelled_pass_resizes_truth_like_evaluate(cfg, model, size):
    source = build_dataset(cfg.data.source_val, cfg.data)
    out = list(predict_labelled_with_pixels(model, source, None, _pixels, size=size, batch_size=2))
    assert [o[0] for o in out] == source.ids
    for sid, pred, truth, at, truth_at in out:
        raw = source[source.index_of(sid)].label
        assert truth.shape == pred.shape == tuple(size or raw.shape)
        if size is None:
            np.testing.assert_array_equal(truth, raw)
        assert set(np.unique(truth)) <= set(np.unique(raw))  # nearest neighbour: no new labels
        np.testing.assert_array_equal(truth_at, truth.reshape(-1)[_pixels(sid, pred.shape)])
        assert at.shape == (20, cfg.data.num_classes)
    unlabeled = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    with pytest.raises(DatasetError, match="has no labels"):
        next(predict_labelled_with_pixels(model, unlabeled, None, _pixels))


def test_mixed_pass(cfg, model):
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    a, b = target.ids[0], target.ids[1]
    # an image mixed with itself is itself
    ((_, _, same),) = predict_mixed(model, target, [(a, a)], 0.55)
    np.testing.assert_array_equal(same, next(predict_labels(model, target, [a]))[1])
    got = list(predict_mixed(model, target, [(a, b), (b, a)], 0.55, batch_size=1))
    assert [(x, y) for x, y, _ in got] == [(a, b), (b, a)]
    ia, ib = (target[target.index_of(i)].image.astype(np.float32) for i in (a, b))
    mix = np.rint(0.55 * ia + 0.45 * ib).astype(np.uint8)
    with torch.no_grad():
        want = segment(model, normalize(mix[None])).argmax(1)[0].numpy()
    np.testing.assert_array_equal(got[0][2], want)
    assert not np.array_equal(got[0][2], got[1][2])
    with pytest.raises(ValueError, match="mix weight"):
        next(predict_mixed(model, target, [(a, b)], 1.0))


class _Sizes(SegDataset):
    """Two images of different sizes, in memory."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.images = {
            "big": rng.integers(0, 255, (32, 48, 3), dtype=np.uint8),
            "small": rng.integers(0, 255, (16, 24, 3), dtype=np.uint8),
        }
        self.ids = sorted(self.images)
        self.num_classes, self.has_labels, self.name = 19, False, "sizes"

    def load(self, i):
        return Sample(self.ids[i], self.images[self.ids[i]], None)


def test_mixed_pass_resizes_b_to_a(model):
    ds = _Sizes()
    (_, _, small_first), (_, _, big_first) = predict_mixed(
        model, ds, [("small", "big"), ("big", "small")], 0.6
    )
    assert small_first.shape == (16, 24) and big_first.shape == (32, 48)
    ((_, _, sized),) = predict_mixed(model, ds, [("small", "big")], 0.6, size=(8, 16))
    assert sized.shape == (8, 16)


def test_bad_pixel_indices_name_the_image(cfg, model):
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    with pytest.raises(ValueError, match=f"image '{target.ids[0]}': pixel indices must lie in 0..2047"):
        next(predict_with_pixels(model, target, target.ids[:1], lambda i, s: np.array([0, 2048])))
    with pytest.raises(ValueError, match="1-D integer"):
        next(predict_with_pixels(model, target, target.ids[:1], lambda i, s: np.array([[0.5]])))
