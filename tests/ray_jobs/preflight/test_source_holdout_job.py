"""The held-out source-val split in the job: its pre-start verdict, the exit 2 of a bad hold-out
before Ray starts, the rule check that sees it, and ``source_val_holdout.json``. No Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jobtools import write_config
from test_bad_data import run_job, write_gta5

from hiast.data.holdout import HELD_OUT_CHECK, build_split
from ray_jobs.config import load_job_config
from ray_jobs.preflight import (
    HoldoutError,
    HoldoutRecord,
    JobError,
    read_holdout,
    record_source_holdout,
    run_checks,
    write_holdout,
)
from ray_jobs.storage import ExperimentPaths


def gta5(root: Path, n: int) -> dict:
    for k in range(n):
        write_gta5(root, k)
    return {"name": "gta5", "root": str(root)}


def test_the_verdict_and_the_rule(tmp_path: Path) -> None:
    source = gta5(tmp_path / "gta5", 60)
    cfg = load_job_config(
        write_config(
            tmp_path / "job.yaml",
            **{"data.source": source, "data.source_val": None, "selection.rule": "atc"},
        )
    )
    checks = run_checks(cfg)
    assert checks.first_error is None
    names = [v.check for v in checks.verdicts]
    # Every existing verdict keeps its name; the held-out split's comes right after its source.
    assert names[names.index("data.source") + 1] == HELD_OUT_CHECK
    assert {"selection.rule", "data.target", "data.target_val"} <= set(names)
    verdict = checks.verdicts[names.index(HELD_OUT_CHECK)]
    assert verdict.detail == "1 of 60 source images held out (seed 0), 59 left to train on"  # round(1.2)
    assert checks.split_sizes["source_val"] == 1 and checks.split_sizes["source"] == 59
    # ATC needs source-val: with the hold-out off, the same rule is refused.
    off = load_job_config(
        write_config(
            tmp_path / "off.yaml",
            **{
                "data.source": source,
                "data.source_val": None,
                "data.source_val_holdout": None,
                "selection.rule": "atc",
            },
        )
    )
    assert "needs a labelled source validation split" in (run_checks(off).first_error or "")


def test_too_few_left_exits_2_before_ray(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = gta5(tmp_path / "gta5", 10)
    code, err = run_job(
        tmp_path, capsys, source=source, source_val=None, source_val_holdout={"fraction": 0.5}
    )
    assert code == 2
    # jobtools' warm-up batch is 4: at least 8 must be left.
    assert (
        "data.source_val_holdout: holding out 5 of the 10 source images leaves 5 to train on, fewer than 8"
        in err
    )


def test_none_held_out_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = gta5(tmp_path / "gta5", 10)
    code, err = run_job(tmp_path, capsys, source=source, source_val=None)
    assert code == 2
    assert "data.source_val_holdout: fraction 0.02 of the 10 source images holds out 0 images" in err


def test_the_outputs_file_round_trip(tmp_path: Path) -> None:
    record = HoldoutRecord(held_out=["00003", "00017"], source_size=40, fraction=0.05, max_images=500, seed=2)
    uri = str(tmp_path / "source_val_holdout.json")
    write_holdout(uri, record)
    assert read_holdout(uri) == record and record.trained_on == 38
    doc = json.loads(Path(uri).read_text())
    assert doc["format"] == "hiast-select/source-val-holdout/v1" and doc["trained_on"] == 38
    doc["held_out"].append("00020")  # edited by hand: no longer adds up
    Path(uri).write_text(json.dumps(doc))
    with pytest.raises(HoldoutError, match="trained_on does not match"):
        read_holdout(uri)
    with pytest.raises(HoldoutError, match="not found"):
        read_holdout(str(tmp_path / "missing.json"))


def test_the_job_records_it_once(tmp_path: Path) -> None:
    source = gta5(tmp_path / "gta5", 60)
    overrides = {"data.source": source, "data.source_val": None}
    cfg = load_job_config(write_config(tmp_path / "job.yaml", **overrides))
    paths = ExperimentPaths(str(tmp_path / "results"), cfg.experiment)
    record = record_source_holdout(cfg, paths.source_val_holdout)
    held = build_split(cfg.data, "source_val")
    assert record is not None and held is not None
    assert record.held_out == held.ids and record.source_size == 60
    assert read_holdout(paths.source_val_holdout) == record
    assert record_source_holdout(cfg, paths.source_val_holdout) == record  # a resume: the same split
    moved = load_job_config(
        write_config(tmp_path / "moved.yaml", **overrides, **{"data.source_val_holdout.seed": 9})
    )
    with pytest.raises(JobError, match="holds another source-val hold-out"):
        record_source_holdout(moved, paths.source_val_holdout)
    explicit = load_job_config(write_config(tmp_path / "explicit.yaml", **{"data.source": source}))
    other = ExperimentPaths(str(tmp_path / "other"), cfg.experiment)
    assert record_source_holdout(explicit, other.source_val_holdout) is None
    assert not Path(other.source_val_holdout).exists()


def test_a_given_warmup_checkpoint_is_flagged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = gta5(tmp_path / "gta5", 60)
    overrides = {"data.source": source, "data.source_val": None, "warmup.checkpoint": str(tmp_path / "w.pt")}
    cfg = load_job_config(write_config(tmp_path / "job.yaml", **overrides))
    with caplog.at_level("WARNING", logger="ray_jobs"):
        record_source_holdout(cfg, str(tmp_path / "source_val_holdout.json"))
    assert "may have seen the held-out source-val images (1)" in caplog.text
