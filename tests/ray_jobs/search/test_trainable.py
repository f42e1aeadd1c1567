"""ray_jobs.search.trainable (no cluster): what one trial's Train workers are told, and the trial of a
restarted job that finds its candidate already finished or cut."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray.train.torch
import ray.tune
from jobtools import write_config

from ray_jobs.cluster import DRIVER_RESOURCE, plan_resources
from ray_jobs.config import JobConfig, load_job_config
from ray_jobs.records import CandidateResult, EarlyStopFile
from ray_jobs.search import SearchSpec, build_loop_config, candidate_trainable, replicate_seed, result_metrics
from ray_jobs.storage import ExperimentPaths
from ray_jobs.worker import LoopConfig
from selection.config import DEFAULT_RULE

SUBSET = ["img00", "img01"]


def _spec(tmp_path: Path, **overrides) -> SearchSpec:
    cfg = load_job_config(write_config(tmp_path / "c.yaml", **{"seed": 7, **overrides}))
    resources = plan_resources(cfg.ray, [{"CPU": 2.0, DRIVER_RESOURCE: 1.0}], 6, warmups=2)
    paths = ExperimentPaths(str(tmp_path / "store"), cfg.experiment)
    return SearchSpec(cfg.model_dump(mode="json"), paths, SUBSET, resources, single_node=True)


def _trial(cid: str = "alpha=0.3", replicate: int = 0, alpha: float = 0.3) -> dict:
    params = {"alpha": alpha, "beta": 0.9, "gamma": 8.0, "k": 3.0}
    return {"candidate_id": cid, "replicate": replicate, "params": params, "sweeps": ["alpha"], "digest": "d"}


def test_replicates_train_with_their_own_seeds() -> None:
    assert [replicate_seed(7, r) for r in range(3)] == [7, 8, 9]


def test_the_voting_replicate_leaves_evidence_the_others_label_maps(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    paths = spec.paths
    rep0 = build_loop_config(spec, _trial())
    assert isinstance(rep0, LoopConfig)
    # The candidate's config is the base with its parameters.
    assert JobConfig.model_validate(rep0.cfg).ias.alpha == 0.3
    assert JobConfig.model_validate(spec.config).ias.alpha == 0.5
    assert (rep0.candidate_id, rep0.replicate, rep0.seed) == ("alpha=0.3", 0, 7)
    assert rep0.params == _trial()["params"] and rep0.subset_ids == SUBSET
    assert rep0.warmup_uri == paths.warmup(0)
    assert rep0.predictions_uri == paths.predictions("alpha=0.3", 0)
    assert rep0.evidence_uri == paths.evidence("alpha=0.3", 0)
    assert rep0.result_uri == paths.result("alpha=0.3", 0)
    assert rep0.pseudo_label_cache == paths.pseudo_label_cache
    assert rep0.vote_actor == "hiast-vote-tiny"
    assert (rep0.use_gpu, rep0.torch_threads) == (False, spec.resources.torch_threads)
    # No early stopping: no rung, nothing written there.
    assert (rep0.rung_round, rep0.rung_predictions_uri, rep0.rung_evidence_uri) == (None, None, None)
    rep1 = build_loop_config(spec, _trial(replicate=1))
    assert (rep1.seed, rep1.warmup_uri, rep1.evidence_uri) == (8, paths.warmup(1), None)
    assert rep1.predictions_uri == paths.predictions("alpha=0.3", 1)


@pytest.mark.parametrize(("rule", "evidence"), [("f_miou", False), ("bnm", True), (DEFAULT_RULE, True)])
def test_at_the_rung_replicate_0_writes_what_the_rule_reads(tmp_path: Path, rule, evidence: bool) -> None:
    spec = _spec(tmp_path, **{"selection.early_stop": {"after_round": 1}, "selection.rule": rule})
    rep0 = build_loop_config(spec, _trial())
    assert rep0.rung_round == 1
    assert rep0.rung_predictions_uri == spec.paths.rung_predictions("alpha=0.3", 1)
    assert rep0.rung_evidence_uri == (spec.paths.rung_evidence("alpha=0.3", 1) if evidence else None)
    # Every replicate waits at the rung; only replicate 0 (the one that votes) leaves outputs there.
    rep1 = build_loop_config(spec, _trial(replicate=1))
    assert (rep1.rung_round, rep1.rung_predictions_uri, rep1.rung_evidence_uri) == (1, None, None)


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """What the trial reports to Tune; building a trainer would fail the test (nothing may train)."""
    reported: list[dict] = []
    monkeypatch.setattr(ray.tune, "report", reported.append)

    def no_training(*args, **kwargs):
        raise AssertionError("the trial built a TorchTrainer")

    monkeypatch.setattr(ray.train.torch, "TorchTrainer", no_training)
    return reported


def test_a_restarted_trial_of_a_finished_candidate_reports_its_result(tmp_path: Path, reports: list) -> None:
    spec = _spec(tmp_path)
    record = CandidateResult(
        candidate_id="alpha=0.3",
        replicate=1,
        seed=8,
        params=_trial()["params"],
        prediction_uri=spec.paths.predictions("alpha=0.3", 1),
        evidence_uri=None,
        metrics={"true_miou": 0.42},
    )
    record.write(spec.paths.result("alpha=0.3", 1))
    candidate_trainable({"candidate": _trial(replicate=1)}, spec)
    assert reports == [{"finished": 1, "true_miou": 0.42}] == [result_metrics(record)]


def test_a_restarted_trial_of_a_cut_candidate_trains_no_more(tmp_path: Path, reports: list) -> None:
    spec = _spec(tmp_path)
    EarlyStopFile(after_round=1, keep=0.5, rule="f_miou", stopped=["alpha=0.3"]).write(spec.paths)
    candidate_trainable({"candidate": _trial()}, spec)
    assert reports == [{"stopped_early": 1}]
