"""The source-val split held out of data.source (hiast.data.holdout): deterministic, capped, never
trained on, refused when too small, and overridden by an explicit data.source_val."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from test_verify import write_pair
from tiny_runs import tiny_config

import hiast.warmup
from hiast.cli import main
from hiast.config import ConfigError, DatasetSpec, SourceValHoldout, load_config
from hiast.data import build_dataset
from hiast.data.base import Sample
from hiast.data.holdout import (
    HELD_OUT_CHECK,
    build_split,
    held_out_count,
    holdout_applies,
    split_source_ids,
)
from hiast.data.synthscape import SynthscapeDataset
from hiast.pipeline import run_warmup, train_rounds


def gta5_tree(root: Path, n: int) -> Path:
    for k in range(n):
        write_pair(root, k)
    return root


def gta5_config(root: Path, **overrides: object) -> object:
    """The default config on a GTA5-format source with no data.source_val."""
    return load_config(
        None, {"data.source": {"name": "gta5", "root": str(root)}, "data.source_val": None, **overrides}
    )


def test_the_default_suits_gta5() -> None:
    default = SourceValHoldout()
    assert (default.fraction, default.max_images, default.seed) == (0.02, 500, 0)
    assert held_out_count(24_966, default) == 499  # round(499.32)
    assert held_out_count(100_000, default) == 500  # the cap
    assert held_out_count(125, SourceValHoldout(fraction=0.02)) == 3  # 2.5 rounds half up, not to even


def test_the_cap() -> None:
    ids = [f"{k:05d}" for k in range(1000)]
    split = split_source_ids(ids, SourceValHoldout(fraction=0.5, max_images=7))
    assert len(split.held_out) == 7 and len(split.train) == 993


def test_deterministic_and_independent_of_listing_order() -> None:
    ids = [f"{k:05d}" for k in range(300)]
    holdout = SourceValHoldout(fraction=0.1, seed=4)
    first = split_source_ids(ids, holdout)
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    again = split_source_ids(shuffled, holdout)
    assert first == again and len(first.held_out) == 30
    assert first.held_out == sorted(first.held_out) and first.train == sorted(first.train)
    # Not simply the first images, and the seed matters.
    assert first.held_out != ids[:30]
    assert split_source_ids(ids, SourceValHoldout(fraction=0.1, seed=5)).held_out != first.held_out


def test_disjoint_and_whole_on_a_gta5_tree(tmp_path: Path) -> None:
    root = gta5_tree(tmp_path / "gta5", 40)
    cfg = gta5_config(root, **{"data.source_val_holdout": {"fraction": 0.1, "seed": 2}})
    assert holdout_applies(cfg.data)
    train, held = build_split(cfg.data, "source"), build_split(cfg.data, "source_val")
    assert train is not None and held is not None and held.has_labels
    everything = build_dataset(cfg.data.source, cfg.data).ids
    assert len(held) == 4 and len(train) == 36
    assert not set(train.ids) & set(held.ids) and sorted(train.ids + held.ids) == everything
    # The samples are the source's own, labels included.
    sample = held[0]
    assert sample.id == held.ids[0] and sample.label is not None
    # Built again (a resume, another replicate): the same split.
    assert build_split(cfg.data, "source_val").ids == held.ids  # type: ignore[union-attr]


def test_warmup_and_rounds_never_read_a_held_out_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(
        **{
            "data.source_val": None,
            "data.source_val_holdout": {"fraction": 0.25, "seed": 1},
            "warmup.source_iters": 6,
        }
    )
    given: list[list[str]] = []
    original = hiast.warmup.source_batches

    def recording_batches(dataset, cfg_, batch_size, rng):  # type: ignore[no-untyped-def]
        given.append(list(dataset.ids))
        return original(dataset, cfg_, batch_size, rng)

    # Every image any step reads, whichever dataset object reads it.
    read: set[str] = set()
    load = SynthscapeDataset.load

    def recording_load(self: SynthscapeDataset, i: int) -> Sample:
        sample = load(self, i)
        read.add(sample.id)
        return sample

    monkeypatch.setattr(hiast.warmup, "source_batches", recording_batches)
    monkeypatch.setattr(SynthscapeDataset, "load", recording_load)
    warm = run_warmup(cfg, tmp_path / "warm")
    train_rounds(cfg, warm, tmp_path / "rounds", seed=0)
    held = build_split(cfg.data, "source_val")
    assert held is not None and len(held) == 4  # a quarter of 16
    everything = build_dataset(cfg.data.source, cfg.data).ids
    assert len(given) == 1 and not set(given[0]) & set(held.ids)
    assert sorted(given[0] + held.ids) == everything
    source_read = {i for i in read if i.startswith("source_")}
    assert source_read and source_read <= set(given[0])  # (6 + 2) batches of 2, remainder only
    assert any(i.startswith("target_") for i in read)  # the rounds did read (the target)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"fraction": 0.0}, "data.source_val_holdout.fraction"),
        ({"fraction": 0.6}, "data.source_val_holdout.fraction"),
        ({"max_images": 0}, "data.source_val_holdout.max_images"),
    ],
)
def test_bad_settings_name_the_field(value: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_config(None, {"data.source_val_holdout": value})


def test_too_few_images() -> None:
    ids = [f"{k:02d}" for k in range(20)]
    with pytest.raises(ConfigError, match=r"data.source_val_holdout: .* holds out 0 images; at least 1"):
        split_source_ids(ids, SourceValHoldout(fraction=0.02))
    with pytest.raises(
        ConfigError, match=r"holding out 10 of the 20 .* leaves 10 to train on, fewer than 16"
    ):
        split_source_ids(ids, SourceValHoldout(fraction=0.5), min_train=16)
    assert len(split_source_ids(ids, SourceValHoldout(fraction=0.5), min_train=10).train) == 10


def test_an_explicit_source_val_wins(tmp_path: Path) -> None:
    root = gta5_tree(tmp_path / "gta5", 20)
    val = gta5_tree(tmp_path / "gta5_val", 3)
    cfg = gta5_config(
        root,
        **{
            "data.source_val": {"name": "gta5", "root": str(val)},
            "data.source_val_holdout": {"fraction": 0.5},
        },
    )
    assert not holdout_applies(cfg.data)
    assert build_split(cfg.data, "source").ids == build_dataset(cfg.data.source, cfg.data).ids  # type: ignore[union-attr]
    source_val = build_split(cfg.data, "source_val")
    assert (
        source_val is not None
        and source_val.ids == build_dataset(DatasetSpec(name="gta5", root=val), cfg.data).ids
    )


def test_null_turns_it_off(tmp_path: Path) -> None:
    cfg = gta5_config(gta5_tree(tmp_path / "gta5", 10), **{"data.source_val_holdout": None})
    assert not holdout_applies(cfg.data) and build_split(cfg.data, "source_val") is None
    assert len(build_split(cfg.data, "source")) == 10  # type: ignore[arg-type]


def test_the_packaged_configs_state_it() -> None:
    for name in ("gta5_to_cityscapes", "synthia_to_cityscapes"):
        data = load_config(name).data
        assert data.source_val is None and data.source_val_holdout == SourceValHoldout()
        assert holdout_applies(data)
    robotcar = load_config("cityscapes_to_robotcar").data
    assert robotcar.source_val is not None and robotcar.source_val_holdout is None
    assert load_config(None).data.source_val is not None  # the embedded default keeps its own


def test_check_data_covers_the_held_out_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = gta5_tree(tmp_path / "gta5", 40)
    source = f"data.source={{name: gta5, root: {root}}}"
    args = ["check-data", "--set", source, "--set", "data.source_val=null", "--set", "warmup.batch_size=2"]
    assert main([*args, "--set", "data.source_val_holdout.fraction=0.1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "data.source: ok",
        f"{HELD_OUT_CHECK}: ok, 4 of 40 images held out, 36 left to train on",
        "data.target: ok",
        "data.target_val: ok",
    ]
    assert main([*args, "--set", "data.source_val_holdout.fraction=0.01"]) == 2  # 0.4 rounds to 0
    assert (
        "data.source_val_holdout: fraction 0.01 of the 40 source images holds out 0"
        in capsys.readouterr().err
    )
