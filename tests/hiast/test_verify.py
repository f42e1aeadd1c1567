"""``SegDataset.verify``: what a default check finds from file headers and a few decoded files, and
what only a full check (every file decoded) finds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hiast.cli import main
from hiast.config import DataConfig, DatasetSpec
from hiast.data import build_dataset
from hiast.data.base import DatasetError
from hiast.data.real import GTA5Dataset

H, W = 6, 10
N = 10  # more pairs than a default check decodes (4, spread: 0, 3, 6, 9)


def write_pair(
    root: Path, n: int, ids: list[int] | None = None, label_size: tuple[int, int] = (H, W)
) -> None:
    rng = np.random.default_rng(n)
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(root / "images" / f"{n:05d}.png")
    label = np.resize(np.array(ids or [7, 8, 11, 26], np.uint8), label_size)
    im = Image.fromarray(label, mode="P")
    im.putpalette([0] * 768)
    im.save(root / "labels" / f"{n:05d}.png")


def gta5(root: Path, n: int = N) -> GTA5Dataset:
    for k in range(n):
        write_pair(root, k)
    return GTA5Dataset(DatasetSpec(name="gta5", root=root))


def truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def cut_pixel_data(path: Path) -> None:
    """Keep every header chunk (IHDR, PLTE) and the first bytes of the pixel data."""
    data = path.read_bytes()
    truncate(path, data.index(b"IDAT") + 8)


def test_a_sound_tree_passes_both_checks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ds = gta5(tmp_path)
    with caplog.at_level("INFO", logger="hiast"):
        ds.verify()
        ds.verify(full=True)
    assert "gta5: 10 images and labels checked (headers; 4 decoded)" in caplog.text
    assert "10 decoded" in caplog.text


def test_headers_find_non_images_colour_labels_and_size_mismatches_everywhere(tmp_path: Path) -> None:
    ds = gta5(tmp_path)
    (tmp_path / "images" / "00005.png").write_bytes(b"<html>404 Not Found</html>")  # a failed download
    truncate(tmp_path / "labels" / "00004.png", 20)  # cut inside the PNG header
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "labels" / "00001.png")  # colour
    write_pair(tmp_path, 2, label_size=(H + 2, W))
    with pytest.raises(DatasetError) as e:
        ds.verify()
    msg = str(e.value)
    assert msg.startswith("gta5: 4 bad file(s):")
    assert "images/00005.png: not a readable image" in msg
    assert "labels/00004.png: not a readable image" in msg
    assert "labels/00001.png: a label image must have one channel" in msg
    assert "images/00002.png is 10x6 (WxH) but label" in msg and "labels/00002.png is 10x8" in msg


@pytest.mark.parametrize("where", ["image", "label"])
def test_damage_past_the_header_needs_a_full_check(tmp_path: Path, where: str) -> None:
    ds = gta5(tmp_path)
    bad = tmp_path / ("images" if where == "image" else "labels") / "00005.png"
    cut_pixel_data(bad)
    ds.verify()  # 00005 is not among the decoded few
    with pytest.raises(DatasetError, match=r"1 bad file\(s\):\n  .*00005\.png: cannot read"):
        ds.verify(full=True)


def test_a_stray_label_value_needs_a_full_check_unless_it_is_everywhere(tmp_path: Path) -> None:
    ds = gta5(tmp_path)
    write_pair(tmp_path, 5, ids=[7, 40])
    ds.verify()
    with pytest.raises(DatasetError, match=r"labels/00005\.png: label holds values \[40\]"):
        ds.verify(full=True)
    for k in range(N):  # a whole split of the wrong format: the decoded few find it
        write_pair(tmp_path, k, ids=[7, 200])
    with pytest.raises(DatasetError, match=r"4 bad file\(s\)"):
        ds.verify()


@pytest.mark.slow  # two spawned processes import torch
def test_a_full_check_over_many_files_runs_in_worker_processes(tmp_path: Path) -> None:
    ds = gta5(tmp_path, n=70)  # past the size where the check is spread over processes
    write_pair(tmp_path, 33, ids=[7, 40])
    cut_pixel_data(tmp_path / "images" / "00066.png")
    with pytest.raises(DatasetError) as e:
        ds.verify(full=True)
    assert "2 bad file(s)" in str(e.value)
    assert "00033.png: label holds values [40]" in str(e.value) and "00066.png: cannot read" in str(e.value)


def test_hidden_labels_are_not_checked_and_memory_datasets_have_nothing_to_check(tmp_path: Path) -> None:
    gta5(tmp_path)
    truncate(tmp_path / "labels" / "00003.png", 20)
    spec = DatasetSpec(name="gta5", root=tmp_path)
    data = DataConfig(source=spec, target=spec)
    build_dataset(spec, data, with_labels=False).verify(full=True)
    with pytest.raises(DatasetError, match="00003"):
        build_dataset(spec, data).verify()
    synth = DatasetSpec(name="synthscape", domain="source", split="val")
    build_dataset(synth, DataConfig(source=synth, target=synth)).verify(full=True)


def test_check_data_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gta5(tmp_path / "gta5")
    args = ["check-data", "--set", f"data.source={{name: gta5, root: {tmp_path / 'gta5'}}}"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "data.source: ok",
        "data.target: ok",
        "data.source_val: ok",
        "data.target_val: ok",
    ]
    write_pair(tmp_path / "gta5", 5, ids=[7, 40])
    assert main(args) == 0  # one stray value among ten files: only a full check decodes it
    capsys.readouterr()
    assert main([*args, "--full"]) == 2
    assert "data.source: gta5: 1 bad file(s):" in capsys.readouterr().err
