"""Bad configs fail before Ray starts, with exit status 2 and the offending field named."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
from jobtools import write_config

from ray_jobs.select import main


def run_main(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--config", str(config), "--storage", str(tmp_path / "results")])
    assert not ray.is_initialized()  # refused before connecting to (or starting) a cluster
    assert not (tmp_path / "results").exists()
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"selection.parameters": {"alpha": [0.3], "eta": [1.0]}}, "unknown parameter 'eta'"),
        ({"selection.parameters": {}}, "selection.parameters is empty"),
        ({"selection.parameters": {"alpha": []}}, "parameter 'alpha' has an empty list"),
        ({"selection.parameters": {"alpha": [0.5, 1.5]}}, "selection.parameters.alpha value 1.5"),
        ({"selection.parameters": {"k": [2.5]}}, "selection.parameters.k value 2.5"),
        ({"selection.parameters": {"alpha": [0.5]}}, "selection.parameters.alpha: the sweep holds only"),
        ({"selection.mode": "random"}, "selection.mode"),
        ({"selection.subset_size": 100}, "selection.subset_size is 100"),
        ({"ray.num_workers": 0}, "ray.num_workers"),
        ({"warmup.checkpoint": "/nonexistent/warmup.pt"}, "warmup.checkpoint: file /nonexistent/warmup.pt"),
        ({"selection.rule": "f_mio"}, "selection.rule: unknown rule 'f_mio'"),
        ({"selection.rule": ["f_miou"]}, "selection.rule"),
        (
            {"selection.rule": {"rank_average": ["f_miou", "nope"]}},
            "selection.rule.rank_average[1]: unknown rule 'nope'",
        ),
        (
            {"selection.rule": {"two_stage": {"drop": "f_miou", "fraction": 1.5, "pick": "atc"}}},
            "selection.rule.two_stage.fraction: expected a number in [0, 1), got 1.5",
        ),
        (
            {"selection.rule": "seed_agreement"},
            "selection.rule 'seed_agreement' uses seed_agreement, which needs",
        ),
        (
            {"selection.rule": {"rank_average": ["ensv", "seed_agreement"]}, "selection.replicates": 1},
            "selection.replicates is 1",
        ),
        (
            {"selection.rule": "atc", "data.source_val": None, "data.source_val_holdout": None},
            "selection.rule 'atc' uses atc, which needs a labelled source validation split: data.source_val",
        ),
        (
            {"selection.rule": "dev", "data.source_val": None, "data.source_val_holdout": None},
            "selection.rule 'dev' uses dev, which needs a labelled source validation split: data.source_val",
        ),
        (
            {
                "selection.rule": {"two_stage": {"drop": "source_val_miou", "fraction": 0.5, "pick": "ensv"}},
                "data.source_val": None,
                "data.source_val_holdout": None,
            },
            "uses source_val_miou, which needs a labelled source validation split",
        ),
    ],
)
def test_bad_value_names_the_field(
    overrides: dict, field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_main(write_config(tmp_path / "bad.yaml", **overrides), tmp_path, capsys)
    assert code == 2
    assert field in err


def test_missing_dataset_folder_names_the_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = {"name": "cityscapes", "split": "train", "root": str(tmp_path / "no-cityscapes")}
    code, err = run_main(write_config(tmp_path / "bad.yaml", **{"data.target": target}), tmp_path, capsys)
    assert code == 2
    assert "data.target" in err and "no-cityscapes" in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(tmp_path / "nope.yaml", tmp_path, capsys)
    assert code == 2
    assert "config file not found" in err


def test_a_rule_the_config_can_feed_passes_the_preflight(tmp_path: Path) -> None:
    from ray_jobs.config import load_job_config
    from ray_jobs.select import preflight

    rule = {
        "two_stage": {"drop": "f_miou", "fraction": 0.4, "pick": {"rank_average": ["atc", "seed_agreement"]}}
    }
    cfg = load_job_config(
        write_config(tmp_path / "ok.yaml", **{"selection.rule": rule, "selection.replicates": 2})
    )
    candidates, subset = preflight(cfg)
    assert len(candidates) == 3 and len(subset) == 16
