"""run_selection end to end: table columns, choice, fan-out/merge equivalence, artefacts, bad inputs."""

from __future__ import annotations

import importlib.util
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from selection_families import degenerate_pair_family, noisy, true_miou, write_family

from selection import (
    PredictionStoreError,
    ScoreValues,
    SelectionError,
    accumulate,
    build_candidates,
    image_chunks,
    make_plan,
    merge_accumulators,
    run_selection,
    score_from_accumulators,
)

DEFAULTS = {"alpha": 0.5, "gamma": 8.0, "k": 3}
C = 4


def sweep_setup(tmp_path, replicates=False, n_images=5, seed=0):
    rng = np.random.default_rng(seed)
    cands = build_candidates(DEFAULTS, {"alpha": [0.1, 0.3, 0.7], "gamma": [2.0, 16.0]}, "sweep")
    ids = [f"img{i}" for i in range(n_images)]
    truth = [rng.integers(0, C, (10, 12)).astype(np.uint8) for _ in ids]
    rate = {
        c.id: 0.1 + 0.1 * abs(c.params["alpha"] - 0.4) + 0.02 * abs(np.log2(c.params["gamma"] / 8))
        for c in cands
    }
    maps = {c.id: [noisy(t, rng, rate[c.id], C) for t in truth] for c in cands}
    uris = write_family(tmp_path, cands, maps, ids, C)
    if replicates:
        maps2 = {c.id: [noisy(t, rng, rate[c.id], C) for t in truth] for c in cands}
        uris2 = write_family(tmp_path, cands, maps2, ids, C, tag="r1-")
        uris = {cid: [uris[cid], uris2[cid]] for cid in uris}
    return cands, uris, ids, true_miou(maps, truth, C)


def test_table_columns_and_choice(tmp_path):
    cands, uris, ids, tm = sweep_setup(tmp_path, replicates=True)
    conf = {c.id: 0.9 - 0.01 * k for k, c in enumerate(cands)}
    res = run_selection(
        cands,
        uris,
        ids,
        C,
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
        "picked_in",
        "centre_bound",
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
    ch = res.choice
    assert set(ch) >= {"parameters", "f_miou", "mode", "per_sweep", "centre_bound", "degenerate", "notes"}
    assert ch["mode"] == "sweep" and set(ch["per_sweep"]) == {"alpha", "gamma"}
    for g, info in ch["per_sweep"].items():
        col = d[f"f_miou_trimmed__{g}"].dropna()
        assert info["candidate_id"] == col.idxmax()
        assert ch["parameters"][g] == d.loc[info["candidate_id"], g]
        assert d.loc[info["candidate_id"], "picked_in"].count(g) == 1
    assert ch["parameters"]["k"] == 3
    audit = res.audit
    assert set(audit["score"]) == {
        "f_miou",
        "f_miou_trimmed",
        "mean_confidence",
        "custom",
        "seed_agreement",
        "centre",
        "random",
    }
    assert (audit["regret"] >= 0).all()
    summary = res.audit_summary()
    assert set(summary["score"]) == set(audit["score"])


def test_fan_out_and_merge_equals_one_pass(tmp_path):
    cands, uris, ids, maps, truth, _ = degenerate_pair_family(tmp_path, n_images=7)
    one = run_selection(cands, uris, ids, 5)
    plan = make_plan(cands, uris, ids, 5)
    chunks = image_chunks(len(ids), 3)
    assert chunks == [(0, 2), (2, 5), (5, 7)]
    parts = [pickle.loads(pickle.dumps(accumulate(plan, a, b))) for a, b in chunks]  # as Ray ships them
    first = merge_accumulators(parts)
    second_plan = plan.trimmed(first)
    assert second_plan is not None and set(second_plan.members) == set(plan.candidate_ids)
    second = merge_accumulators([accumulate(second_plan, a, b) for a, b in chunks])
    fanned = score_from_accumulators(plan, first, second)
    pd.testing.assert_frame_equal(one.table, fanned.table)
    assert one.choice == fanned.choice
    with pytest.raises(SelectionError, match="pass-2 accumulator"):
        score_from_accumulators(plan, first, None)


def test_merge_leaves_read_only_parts_untouched(tmp_path):
    cands, uris, ids, *_ = degenerate_pair_family(tmp_path, n_images=6)
    plan = make_plan(cands, uris, ids, 5)
    parts = [accumulate(plan, a, b) for a, b in image_chunks(len(ids), 2)]
    before = [{g: acc.counts for g, acc in p.fusion.items()} for p in parts]

    def freeze(obj, depth=0):  # what ray.get returns: arrays over an immutable buffer
        for value in vars(obj).values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            elif hasattr(value, "__dict__") and depth < 3 and not isinstance(value, type(plan)):
                freeze(value, depth + 1)

    for p in parts:
        freeze(p)
        for acc in p.fusion.values():
            freeze(acc)
    total = merge_accumulators(parts)
    assert total is not parts[0] and total.images == len(ids)
    for g, acc in total.fusion.items():
        np.testing.assert_array_equal(acc.counts, before[0][g] + before[1][g])
    for p, counts in zip(parts, before, strict=True):
        for g, acc in p.fusion.items():
            np.testing.assert_array_equal(acc.counts, counts[g])


def test_artefacts_are_written_atomically_and_valid(tmp_path):
    cands, uris, ids, tm = sweep_setup(tmp_path / "preds")
    res = run_selection(cands, uris, ids, C, true_miou=tm)
    paths = res.write(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["candidates.parquet", "windows.parquet", "audit.parquet", "choice.json", "subset.json", "summary.md"]
    )
    text = (tmp_path / "out" / "choice.json").read_text()
    assert "NaN" not in text
    choice = json.loads(text)
    assert choice["parameters"] == res.choice["parameters"]
    assert choice["subset"]["size"] == len(ids)
    back = pq.read_table(paths["candidates"]).to_pandas()
    assert back["candidate_id"].tolist() == res.table["candidate_id"].tolist()
    assert json.loads((tmp_path / "out" / "subset.json").read_text())["image_ids"] == ids


def test_grid_mode_picks_the_best_candidate(tmp_path):
    rng = np.random.default_rng(5)
    cands = build_candidates(DEFAULTS, {"alpha": [0.3, 0.5, 0.7], "gamma": [4.0, 8.0, 16.0]}, "grid")
    ids = ["i0", "i1", "i2"]
    truth = [rng.integers(0, C, (10, 10)).astype(np.uint8) for _ in ids]
    rate = {c.id: 0.05 + 0.3 * abs(c.params["alpha"] - 0.7) + 0.01 * c.params["gamma"] for c in cands}
    maps = {c.id: [noisy(t, rng, rate[c.id], C) for t in truth] for c in cands}
    res = run_selection(
        cands, write_family(tmp_path, cands, maps, ids, C), ids, C, true_miou=true_miou(maps, truth, C)
    )
    ch = res.choice
    assert ch["mode"] == "grid" and list(ch["per_sweep"]) == ["grid"]
    best = res.table.set_index("candidate_id")["f_miou_trimmed"].idxmax()
    assert (
        ch["candidate_id"] == best
        and ch["parameters"]["alpha"] == res.table.set_index("candidate_id").loc[best, "alpha"]
    )
    centre = res.audit.set_index("score").loc["centre", "pick"]
    assert centre == "alpha=0.5,gamma=8"


def test_combined_sweep_choice_not_trained_is_noted(tmp_path):
    rng = np.random.default_rng(6)
    cands = build_candidates(DEFAULTS, {"alpha": [0.1, 0.9], "gamma": [2.0, 16.0]}, "sweep")
    ids = ["i0", "i1"]
    truth = [rng.integers(0, C, (10, 10)).astype(np.uint8) for _ in ids]
    good = {"alpha=0.9", "gamma=16"}
    maps = {c.id: [t.copy() if c.id in good else noisy(t, rng, 0.3, C) for t in truth] for c in cands}
    res = run_selection(cands, write_family(tmp_path, cands, maps, ids, C), ids, C)
    assert res.choice["parameters"] == {"alpha": 0.9, "gamma": 16.0, "k": 3.0}
    assert res.choice["candidate_id"] is None
    assert any("was not itself a candidate" in n for n in res.notes)


# -- bad inputs -----------------------------------------------------------------------------------


def test_fewer_than_two_candidates(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    with pytest.raises(SelectionError, match="at least 2 candidates"):
        run_selection(cands[:1], {cands[0].id: uris[cands[0].id]}, ids, C)


def test_missing_predictions_file_names_candidate(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    uris["gamma=2"] = str(tmp_path / "gone.parquet")
    with pytest.raises(PredictionStoreError, match=r"candidate 'gamma=2'.*gone\.parquet not found"):
        run_selection(cands, uris, ids, C)
    del uris["gamma=2"]
    with pytest.raises(SelectionError, match=r"no predictions file given for candidate\(s\) \['gamma=2'\]"):
        run_selection(cands, uris, ids, C)


def test_corrupt_predictions_file_names_candidate(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    path = uris["alpha=0.3"]
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-30])
    with pytest.raises(PredictionStoreError, match="candidate 'alpha=0.3'.*corrupt"):
        run_selection(cands, uris, ids, C)


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
        run_selection(cands, uris, ids, C)


def test_bad_scores_and_labels_inputs(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    with pytest.raises(SelectionError, match="unknown candidate"):
        run_selection(cands, uris, ids, C, extra_scores={"mean_entropy": {"nobody": 1.0}})
    with pytest.raises(SelectionError, match="not a known score"):
        run_selection(cands, uris, ids, C, extra_scores={"mystery": {"default": 1.0}})
    with pytest.raises(SelectionError, match="computed by the selection itself"):
        run_selection(cands, uris, ids, C, extra_scores={"f_miou": {"default": 1.0}})
    with pytest.raises(SelectionError, match="true_miou has values for unknown"):
        run_selection(cands, uris, ids, C, true_miou={"nobody": 0.5})
    with pytest.raises(PredictionStoreError, match="num_classes=4, expected 3"):
        run_selection(cands, uris, ids, 3)


def test_selection_imports_no_ray():
    code = "import sys, selection; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_candidates_from_the_project_config_are_valid_settings():
    from hiast.config import load_config

    cfg = load_config(None)  # the embedded synthscape default
    cands = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    assert sum(c.is_default for c in cands) == 1
    for c in cands:
        assert cfg.with_parameters(c.params).parameters() == pytest.approx(c.params)


BENCH = Path(__file__).resolve().parents[2] / "bench"


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


def test_sweeps_vote_without_the_default_candidate(tmp_path):
    # the default's training failed: each sweep votes among its other values, defaults still known
    cands, uris, ids, _ = sweep_setup(tmp_path)
    rest = [c for c in cands if not c.is_default]
    res = run_selection(rest, {c.id: uris[c.id] for c in rest}, ids, C)
    assert res.choice["parameters"]["k"] == 3.0
    assert {g: i["candidate_id"] for g, i in res.choice["per_sweep"].items()}.keys() == {"alpha", "gamma"}
    assert res.choice["parameters"]["alpha"] in (0.1, 0.3, 0.7)
