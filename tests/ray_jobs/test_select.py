"""ray_jobs.select's main (no cluster): what it checks before Ray starts, once, and hands the job."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from jobtools import write_config

import ray_jobs.select as select
from ray_jobs.preflight import check_experiment


@pytest.mark.parametrize("restore", [False, True])
def test_main_checks_the_experiment_once_and_hands_its_verdict_to_the_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, restore: bool
) -> None:
    verdicts: list[bool] = []

    def counted(*args, **kwargs) -> bool:
        verdicts.append(check_experiment(*args, **kwargs))  # the real check (nothing saved: False)
        return restore  # as if Tune had saved a run to restore (True) or not

    ran: list[dict] = []

    def job(cfg, storage, **kwargs) -> dict:
        ran.append(kwargs)
        return {"parameters": {"alpha": 0.5}, "candidate_id": "default", "f_miou": 0.5}

    monkeypatch.setattr(select, "check_experiment", counted)
    monkeypatch.setattr(select, "ray_cluster", lambda **options: contextlib.nullcontext())
    monkeypatch.setattr(select, "run", job)
    config = write_config(tmp_path / "c.yaml")
    argv = ["--config", str(config), "--storage", str(tmp_path / "results"), "--quiet"]
    assert select.main([*argv, "--resume"]) == 0
    assert verdicts == [False]  # once, before Ray starts
    (kwargs,) = ran
    assert kwargs["restore"] is restore and "resume" not in kwargs
