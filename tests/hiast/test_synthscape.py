"""synthscape: the embedded procedural benchmark (hiast/data/synthscape.py) and its dispatch."""

from __future__ import annotations

import numpy as np
import pytest

from hiast.config import ConfigError, load_config
from hiast.data import build_dataset
from hiast.data.synthscape import (
    _SOURCE_RGB,
    _TARGET_RGB,
    PERSON,
    POLE,
    ROAD,
    SIDEWALK,
    SIGN,
    SYNTHSCAPE_CLASSES,
    SynthscapeDataset,
)

SIZE = (64, 128)


def _samples(
    domain: str, n: int, *, shift: float = 1.0, seed: int = 0, split: str = "train", **knobs
) -> list:
    ds = SynthscapeDataset(domain, split, n, SIZE, shift, seed, **knobs)
    return [ds[i] for i in range(n)]


def _class_freq(samples: list) -> np.ndarray:
    counts = np.bincount(np.concatenate([s.label.ravel() for s in samples]), minlength=256)
    return counts / counts.sum()


def _class_mean_rgb(samples: list, cls: int) -> np.ndarray:
    return np.concatenate([s.image[s.label == cls] for s in samples]).astype(np.float64).mean(0)


def _within_region_gradient(samples: list) -> float:
    """Mean |horizontal colour step| between neighbours of the same class: texture, blur, noise."""
    steps = []
    for s in samples:
        img = s.image.astype(np.float64)
        same = s.label[:, 1:] == s.label[:, :-1]
        steps.append(np.abs(np.diff(img, axis=1))[same].mean())
    return float(np.mean(steps))


# ---------------------------------------------------------------- determinism
@pytest.mark.parametrize("domain", ["source", "target"])
def test_same_seed_same_images_and_labels(domain: str) -> None:
    # Two separate datasets (no shared cache): everything comes from (seed, domain, split, index).
    a = _samples(domain, 6, seed=3)
    b = _samples(domain, 6, seed=3)
    for x, y in zip(a, b, strict=True):
        assert x.id == y.id
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.label, y.label)
        assert x.image.dtype == np.uint8 and x.image.shape == (*SIZE, 3)
        assert x.label.dtype == np.uint8 and x.label.shape == SIZE


def test_different_seed_split_or_index_differ() -> None:
    a = _samples("target", 4, seed=0)
    b = _samples("target", 4, seed=1)
    val = _samples("target", 4, seed=0, split="val")
    for x, y, v in zip(a, b, val, strict=True):
        assert not np.array_equal(x.label, y.label)
        assert not np.array_equal(x.image, y.image)
        assert not np.array_equal(x.label, v.label)
    # Images within one split differ from each other too.
    assert not np.array_equal(a[0].label, a[1].label)


def test_order_of_access_does_not_matter() -> None:
    fwd = SynthscapeDataset("target", "train", 5, SIZE, 1.0, 0)
    rev = SynthscapeDataset("target", "train", 5, SIZE, 1.0, 0)
    first = [fwd[i].image for i in range(5)]
    last = [rev[i].image for i in reversed(range(5))][::-1]
    for x, y in zip(first, last, strict=True):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- classes
def test_only_the_nine_classes_and_all_of_them() -> None:
    samples = _samples("source", 30) + _samples("target", 30)
    seen = set(np.unique(np.concatenate([s.label.ravel() for s in samples])).tolist())
    assert seen == set(SYNTHSCAPE_CLASSES)  # no ignore (255), no other trainId, none missing
    assert len(SYNTHSCAPE_CLASSES) == 9


@pytest.mark.parametrize("domain", ["source", "target"])
def test_small_classes_present_but_rare(domain: str) -> None:
    samples = _samples(domain, 50)
    freq = _class_freq(samples)
    for cls in (POLE, SIGN, PERSON):
        assert 0 < freq[cls] < 0.05, (cls, freq[cls])
        # Present in a fair share of images, not in a single outlier.
        assert sum(bool((s.label == cls).any()) for s in samples) >= 10, cls
    # ...and rarer than every large class.
    large = [c for c in SYNTHSCAPE_CLASSES if c not in (POLE, SIGN, PERSON)]
    assert max(freq[[POLE, SIGN, PERSON]]) < min(freq[large])


# ---------------------------------------------------------------- the camera gap
def test_target_images_differ_from_source_but_layout_distribution_is_shared() -> None:
    src = _samples("source", 60)
    tgt = _samples("target", 60, shift=1.0)
    # Class frequencies (the layout distribution) agree within sampling noise...
    f_src, f_tgt = _class_freq(src), _class_freq(tgt)
    assert np.abs(f_src - f_tgt).max() < 0.03, (f_src, f_tgt)
    # ...while the colours of a class differ clearly between the domains.
    gaps = [np.abs(_class_mean_rgb(src, c) - _class_mean_rgb(tgt, c)).max() for c in SYNTHSCAPE_CLASSES]
    assert np.median(gaps) > 30, gaps
    # Target texture, blur and noise: neighbouring pixels of one region are no longer flat.
    assert _within_region_gradient(tgt) > 5 * max(_within_region_gradient(src), 0.5)


def test_layout_does_not_depend_on_the_camera_gap() -> None:
    a = _samples("target", 5, shift=0.0)
    b = _samples("target", 5, shift=2.0)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.label, y.label)
        assert not np.array_equal(x.image, y.image)


def test_zero_shift_target_is_rendered_like_the_source() -> None:
    src = _samples("source", 40)
    t0 = _samples("target", 40, shift=0.0)
    t1 = _samples("target", 40, shift=1.0)
    for c in SYNTHSCAPE_CLASSES:
        m0 = _class_mean_rgb(t0, c)
        # Clean flat colours of the renderer palette (per-instance jitter of sd 12 only).
        assert np.abs(m0 - np.array(_SOURCE_RGB[c])).max() < 12, (c, m0)
        assert np.abs(m0 - _class_mean_rgb(src, c)).max() < 12, c
    # No texture, blur or noise at shift 0: regions are as flat as the source's.
    g_src, g0, g1 = (_within_region_gradient(s) for s in (src, t0, t1))
    assert g0 < 1.0 and g_src < 1.0, (g_src, g0)
    assert g1 > 5.0, g1
    # Shift 1 moves the palette away.
    far = [np.abs(_class_mean_rgb(t1, c) - np.array(_SOURCE_RGB[c])).max() for c in SYNTHSCAPE_CLASSES]
    assert np.median(far) > 30, far


# ---------------------------------------------------------------- dispatch and hidden labels
def test_build_dataset_sizes_ids_and_hidden_labels() -> None:
    cfg = load_config(
        None,
        {
            "data.synthscape.n_target_train": 7,
            "data.synthscape.n_target_val": 3,
            "data.synthscape.image_size": [32, 64],
        },
    )
    labelled = build_dataset(cfg.data.target, cfg.data)
    hidden = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    val = build_dataset(cfg.data.target_val, cfg.data)
    assert len(labelled) == len(hidden) == 7 and len(val) == 3
    assert labelled.has_labels and not hidden.has_labels
    assert hidden.ids == labelled.ids == sorted(labelled.ids)
    assert hidden.num_classes == labelled.num_classes == 19
    for i in range(len(hidden)):
        s, h = labelled[i], hidden[i]
        assert h.label is None and s.label is not None
        assert h.id == s.id
        np.testing.assert_array_equal(h.image, s.image)
        assert h.image.shape == (32, 64, 3)
    assert hidden[hidden.index_of(labelled.ids[2])].label is None
    assert set(val.ids).isdisjoint(labelled.ids)


def test_bad_domain_or_split() -> None:
    with pytest.raises(ValueError, match="domain"):
        SynthscapeDataset("night", "train", 1)
    with pytest.raises(ValueError, match="split"):
        SynthscapeDataset("source", "test", 1)
    with pytest.raises(IndexError, match="out of range"):
        SynthscapeDataset("source", "train", 2)[2]


# ---------------------------------------------------------------- node-local cache
def test_cached_split_equals_the_drawn_one_and_is_read_back(tmp_path) -> None:
    drawn = SynthscapeDataset("target", "train", 6, SIZE, 1.0, 3)
    first = SynthscapeDataset("target", "train", 6, SIZE, 1.0, 3, cache_dir=tmp_path)
    (entry,) = [p for p in tmp_path.iterdir()]
    assert entry.name == first.cache_key() and sorted(f.name for f in entry.iterdir()) == [
        "images.npy",
        "labels.npy",
    ]
    again = SynthscapeDataset("target", "train", 6, SIZE, 1.0, 3, cache_dir=tmp_path)
    assert isinstance(again._arrays[0], np.memmap)  # read from disk, not drawn again
    for ds in (first, again):
        for i in range(6):
            np.testing.assert_array_equal(ds[i].image, drawn[i].image)
            np.testing.assert_array_equal(ds[i].label, drawn[i].label)
    # Other parameters are another entry.
    SynthscapeDataset("target", "train", 6, SIZE, 0.5, 3, cache_dir=tmp_path)
    SynthscapeDataset("source", "train", 6, SIZE, 1.0, 3, cache_dir=tmp_path)
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 3


def test_an_unreadable_cache_entry_is_drawn_again(tmp_path, caplog) -> None:
    first = SynthscapeDataset("source", "val", 4, SIZE, 1.0, 1, cache_dir=tmp_path)
    images = tmp_path / first.cache_key() / "images.npy"
    images.write_bytes(images.read_bytes()[:100])  # truncated
    with caplog.at_level("WARNING"):
        again = SynthscapeDataset("source", "val", 4, SIZE, 1.0, 1, cache_dir=tmp_path)
    assert "drawing again" in caplog.text
    drawn = SynthscapeDataset("source", "val", 4, SIZE, 1.0, 1)
    for i in range(4):
        np.testing.assert_array_equal(again[i].image, drawn[i].image)
    # ... and stored again, readable this time.
    assert isinstance(
        SynthscapeDataset("source", "val", 4, SIZE, 1.0, 1, cache_dir=tmp_path)._arrays[0], np.memmap
    )


def test_build_dataset_uses_the_cache_only_when_asked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HIAST_SYNTHSCAPE_CACHE", str(tmp_path / "c"))
    small = {"data.synthscape.n_target_train": 5, "data.synthscape.image_size": [32, 64]}
    off = load_config(None, {**small, "data.synthscape.cache": False})
    build_dataset(off.data.target, off.data)
    assert not (tmp_path / "c").exists()
    cfg = load_config(None, {**small, "data.synthscape.cache": True})
    ds = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    assert len(list((tmp_path / "c").iterdir())) == 1 and ds[0].label is None


# ---------------------------------------------------------------- generator knobs
HARD = [POLE, SIGN, PERSON]


def _hard_freq(samples: list) -> float:
    return float(_class_freq(samples)[HARD].sum())


@pytest.mark.parametrize("domain", ["source", "target"])
def test_default_knobs_draw_the_default_scenes(domain: str) -> None:
    plain = _samples(domain, 8, seed=2)
    explicit = _samples(domain, 8, seed=2, hard_class_rate=1.0, palette=None)
    for x, y in zip(plain, explicit, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.label, y.label)


@pytest.mark.parametrize("domain", ["source", "target"])
def test_hard_class_rate_scales_the_hard_classes_only(domain: str) -> None:
    base = _samples(domain, 80)
    rare = _samples(domain, 80, hard_class_rate=0.25)
    many = _samples(domain, 80, hard_class_rate=2.0)
    none = _samples(domain, 20, hard_class_rate=0.0)
    f_base, f_rare, f_many = _hard_freq(base), _hard_freq(rare), _hard_freq(many)
    # Expected counts scale by the rate; pixel shares follow (objects also occlude each other).
    assert f_rare < 0.45 * f_base, (f_rare, f_base)
    assert f_many > 1.5 * f_base, (f_many, f_base)
    assert _hard_freq(none) == 0.0
    # Rare, not gone: a few images still hold each hard class.
    for cls in HARD:
        assert sum(bool((s.label == cls).any()) for s in rare) >= 3, cls
    # The large classes keep their share (within sampling noise).
    large = [c for c in SYNTHSCAPE_CLASSES if c not in HARD]
    assert np.abs(_class_freq(rare)[large] - _class_freq(base)[large]).max() < 0.04
    # Deterministic.
    again = _samples(domain, 80, hard_class_rate=0.25)
    for x, y in zip(rare, again, strict=True):
        np.testing.assert_array_equal(x.label, y.label)
        np.testing.assert_array_equal(x.image, y.image)


def test_target_hard_class_rate_is_a_label_shift_of_the_target_only() -> None:
    small = {"data.synthscape.n_source_train": 40, "data.synthscape.n_target_train": 40}
    cfg = load_config(None, {**small, "data.synthscape.target_hard_class_rate": 0.25})
    ref = load_config(None, small)
    src, src_ref = (build_dataset(c.data.source, c.data) for c in (cfg, ref))
    tgt, tgt_ref = (build_dataset(c.data.target, c.data) for c in (cfg, ref))
    for i in range(len(src)):
        np.testing.assert_array_equal(src[i].label, src_ref[i].label)
    f, f_ref = (_hard_freq([ds[i] for i in range(len(ds))]) for ds in (tgt, tgt_ref))
    assert f < 0.45 * f_ref, (f, f_ref)
    both = load_config(
        None, {**small, "data.synthscape.hard_class_rate": 0.5, "data.synthscape.target_hard_class_rate": 0.5}
    )
    assert both.data.synthscape.generator_options("source")["hard_class_rate"] == 0.5
    assert both.data.synthscape.generator_options("target")["hard_class_rate"] == 0.25


def _palette_distance(samples: list, palette: dict) -> float:
    gaps = [np.abs(_class_mean_rgb(samples, c) - palette[c]).mean() for c in SYNTHSCAPE_CLASSES]
    return float(np.median(gaps))


def test_palette_separates_the_systematic_colour_change_from_the_camera() -> None:
    none = _samples("target", 40, shift=1.0, palette=0.0)
    full = _samples("target", 40, shift=1.0, palette=1.0)
    # Palette 0: class colours stay near the renderer's; palette 1: they move to the target palette.
    src_rgb = {c: np.array(v, np.float64) for c, v in _SOURCE_RGB.items()}
    tgt_rgb = {c: np.array(v, np.float64) for c, v in _TARGET_RGB.items()}
    assert _palette_distance(none, src_rgb) < _palette_distance(none, tgt_rgb) - 20
    assert _palette_distance(full, tgt_rgb) < _palette_distance(full, src_rgb) - 20
    # The nuisance part (texture, blur, noise) follows shift, whatever the palette.
    assert _within_region_gradient(none) > 5.0
    assert _within_region_gradient(_samples("target", 10, shift=0.0, palette=1.0)) < 1.0
    # Layout untouched; None means the palette share that shift implies.
    for x, y in zip(none, full, strict=True):
        np.testing.assert_array_equal(x.label, y.label)
    implied = _samples("target", 5, shift=1.0, palette=0.45)
    for x, y in zip(implied, _samples("target", 5, shift=1.0), strict=True):
        np.testing.assert_array_equal(x.image, y.image)
    # The source renderer has no palette to move.
    for x, y in zip(_samples("source", 5, palette=1.0), _samples("source", 5), strict=True):
        np.testing.assert_array_equal(x.image, y.image)


def test_lookalike_gives_target_sidewalks_the_road_colour() -> None:
    plain = _samples("target", 30, shift=0.0)
    alike = _samples("target", 30, shift=0.0, lookalike=1.0)
    half = _samples("target", 30, shift=0.0, lookalike=0.5)
    road, side = _class_mean_rgb(plain, ROAD), _class_mean_rgb(plain, SIDEWALK)
    assert np.abs(road - side).max() > 50  # distinct without the knob
    # At 1 the sidewalk is drawn with the road's colour (instance jitter of sd 12 only); at 0.5 halfway.
    assert np.abs(_class_mean_rgb(alike, SIDEWALK) - road).max() < 8
    assert np.abs(_class_mean_rgb(half, SIDEWALK) - (road + side) / 2).max() < 8
    # Only the sidewalk moves, only in the target, and the layout stays.
    for c in SYNTHSCAPE_CLASSES:
        if c != SIDEWALK:
            assert np.abs(_class_mean_rgb(alike, c) - _class_mean_rgb(plain, c)).max() < 1e-9, c
    for x, y in zip(plain, alike, strict=True):
        np.testing.assert_array_equal(x.label, y.label)
    for x, y in zip(_samples("source", 5, lookalike=1.0), _samples("source", 5), strict=True):
        np.testing.assert_array_equal(x.image, y.image)


def test_knobs_are_validated_and_keyed_in_the_cache() -> None:
    with pytest.raises(ConfigError, match="data.synthscape.palette"):
        load_config(None, {"data.synthscape.palette": 1.5})
    with pytest.raises(ConfigError, match="data.synthscape.hard_class_rate"):
        load_config(None, {"data.synthscape.hard_class_rate": -1})
    with pytest.raises(ValueError, match="hard_class_rate"):
        SynthscapeDataset("source", "train", 1, hard_class_rate=float("nan"))
    with pytest.raises(ValueError, match="palette"):
        SynthscapeDataset("target", "train", 1, palette=2.0)
    keys = {
        SynthscapeDataset("target", "train", 3, SIZE, **kw).cache_key()
        for kw in ({}, {"hard_class_rate": 0.5}, {"palette": 0.2}, {"lookalike": 0.5})
    }
    assert len(keys) == 4
    with pytest.raises(ConfigError, match="data.synthscape.lookalike"):
        load_config(None, {"data.synthscape.lookalike": 2})
    with pytest.raises(ValueError, match="lookalike"):
        SynthscapeDataset("target", "train", 1, lookalike=-0.1)
