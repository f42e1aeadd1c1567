"""A broken dataset tree is refused before Ray starts (exit 2), naming the split and the file.

Listing, pairing, emptiness and every file's header are checked by default; a file damaged past its
header, or one stray label value among many files, by ``--check-data`` (see hiast/data/real.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ray
from jobtools import write_config
from PIL import Image

from ray_jobs.config import load_job_config
from ray_jobs.select import main, preflight

H, W = 8, 16
PAIRS = 10  # more than a default check decodes


def write_gta5(root: Path, n: int, ids: tuple[int, ...] = (7, 8, 11, 26)) -> None:
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "images" / f"{n:05d}.png")
    label = Image.fromarray(np.resize(np.array(ids, np.uint8), (H, W)), mode="P")
    label.putpalette([0] * 768)
    label.save(root / "labels" / f"{n:05d}.png")


@pytest.fixture
def gta5(tmp_path: Path) -> Path:
    root = tmp_path / "gta5"
    for n in range(PAIRS):
        write_gta5(root, n)
    return root


def run_job(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str, **data: dict) -> tuple[int, str]:
    config = write_config(tmp_path / "job.yaml", **{f"data.{k}": v for k, v in data.items()})
    code = main(["--config", str(config), "--storage", str(tmp_path / "results"), *args])
    assert not ray.is_initialized()  # refused before connecting to (or starting) a cluster
    assert not (tmp_path / "results").exists()
    return code, capsys.readouterr().err


def gta5_source(root: Path) -> dict:
    return {"source": {"name": "gta5", "root": str(root)}}


def test_a_sound_tree_passes_the_check(gta5: Path) -> None:
    cfg = load_job_config(
        write_config(gta5.parent / "ok.yaml", **{"data.source": gta5_source(gta5)["source"]})
    )
    candidates, subset = preflight(cfg, check_data=True)
    assert len(candidates) == 3 and len(subset) == 16


def test_image_without_its_label(gta5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (gta5 / "labels" / "00004.png").unlink()
    code, err = run_job(tmp_path, capsys, **gta5_source(gta5))
    assert code == 2
    assert "data.source" in err and "labels/00004.png (for image" in err and "images/00004.png" in err


def test_empty_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "cityscapes"
    (root / "leftImg8bit" / "train" / "aachen").mkdir(parents=True)
    code, err = run_job(tmp_path, capsys, target={"name": "cityscapes", "split": "train", "root": str(root)})
    assert code == 2
    assert "data.target" in err and "no images found" in err and "leftImg8bit/train" in err


def test_corrupt_png(gta5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = gta5 / "images" / "00005.png"
    bad.write_bytes(bad.read_bytes()[:20])  # cut inside its header: found by the default check
    code, err = run_job(tmp_path, capsys, **gta5_source(gta5))
    assert code == 2
    assert "data.source" in err and "images/00005.png: not a readable image" in err


def test_png_damaged_past_its_header_with_check_data(
    gta5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = gta5 / "images" / "00005.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: data.index(b"IDAT") + 8])
    code, err = run_job(tmp_path, capsys, "--check-data", **gta5_source(gta5))
    assert code == 2
    assert "data.source" in err and "images/00005.png: cannot read image" in err


def test_label_id_outside_the_map(gta5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_gta5(gta5, 5, ids=(7, 40))  # one file among ten: --check-data finds it
    code, err = run_job(tmp_path, capsys, "--check-data", **gta5_source(gta5))
    assert code == 2
    assert "data.source" in err and "labels/00005.png: label holds values [40]" in err
    for n in range(PAIRS):  # the wrong ids in every file: the default check finds them too
        write_gta5(gta5, n, ids=(7, 40))
    code, err = run_job(tmp_path, capsys, **gta5_source(gta5))
    assert code == 2 and "label holds values [40]" in err
