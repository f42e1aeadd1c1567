"""``hiast-select --plan`` and ``--set``: what a search would launch, from the same code the job runs.

No Ray cluster is started (``--plan`` on this machine reads nothing but the config, the data and
the local node); the job/plan agreement test runs the real tiny job once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray
from jobtools import write_config
from PIL import Image

from ray_jobs.cluster import DRIVER_RESOURCE
from ray_jobs.select import main

H, W = 8, 16


def _png(path: Path, array: np.ndarray, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array, mode="P" if palette else None)
    if palette:
        img.putpalette([0] * 768)
    img.save(path)


@pytest.fixture(scope="module")
def paper_trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny GTA5 and Cityscapes trees (500 target images: the paper config's subset size; 60 GTA5
    images, of which the config's 2% hold-out keeps 1), and a stand-in backbone file (the checks
    only look that it exists)."""
    root = tmp_path_factory.mktemp("paper")
    rng = np.random.default_rng(0)
    label = np.resize(np.array([7, 8, 11, 26], np.uint8), (H, W))
    for n in range(60):
        _png(root / "gta5" / "images" / f"{n:05d}.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        _png(root / "gta5" / "labels" / f"{n:05d}.png", label, palette=True)
    for split, count in (("train", 500), ("val", 3)):
        for n in range(count):
            stem = f"aachen_{n:06d}_000019"
            image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            _png(root / "cityscapes" / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png", image)
            _png(root / "cityscapes" / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelIds.png", label)
    backbone = root / "resnet101.pth"
    backbone.write_bytes(b"not read by --plan")
    return {"gta5": root / "gta5", "cityscapes": root / "cityscapes", "backbone": backbone}


def _paper_sets(trees: dict[str, Path], *extra: str) -> list[str]:
    sets = [
        f"data.source.root={trees['gta5']}",
        f"data.target.root={trees['cityscapes']}",
        f"data.target_val.root={trees['cityscapes']}",
        f"model.pretrained_backbone={trees['backbone']}",
        *extra,
    ]
    return [a for s in sets for a in ("--set", s)]


def _plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main([*args, "--plan", "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_plan_of_the_embedded_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--storage", str(tmp_path / "results"), "--plan"])
    out = capsys.readouterr().out
    assert code == 0
    assert not ray.is_initialized() and not (tmp_path / "results").exists()  # nothing started or written
    assert "Candidates: 11" in out and "alpha=0.1" in out and "sweep(s): alpha, gamma, lambda_i, k" in out
    assert "Trials: 11" in out and "3 rounds x 20 iterations x batch 8" in out
    assert "ok    data.target: 120 images" in out and "ok    experiment: can start" in out
    # The evidence estimate is the writer's own arithmetic: 60 target + 60 source-val images.
    per_file = 60 * (1000 * 19 * 2 + 16 + 2 * 19 * 2 * 8) + 60 * (1000 * 19 * 2 + 1000 + 8)
    code, doc = _plan_json(capsys, "--storage", str(tmp_path / "results"))
    assert doc["storage"]["evidence"] == 11 * per_file


@pytest.fixture
def gpu_machine(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """This machine as a 4-GPU, 32-core one, as --plan would see it (the local node's resources)."""
    node = {"CPU": 32.0, "GPU": 4.0, DRIVER_RESOURCE: 1.0}
    monkeypatch.setattr("ray_jobs.select.local_node_resources", lambda: dict(node))
    return node


def test_plan_of_a_paper_config(
    paper_trees: dict[str, Path], gpu_machine: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", "gta5_to_cityscapes", "--storage", str(tmp_path / "r"), *_paper_sets(paper_trees)]
    start = time.perf_counter()
    code = main([*args, "--plan", "--step-seconds", "0.11"])
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Candidates: 20" in out and "Trials: 20 (20 candidates x 1 replicate(s))" in out
    assert "3 rounds x 8000 iterations x batch 6" in out
    assert "Cluster: this machine (the job would start a local Ray cluster): 4 trial(s) at once" in out
    assert "GPU-hours at 0.11 s per step (given with --step-seconds)" in out
    assert "Storage: about" in out and "ok    selection.subset_size: 500 of 500 target images" in out
    assert "ok    data.source_val (held out of data.source): 1 of 60 source images held out" in out
    # 20 trials x 3 x 8000 steps x 0.11 s, plus the warm-up (40,000 iterations at batch 4 of 6).
    code, doc = _plan_json(capsys, *args, "--step-seconds", "0.11")
    assert code == 0
    warmup = 40000 * 0.11 * 4 / 6
    assert doc["time"]["device_hours"] == pytest.approx((20 * 3 * 8000 * 0.11 + warmup) / 3600)
    assert doc["time"]["wall_hours"] == pytest.approx((warmup + 5 * 3 * 8000 * 0.11) / 3600)  # 5 waves
    assert [c["id"] for c in doc["candidates"]][:2] == ["default", "alpha=0.1"]
    print(f"plan of the paper config: {elapsed:.2f} s")


def test_set_changes_the_planned_rule_and_a_nested_field(
    paper_trees: dict[str, Path], gpu_machine: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", "gta5_to_cityscapes", "--storage", str(tmp_path / "r"), *_paper_sets(paper_trees)]
    _, before = _plan_json(capsys, *args)
    _, after = _plan_json(
        capsys, *args, "--set", "selection.rule=f_miou", "--set", "selftrain.iters_per_round=100"
    )
    assert before["rule"] != "f_miou" and after["rule"] == "f_miou"
    assert after["iters_per_round"] == 100 and after["trial_rounds"] == before["trial_rounds"]


def test_plan_reports_every_failing_check_and_exits_2(
    paper_trees: dict[str, Path], gpu_machine: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = _paper_sets(
        paper_trees, "model.pretrained_backbone=/nonexistent/r101.pth", "selection.subset_size=900"
    )
    code, doc = _plan_json(capsys, "--config", "gta5_to_cityscapes", "--storage", str(tmp_path / "r"), *sets)
    assert code == 2
    failed = {v["check"]: v["error"] for v in doc["verdicts"] if v["error"]}
    assert set(failed) == {"model.pretrained_backbone", "selection.subset_size"}
    assert "/nonexistent/r101.pth not found" in failed["model.pretrained_backbone"]
    assert "has only 500 images" in failed["selection.subset_size"]
    assert len(doc["candidates"]) == 20  # the rest of the plan is still there


def test_plan_exits_3_when_the_layout_cannot_fit(
    paper_trees: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("ray_jobs.select.local_node_resources", lambda: {"CPU": 2.0, "GPU": 0.0})
    args = ["--config", "gta5_to_cityscapes", "--storage", str(tmp_path / "r"), *_paper_sets(paper_trees)]
    code = main([*args, "--plan", "--step-seconds", "0.11"])
    out = capsys.readouterr().out
    assert code == 3
    assert "DOES NOT FIT: ray.use_gpu is true but the cluster has no GPUs" in out
    assert (
        "wall time unknown (the layout does not fit)" in out and "GPU-hours" in out
    )  # the GPU time needs no layout


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["selection.rul=f_miou"], "selection.rul: Extra inputs are not permitted"),
        (["selftrain.rounds=zero"], "selftrain.rounds: Input should be a valid integer"),
        (["seed.value=1"], "override 'seed.value': 'seed' is not a section"),
        (["selftrain.rounds"], "--set expects key=value"),
    ],
)
def test_bad_set_stops_the_job_before_anything_starts(
    sets: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--storage", str(tmp_path / "r"), *(a for s in sets for a in ("--set", s))])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not ray.is_initialized() and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_plan_and_job_agree_and_a_held_out_source_val_feeds_the_source_side_validators(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No data.source_val: the job holds 4 of the 16 source images out, and every candidate gets
    # source-val mIoU, ATC and DEV from them.
    config = write_config(tmp_path / "tiny.yaml", **{"data.source_val": None})
    sets = ["selftrain.rounds=1", "data.source_val_holdout.fraction=0.25", "selection.rule=dev"]
    args = ["--config", str(config), "--storage", str(tmp_path / "results")]
    args += [a for s in sets for a in ("--set", s)]
    code, plan = _plan_json(capsys, *args)
    assert code == 0
    assert any(v["check"] == "data.source_val (held out of data.source)" for v in plan["verdicts"])
    assert main([*args, "--quiet"]) == 0
    root = tmp_path / "results" / plan["experiment"]
    saved = json.loads((root / "job_config.json").read_text())
    assert saved["selftrain"]["rounds"] == 1  # the effective config is what the outputs record
    assert len(json.loads((root / "source_val_holdout.json").read_text())["held_out"]) == 4
    table = pd.read_parquet(root / "candidates.parquet")
    assert sorted(table["candidate_id"]) == sorted(c["id"] for c in plan["candidates"])
    assert len(table) == plan["trials"]
    for column in ("source_val_miou", "atc", "dev", "iwcv"):
        assert table[column].notna().all(), column
    choice = json.loads((root / "choice.json").read_text())
    assert choice["rule"]["text"] == "dev"
    assert choice["source_val"] == {
        "origin": "held out of data.source",
        "images": 4,
        "record": "source_val_holdout.json",
    }
