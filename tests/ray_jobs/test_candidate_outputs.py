"""ray_jobs.candidate_outputs (no Ray): one call writes the predictions and the evidence of a
candidate, consistent with hiast.predict, and leaves no evidence when a pass fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from jobtools import TINY_MODEL

from hiast.data import build_dataset
from hiast.data.holdout import build_split
from hiast.evidence import predict_mixed, predict_with_pixels
from hiast.models import build_model
from hiast.predict import evaluate, predict_labels
from ray_jobs.candidate_outputs import write_candidate_outputs
from ray_jobs.config import load_job_config
from selection.errors import SelectionError
from selection.store.predictions_reader import read_predictions
from selection.validators import mixval_counts
from selection.validators.evidence import EvidenceSettings, mixval_pairs, read_evidence

REPO = Path(__file__).resolve().parents[2]
SETTINGS = EvidenceSettings(n_pix=50, source_images=2, mixval_seed=3)


@pytest.fixture(scope="module")
def cfg():
    return load_job_config(None, TINY_MODEL)


@pytest.fixture(scope="module")
def model(cfg):
    torch.manual_seed(1)
    return build_model(cfg.model, cfg.data.num_classes).eval()


def test_imports_no_ray():
    code = "import sys, ray_jobs.candidate_outputs; print('ray' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_outputs_match_hiast_predict(cfg, model, tmp_path):
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    ids = target.ids[:4]
    scalars = write_candidate_outputs(
        model,
        cfg,
        candidate_id="alpha=0.3",
        subset_ids=ids,
        predictions_uri=tmp_path / "p.parquet",
        evidence_uri=tmp_path / "e.npz",
        settings=SETTINGS,
    )
    stored = read_predictions(tmp_path / "p.parquet", candidate_id="alpha=0.3", num_classes=19)
    for (sid, labels), (rid, ref) in zip(stored, predict_labels(model, target, ids), strict=True):
        assert sid == rid
        np.testing.assert_array_equal(labels, ref)
    ev = read_evidence(
        tmp_path / "e.npz", candidate_id="alpha=0.3", num_classes=19, subset_ids=ids, settings=SETTINGS
    )
    for k, (sid, labels, probs) in enumerate(predict_with_pixels(model, target, ids, SETTINGS.sampler())):
        np.testing.assert_array_equal(ev.target_probs[k], probs.astype(np.float16))
        px = SETTINGS.sampler()(sid, labels.shape)
        np.testing.assert_array_equal(probs.argmax(1), labels.reshape(-1)[px])
    assert ev.target_shapes.tolist() == [[32, 64]] * 4
    # source-val: pixels of 2 of the 3 images; the mIoU over all of them, as evaluate() computes it
    source = build_dataset(cfg.data.source_val, cfg.data)
    assert list(ev.source_ids) == SETTINGS.source_subset(source.ids) and len(ev.source_ids) == 2
    want = evaluate(model, source, num_classes=19, eval_classes=cfg.data.eval_classes)["miou"]
    assert scalars == {"source_val_miou": pytest.approx(want)} and ev.scalars[
        "source_val_miou"
    ] == pytest.approx(want)
    # MixVal: every pixel of every image is in one probe; one pair recomputed by hand
    assert (ev.mixval_counts[..., 0].sum(axis=(1, 2)) == 32 * 64).all()
    pairs = mixval_pairs(ids, SETTINGS.mixval_seed)
    a, b, mixed = next(predict_mixed(model, target, pairs[:1], SETTINGS.mixval_weight))
    own = dict(predict_labels(model, target, [a, b]))
    np.testing.assert_array_equal(ev.mixval_counts[0], mixval_counts(own[a], own[b], mixed, 19))


def test_mixval_reads_labels_back_when_over_the_memory_budget(cfg, model, tmp_path):
    ids = build_dataset(cfg.data.target, cfg.data, with_labels=False).ids[:3]
    counts = []
    for k, budget in enumerate((10**9, 2 * 32 * 64)):  # the second budget holds only 2 of the 3 maps
        write_candidate_outputs(
            model,
            cfg,
            candidate_id="c",
            subset_ids=ids,
            predictions_uri=tmp_path / f"p{k}.parquet",
            evidence_uri=tmp_path / f"e{k}.npz",
            settings=SETTINGS,
            label_cache_bytes=budget,
        )
        counts.append(read_evidence(tmp_path / f"e{k}.npz").mixval_counts)
    np.testing.assert_array_equal(counts[0], counts[1])
    assert counts[0][..., 0].sum() == 3 * 32 * 64


def _outputs_on_two_images(model, cfg, tmp_path):
    """The candidate's scalars and evidence on the first 2 target images."""
    ids = build_dataset(cfg.data.target, cfg.data, with_labels=False).ids[:2]
    scalars = write_candidate_outputs(
        model,
        cfg,
        candidate_id="c",
        subset_ids=ids,
        predictions_uri=tmp_path / "p.parquet",
        evidence_uri=tmp_path / "e.npz",
        settings=SETTINGS,
    )
    return scalars, read_evidence(tmp_path / "e.npz")


def test_without_source_val(cfg, model, tmp_path):
    no_src = load_job_config(None, {**TINY_MODEL, "data.source_val": None, "data.source_val_holdout": None})
    scalars, ev = _outputs_on_two_images(model, no_src, tmp_path)
    assert scalars == {} and not ev.has_source and ev.has_mixval


def test_held_out_source_val(model, tmp_path):
    """Without data.source_val the source-val pass reads the split held out of data.source."""
    held = load_job_config(
        None, {**TINY_MODEL, "data.source_val": None, "data.source_val_holdout": {"fraction": 0.5, "seed": 3}}
    )
    source_val = build_split(held.data, "source_val")
    assert source_val is not None and len(source_val) == 2  # half of the 4 source images
    assert set(source_val.ids) <= set(build_dataset(held.data.source, held.data).ids)
    scalars, ev = _outputs_on_two_images(model, held, tmp_path)
    want = evaluate(model, source_val, num_classes=19, eval_classes=held.data.eval_classes)["miou"]
    assert scalars == {"source_val_miou": pytest.approx(want)}
    assert list(ev.source_ids) == SETTINGS.source_subset(source_val.ids)


def test_a_failing_pass_leaves_no_evidence(cfg, model, tmp_path):
    ids = build_dataset(cfg.data.target, cfg.data, with_labels=False).ids[:2]
    with pytest.raises(SelectionError, match="fewer than the 5000 pixels"):
        write_candidate_outputs(
            model,
            cfg,
            candidate_id="c",
            subset_ids=ids,
            predictions_uri=tmp_path / "p.parquet",
            evidence_uri=tmp_path / "e.npz",
            settings=EvidenceSettings(n_pix=5000),
        )
    assert not list(tmp_path.iterdir())
