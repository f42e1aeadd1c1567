"""One candidate = one Tune trial whose function trainable drives a Ray Train run.

As in Ray's Train-in-Tune example: :func:`candidate_trainable` is the Tune trial; it builds a
``TorchTrainer`` over :func:`ray_jobs.worker.train_loop_per_worker`, handing it the
:class:`~ray_jobs.worker.LoopConfig` that :func:`build_loop_config` makes from the search's
:class:`SearchSpec` and the trial's spec, and waits for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import ray.train
import ray.train.torch
import ray.tune
from ray.tune.integration.ray_train import TuneReportCallback

from ray_jobs.cluster import TrialResources
from ray_jobs.config import JobConfig
from ray_jobs.console import train_log_level
from ray_jobs.ray_compat import train_health_check_interval_env, train_preemption_watcher_env
from ray_jobs.records import CandidateResult, stopped_early
from ray_jobs.search.tune_handoff import wait_for_reports_to_reach_tune
from ray_jobs.storage import ExperimentPaths
from ray_jobs.vote import vote_actor_name
from ray_jobs.worker import LoopConfig, to_train_config, train_loop_per_worker
from selection import rule_needs

__all__ = [
    "SearchSpec",
    "replicate_seed",
    "build_loop_config",
    "result_metrics",
    "candidate_trainable",
]


def replicate_seed(base_seed: int, replicate: int) -> int:
    """Replicate r trains (warm-up and rounds) with its own seed."""
    return base_seed + replicate


@dataclass(frozen=True)
class SearchSpec:
    """What every trial of one search shares (handed to the trainable via ``tune.with_parameters``)."""

    config: dict[str, Any]  # the base JobConfig, as JSON-able data
    paths: ExperimentPaths
    subset_ids: list[str]
    resources: TrialResources
    single_node: bool = False  # the cluster is one node and cannot grow


def build_loop_config(spec: SearchSpec, trial: dict[str, Any]) -> LoopConfig:
    """What the Train workers of one trial (``trial``: a ``tune_grid.trial_specs`` entry) are told."""
    base = JobConfig.model_validate(spec.config)
    cfg = base.with_parameters(trial["params"])
    cid, rep = trial["candidate_id"], trial["replicate"]
    stop = base.selection.early_stop
    # Every replicate waits at early stopping's rung; replicate 0 (the one that votes) leaves outputs.
    rung = stop.after_round if stop is not None else None
    outputs = rung is not None and rep == 0
    needs_evidence = outputs and bool(rule_needs(base.selection.rule) - {"labels"})
    return LoopConfig(
        cfg=cfg.model_dump(mode="json"),
        candidate_id=cid,
        replicate=rep,
        params=trial["params"],
        seed=replicate_seed(base.seed, rep),
        warmup_uri=spec.paths.warmup(rep),
        predictions_uri=spec.paths.predictions(cid, rep),
        evidence_uri=spec.paths.evidence(cid, rep) if rep == 0 else None,
        result_uri=spec.paths.result(cid, rep),
        pseudo_label_cache=spec.paths.pseudo_label_cache,
        subset_ids=spec.subset_ids,
        use_gpu=spec.resources.use_gpu,
        gpu_memory_fraction=base.ray.gpu_memory_fraction,
        torch_threads=spec.resources.torch_threads,
        rung_round=rung,
        vote_actor=vote_actor_name(base.experiment),
        rung_predictions_uri=spec.paths.rung_predictions(cid, rung) if outputs else None,
        rung_evidence_uri=spec.paths.rung_evidence(cid, rung) if needs_evidence else None,
    )


def result_metrics(record: CandidateResult) -> dict[str, Any]:
    """What a trial reports to Tune for a candidate replicate that finished."""
    return {"finished": 1, **record.metrics}


def candidate_trainable(config: dict[str, Any], spec: SearchSpec) -> None:
    """A Tune trial: train one candidate (one replicate) with Ray Train, or report it done."""
    trial = config["candidate"]
    record = CandidateResult.read(spec.paths.result(trial["candidate_id"], trial["replicate"]))
    if record is not None:
        # Finished before the job was restarted (Tune's saved state can lag by a few seconds).
        ray.tune.report(result_metrics(record))
        return
    if trial["candidate_id"] in stopped_early(spec.paths):
        # Cut by early stopping before the job was restarted: the decision stands.
        ray.tune.report({"stopped_early": 1})
        return
    base = JobConfig.model_validate(spec.config)
    if not spec.resources.use_gpu:
        # Rounds are short on CPU; the default 2 s poll would add seconds per report. Ray Train
        # hands this variable on to its controller and workers.
        os.environ.setdefault(train_health_check_interval_env(), "0.25")
    if spec.single_node:
        # Train's preemption watcher (an actor per run) watches for nodes being drained under the
        # workers; on a one-node cluster a drain ends the whole job anyway. On 2 CPU cores it cost
        # ~2 CPU-seconds per candidate.
        os.environ.setdefault(train_preemption_watcher_env(), "0")
    trainer = ray.train.torch.TorchTrainer(
        train_loop_per_worker,
        train_loop_config=to_train_config(build_loop_config(spec, trial)),
        scaling_config=ray.train.ScalingConfig(
            num_workers=spec.resources.num_workers,
            use_gpu=spec.resources.use_gpu,
            resources_per_worker=dict(spec.resources.worker),
        ),
        run_config=ray.train.RunConfig(
            # Stable name, no timestamp or random part: a restarted trial finds its run (and its
            # last round checkpoint) again under the same storage path.
            name=f"cand-{ray.tune.get_context().get_trial_id()}",
            storage_path=spec.paths.train_runs,
            # A worker group that cannot be placed is retried forever (controller_failure_limit
            # -1): right while the autoscaler adds a node; layouts that can never fit were
            # refused before the search (ray_jobs.cluster.resources).
            failure_config=ray.train.FailureConfig(max_failures=base.ray.worker_max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            callbacks=[TuneReportCallback()],
            logging_config=ray.train.LoggingConfig(log_level=train_log_level()),
        ),
    )
    trainer.fit()
    # Only then return: Ray 2.60 can otherwise deadlock the trial (see tune_handoff).
    wait_for_reports_to_reach_tune()
