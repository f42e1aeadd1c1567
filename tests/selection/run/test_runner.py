"""run_selection end to end: table columns and choice, chunked passes, bad inputs."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from selection_families import (
    SWEEP_CLASSES,
    degenerate_pair_family,
    sweep_setup,
    write_family,
)

from selection import PredictionStoreError, SelectionError, run_selection
from selection.run import SelectionSpec
from selection.run.plan import accumulate, image_chunks, make_plan, merge_accumulators, merge_chunks
from selection.run.runner import score_from_accumulators
from selection.validators.registry import ScoreValues

C = SWEEP_CLASSES


def test_table_columns_and_choice(tmp_path):
    cands, uris, ids, tm = sweep_setup(tmp_path, replicates=True)
    conf = {c.id: 0.9 - 0.01 * k for k, c in enumerate(cands)}
    res = run_selection(
        cands,
        uris,
        SelectionSpec(ids, C),
        true_miou=tm,
        extra_scores={
            "mean_confidence": conf,
            "custom": ScoreValues({"default": 1.0}, higher_is_better=False),
        },
    )
    t = res.table
    ids_ = [c.id for c in cands]
    expected = [
        "candidate_id",
        "digest",
        "role",
        "sweep",
        "sweeps",
        "alpha",
        "gamma",
        "k",
        "f_miou",
        "f_miou_trimmed",
        "f_miou__alpha",
        "f_miou__gamma",
        "f_miou_trimmed__alpha",
        "f_miou_trimmed__gamma",
        "per_class_iou",
        "per_class_iou__alpha",
        "per_class_iou__gamma",
        "degenerate",
        "degenerate_in",
        "broken",
        "broken_reason",
        "picked_in",
        "centre_bound",
        "f_miou_lno",
        "f_miou_lno__alpha",
        "f_miou_lno__gamma",
        "mean_confidence",
        "custom",
        "seed_agreement",
        "replicates",
        "true_miou",
    ] + [f"agreement__{i}" for i in ids_]
    assert list(t.columns) == expected
    assert t["candidate_id"].tolist() == ids_ and len(t) == len(cands)
    d = t.set_index("candidate_id")
    assert d.loc["default", "role"] == "default" and d.loc["default", "sweeps"] == ["alpha", "gamma"]
    assert d.loc["default", "f_miou"] == pytest.approx(
        (d.loc["default", "f_miou__alpha"] + d.loc["default", "f_miou__gamma"]) / 2
    )
    assert np.isnan(d.loc["alpha=0.1", "f_miou__gamma"]) and d.loc["alpha=0.1", "per_class_iou__gamma"] == []
    assert len(d.loc["alpha=0.1", "per_class_iou"]) == C
    assert d.loc["alpha=0.1", "agreement__alpha=0.1"] == 1.0
    assert d.loc["alpha=0.1", "agreement__gamma=2"] == d.loc["gamma=2", "agreement__alpha=0.1"]
    assert (t["replicates"] == 2).all() and t["seed_agreement"].between(0, 1).all()
    assert d.loc["default", "custom"] == 1.0 and np.isnan(d.loc["gamma=2", "custom"])
    ch = res.choice.as_dict()
    assert set(ch) >= {"parameters", "f_miou", "mode", "per_sweep", "centre_bound", "degenerate", "notes"}
    assert ch["mode"] == "sweep" and set(ch["per_sweep"]) == {"alpha", "gamma"}
    for g, info in ch["per_sweep"].items():
        col = d[f"f_miou__{g}"].dropna()  # the default rule is the paper's F-mIoU
        assert info["candidate_id"] == col.idxmax() == ch["picks"][g]["rule"] == ch["picks"][g]["f_miou"]
        assert ch["parameters"][g] == d.loc[info["candidate_id"], g]
        assert d.loc[info["candidate_id"], "picked_in"].count(g) == 1
        # every validator computed here has its pick, beside the rule's
        assert set(ch["picks"][g]) == {
            "f_miou", "f_miou_trimmed", "f_miou_lno", "mean_confidence", "seed_agreement", "rule"
        }  # fmt: skip
    assert ch["parameters"]["k"] == 3
    assert ch["schema_version"] == 5 and ch["rule"]["config"] == "f_miou" and ch["score_used"] == "f_miou"
    assert ch["confidence"]["level"] in ("high", "low") and set(ch["confidence"]["groups"]) == {
        "alpha",
        "gamma",
    }
    audit = res.audit
    assert set(audit["score"]) == {
        "f_miou",
        "f_miou_trimmed",
        "f_miou_lno",
        "mean_confidence",
        "custom",
        "seed_agreement",
        "rule",
        "centre",
        "random",
    }
    kinds = audit.drop_duplicates("score").set_index("score")["kind"]
    assert kinds["f_miou_lno"] == "validator" and kinds["custom"] == "score" and kinds["rule"] == "rule"
    assert (audit["regret"] >= 0).all()
    summary = res.audit_summary()
    assert set(summary["score"]) == set(audit["score"])


def test_fan_out_and_merge_equals_one_pass(tmp_path):
    cands, uris, ids, maps, truth, _ = degenerate_pair_family(tmp_path, n_images=7)
    one = run_selection(cands, uris, SelectionSpec(ids, 5))
    plan = make_plan(cands, uris, ids, 5)
    chunks = image_chunks(len(ids), 3)
    assert chunks == [(0, 2), (2, 5), (5, 7)]
    parts = [pickle.loads(pickle.dumps(accumulate(plan, a, b))) for a, b in chunks]  # as Ray ships them
    first, first_halves = merge_chunks(plan, parts)
    second_plan = plan.trimmed(first)
    assert second_plan is not None and set(second_plan.members) == set(plan.candidate_ids)
    second, second_halves = merge_chunks(second_plan, [accumulate(second_plan, a, b) for a, b in chunks])
    halves = tuple(zip(first_halves, second_halves, strict=True))
    fanned = score_from_accumulators(plan, first, second, halves=halves)
    pd.testing.assert_frame_equal(one.table, fanned.table)
    assert one.choice == fanned.choice
    # the halves are the subset's even and odd images: together, the whole
    assert [h.images for h in first_halves] == [4, 3]
    assert merge_accumulators(list(first_halves)).fusion["alpha"].f_miou.tolist() == pytest.approx(
        first.fusion["alpha"].f_miou.tolist()
    )
    # without per-half counts the confidence says noise was not measured
    blind = score_from_accumulators(plan, first, second)
    assert any("not measured" in r for r in blind.choice.as_dict()["confidence"]["reasons"])
    with pytest.raises(SelectionError, match="pass-2 accumulator"):
        score_from_accumulators(plan, first, None)


def test_fewer_than_two_candidates(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    with pytest.raises(SelectionError, match="at least 2 candidates"):
        run_selection(cands[:1], {cands[0].id: uris[cands[0].id]}, SelectionSpec(ids, C))


def test_missing_predictions_file_names_candidate(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    uris["gamma=2"] = str(tmp_path / "gone.parquet")
    with pytest.raises(PredictionStoreError, match=r"candidate 'gamma=2'.*gone\.parquet not found"):
        run_selection(cands, uris, SelectionSpec(ids, C))
    del uris["gamma=2"]
    with pytest.raises(SelectionError, match=r"no predictions file given for candidate\(s\) \['gamma=2'\]"):
        run_selection(cands, uris, SelectionSpec(ids, C))


def test_corrupt_predictions_file_names_candidate(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    path = uris["alpha=0.3"]
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-30])
    with pytest.raises(PredictionStoreError, match="candidate 'alpha=0.3'.*corrupt"):
        run_selection(cands, uris, SelectionSpec(ids, C))


def test_candidates_covering_different_images(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    other_ids = ids[:-1] + ["elsewhere"]
    rng = np.random.default_rng(0)
    uris["alpha=0.7"] = write_family(
        tmp_path,
        [c for c in cands if c.id == "alpha=0.7"],
        {"alpha=0.7": [rng.integers(0, C, (10, 12)).astype(np.uint8) for _ in other_ids]},
        other_ids,
        C,
        tag="o-",
    )["alpha=0.7"]
    with pytest.raises(PredictionStoreError, match="candidate 'alpha=0.7'.*'elsewhere'.*'img4'"):
        run_selection(cands, uris, SelectionSpec(ids, C))


def test_bad_scores_and_labels_inputs(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    with pytest.raises(SelectionError, match="unknown candidate"):
        run_selection(cands, uris, SelectionSpec(ids, C), extra_scores={"mean_entropy": {"nobody": 1.0}})
    with pytest.raises(SelectionError, match="not a registered validator"):
        run_selection(cands, uris, SelectionSpec(ids, C), extra_scores={"mystery": {"default": 1.0}})
    with pytest.raises(SelectionError, match="computed by the selection itself"):
        run_selection(cands, uris, SelectionSpec(ids, C), extra_scores={"f_miou": {"default": 1.0}})
    with pytest.raises(SelectionError, match="true_miou has values for unknown"):
        run_selection(cands, uris, SelectionSpec(ids, C), true_miou={"nobody": 0.5})
    with pytest.raises(PredictionStoreError, match="num_classes=4, expected 3"):
        run_selection(cands, uris, SelectionSpec(ids, 3))


def test_a_chunk_map_runs_every_pass_and_gives_the_same_result(tmp_path):
    cands, uris, ids, maps, truth, _ = degenerate_pair_family(tmp_path, n_images=7)
    one = run_selection(cands, uris, SelectionSpec(ids, 5))
    calls = []

    def shipped_backwards(plan, chunks):  # another order, pickled as Ray would ship them
        calls.append((plan.stage, list(chunks)))
        return [pickle.loads(pickle.dumps(accumulate(plan, a, b))) for a, b in reversed(chunks)]

    fanned = run_selection(cands, uris, SelectionSpec(ids, 5, map_chunks=shipped_backwards, num_chunks=3))
    assert calls == [("first", [(0, 2), (2, 5), (5, 7)]), ("trimmed", [(0, 2), (2, 5), (5, 7)])]
    pd.testing.assert_frame_equal(one.table, fanned.table)
    pd.testing.assert_frame_equal(one.windows, fanned.windows)
    assert one.choice == fanned.choice and one.notes == fanned.notes
    # more chunks than images: one image each
    many = run_selection(cands, uris, SelectionSpec(ids, 5, num_chunks=50))
    pd.testing.assert_frame_equal(one.table, many.table)


def test_a_chunk_map_that_loses_a_chunk_is_an_error(tmp_path):
    cands, uris, ids, *_ = degenerate_pair_family(tmp_path, n_images=7)

    def lossy(plan, chunks):
        return [accumulate(plan, a, b) for a, b in chunks[:-1]]

    with pytest.raises(
        SelectionError, match=r"first pass got image chunks \[\(0, 2\), \(2, 5\)\] for the subset's 7"
    ):
        run_selection(cands, uris, SelectionSpec(ids, 5, map_chunks=lossy, num_chunks=3))


def test_bad_scores_are_refused_before_any_file_is_read(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    uris = {cid: str(tmp_path / "nowhere" / f"{k}.parquet") for k, cid in enumerate(uris)}
    with pytest.raises(SelectionError, match="unknown candidate"):
        run_selection(cands, uris, SelectionSpec(ids, C), extra_scores={"mean_entropy": {"nobody": 1.0}})
    with pytest.raises(SelectionError, match="true_miou has values for unknown"):
        run_selection(cands, uris, SelectionSpec(ids, C), true_miou={"nobody": 0.5})
    with pytest.raises(PredictionStoreError, match="not found"):  # the files' turn only now
        run_selection(cands, uris, SelectionSpec(ids, C))
