"""ray_jobs.search.tune_grid (no cluster): the trials and the param space a config gives Tune, the
trial folders' names, and how Tune is told to run them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from jobtools import write_config

from ray_jobs.cluster import DRIVER_RESOURCE, plan_resources
from ray_jobs.config import load_job_config
from ray_jobs.search import RungScheduler, SearchSpec, param_space, trial_dirname, trial_specs, tune_config
from ray_jobs.storage import ExperimentPaths
from selection.candidates import build_candidates

NODES = [{"CPU": 2.0, DRIVER_RESOURCE: 1.0}]


@pytest.fixture
def cfg(tmp_path: Path):
    # The tiny search: a sweep of alpha over 0.3, 0.5 (the default) and 0.7.
    return load_job_config(write_config(tmp_path / "c.yaml", **{"selection.replicates": 2}))


def _spec(cfg, tmp_path: Path, trials: int) -> SearchSpec:
    resources = plan_resources(cfg.ray, NODES, trials, warmups=cfg.selection.replicates)
    paths = ExperimentPaths(str(tmp_path / "store"), cfg.experiment)
    return SearchSpec(cfg.model_dump(mode="json"), paths, ["a", "b"], resources, single_node=True)


def test_one_trial_per_candidate_and_replicate_in_a_grid(cfg) -> None:
    candidates = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    trials = trial_specs(candidates, cfg.selection.replicates)
    assert [(t["candidate_id"], t["replicate"]) for t in trials] == [
        (c.id, r) for c in candidates for r in (0, 1)
    ]
    assert {t["candidate_id"] for t in trials} == {"default", "alpha=0.3", "alpha=0.7"}
    by_id = {c.id: c for c in candidates}
    for t in trials:
        c = by_id[t["candidate_id"]]
        # Every trial carries the candidate's whole parameter set, its sweeps and its digest.
        assert t["params"] == dict(c.params) and t["sweeps"] == list(c.sweeps) and t["digest"] == c.digest
    assert by_id["alpha=0.3"].params["alpha"] == 0.3 and by_id["default"].params["alpha"] == 0.5
    # Tune's grid over exactly those trial dicts: a restored run has the same trials.
    assert param_space(trials) == {"candidate": {"grid_search": trials}}


def test_trial_folders_are_named_by_digest_and_replicate(cfg) -> None:
    candidates = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    trials = trial_specs(candidates, 2)
    names = [trial_dirname(SimpleNamespace(config={"candidate": t}, trial_id="t01")) for t in trials]
    assert names[1] == f"cand_{candidates[0].digest}_rep1_t01"
    assert len(set(names)) == len(trials)
    assert not any(ch in name for name in names for ch in "=,/ ")


def test_tune_runs_as_many_trials_at_once_as_the_layout_allows(cfg, tmp_path: Path) -> None:
    spec = _spec(cfg, tmp_path, 6)
    fifo = tune_config(spec)
    assert fifo.max_concurrent_trials == spec.resources.max_concurrent_trials == 2
    assert fifo.trial_dirname_creator is trial_dirname
    assert fifo.scheduler is None and fifo.reuse_actors is True
    # With early stopping a paused trial's driver must end: no reused drivers.
    scheduler = RungScheduler("hiast-vote-tiny", spec.paths, 1, 6, 2)
    stopping = tune_config(spec, scheduler=scheduler, trial_name_creator=str)
    assert stopping.scheduler is scheduler and stopping.reuse_actors is False
    assert stopping.trial_name_creator is str
