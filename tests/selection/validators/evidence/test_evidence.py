"""Evidence files: deterministic pixel sampling and MixVal pairing, round trip, every mismatch named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from selection.errors import SelectionError
from selection.validators.density import snd_row_entropies
from selection.validators.dev import dev_from_pixels
from selection.validators.evidence import (
    Evidence,
    EvidenceError,
    EvidenceSettings,
    EvidenceWriter,
    check_same_sampling,
    mixval_pairs,
    read_evidence,
    sample_pixels,
)

REPO = Path(__file__).resolve().parents[4]
C = 5


# ----------------------------------------------------------------------------------------------
# pixel sampling


@pytest.mark.parametrize(
    "shape,n_pix", [((7, 13), 1), ((7, 13), 50), ((7, 13), 91), ((64, 128), 1000), ((1, 3), 3)]
)
def test_sample_pixels_distinct_sorted_in_range(shape, n_pix):
    idx = sample_pixels("img_001", shape, n_pix, seed=3)
    assert idx.dtype == np.int64 and idx.shape == (n_pix,)
    assert np.all(np.diff(idx) > 0)  # sorted and distinct
    assert idx.min() >= 0 and idx.max() < shape[0] * shape[1]
    if n_pix == shape[0] * shape[1]:
        assert idx.tolist() == list(range(n_pix))


def test_sample_pixels_depends_on_seed_and_id_only():
    a = sample_pixels("a", (64, 128), 500, 0)
    assert np.array_equal(a, sample_pixels("a", (64, 128), 500, 0))
    assert not np.array_equal(a, sample_pixels("b", (64, 128), 500, 0))
    assert not np.array_equal(a, sample_pixels("a", (64, 128), 500, 1))
    # a smaller sample is not required to be a prefix, but the draw is uniform: both halves hit
    assert (a < 64 * 64).sum() > 150 and (a >= 64 * 64).sum() > 150


def test_sample_pixels_is_uniform_enough():
    hits = np.zeros(10 * 10)
    for k in range(400):
        hits[sample_pixels(f"img{k}", (10, 10), 25, 0)] += 1
    # each pixel is drawn with probability 1/4: 100 expected hits, sd ~8.7
    assert hits.min() > 60 and hits.max() < 140


def test_sample_pixels_same_in_another_process_and_hash_seed():
    here = sample_pixels("frankfurt_000001_000019", (1024, 2048), 1000, 7)
    code = (
        "from selection.validators.evidence import sample_pixels;"
        "print(','.join(map(str, sample_pixels('frankfurt_000001_000019', (1024, 2048), 1000, 7))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ",".join(map(str, here))


def test_sample_pixels_known_values():
    # Pinned: a change to the sampling would silently make stored evidence files incomparable.
    assert sample_pixels("x", (4, 4), 4, 0).tolist() == [5, 6, 7, 12]
    assert sample_pixels("frankfurt_000001_000019", (1024, 2048), 5, 7).tolist() == [
        141936,
        584453,
        1180579,
        1902185,
        1928134,
    ]


def test_sample_pixels_follows_splitmix64_by_hand():
    import hashlib

    base = int.from_bytes(hashlib.sha256(b"hiast-select/pixels:0:x").digest()[:8], "little")
    mask = (1 << 64) - 1
    seen: list[int] = []
    k = 0
    while len(seen) < 4:
        k += 1
        z = (base + k * 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        if z % 16 not in seen:
            seen.append(z % 16)
    assert sample_pixels("x", (4, 4), 4, 0).tolist() == sorted(seen)


def test_sample_pixels_errors():
    with pytest.raises(SelectionError, match="'tiny' is 2x2 = 4 pixels, fewer than the 5"):
        sample_pixels("tiny", (2, 2), 5, 0)
    with pytest.raises(SelectionError, match="n_pix"):
        sample_pixels("a", (2, 2), 0, 0)
    with pytest.raises(SelectionError, match="shape"):
        sample_pixels("a", (2, 2, 3), 1, 0)


# ----------------------------------------------------------------------------------------------
# MixVal pairing


@pytest.mark.parametrize("n", [2, 3, 7, 50])
def test_mixval_pairs_is_a_derangement_in_given_order(n):
    ids = [f"im{k:03d}" for k in range(n)]
    pairs = mixval_pairs(ids, seed=1)
    assert [a for a, _ in pairs] == ids
    partners = [b for _, b in pairs]
    assert sorted(partners) == ids  # every image mixed in exactly once
    assert all(a != b for a, b in pairs)
    assert pairs == mixval_pairs(ids, seed=1)
    if n > 3:
        assert pairs != mixval_pairs(ids, seed=2)
        # not simply the next id in sorted order (consecutive video frames)
        assert sum(b == ids[(k + 1) % n] for k, (_, b) in enumerate(pairs)) < n // 2 + 1


def test_mixval_pairs_errors():
    with pytest.raises(SelectionError, match="at least 2"):
        mixval_pairs(["a"], 0)
    with pytest.raises(SelectionError, match="unique"):
        mixval_pairs(["a", "a"], 0)


# ----------------------------------------------------------------------------------------------
# writer / reader


def _probs(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.random((n, C)) ** 3
    return (x / x.sum(axis=1, keepdims=True)).astype(np.float32)


def _write(path, cid="cand", ids=("a", "b", "c"), src=("s1", "s2"), settings=None, seed=0, mixval=True):
    settings = settings or EvidenceSettings(n_pix=6)
    rng = np.random.default_rng(seed)
    expect = {"target": [], "source": [], "labels": [], "mix": []}
    with EvidenceWriter(
        path, cid, C, list(ids), settings=settings, source_ids=list(src) if src else None, mixval=mixval
    ) as w:
        for i in ids:
            p = _probs(rng, settings.n_pix)
            w.add_target(i, (4, 5), p)
            expect["target"].append(p)
        for i in src or ():
            p = _probs(rng, settings.n_pix)
            lab = rng.integers(0, C, settings.n_pix).astype(np.uint8)
            lab[0] = 255
            w.add_source(i, (3, 3), p, lab)
            expect["source"].append(p)
            expect["labels"].append(lab)
        if mixval:
            for a, b in mixval_pairs(list(ids), settings.mixval_seed):
                cnt = rng.integers(0, 5, (2, C, 2))
                cnt[..., 1] = np.minimum(cnt[..., 1], cnt[..., 0])
                w.add_mixval(a, b, cnt)
                expect["mix"].append(cnt)
        w.set_scalar("source_val_miou", 0.5)
    return expect


def test_round_trip(tmp_path):
    path = tmp_path / "e" / "cand.npz"
    exp = _write(path)
    ev = read_evidence(
        path,
        candidate_id="cand",
        num_classes=C,
        subset_ids=["a", "b", "c"],
        settings=EvidenceSettings(n_pix=6),
        source_ids=["s1", "s2"],
    )
    assert isinstance(ev, Evidence) and ev.candidate_id == "cand" and ev.image_ids == ("a", "b", "c")
    assert ev.target_probs.dtype == np.float16 and ev.target_probs.shape == (3, 6, C)
    np.testing.assert_array_equal(ev.target_probs, np.stack(exp["target"]).astype(np.float16))
    np.testing.assert_array_equal(ev.source_probs, np.stack(exp["source"]).astype(np.float16))
    np.testing.assert_array_equal(ev.source_labels, np.stack(exp["labels"]))
    np.testing.assert_array_equal(ev.mixval_counts, np.stack(exp["mix"]))
    assert ev.target_shapes.tolist() == [[4, 5]] * 3 and ev.source_shapes.tolist() == [[3, 3]] * 2
    # SND's per-image sums, computed once when written, from the stored (float16) values
    want = [snd_row_entropies(p.astype(np.float16), 0.05).sum() for p in exp["target"]]
    np.testing.assert_allclose(ev.snd_entropy, want, rtol=1e-12)
    # DEV/IWCV are fitted once, when written, on exactly what a reader gets back.
    dev = dev_from_pixels(ev.source_probs, ev.source_labels, ev.target_probs, seed=0).scalars()
    assert ev.scalars == {"source_val_miou": 0.5, **dev} and ev.has_source and ev.has_mixval
    assert not ev.target_probs.flags.writeable
    assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]


def test_round_trip_through_a_file_uri_without_source_or_mixval(tmp_path):
    uri = f"file://{tmp_path}/x/ev.npz"
    _write(uri, src=None, mixval=False)
    ev = read_evidence(uri)
    assert not ev.has_source and not ev.has_mixval and ev.source_ids is None


def test_storage_matches_the_documented_size(tmp_path):
    s = EvidenceSettings(n_pix=1000)
    ids = [f"i{k}" for k in range(5)]
    with EvidenceWriter(tmp_path / "e.npz", "c", 19, ids, settings=s, mixval=False) as w:
        p = np.full((1000, 19), 1 / 19, np.float32)
        for i in ids:
            w.add_target(i, (1024, 2048), p)
    size = (tmp_path / "e.npz").stat().st_size
    assert 5 * 1000 * 19 * 2 <= size < 5 * 1000 * 19 * 2 + 4000  # float16 payload + small overhead


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"candidate_id": "other"}, "holds candidate 'cand', expected 'other'"),
        ({"num_classes": 19}, "num_classes=5, expected 19"),
        ({"subset_ids": ["a", "b"]}, "another subset"),
        ({"settings": EvidenceSettings(n_pix=6, snd_temperature=0.1)}, "snd_temperature"),
        ({"settings": EvidenceSettings(n_pix=8)}, "n_pix"),
        ({"source_ids": ["s1"]}, "other source-val images"),
    ],
)
def test_mismatch_on_read_names_the_file(tmp_path, kwargs, match):
    path = tmp_path / "cand.npz"
    _write(path)
    with pytest.raises(EvidenceError, match=match) as e:
        read_evidence(path, **kwargs)
    assert str(path) in str(e.value)


def test_replicate_member_id_reads_its_candidates_file(tmp_path):
    _write(tmp_path / "c.npz", cid="alpha=0.3")
    assert read_evidence(tmp_path / "c.npz", candidate_id="alpha=0.3#r1").candidate_id == "alpha=0.3"


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(EvidenceError, match="not found"):
        read_evidence(tmp_path / "nope.npz", candidate_id="x")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(EvidenceError, match="corrupt or unreadable"):
        read_evidence(tmp_path / "bad.npz")
    np.savez(tmp_path / "foreign.npz", meta=np.frombuffer(json.dumps({"format": "x"}).encode(), np.uint8))
    with pytest.raises(EvidenceError, match="not a hiast-select/evidence/v2 file"):
        read_evidence(tmp_path / "foreign.npz")


def test_tampered_arrays_are_caught(tmp_path):
    path = tmp_path / "c.npz"
    _write(path)
    z = dict(np.load(path))
    z["target_probs"] = z["target_probs"][:2]
    np.savez(path, **z)
    with pytest.raises(
        EvidenceError, match=r"target_probs is float16 \(2, 6, 5\), expected float16 \(3, 6, 5\)"
    ):
        read_evidence(path)
    _write(path)
    z = dict(np.load(path))
    z["mixval_partner"] = z["mixval_partner"][::-1].copy()
    np.savez(path, **z)
    with pytest.raises(EvidenceError, match="MixVal pairs differ"):
        read_evidence(path)


def test_writer_refuses_bad_input_and_leaves_nothing(tmp_path):
    s = EvidenceSettings(n_pix=6)
    good = np.full((6, C), 1 / C, np.float32)
    path = tmp_path / "w.npz"
    with EvidenceWriter(path, "c", C, ["a", "b"], settings=s) as w:
        with pytest.raises(EvidenceError, match="subset image 0 is 'a', got 'b'"):
            w.add_target("b", (4, 4), good)
        with pytest.raises(EvidenceError, match=r"\(n_pix, C\) = \(6, 5\)"):
            w.add_target("a", (4, 4), good[:5])
        with pytest.raises(EvidenceError, match="sum to"):
            w.add_target("a", (4, 4), good * 2)
        with pytest.raises(EvidenceError, match="NaN"):
            w.add_target("a", (4, 4), np.full((6, C), np.nan, np.float32))
        with pytest.raises(EvidenceError, match="at least n_pix=6"):
            w.add_target("a", (2, 2), good)
        with pytest.raises(EvidenceError, match="no source_ids"):
            w.add_source("s", (4, 4), good, np.zeros(6, np.uint8))
        w.add_target("a", (4, 4), good)
        with pytest.raises(EvidenceError, match="partner is 'b', got 'a'"):
            w.add_mixval("a", "a", np.zeros((2, C, 2), np.int64))
        with pytest.raises(EvidenceError, match="correct <= pixels"):
            w.add_mixval("a", "b", np.ones((2, C, 2), np.int64) * [1, 2])
        with pytest.raises(EvidenceError, match="missing subset image 'b'"):
            w.close()
    assert not path.exists() and not list(tmp_path.iterdir())


def test_exception_inside_the_block_writes_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with EvidenceWriter(
            tmp_path / "w.npz", "c", C, ["a"], settings=EvidenceSettings(n_pix=6), mixval=False
        ):
            raise RuntimeError("boom")
    assert not list(tmp_path.iterdir())


def test_source_labels_are_checked(tmp_path):
    with EvidenceWriter(
        tmp_path / "w.npz", "c", C, ["a"], settings=EvidenceSettings(n_pix=6), source_ids=["s"], mixval=False
    ) as w:
        with pytest.raises(EvidenceError, match="label 7 is neither a class nor 255"):
            w.add_source("s", (3, 3), np.full((6, C), 1 / C), np.array([0, 1, 2, 7, 0, 0]))
        w.abort()


def test_settings_validation():
    for bad in (
        {"n_pix": 1},
        {"mixval_weight": 0.5},
        {"mixval_weight": 1.0},
        {"snd_temperature": 0},
        {"source_images": 0},
    ):
        with pytest.raises(SelectionError):
            EvidenceSettings(**bad)
    s = EvidenceSettings(n_pix=20, source_images=3, pixel_seed=4)
    ids = [f"s{k}" for k in range(10)]
    assert s.source_subset(ids) == sorted(s.source_subset(ids)) and len(s.source_subset(ids)) == 3
    assert s.source_subset(ids[:2]) == ids[:2]
    assert np.array_equal(s.sampler()("q", (9, 9)), sample_pixels("q", (9, 9), s.n_pix, 4))


def test_check_same_sampling(tmp_path):
    _write(tmp_path / "a.npz", cid="a")
    _write(tmp_path / "b.npz", cid="b", seed=1)
    _write(tmp_path / "c.npz", cid="c", ids=("a", "b", "d"))
    _write(tmp_path / "d.npz", cid="d", settings=EvidenceSettings(n_pix=6, pixel_seed=9))
    a, b, c, d = (read_evidence(tmp_path / f"{k}.npz") for k in "abcd")
    check_same_sampling([a, b])
    with pytest.raises(EvidenceError, match=f"{tmp_path / 'c.npz'}: subset image ids differ"):
        check_same_sampling([a, c])
    with pytest.raises(EvidenceError, match="settings differ"):
        check_same_sampling([a, b, d])
