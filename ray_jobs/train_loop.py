"""One candidate = one Tune trial whose function trainable drives a Ray Train run.

Three plain pieces, as in Ray's Train-in-Tune example:

* :func:`train_loop_per_worker` -- runs on every Train worker: takes its
  :class:`~ray_jobs.loop_config.LoopConfig` from Train's dict and calls
  ``hiast.pipeline.train_rounds``; reports once per self-training round with the round
  checkpoint; rank 0 then writes the candidate's predictions on the subset (and, for replicate 0,
  its evidence file: :mod:`ray_jobs.candidate_outputs`) and its metrics.
* :func:`candidate_trainable` -- the Tune trial: builds a ``TorchTrainer`` and waits for it.
* :func:`warmup_task` -- the warm-up of one replicate, as a plain Ray task.

Everything that touches the method goes through ``hiast.pipeline``; nothing here knows HIAST.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
import ray.tune
import torch
from ray.tune.integration.ray_train import TuneReportCallback

from hiast import pipeline
from hiast.config import HIASTConfig
from hiast.data import build_dataset
from ray_jobs.candidate_outputs import write_candidate_outputs
from ray_jobs.console import train_log_level
from ray_jobs.loop_config import LoopConfig, from_train_config, to_train_config
from ray_jobs.ray_compat import train_health_check_interval_env, train_preemption_watcher_env
from ray_jobs.records import CandidateResult, stopped_early
from ray_jobs.resources import TrialResources
from ray_jobs.storage import ExperimentPaths, exists, fetch_file, upload_file
from ray_jobs.tune_handoff import wait_for_reports_to_reach_tune
from ray_jobs.vote_actor import vote_actor_name
from selection import parse_rule, rule_needs
from selection.store import PredictionWriter

__all__ = [
    "SearchSpec",
    "train_loop_per_worker",
    "candidate_trainable",
    "warmup_task",
    "replicate_seed",
    "checkpoint_round",
    "this_node",
]

log = logging.getLogger("ray_jobs")

_ROUND_FILE = "round.pt"


def replicate_seed(base_seed: int, replicate: int) -> int:
    """Replicate r trains (warm-up and rounds) with its own seed."""
    return base_seed + replicate


@dataclass(frozen=True)
class SearchSpec:
    """What every trial of one search shares (handed to the trainable via ``tune.with_parameters``)."""

    config: dict[str, Any]  # the base HIASTConfig, as JSON-able data
    paths: ExperimentPaths
    subset_ids: list[str]
    resources: TrialResources
    single_node: bool = False  # the cluster is one node and cannot grow


# --------------------------------------------------------------------------------------------
# Train worker


def _cpu_settings(threads: int) -> None:
    # Intra-op threads = the CPUs Ray reserved for this process. (Denormal flushing, which made CPU
    # training 5x faster, is scoped to training inside hiast: hiast.training.denormals_flushed.)
    torch.set_num_threads(threads)


def _device(use_gpu: bool, memory_fraction: float | None) -> torch.device:
    if not use_gpu:
        return torch.device("cpu")
    dev = ray.train.torch.get_device()
    if memory_fraction is not None:
        # Ray does no GPU-memory isolation between candidates sharing a card.
        torch.cuda.set_per_process_memory_fraction(memory_fraction, dev)
    return dev


def checkpoint_round(checkpoint: ray.train.Checkpoint | None) -> int:
    """The self-training round a Train checkpoint of ours holds (0: no checkpoint, a fresh start)."""
    if checkpoint is None:
        return 0
    return int(checkpoint.get_metadata()["round"])


def _restore(checkpoint: ray.train.Checkpoint | None, dest: Path) -> tuple[Path | None, int]:
    """(local round checkpoint, its round) from Train's latest checkpoint; (None, 0) on a fresh start."""
    if checkpoint is None:
        return None, 0
    checkpoint.to_directory(str(dest))
    return dest / _ROUND_FILE, checkpoint_round(checkpoint)


def this_node() -> dict[str, str]:
    """The Ray node this process runs on: its id and its name (the IP unless ``ray start --node-name``)."""
    node_id = ray.get_runtime_context().get_node_id()
    name = next((n["NodeName"] for n in ray.nodes() if n["NodeID"] == node_id), "")
    return {"node": node_id, "node_name": name or ray.util.get_node_ip_address()}


def _write_rung_outputs(cfg: HIASTConfig, checkpoint: Path, loop: LoopConfig, device: torch.device) -> None:
    """Rank 0 of replicate 0, at early stopping's rung: the subset's label maps (and the evidence
    file when the rule reads evidence) of this round's model, for the vote actor's cut."""
    model = pipeline.load_model(checkpoint, device)
    cid, ids = loop.candidate_id, loop.subset_ids
    if loop.rung_evidence_uri is not None:
        write_candidate_outputs(
            model,
            cfg,
            candidate_id=cid,
            subset_ids=ids,
            predictions_uri=loop.rung_predictions_uri,
            evidence_uri=loop.rung_evidence_uri,
            device=device,
        )
        return
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    with PredictionWriter(loop.rung_predictions_uri, cid, cfg.data.num_classes, ids) as w:
        for image_id, labels in pipeline.predict_labels(
            model, target, ids, size=cfg.data.eval_size, device=device
        ):
            w.write(image_id, labels)


def _report_round(
    result: pipeline.RoundResult, rank: int, rung: Callable[[Path], None] | None = None
) -> None:
    metrics: dict[str, Any] = {"round": result.round, **result.metrics}
    if rung is not None:
        # Written before the report: the scheduler pauses the trial on this report and the vote
        # actor reads these files.
        if rank == 0:
            rung(result.checkpoint)
        metrics["rung_outputs"] = 1
    if rank == 0:
        # train_rounds writes the round checkpoint on rank 0 only; Train keeps rank 0's.
        with tempfile.TemporaryDirectory(prefix="hiast-round-") as d:
            try:
                os.link(result.checkpoint, Path(d) / _ROUND_FILE)  # same disk: no copy
            except OSError:
                shutil.copy2(result.checkpoint, Path(d) / _ROUND_FILE)
            checkpoint = ray.train.Checkpoint.from_directory(d)
            checkpoint.set_metadata({"round": result.round})
            ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=f"round_{result.round:03d}")
    else:
        ray.train.report(metrics)


def _wait_at_rung(vote_actor: str, candidate_id: str) -> None:
    """Hold at early stopping's rung until the vote actor has decided.

    Tune pauses the trial on the rung report, which ends this process; without the wait it would
    train on until then (measured: a whole short round, on Ray 2.60). The last trial to reach the
    rung is not paused: the decision comes while it waits. A cut candidate then waits for Tune to
    stop it (the scheduler returns STOP on that same report), so it trains nothing more.
    """
    stopped = ray.get(ray.get_actor(vote_actor).rung_wait.remote())
    if candidate_id in stopped:
        threading.Event().wait()


def _predict_and_evaluate(cfg: HIASTConfig, final: Path, loop: LoopConfig, device: torch.device) -> dict:
    """Rank 0, after the last round: subset predictions (and, for the voting replicate, the
    evidence) to the store, then the labelled metrics."""
    model = pipeline.load_model(final, device)
    ids = loop.subset_ids
    metrics: dict[str, float] = {}
    splits: tuple[str, ...] = ("target_val", "source_val")
    if loop.evidence_uri is not None:
        # Predictions and evidence in one subset pass, then the MixVal pass and the source-val
        # pass, whose source-val mIoU (hiast.predict.evaluate's definition) is the metric too.
        scalars = write_candidate_outputs(
            model,
            cfg,
            candidate_id=loop.candidate_id,
            subset_ids=ids,
            predictions_uri=loop.predictions_uri,
            evidence_uri=loop.evidence_uri,
            device=device,
        )
        if "source_val_miou" in scalars:
            metrics["source_miou"] = scalars["source_val_miou"]
        splits = ("target_val",)
    else:  # another replicate: label maps only, for seed agreement
        target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
        with PredictionWriter(loop.predictions_uri, loop.candidate_id, cfg.data.num_classes, ids) as w:
            for image_id, labels in pipeline.predict_labels(
                model, target, ids, size=cfg.data.eval_size, device=device
            ):
                w.write(image_id, labels)
    # Reported for the dashboard and audit only; the selection never sees true_miou.
    by_split = pipeline.evaluate_splits(model, cfg, splits, device=device)
    keys = {"target_val": "true_miou", "source_val": "source_miou"}
    metrics.update({keys[split]: miou for split, miou in by_split.items()})
    return metrics


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Train worker of one candidate: rounds, per-round reports, then (rank 0) predictions."""
    loop = from_train_config(config)
    cfg = HIASTConfig.model_validate(loop.cfg)
    candidate_id, replicate, seed = loop.candidate_id, loop.replicate, loop.seed
    ctx = ray.train.get_context()
    rank, world_size = ctx.get_world_rank(), ctx.get_world_size()
    _cpu_settings(loop.torch_threads)
    device = _device(loop.use_gpu, loop.gpu_memory_fraction)

    rung_round = loop.rung_round

    def on_round(r: pipeline.RoundResult) -> None:
        at_rung = rung_round is not None and r.round == rung_round
        writes = at_rung and loop.rung_predictions_uri is not None  # replicate 0 only
        rung = (lambda ckpt: _write_rung_outputs(cfg, ckpt, loop, device)) if writes else None
        _report_round(r, rank, rung)
        if at_rung:
            _wait_at_rung(loop.vote_actor, candidate_id)

    with tempfile.TemporaryDirectory(prefix="hiast-cand-") as tmp:
        work = Path(tmp)
        resume_from, _ = _restore(ray.train.get_checkpoint(), work / "resume")
        warmup = fetch_file(loop.warmup_uri, work / "warmup")
        final = pipeline.train_rounds(
            cfg,
            warmup,
            work / "rounds",
            device=device,
            seed=seed,
            resume_from=resume_from,
            pseudo_label_cache=loop.pseudo_label_cache,
            on_round=on_round,
            rank=rank,
            world_size=world_size,
            wrap_model=ray.train.torch.prepare_model if world_size > 1 else None,
        )
        metrics: dict[str, Any] = {}
        if rank == 0:
            metrics = _predict_and_evaluate(cfg, final, loop, device)
            record = CandidateResult(
                candidate_id=candidate_id,
                replicate=replicate,
                seed=seed,
                params=loop.params,
                prediction_uri=loop.predictions_uri,
                evidence_uri=loop.evidence_uri,
                metrics=metrics,
                **this_node(),  # where it trained (the last start, after any restart)
            )
            # Written last: its presence means "this candidate is finished" to a restarted job.
            record.write(loop.result_uri)
        # Every rank reports (report is a barrier); Tune gets rank 0's metrics.
        ray.train.report({"finished": 1, **metrics})


# --------------------------------------------------------------------------------------------
# Tune trial = Train driver


def _loop_config(spec: SearchSpec, trial: dict[str, Any]) -> LoopConfig:
    base = HIASTConfig.model_validate(spec.config)
    cfg = base.with_parameters(trial["params"])
    cid, rep = trial["candidate_id"], trial["replicate"]
    stop = base.selection.early_stop
    # Every replicate waits at early stopping's rung; replicate 0 (the one that votes) leaves outputs.
    rung = stop.after_round if stop is not None else None
    outputs = rung is not None and rep == 0
    needs_evidence = outputs and bool(rule_needs(parse_rule(base.selection.rule)) - {"labels"})
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
    base = HIASTConfig.model_validate(spec.config)
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
        train_loop_config=to_train_config(_loop_config(spec, trial)),
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
            # refused before the search (resources.py).
            failure_config=ray.train.FailureConfig(max_failures=base.ray.worker_max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            callbacks=[TuneReportCallback()],
            logging_config=ray.train.LoggingConfig(log_level=train_log_level()),
        ),
    )
    trainer.fit()
    # Only then return: Ray 2.60 can otherwise deadlock the trial (see tune_handoff).
    wait_for_reports_to_reach_tune()


# --------------------------------------------------------------------------------------------
# Warm-up


def warmup_task(config: dict[str, Any], out_uri: str, seed: int, use_gpu: bool, threads: int) -> str:
    """Train one replicate's warm-up model and store it at ``out_uri`` (skipped if already there)."""
    if exists(out_uri):
        return out_uri
    _cpu_settings(threads)
    device = "cuda" if use_gpu else "cpu"
    cfg = HIASTConfig.model_validate(config)
    with tempfile.TemporaryDirectory(prefix="hiast-warmup-") as d:
        path = pipeline.run_warmup(cfg, Path(d), device=device, seed=seed)
        upload_file(path, out_uri)
    return out_uri
