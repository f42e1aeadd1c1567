"""Atomic checkpoint writes, weights-only reads with errors naming the file, strict state loading."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import hiast.checkpoint as ckpt_mod
from hiast.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
    strip_prefix,
)
from hiast.config import load_config


def _tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_round_trip_typical_payload(tmp_path: Path) -> None:
    model = _tiny_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 8, 8)).mean().backward()
    opt.step()
    cfg = load_config(None).model_dump(mode="json")
    payload = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "config": cfg,
        "round": 2,
        "thresholds": [0.9, 0.75],
        "metrics": {"loss": 0.5, "name": "x", "nested": [1, {"a": None}]},
        "meta": (torch.float16, torch.device("cpu"), torch.Size([2, 3])),
    }
    path = save_checkpoint(tmp_path / "sub" / "dir" / "round2.pt", **payload)
    assert path == tmp_path / "sub" / "dir" / "round2.pt"  # parent folders created
    back = load_checkpoint(path)
    assert back.keys() == payload.keys()
    for k, v in payload["model"].items():
        assert torch.equal(back["model"][k], v)
    assert back["config"] == cfg
    assert back["round"] == 2 and back["thresholds"] == [0.9, 0.75]
    assert back["metrics"] == payload["metrics"]
    assert back["meta"] == payload["meta"]
    opt2 = torch.optim.Adam(_tiny_model().parameters(), lr=1e-3)
    opt2.load_state_dict(back["optimizer"])  # an optimiser state survives weights-only loading
    assert _files(path.parent) == ["round2.pt"]  # no temp file left behind


def test_overwrite_replaces_previous(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, step=1)
    save_checkpoint(path, step=2)
    assert load_checkpoint(path) == {"step": 2}
    assert _files(tmp_path) == ["c.pt"]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_keeps_previous_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, step=1, w=torch.ones(3))
    real_save = torch.save

    def half_written_then_fail(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(10)  # leave a partial file in the temp name, then die
        raise exc

    monkeypatch.setattr(ckpt_mod.torch, "save", half_written_then_fail)
    with pytest.raises(type(exc)):
        save_checkpoint(path, step=2, w=torch.zeros(3))
    monkeypatch.undo()
    back = load_checkpoint(path)
    assert back["step"] == 1 and torch.equal(back["w"], torch.ones(3))
    assert _files(tmp_path) == ["ckpt.pt"]


def test_failed_first_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_replace(src, dst):
        raise OSError("simulated rename failure")

    monkeypatch.setattr(ckpt_mod.os, "replace", fail_replace)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(tmp_path / "new.pt", step=1)
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (np.zeros(3), "stats"),
        (np.float64(0.5), "stats"),
        ({"inner": [1, Path("/x")]}, "stats.inner[1]"),
    ],
)
def test_unloadable_payload_refused_before_writing(tmp_path: Path, value: object, where: str) -> None:
    with pytest.raises(TypeError, match=re.escape(f"checkpoint entry {where} ")):
        save_checkpoint(tmp_path / "c.pt", stats=value)
    assert _files(tmp_path) == []


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_checkpoint(path)


def test_truncated_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "round3.pt"
    save_checkpoint(path, model=_tiny_model().state_dict(), round=3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)


def test_garbage_and_non_dict_files_name_path(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    a_list = tmp_path / "list.pt"
    torch.save([1, 2], a_list)
    with pytest.raises(CheckpointError, match="list.pt.*expected a dict"):
        load_checkpoint(a_list)


def test_file_needing_pickled_code_is_refused(tmp_path: Path) -> None:
    # weights_only must be on: an arbitrary pickled object (here a numpy array) is not loaded.
    path = tmp_path / "pickled.pt"
    torch.save({"x": np.arange(3)}, path)
    with pytest.raises(CheckpointError, match="pickled.pt"):
        load_checkpoint(path)


# --- strict state loading -----------------------------------------------------------------------


def test_load_model_state_exact_and_with_ddp_prefix() -> None:
    src, dst = _tiny_model(), _tiny_model()
    sd = {"module." + k: v for k, v in src.state_dict().items()}
    load_model_state(dst, sd)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)


def test_load_model_state_lists_all_problems_and_loads_nothing() -> None:
    src, dst = _tiny_model(), _tiny_model()
    sd = dict(src.state_dict())
    del sd["0.weight"]
    sd["2.weight"] = torch.zeros(5, 4, 1, 1)
    sd["3.weight"] = torch.zeros(1)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(RuntimeError) as err:
        load_model_state(dst, sd, what="run/warmup.pt")
    msg = str(err.value)
    assert "run/warmup.pt" in msg and "3 problems" in msg
    assert "missing key: 0.weight" in msg
    assert "unexpected key: 3.weight" in msg
    assert "shape mismatch: 2.weight: expected (2, 4, 1, 1), got (5, 4, 1, 1)" in msg
    assert all(torch.equal(before[k], v) for k, v in dst.state_dict().items())


def test_strip_prefix_per_key_and_collision() -> None:
    assert strip_prefix({"module.a": 1, "b": 2, "x.module.c": 3}) == {"a": 1, "b": 2, "x.module.c": 3}
    with pytest.raises(RuntimeError, match="'a'"):
        strip_prefix({"a": 1, "module.a": 2})
