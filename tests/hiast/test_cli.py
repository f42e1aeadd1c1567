"""``python -m hiast ...`` through ``hiast.cli.main``: run, train, predict, evaluate, error exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_runs import tiny_cli_sets

from hiast.checkpoint import load_checkpoint
from hiast.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Tiny models: a second intra-op thread only adds contention on a shared machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("cli") / "run"
    rc = main(["run", "--out", str(out), "--device", "cpu", *tiny_cli_sets()])
    return {"rc": rc, "out": out}


def test_run_writes_checkpoints_and_report(run_dir: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_dir["rc"] == 0
    out = run_dir["out"]
    assert (out / "warmup.pt").is_file() and (out / "round1.pt").is_file()
    assert not (out / "round2.pt").exists()
    report = json.loads((out / "report.json").read_text())
    assert set(report) == {"warmup", "hiast"}
    for stage in report.values():
        assert set(stage) == {"source_val", "target_val"}
        assert all(0.0 <= v <= 1.0 for v in stage.values())
    # The --set values reached the run.
    cfg = load_checkpoint(out / "round1.pt")["config"]
    assert cfg["model"]["width"] == 8 and cfg["data"]["synthscape"]["image_size"] == [32, 64]
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_evaluate_prints_miou(run_dir: dict, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_dir["out"]
    report = json.loads((out / "report.json").read_text())
    capsys.readouterr()
    for split in ("target_val", "source_val"):
        rc = main(["evaluate", "--checkpoint", str(out / "round1.pt"), "--device", "cpu", "--split", split])
        assert rc == 0
        printed = json.loads(capsys.readouterr().out)
        assert 0.0 <= printed["miou"] <= 1.0
        assert len(printed["per_class_iou"]) == 19
        # Same checkpoint, same split (config from the checkpoint): the run's own number.
        assert printed["miou"] == pytest.approx(report["hiast"][split])


def test_train_resumes_from_a_round(
    run_dir: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_dir["out"]
    args = ["train", "--warmup", str(out / "warmup.pt"), "--out", str(tmp_path), "--device", "cpu"]
    rc = main([*args, "--resume", str(out / "round1.pt"), *tiny_cli_sets("selftrain.rounds=2")])
    assert rc == 0
    assert (tmp_path / "round2.pt").is_file() and not (tmp_path / "round1.pt").exists()
    assert capsys.readouterr().out.strip() == str(tmp_path / "round2.pt")


def _png(path: Path, h: int, w: int, seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def test_predict_folder_writes_pred_pngs(run_dir: dict, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "a.png", 32, 64, 0)
    _png(images / "b.png", 40, 48, 1)  # another size: predicted at its own size
    preds = tmp_path / "preds"
    ckpt = str(run_dir["out"] / "round1.pt")
    rc = main(
        ["predict", "--checkpoint", ckpt, "--images", str(images), "--out", str(preds), "--device", "cpu"]
    )
    assert rc == 0
    assert sorted(p.name for p in preds.iterdir()) == ["a_pred.png", "b_pred.png"]
    for name, shape in (("a_pred.png", (32, 64)), ("b_pred.png", (40, 48))):
        lab = np.asarray(Image.open(preds / name))
        assert lab.dtype == np.uint8 and lab.shape == shape and lab.max() < 19
    # A list file gives the same maps.
    listing = tmp_path / "list.txt"
    listing.write_text(f"{images / 'a.png'}\n\n{images / 'b.png'}\n")
    rc = main(["predict", "--checkpoint", ckpt, "--images", str(listing), "--out", str(tmp_path / "p2")])
    assert rc == 0
    for name in ("a_pred.png", "b_pred.png"):
        assert (tmp_path / "p2" / name).read_bytes() == (preds / name).read_bytes()


def test_bad_alpha_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", "--out", str(tmp_path / "r"), "--device", "cpu", *tiny_cli_sets("ias.alpha=1.5")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "ias.alpha" in err and "1.5" in err
    assert not (tmp_path / "r").exists()  # failed before anything was written


def test_other_input_errors_exit_2(run_dir: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--out", str(tmp_path / "r"), "--set", "ias.alpha"]) == 2
    assert "key=value" in capsys.readouterr().err
    missing = tmp_path / "no_such_config.yaml"
    assert main(["warmup", "--out", str(tmp_path / "w"), "--config", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    ckpt = str(run_dir["out"] / "round1.pt")
    no_images = tmp_path / "nothing_here"
    rc = main(["predict", "--checkpoint", ckpt, "--images", str(no_images), "--out", str(tmp_path / "p")])
    assert rc == 2
    assert str(no_images) in capsys.readouterr().err
    absent = tmp_path / "absent.pt"
    assert main(["evaluate", "--checkpoint", str(absent), "--device", "cpu"]) == 2
    assert str(absent) in capsys.readouterr().err


def test_truncated_checkpoint_exits_2_naming_it(run_dir: dict, tmp_path: Path, capsys) -> None:
    data = (run_dir["out"] / "round1.pt").read_bytes()
    bad = tmp_path / "round1.pt"
    bad.write_bytes(data[: len(data) // 3])
    assert main(["evaluate", "--checkpoint", str(bad), "--device", "cpu"]) == 2
    assert str(bad) in capsys.readouterr().err


def test_set_through_a_non_section_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["warmup", "--out", str(tmp_path), "--set", "seed.x=1"]) == 2
    assert "seed.x" in capsys.readouterr().err
