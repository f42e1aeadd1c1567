"""``hiast-select --plan``: what a search will launch and roughly what it will cost, before it runs.

Nothing is trained or predicted. The plan is built from the config, the checks the job runs
before Ray starts (:func:`ray_jobs.preflight.run_checks`, every one, with its verdict), and the
resources of the cluster the job would use (:func:`ray_jobs.cluster.plan_resources`, the job's
own layout rule). Estimates say what they rest on: the step time (``--step-seconds``, or a
measurement from ``bench/`` for exactly this model, crop, batch and device), and what they leave
out (Ray's start-up per trial, predicting the subset, evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from hiast.models import build_model
from ray_jobs.cluster import ResourceError, TrialResources, plan_resources
from ray_jobs.config import JobConfig
from ray_jobs.preflight.checks import Checks
from ray_jobs.preflight.step_times import measured_step, step_key
from selection import Candidate, rule_needs
from selection.validators import EvidenceSettings

__all__ = ["SearchPlan", "make_plan"]


@dataclass(frozen=True)
class StorageEstimate:
    """Bytes the search writes under the experiment folder, by kind. ``notes`` say what is an
    upper bound and what is left out."""

    checkpoints: int
    predictions: int | None  # None: unknown (no data.eval_size and not synthscape)
    evidence: int
    notes: list[str]

    @property
    def total(self) -> int | None:
        return None if self.predictions is None else self.checkpoints + self.predictions + self.evidence


@dataclass(frozen=True)
class TimeEstimate:
    step_seconds: float
    basis: str
    wall_hours: float | None  # None: the layout does not fit, so how many run at once is unknown
    device_hours: float
    device: str  # "GPU" or "CPU"
    notes: list[str]


@dataclass
class SearchPlan:
    config: str
    experiment: str
    storage_root: str
    rule: str
    mode: str
    candidates: list[dict[str, Any]]
    replicates: int
    trials: int
    cluster: str
    worker: dict[str, float]
    num_workers: int
    concurrent: int | None  # None: the layout does not fit
    rounds: int
    iters_per_round: int
    batch_size: int
    warmup_iters: int  # per replicate; 0 when warmup.checkpoint is given
    subset_size: int
    early_stop: dict[str, Any] | None
    trial_rounds: int  # candidate-rounds over every trial (early stopping's cut included)
    time: TimeEstimate | None
    time_missing: str | None
    storage: StorageEstimate
    verdicts: list[dict[str, Any]]
    resource_error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def checks_failed(self) -> bool:
        return any(v["error"] is not None for v in self.verdicts)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["storage"]["total"] = self.storage.total
        out["checks_failed"] = self.checks_failed
        return out

    def lines(self) -> list[str]:
        out = [f"Plan for {self.config} (experiment {self.experiment!r}, outputs under {self.storage_root})"]
        out.append(f"  rule: {self.rule}   mode: {self.mode}")
        out.append(f"Candidates: {len(self.candidates)}")
        for c in self.candidates:
            out.append(f"  {c['id']:<24} sweep(s): {', '.join(c['sweeps'])}")
        out.append(
            f"Trials: {self.trials} ({len(self.candidates)} candidates x {self.replicates} replicate(s))"
        )
        worker = ", ".join(f"{v:g} {k}" for k, v in self.worker.items())
        if self.concurrent is None:
            out.append(f"Cluster: {self.cluster}: DOES NOT FIT: {self.resource_error}")
        else:
            out.append(
                f"Cluster: {self.cluster}: {self.concurrent} trial(s) at once, each {self.num_workers} "
                f"worker(s) of {worker}"
            )
        out.append(
            f"Per trial: {self.rounds} rounds x {self.iters_per_round} iterations x batch {self.batch_size}"
            + (f"; warm-up {self.warmup_iters} iterations per replicate" if self.warmup_iters else "")
        )
        out.append(f"Subset: {self.subset_size} target images")
        if self.early_stop is None:
            out.append("Early stopping: off (every trial trains every round)")
        else:
            e = self.early_stop
            out.append(
                f"Early stopping: after round {e['after_round']}, keep {e['keep']:g} of each sweep: about "
                f"{e['survivors']} of {len(self.candidates)} candidates train on (ties at the cut keep more)"
            )
        out.append(f"Candidate-rounds: {self.trial_rounds}")
        if self.time is None:
            out.append(f"Time: not estimated: {self.time_missing}")
        else:
            t = self.time
            wall = (
                "wall time unknown (the layout does not fit)"
                if t.wall_hours is None
                else f"about {t.wall_hours:.2f} h wall"
            )
            out.append(
                f"Time: {wall}, about {t.device_hours:.2f} {t.device}-hours "
                f"at {t.step_seconds:g} s per step ({t.basis})"
            )
            out.extend(f"  {n}" for n in t.notes)
        s = self.storage
        pred = "unknown" if s.predictions is None else _size(s.predictions)
        total = "unknown" if s.total is None else _size(s.total)
        out.append(
            f"Storage: about {total}: checkpoints {_size(s.checkpoints)}, predictions {pred}, "
            f"evidence {_size(s.evidence)}"
        )
        out.extend(f"  {n}" for n in s.notes)
        out.append("Checks:")
        for v in self.verdicts:
            if v["error"] is None:
                out.append(f"  ok    {v['check']}: {v['detail']}")
            else:
                # The job's own message, which names the field (prefixed only where it does not).
                named = v["error"].startswith(v["check"])
                out.append(f"  FAIL  {v['error'] if named else v['check'] + ': ' + v['error']}")
        out.extend(f"Note: {n}" for n in self.notes)
        return out


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def _survivors(candidates: Sequence[Candidate], keep: float) -> int:
    """Candidates that train past the rung: the default, plus ``ceil(keep * n)`` of each vote
    group's n others (:mod:`selection.run.early_stop`'s cut, ties aside)."""
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        for g in c.sweeps:
            groups.setdefault(g, []).append(c)
    kept = {c.id for c in candidates if c.is_default}
    for members in groups.values():
        others = [c for c in members if not c.is_default]
        if others:
            kept |= {c.id for c in others[: max(1, math.ceil(keep * len(others)))]}
    return len(kept)


def _model_bytes(cfg: JobConfig) -> int:
    # On the meta device: sizes without memory or weights.
    model_cfg = cfg.model.model_copy(update={"pretrained_backbone": None})
    with torch.device("meta"):
        model = build_model(model_cfg, cfg.data.num_classes)
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _label_pixels(cfg: JobConfig) -> int | None:
    if cfg.data.eval_size is not None:
        h, w = cfg.data.eval_size
        return h * w
    if cfg.data.target.name == "synthscape":
        h, w = cfg.data.synthscape.image_size
        return h * w
    return None


def _evidence_bytes(cfg: JobConfig, subset: int, source_val: int) -> int:
    # The evidence file's arrays (selection.validators.evidence): float16 softmax at n_pix pixels per image,
    # shapes, SND entropies and MixVal counts per target image; labels per source-val pixel.
    s, c = EvidenceSettings(), cfg.data.num_classes
    target = subset * (s.n_pix * c * 2 + 8 + 8 + 2 * c * 2 * 8)
    source = min(source_val, s.source_images) * (s.n_pix * c * 2 + s.n_pix + 8)
    return target + source


def _storage(cfg: JobConfig, n_candidates: int, subset: int, split_sizes: dict[str, int]) -> StorageEstimate:
    reps = cfg.selection.replicates
    trials = n_candidates * reps
    model = _model_bytes(cfg)
    # Train keeps one round checkpoint per trial (student and EMA teacher); one warm-up per replicate.
    checkpoints = trials * 2 * model + reps * model
    stop = cfg.selection.early_stop
    rung = n_candidates if stop is not None else 0
    pixels = _label_pixels(cfg)
    notes = [f"checkpoints: {_size(2 * model)} per trial (student + teacher), {_size(model)} per warm-up"]
    predictions = None
    if pixels is None:
        notes.append("predictions: unknown: data.eval_size is not set, so labels are stored at native size")
    else:
        predictions = (trials + rung) * subset * pixels
        notes.append(
            f"predictions: an upper bound, 1 byte per pixel at {pixels} pixels per image; zstd stores "
            "label maps in far less"
        )
    rule = cfg.selection.rule
    needs_evidence = bool(rule_needs(rule) - {"labels"})
    evidence_files = n_candidates + (n_candidates if stop is not None and needs_evidence else 0)
    source_val = split_sizes.get("source_val", 0)
    evidence = evidence_files * _evidence_bytes(cfg, subset, source_val)
    notes.append(
        f"evidence: {_size(_evidence_bytes(cfg, subset, source_val))} per file, {evidence_files} file(s)"
    )
    notes.append("not counted: round-1 pseudo-labels (PNG, one set per IAS setting) and Tune's logs")
    return StorageEstimate(checkpoints, predictions, evidence, notes)


def _warmup_iters(cfg: JobConfig) -> int:
    w = cfg.warmup
    return 0 if w.checkpoint is not None else w.source_iters + w.adversarial_iters


def _time(
    cfg: JobConfig,
    trial_rounds: int,
    rung_trials: int,
    survivor_trials: int,
    concurrent: int | None,
    step: float,
) -> tuple[float | None, float]:
    """(wall hours, device-hours) of the training steps: warm-ups in parallel, then the trials in
    waves of ``concurrent`` (all to the rung, then the survivors); no wall time without a layout."""
    s, w, r = cfg.selftrain, cfg.warmup, cfg.ray
    per_round = s.iters_per_round * step
    warmup_s = _warmup_iters(cfg) * step * w.batch_size / s.batch_size
    per_worker = (r.gpus_per_worker if r.use_gpu else r.cpus_per_worker) * r.num_workers
    device_s = trial_rounds * per_round * per_worker
    device_s += cfg.selection.replicates * warmup_s * (min(r.gpus_per_worker, 1.0) if r.use_gpu else 1.0)
    if concurrent is None:
        return None, device_s / 3600
    stop = cfg.selection.early_stop
    if stop is None:
        wall = warmup_s + math.ceil(rung_trials / concurrent) * s.rounds * per_round
    else:
        wall = warmup_s + math.ceil(rung_trials / concurrent) * stop.after_round * per_round
        wall += math.ceil(survivor_trials / concurrent) * (s.rounds - stop.after_round) * per_round
    return wall / 3600, device_s / 3600


def make_plan(
    cfg: JobConfig,
    *,
    config_label: str,
    storage_root: str,
    checks: Checks,
    nodes: list[dict[str, float]],
    cluster: str,
    step_seconds: float | None = None,
) -> SearchPlan:
    """The plan of the search ``cfg`` describes on ``nodes`` (total resources of each)."""
    candidates = checks.candidates
    reps = cfg.selection.replicates
    trials = len(candidates) * reps
    resources: TrialResources | None = None
    resource_error = None
    try:
        resources = plan_resources(cfg.ray, nodes, trials, warmups=reps)
    except ResourceError as e:
        resource_error = str(e)
    s = cfg.selftrain
    stop = cfg.selection.early_stop
    survivors = len(candidates)
    early = None
    if stop is not None:
        survivors = _survivors(candidates, stop.keep)
        early = {"after_round": stop.after_round, "keep": stop.keep, "survivors": survivors}
        trial_rounds = trials * stop.after_round + survivors * reps * (s.rounds - stop.after_round)
    else:
        trial_rounds = trials * s.rounds
    subset = len(checks.subset) or cfg.selection.subset_size

    time = None
    time_missing = None
    if step_seconds is not None:
        step, basis = step_seconds, "given with --step-seconds"
    else:
        measured = measured_step(cfg)
        step, basis = (measured.seconds, f"measured: {measured.measured}") if measured else (None, "")
        if measured is None:
            time_missing = (
                f"no step time measured in bench/ for {step_key(cfg)}; pass --step-seconds "
                "(one self-training iteration of one trial, in seconds)"
            )
    if step is not None:
        concurrent = resources.max_concurrent_trials if resources is not None else None
        wall, device_h = _time(cfg, trial_rounds, trials, survivors * reps, concurrent, step)
        notes = [
            "training steps only: Ray's start-up per trial, predicting the subset and evaluation are not "
            "counted",
            "warm-up: assumes a warm-up image costs what a self-training image does",
        ]
        time = TimeEstimate(step, basis, wall, device_h, "GPU" if cfg.ray.use_gpu else "CPU", notes)

    asked = {"CPU": cfg.ray.cpus_per_worker, **({"GPU": cfg.ray.gpus_per_worker} if cfg.ray.use_gpu else {})}
    worker = resources.worker if resources is not None else {**asked, **cfg.ray.worker_resources}
    return SearchPlan(
        config=config_label,
        experiment=cfg.experiment,
        storage_root=storage_root,
        rule=cfg.selection.rule.text,
        mode=cfg.selection.mode,
        candidates=[{"id": c.id, "sweeps": list(c.sweeps), "params": dict(c.params)} for c in candidates],
        replicates=reps,
        trials=trials,
        cluster=cluster,
        worker=worker,
        num_workers=cfg.ray.num_workers,
        concurrent=resources.max_concurrent_trials if resources is not None else None,
        rounds=s.rounds,
        iters_per_round=s.iters_per_round,
        batch_size=s.batch_size,
        warmup_iters=0
        if cfg.warmup.checkpoint is not None
        else cfg.warmup.source_iters + cfg.warmup.adversarial_iters,
        subset_size=subset,
        early_stop=early,
        trial_rounds=trial_rounds,
        time=time,
        time_missing=time_missing,
        storage=_storage(cfg, len(candidates), subset, checks.split_sizes),
        verdicts=[{"check": v.check, "error": v.error, "detail": v.detail} for v in checks.verdicts],
        resource_error=resource_error,
        notes=list(resources.notes) if resources is not None else [],
    )
