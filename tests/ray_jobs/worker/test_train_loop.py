"""ray_jobs.worker.train_loop (no cluster): the round a checkpoint holds, and the outputs a candidate
leaves on the subset (label maps, and with an evidence file the voting replicate's passes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ray.train
import torch
from jobtools import TINY_MODEL

from hiast.data import build_dataset
from hiast.models import build_model
from hiast.predict import predict_labels
from ray_jobs.candidate_outputs import write_candidate_outputs
from ray_jobs.config import load_job_config
from ray_jobs.worker import checkpoint_round, write_outputs
from selection.store import read_predictions


@pytest.fixture(scope="module")
def cfg():
    return load_job_config(None, TINY_MODEL)


@pytest.fixture(scope="module")
def model(cfg):
    torch.manual_seed(1)
    return build_model(cfg.model, cfg.data.num_classes).eval()


def test_a_fresh_start_is_round_0_and_a_checkpoint_says_its_round(tmp_path: Path) -> None:
    assert checkpoint_round(None) == 0
    checkpoint = ray.train.Checkpoint.from_directory(str(tmp_path))
    checkpoint.set_metadata({"round": 3})
    assert checkpoint_round(ray.train.Checkpoint.from_directory(str(tmp_path))) == 3


def test_label_maps_only_without_an_evidence_file(cfg, model, tmp_path: Path) -> None:
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    ids = target.ids[:3]
    scalars = write_outputs(
        model,
        cfg,
        candidate_id="alpha=0.3",
        subset_ids=ids,
        predictions_uri=str(tmp_path / "p.parquet"),
        evidence_uri=None,
        device=torch.device("cpu"),
    )
    assert scalars == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.parquet"]
    stored = list(read_predictions(tmp_path / "p.parquet", candidate_id="alpha=0.3", num_classes=19))
    expected = list(predict_labels(model, target, ids))
    assert [i for i, _ in stored] == [i for i, _ in expected] == list(ids)
    for (_, labels), (_, ref) in zip(stored, expected, strict=True):
        np.testing.assert_array_equal(labels, ref)


def test_with_an_evidence_file_the_candidates_outputs_are_written(cfg, model, tmp_path: Path) -> None:
    ids = build_dataset(cfg.data.target, cfg.data, with_labels=False).ids[:3]
    scalars = write_outputs(
        model,
        cfg,
        candidate_id="c",
        subset_ids=ids,
        predictions_uri=str(tmp_path / "p.parquet"),
        evidence_uri=str(tmp_path / "e.npz"),
        device=torch.device("cpu"),
    )
    # The same files and scalars as the candidate-outputs passes themselves (default settings).
    want = write_candidate_outputs(
        model,
        cfg,
        candidate_id="c",
        subset_ids=ids,
        predictions_uri=tmp_path / "p2.parquet",
        evidence_uri=tmp_path / "e2.npz",
    )
    assert set(scalars) == {"source_val_miou"} and scalars == pytest.approx(want)
    assert (tmp_path / "p.parquet").read_bytes() == (tmp_path / "p2.parquet").read_bytes()
    with np.load(tmp_path / "e.npz") as got, np.load(tmp_path / "e2.npz") as ref:
        assert sorted(got.files) == sorted(ref.files)
        for name in ref.files:
            np.testing.assert_array_equal(got[name], ref[name])
