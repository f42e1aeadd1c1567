"""The streamed evidence validators (selection.validators.streaming) equal to the pure functions,
however chunked."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from evidence_files import SETTINGS, write_evidence

from selection.errors import SelectionError
from selection.validators import (
    EVIDENCE_VALIDATORS,
    EvidenceAccumulator,
    atc,
    bnm,
    ensv,
    evidence_scores,
    im,
    mean_confidence,
    mean_entropy,
    mixval,
    mixval_inter,
    open_evidence,
    snd,
)
from selection.validators.dev import dev_from_pixels
from selection.validators.evidence import EvidenceError, EvidenceWriter, read_evidence
from selection.validators.streaming import supported

C, SHAPE, IDS = 4, (6, 8), ["i0", "i1", "i2", "i3", "i4"]


class _C:  # evidence_files only needs .id
    def __init__(self, cid: str) -> None:
        self.id = cid


def _family(tmp_path, n=3, seed=0):
    rng = np.random.default_rng(seed)
    truth = [rng.integers(0, C, SHAPE) for _ in IDS]
    cands = [_C(f"c{k}") for k in range(n)]
    maps = {
        c.id: [
            np.where(rng.random(SHAPE) < 0.2, rng.integers(0, C, SHAPE), t).astype(np.uint8) for t in truth
        ]
        for c in cands
    }
    uris = write_evidence(tmp_path, cands, maps, IDS, C, seed=seed)
    return cands, uris


def test_evidence_scores_equal_the_pure_functions(tmp_path):
    cands, uris = _family(tmp_path)
    ev = [read_evidence(uris[c.id]) for c in cands]
    table = evidence_scores(ev)
    assert list(table.index) == [c.id for c in cands]
    assert list(table.columns) == list(EVIDENCE_VALIDATORS)
    np.testing.assert_allclose(table["ensv"], ensv(np.stack([e.target_probs for e in ev])))
    for name, fn in {
        "mean_entropy": mean_entropy,
        "mean_confidence": mean_confidence,
        "im": im,
        "bnm": bnm,
    }.items():
        np.testing.assert_allclose(table[name], [fn(e.target_probs) for e in ev], rtol=1e-10)
    np.testing.assert_allclose(
        table["snd"], [snd(e.target_probs, SETTINGS.snd_temperature) for e in ev], rtol=1e-10
    )
    np.testing.assert_allclose(table["mixval"], [mixval(e.mixval_counts) for e in ev])
    np.testing.assert_allclose(table["mixval_inter"], [mixval_inter(e.mixval_counts) for e in ev])
    np.testing.assert_allclose(
        table["atc"], [atc(e.target_probs, e.source_probs, e.source_labels) for e in ev]
    )
    np.testing.assert_allclose(table["source_val_miou"], [0.0, 0.1, 0.2])
    for name in ("dev", "iwcv"):
        want = [getattr(dev_from_pixels(e.source_probs, e.source_labels, e.target_probs), name) for e in ev]
        np.testing.assert_allclose(table[name], want, rtol=1e-12)


@pytest.mark.parametrize("cuts", [[2], [1, 3], [1, 2, 3, 4]])
def test_chunks_and_halves_merge_to_the_whole(tmp_path, cuts):
    cands, uris = _family(tmp_path, n=4, seed=1)
    files = open_evidence(uris, num_classes=C, subset_ids=IDS, settings=SETTINGS)
    groups = {"g1": ["c0", "c1", "c2"], "g2": ["c0", "c3"]}
    whole = EvidenceAccumulator.start(files, groups)
    whole.update(files, range(len(IDS)))
    edges = [0, *cuts, len(IDS)]
    parts = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        for h in (0, 1):  # as the vote pass does: each chunk's even and odd positions apart
            acc = copy.deepcopy(EvidenceAccumulator.start(files, groups))
            acc.update(files, [p for p in range(a, b) if p % 2 == h])
            parts.append(pickle.loads(pickle.dumps(acc)))  # as Ray ships them
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    for g, ids in groups.items():
        want, got = whole.table(ids, g), merged.table(ids, g)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9)
    # a candidate without evidence gets NaN; ensv of g2 falls back to NaN with one member left
    partial = EvidenceAccumulator.start({k: v for k, v in files.items() if k != "c3"}, groups)
    partial.update({k: v for k, v in files.items() if k != "c3"}, range(len(IDS)))
    t = partial.table(["c0", "c3"], "g2")
    assert t.loc["c3"].isna().all() and np.isnan(t.loc["c0", "ensv"]) and np.isfinite(t.loc["c0", "snd"])


def test_evidence_scores_refuses_what_the_files_cannot_support(tmp_path):
    for name in ("x", "y"):
        with EvidenceWriter(tmp_path / f"{name}.npz", name, C, IDS, settings=SETTINGS, mixval=False) as w:
            for i in IDS:
                w.add_target(i, SHAPE, np.full((SETTINGS.n_pix, C), 1 / C))
    x, y = read_evidence(tmp_path / "x.npz"), read_evidence(tmp_path / "y.npz")
    table = evidence_scores([x, y])
    assert set(table.columns) == {"ensv", "snd", "im", "bnm", "mean_entropy", "mean_confidence"}
    assert list(evidence_scores([x]).columns) == ["snd", "im", "bnm", "mean_entropy", "mean_confidence"]
    with pytest.raises(EvidenceError, match=f"{tmp_path / 'x.npz'} lacks what 'atc' needs"):
        evidence_scores([x, y], ["atc"])
    with pytest.raises(SelectionError, match="not evidence validators"):
        evidence_scores([x, y], ["f_miou"])


def test_supported_names_follow_what_every_file_holds(tmp_path):
    cands, uris = _family(tmp_path, n=2)
    files = open_evidence(uris, num_classes=C, subset_ids=IDS, settings=SETTINGS)
    assert supported(list(files.values())) == list(EVIDENCE_VALIDATORS)
    assert supported([]) == []
    assert open_evidence({}, num_classes=C, subset_ids=IDS) == {}


def test_an_accumulator_before_any_image_and_without_a_group(tmp_path):
    cands, uris = _family(tmp_path, n=2)
    files = open_evidence(uris, num_classes=C, subset_ids=IDS, settings=SETTINGS)
    acc = EvidenceAccumulator.start(files, {"g": ["c0", "c1"]}, ["ensv", "snd", "source_val_miou"])
    assert acc.names == ("ensv", "snd", "source_val_miou")  # registry order, whatever was asked
    assert acc.table(["c0"], "g").isna().all().all()  # no image yet: nothing to report
    acc.update(files, [0, 1])
    assert acc.images == 2
    assert list(acc.table(["c0", "c1"]).columns) == ["snd", "source_val_miou"]  # ensv needs a group
    np.testing.assert_allclose(acc.table(["c0", "c1"])["source_val_miou"], [0.0, 0.1])


def test_accumulators_of_other_candidates_or_names_do_not_merge(tmp_path):
    cands, uris = _family(tmp_path, n=3)
    files = open_evidence(uris, num_classes=C, subset_ids=IDS, settings=SETTINGS)
    a = EvidenceAccumulator.start(files, {"g": ["c0", "c1", "c2"]}, ["snd"])
    with pytest.raises(SelectionError, match="different candidates or validators"):
        a.merge(EvidenceAccumulator.start(files, {"g": ["c0", "c1", "c2"]}, ["im"]))
    two = {k: v for k, v in files.items() if k != "c2"}
    with pytest.raises(SelectionError, match="different candidates or validators"):
        a.merge(EvidenceAccumulator.start(two, {"g": ["c0", "c1"]}, ["snd"]))


def test_no_evidence_and_unknown_names_are_refused():
    with pytest.raises(SelectionError, match="no evidence to score"):
        EvidenceAccumulator.start({}, {})
    with pytest.raises(SelectionError, match="no evidence to score"):
        evidence_scores([])
    with pytest.raises(SelectionError, match=r"not evidence validators: \['seed_agreement'\]"):
        EvidenceAccumulator(["seed_agreement"], ["c0"], {}, C)
