"""``predict --format cityscapes`` against the Cityscapes benchmark's own evaluation.

A small Cityscapes-layout tree (leftImg8bit + gtFine labelIds and instanceIds) is generated; the
predictions are scored twice: by cityscapesScripts' pixel-level evaluator, run for real in a
subprocess as the benchmark documents it (CITYSCAPES_DATASET / CITYSCAPES_RESULTS), and by the
project's own mIoU (``hiast.metrics`` on the labels our Cityscapes loader reads). Both count
intersections and unions over the whole set, leave pixels of ignored ground-truth classes out, and
average over the classes with a non-empty union, so they must agree to rounding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hiast.checkpoint import save_checkpoint
from hiast.cli import main
from hiast.config import DatasetSpec, load_config
from hiast.data.base import DatasetError
from hiast.data.classes import CITYSCAPES_CLASSES, LABELID_TO_TRAINID, TRAINID_TO_LABELID
from hiast.data.real import CityscapesDataset
from hiast.metrics import confusion_matrix, mean_iou
from hiast.models import build_model
from hiast.predict import cityscapes_name, write_cityscapes_result

H, W = 24, 40
STEMS = {"aachen": ["aachen_000000_000019", "aachen_000001_000019"], "bochum": ["bochum_000000_000313"]}
LABEL_IDS = [c.id for c in CITYSCAPES_CLASSES if c.id >= 0]  # 0..33, ignored classes included


def make_tree(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Images and ground truth of the val split; returns stem -> trainId labels."""
    rng = np.random.default_rng(seed)
    train_ids = {}
    for city, stems in STEMS.items():
        for stem in stems:
            image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            Image.fromarray(image).save(_mk(root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png"))
            # Blocks of labelIds: every evaluated class and some ignored ones (void, parking, caravan).
            ids = np.repeat(np.repeat(rng.choice(LABEL_IDS, (H // 4, W // 4)), 4, 0), 4, 1).astype(np.uint8)
            gt = root / "gtFine" / "val" / city
            Image.fromarray(ids).save(_mk(gt / f"{stem}_gtFine_labelIds.png"))
            # The evaluator also reads instance ids (16-bit: labelId * 1000 + k for objects, the
            # labelId elsewhere); here one instance per object class and image.
            instances = ids.astype(np.uint16)
            objects = ids >= 24  # person .. bicycle
            instances[objects] = instances[objects] * 1000 + 1
            Image.fromarray(instances).save(gt / f"{stem}_gtFine_instanceIds.png")
            train_ids[stem] = LABELID_TO_TRAINID[ids]
    return train_ids


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# cityscapesScripts 2.3.0 (its latest release) calls np.in1d, which numpy 2.4 removed; np.isin(...)
# flattened is numpy's documented replacement. Otherwise the module runs as its own __main__.
_RUN_EVALUATOR = """
import runpy
import numpy as np
if not hasattr(np, "in1d"):
    np.in1d = lambda a, b, invert=False: np.isin(a, b, invert=invert).ravel()
runpy.run_module("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling", run_name="__main__")
"""


def cityscapes_evaluation(dataset_root: Path, results: Path, export: Path) -> dict:
    """cityscapesScripts' evalPixelLevelSemanticLabeling, as the benchmark runs it; its JSON result."""
    export.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CITYSCAPES_DATASET": str(dataset_root),
        "CITYSCAPES_RESULTS": str(results),
        "CITYSCAPES_EXPORT_DIR": str(export),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_EVALUATOR],
        env=env,
        cwd=export,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((export / "resultPixelLevelSemanticLabeling.json").read_text())


def our_miou(dataset_root: Path, predictions: dict[str, np.ndarray]) -> float:
    """hiast.metrics over the labels the project's own Cityscapes loader reads."""
    ds = CityscapesDataset(DatasetSpec(name="cityscapes", split="val", root=dataset_root))
    cm = np.zeros((19, 19), np.int64)
    for sample in ds:
        cm += confusion_matrix(predictions[sample.id], sample.label, 19)
    return float(mean_iou(cm))


def test_train_id_to_label_id_round_trips() -> None:
    assert (LABELID_TO_TRAINID[TRAINID_TO_LABELID[np.arange(19)]] == np.arange(19)).all()
    assert TRAINID_TO_LABELID[255] == 0  # "unlabeled": ignored by the evaluation


def test_names_follow_the_benchmark(tmp_path: Path) -> None:
    name = cityscapes_name("/data/leftImg8bit/test/berlin/berlin_000123_000019_leftImg8bit.png")
    assert name.stem == "berlin_000123_000019"
    assert name.label_ids(tmp_path) == tmp_path / "labelIds/berlin/berlin_000123_000019_gtFine_labelIds.png"
    assert name.color(tmp_path) == tmp_path / "color/berlin/berlin_000123_000019_gtFine_color.png"
    with pytest.raises(DatasetError, match="frame.png: not a Cityscapes image name"):
        cityscapes_name("/x/frame.png")
    with pytest.raises(ValueError, match="not Cityscapes trainIds"):
        write_cityscapes_result(np.full((2, 2), 19, np.uint8), name, tmp_path)


def test_known_predictions_score_the_same_in_both_evaluations(tmp_path: Path) -> None:
    root = tmp_path / "cityscapes"
    truth = make_tree(root)
    rng = np.random.default_rng(1)
    predictions = {}
    for stem, gt in truth.items():
        pred = np.where(gt == 255, rng.integers(0, 19, gt.shape), gt).astype(np.uint8)
        flip = rng.random(gt.shape) < 0.3  # wrong classes, some absent from the ground truth
        pred[flip] = rng.integers(0, 19, int(flip.sum()))
        predictions[stem] = pred
        write_cityscapes_result(pred, cityscapes_name(f"{stem}_leftImg8bit.png"), tmp_path / "out")
    theirs = cityscapes_evaluation(root, tmp_path / "out" / "labelIds", tmp_path / "export")
    ours = our_miou(root, predictions)
    assert 0.2 < ours < 0.95
    assert theirs["averageScoreClasses"] == pytest.approx(ours, abs=1e-12)
    # Perfect predictions are perfect for both.
    for stem, gt in truth.items():
        write_cityscapes_result(gt, cityscapes_name(f"{stem}_leftImg8bit.png"), tmp_path / "perfect")
    perfect = cityscapes_evaluation(root, tmp_path / "perfect" / "labelIds", tmp_path / "export2")
    assert perfect["averageScoreClasses"] == 1.0 == our_miou(root, truth)


def test_predict_cli_writes_what_the_benchmark_evaluates(tmp_path: Path) -> None:
    root = tmp_path / "cityscapes"
    make_tree(root)
    cfg = load_config(None, {"model.width": 4})
    torch.manual_seed(0)
    model = build_model(cfg.model, 19)
    ckpt = save_checkpoint(
        tmp_path / "model.pt",
        model={k: v.detach().clone() for k, v in model.state_dict().items()},
        config=cfg.model_dump(mode="json"),
        stage="warmup",
    )
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(ckpt), "--images", str(root / "leftImg8bit" / "val")]
    assert main([*args, "--out", str(out), "--format", "cityscapes", "--color", "--device", "cpu"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    stems = [s for city in STEMS.values() for s in city]
    assert written == sorted(
        [f"labelIds/{s.split('_')[0]}/{s}_gtFine_labelIds.png" for s in stems]
        + [f"color/{s.split('_')[0]}/{s}_gtFine_color.png" for s in stems]
    )
    files = (out / "labelIds").rglob("*.png")
    label_ids = {p.name.split("_gtFine")[0]: np.asarray(Image.open(p)) for p in files}
    assert all(a.shape == (H, W) and np.isin(a, TRAINID_TO_LABELID[:19]).all() for a in label_ids.values())
    assert np.asarray(Image.open(next((out / "color").rglob("*.png")))).shape == (H, W, 3)

    theirs = cityscapes_evaluation(root, out / "labelIds", tmp_path / "export")
    ours = our_miou(root, {stem: LABELID_TO_TRAINID[a] for stem, a in label_ids.items()})
    assert theirs["averageScoreClasses"] == pytest.approx(ours, abs=1e-12)


def test_predict_cityscapes_refuses_other_names_before_predicting(tmp_path: Path, capsys) -> None:
    cfg = load_config(None, {"model.width": 4})
    ckpt = save_checkpoint(
        tmp_path / "model.pt",
        model={k: v.detach().clone() for k, v in build_model(cfg.model, 19).state_dict().items()},
        config=cfg.model_dump(mode="json"),
        stage="warmup",
    )
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "frame_0001.png")
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(ckpt), "--images", str(images), "--out", str(out)]
    assert main([*args, "--format", "cityscapes", "--device", "cpu"]) == 2
    assert "frame_0001.png: not a Cityscapes image name" in capsys.readouterr().err
    assert not out.exists()
