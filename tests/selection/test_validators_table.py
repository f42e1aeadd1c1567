"""The registry, and a vote group's table from real files equal to the pure functions' values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from selection.candidates import build_candidates, vote_groups
from selection.errors import SelectionError
from selection.evidence import EvidenceError, EvidenceSettings, EvidenceWriter, mixval_pairs, read_evidence
from selection.fusion import FusionAccumulator
from selection.fusion import f_miou as fusion_f_miou
from selection.store import PredictionWriter
from selection.validators import (
    NEEDS,
    VALIDATORS,
    atc,
    bnm,
    confidence,
    ensv,
    entropy,
    evidence_scores,
    f_miou_lno,
    group_table,
    im,
    label_scores,
    leave_out,
    mixval,
    mixval_counts,
    neighbours,
    replicate_scores,
    seed_agreement,
    snd,
    validator,
)

C, SHAPE, IDS, SRC = 4, (6, 8), ["i0", "i1", "i2", "i3"], ["s0", "s1", "s2"]
SETTINGS = EvidenceSettings(n_pix=12, source_images=2)


def test_registry_is_consistent():
    assert list(VALIDATORS) == [s.name for s in VALIDATORS.values()]
    for name, spec in VALIDATORS.items():
        assert spec.needs <= NEEDS and spec.scope in ("self", "group")
        assert spec.higher_is_better is (name != "entropy")
        assert (spec.function is None) is (name == "f_miou_trimmed")
        assert spec.extra_passes == (1 if name.startswith("mixval") or name == "seed_agreement" else 0)
    with pytest.raises(SelectionError, match="selection.rule: unknown validator 'nope'"):
        validator("nope", "selection.rule")


def _files(tmp_path, candidates, seed=0, replicate=0):
    rng = np.random.default_rng(seed)
    truth = [rng.integers(0, C, SHAPE) for _ in IDS]
    pred_uris, ev_uris, maps = {}, {}, {}
    for k, cand in enumerate(candidates):
        noise = 0.1 + 0.1 * (k % 4)
        own = [
            np.where(rng.random(SHAPE) < noise, rng.integers(0, C, SHAPE), t).astype(np.uint8) for t in truth
        ]
        maps[cand.id] = own
        pred_uris[cand.id] = str(tmp_path / f"p_{k}_{replicate}.parquet")
        ev_uris[cand.id] = str(tmp_path / f"e_{k}_{replicate}.npz")
        with PredictionWriter(pred_uris[cand.id], cand.id, C, IDS) as w:
            for i, m in zip(IDS, own, strict=True):
                w.write(i, m)
        if replicate:
            continue
        with EvidenceWriter(
            ev_uris[cand.id], cand.id, C, IDS, settings=SETTINGS, source_ids=SETTINGS.source_subset(SRC)
        ) as w:
            for i, m in zip(IDS, own, strict=True):
                px = SETTINGS.sampler()(i, SHAPE)
                logits = rng.normal(size=(SETTINGS.n_pix, C)) + 3 * np.eye(C)[m.reshape(-1)[px]]
                p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
                w.add_target(i, SHAPE, p)
            for i in SETTINGS.source_subset(SRC):
                p = rng.dirichlet(np.ones(C) * 0.3, SETTINGS.n_pix)
                w.add_source(i, SHAPE, p, rng.integers(0, C, SETTINGS.n_pix))
            by = dict(zip(IDS, own, strict=True))
            for a, b in mixval_pairs(IDS, SETTINGS.mixval_seed):
                mix = np.where(rng.random(SHAPE) < 0.3, by[b], by[a]).astype(np.uint8)
                w.add_mixval(a, b, mixval_counts(by[a], by[b], mix, C))
            w.set_scalar("source_val_miou", 0.1 * k)
    return pred_uris, ev_uris, maps


def test_group_table_equals_the_pure_functions(tmp_path):
    cands = build_candidates(
        {"alpha": 0.5, "gamma": 8.0}, {"alpha": [0.1, 0.3, 0.5, 0.7, 0.9], "gamma": [2, 8, 16]}, "sweep"
    )
    preds, evs, maps = _files(tmp_path, cands)
    reps = {c.id: [preds[c.id]] for c in cands}
    rep_preds, _, rep_maps = _files(tmp_path, cands, seed=5, replicate=1)
    for c in cands:
        reps[c.id].append(rep_preds[c.id])
    table = group_table(
        cands,
        "alpha",
        evidence_uris=evs,
        prediction_uris=preds,
        subset_ids=IDS,
        num_classes=C,
        settings=SETTINGS,
        replicate_uris=reps,
    )
    ids = vote_groups(cands)["alpha"]
    assert list(table.index) == ids
    assert list(table.columns) == [n for n in VALIDATORS if n in table.columns]
    assert set(table.columns) == set(VALIDATORS)
    ev = [read_evidence(evs[i]) for i in ids]
    stacks = [np.stack([maps[i][k] for i in ids]) for k in range(len(IDS))]
    np.testing.assert_allclose(table["f_miou"], fusion_f_miou(stacks, C))
    exclude, mode = leave_out(ids, neighbours(cands, "alpha"))
    assert mode == "neighbours" and table.attrs["leave_out"] == "neighbours"
    np.testing.assert_allclose(table["f_miou_lno"], f_miou_lno(stacks, C, exclude))
    np.testing.assert_allclose(table["ensv"], ensv(np.stack([e.target_probs for e in ev])))
    for name, fn in {"entropy": entropy, "confidence": confidence, "im": im, "bnm": bnm}.items():
        np.testing.assert_allclose(table[name], [fn(e.target_probs) for e in ev], rtol=1e-10)
    np.testing.assert_allclose(
        table["snd"], [snd(e.target_probs, SETTINGS.snd_temperature) for e in ev], rtol=1e-10
    )
    np.testing.assert_allclose(table["mixval"], [mixval(e.mixval_counts) for e in ev])
    np.testing.assert_allclose(
        table["atc"], [atc(e.target_probs, e.source_probs, e.source_labels) for e in ev]
    )
    np.testing.assert_allclose(table["source_val_miou"], [e.scalars["source_val_miou"] for e in ev])
    want = [seed_agreement([np.stack([maps[i][k], rep_maps[i][k]]) for k in range(len(IDS))], C) for i in ids]
    np.testing.assert_allclose(table["seed_agreement"], want)
    # the 3-value gamma sweep falls back to leave-one-out
    assert (
        group_table(
            cands, "gamma", evidence_uris=evs, prediction_uris=preds, subset_ids=IDS, num_classes=C
        ).attrs["leave_out"]
        == "one"
    )


def test_label_scores_trims_degenerates_like_the_vote_pass(tmp_path):
    rng = np.random.default_rng(1)
    truth = [rng.integers(1, C, SHAPE) for _ in range(3)]
    stacks = []
    for t in truth:
        good = [np.where(rng.random(SHAPE) < 0.1, rng.integers(0, C, SHAPE), t) for _ in range(3)]
        stacks.append(np.stack(good + [np.zeros(SHAPE), np.zeros(SHAPE)]).astype(np.uint8))
    ids = ["a", "b", "c", "d", "e"]
    table = label_scores(lambda: ((str(k), s) for k, s in enumerate(stacks)), ids, C, neighbour_ids={})
    assert table.attrs["degenerate"] == ["d", "e"]
    acc = FusionAccumulator(5, C, voters=[0, 1, 2], pairwise=False)
    for s in stacks:
        acc.update(s)
    np.testing.assert_allclose(table["f_miou_trimmed"], acc.f_miou)
    assert (table["f_miou_trimmed"] != table["f_miou"]).any()
    untrimmed = label_scores(
        lambda: ((str(k), s) for k, s in enumerate(stacks)), ids, C, neighbour_ids={}, trim_rule=None
    )
    np.testing.assert_array_equal(untrimmed["f_miou_trimmed"], untrimmed["f_miou"])


def test_evidence_scores_refuses_what_the_files_cannot_support(tmp_path):
    with EvidenceWriter(tmp_path / "x.npz", "x", C, IDS, settings=SETTINGS, mixval=False) as w:
        for i in IDS:
            w.add_target(i, SHAPE, np.full((SETTINGS.n_pix, C), 1 / C))
    with EvidenceWriter(tmp_path / "y.npz", "y", C, IDS, settings=SETTINGS, mixval=False) as w:
        for i in IDS:
            w.add_target(i, SHAPE, np.full((SETTINGS.n_pix, C), 1 / C))
    x, y = read_evidence(tmp_path / "x.npz"), read_evidence(tmp_path / "y.npz")
    table = evidence_scores([x, y])
    assert set(table.columns) == {"ensv", "snd", "im", "bnm", "entropy", "confidence"}
    assert list(evidence_scores([x]).columns) == ["snd", "im", "bnm", "entropy", "confidence"]
    with pytest.raises(EvidenceError, match=f"{tmp_path / 'x.npz'} lacks what 'atc' needs"):
        evidence_scores([x, y], ["atc"])
    with pytest.raises(SelectionError, match="not evidence validators"):
        evidence_scores([x, y], ["f_miou"])


def test_replicate_scores_nan_without_replicates(tmp_path):
    cands = build_candidates({"alpha": 0.5}, {"alpha": [0.1, 0.5]}, "sweep")
    preds, _, _ = _files(tmp_path, cands)
    s = replicate_scores({c.id: [preds[c.id]] for c in cands}, IDS, C)
    assert isinstance(s, pd.Series) and s.isna().all()
