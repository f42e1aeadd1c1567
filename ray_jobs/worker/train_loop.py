"""What runs on every Ray Train worker of one candidate: :func:`train_loop_per_worker`.

It takes its :class:`~ray_jobs.worker.loop_config.LoopConfig` from Train's dict and calls
``hiast.pipeline.train_rounds``; reports once per self-training round with the round checkpoint
(at early stopping's rung, after writing the rung outputs, it waits for the vote actor's cut);
rank 0 then writes the candidate's outputs on the subset (:func:`write_outputs`) and its result
record. The Tune trial that starts the run is :mod:`ray_jobs.search.trainable`.

Everything that touches the method goes through ``hiast.pipeline``; nothing here knows HIAST.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
import torch
from torch import nn

from hiast import pipeline
from hiast.data import build_dataset
from ray_jobs.candidate_outputs import write_candidate_outputs
from ray_jobs.config import JobConfig
from ray_jobs.records import CandidateResult
from ray_jobs.storage import fetch_file
from ray_jobs.worker.loop_config import LoopConfig, from_train_config
from ray_jobs.worker.torch_setup import set_cpu_threads, train_device
from selection.store import PredictionWriter

__all__ = [
    "train_loop_per_worker",
    "write_outputs",
    "checkpoint_round",
    "this_node",
]

log = logging.getLogger("ray_jobs")

_ROUND_FILE = "round.pt"


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


def write_outputs(
    model: nn.Module,
    cfg: JobConfig,
    *,
    candidate_id: str,
    subset_ids: list[str],
    predictions_uri: str,
    evidence_uri: str | None,
    device: torch.device,
) -> dict[str, float]:
    """The candidate's label maps on the subset to ``predictions_uri``; with ``evidence_uri``, its
    evidence file too (:func:`ray_jobs.candidate_outputs.write_candidate_outputs`, whose scalars it
    returns). Without it, label maps only (what seed agreement and F-mIoU read): ``{}``."""
    if evidence_uri is not None:
        return write_candidate_outputs(
            model,
            cfg,
            candidate_id=candidate_id,
            subset_ids=subset_ids,
            predictions_uri=predictions_uri,
            evidence_uri=evidence_uri,
            device=device,
        )
    target = build_dataset(cfg.data.target, cfg.data, with_labels=False)
    with PredictionWriter(predictions_uri, candidate_id, cfg.data.num_classes, subset_ids) as w:
        for image_id, labels in pipeline.predict_labels(
            model, target, subset_ids, size=cfg.data.eval_size, device=device
        ):
            w.write(image_id, labels)
    return {}


def _write_rung_outputs(cfg: JobConfig, checkpoint: Path, loop: LoopConfig, device: torch.device) -> None:
    """Rank 0 of replicate 0, at early stopping's rung: the subset's label maps (and the evidence
    file when the rule reads evidence) of this round's model, for the vote actor's cut."""
    write_outputs(
        pipeline.load_model(checkpoint, device),
        cfg,
        candidate_id=loop.candidate_id,
        subset_ids=loop.subset_ids,
        predictions_uri=loop.rung_predictions_uri,
        evidence_uri=loop.rung_evidence_uri,
        device=device,
    )


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


def _predict_and_evaluate(cfg: JobConfig, final: Path, loop: LoopConfig, device: torch.device) -> dict:
    """Rank 0, after the last round: subset predictions (and, for the voting replicate, the
    evidence) to the store, then the labelled metrics."""
    model = pipeline.load_model(final, device)
    metrics: dict[str, float] = {}
    splits: tuple[str, ...] = ("target_val", "source_val")
    # The voting replicate: predictions and evidence in one subset pass, then the MixVal pass and
    # the source-val pass, whose source-val mIoU (hiast.predict.evaluate's definition) is the
    # metric too. Another replicate: label maps only, for seed agreement.
    scalars = write_outputs(
        model,
        cfg,
        candidate_id=loop.candidate_id,
        subset_ids=loop.subset_ids,
        predictions_uri=loop.predictions_uri,
        evidence_uri=loop.evidence_uri,
        device=device,
    )
    if loop.evidence_uri is not None:
        if "source_val_miou" in scalars:
            metrics["source_miou"] = scalars["source_val_miou"]
        splits = ("target_val",)
    # Reported for the dashboard and audit only; the selection never sees true_miou.
    by_split = pipeline.evaluate_splits(model, cfg, splits, device=device)
    keys = {"target_val": "true_miou", "source_val": "source_miou"}
    metrics.update({keys[split]: miou for split, miou in by_split.items()})
    return metrics


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Train worker of one candidate: rounds, per-round reports, then (rank 0) predictions."""
    loop = from_train_config(config)
    cfg = JobConfig.model_validate(loop.cfg)
    candidate_id, replicate, seed = loop.candidate_id, loop.replicate, loop.seed
    ctx = ray.train.get_context()
    rank, world_size = ctx.get_world_rank(), ctx.get_world_size()
    set_cpu_threads(loop.torch_threads)
    device = train_device(loop.use_gpu, loop.gpu_memory_fraction)

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
