"""Checks that run before Ray starts: the config, the datasets, the rule, and an earlier experiment.

A bad config or a missing dataset costs nothing here; later it would cost a warm-up or a search.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray.tune

from hiast.config import ConfigError
from hiast.data import DatasetError, build_dataset
from hiast.data.holdout import HELD_OUT_CHECK, SPLITS, holdout_applies, source_split
from ray_jobs.config import JobConfig
from ray_jobs.storage import ExperimentPaths, exists, join, read_bytes, write_bytes_atomic
from selection import Candidate, SelectionError, build_candidates, check_rule, rule_needs
from selection.store import select_subset

__all__ = [
    "CONFIG_SNAPSHOT",
    "Checks",
    "JobError",
    "Verdict",
    "check_experiment",
    "preflight",
    "run_checks",
    "save_config",
]

CONFIG_SNAPSHOT = "job_config.json"


class JobError(RuntimeError):
    """The job cannot start or continue as asked (an existing experiment, a resume mismatch)."""


@dataclass(frozen=True)
class Verdict:
    """One check's outcome: ``check`` names the config field or split it is about (``data.source``),
    ``error`` is the message the job would stop with (None: passed), ``detail`` what it found."""

    check: str
    error: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Checks:
    """Every check's verdict in order, and what the passing ones produced."""

    verdicts: list[Verdict] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    subset: list[str] = field(default_factory=list)
    split_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def first_error(self) -> str | None:
        return next((v.error for v in self.verdicts if v.error is not None), None)


class _Stop(Exception):
    pass


def run_checks(cfg: JobConfig, *, check_data: bool = False, stop_at_first: bool = True) -> Checks:
    """The checks the job runs before Ray starts, in order, each with its verdict.

    ``stop_at_first``: the job's way (nothing after a failure is worth its time); ``False`` runs
    every check whose inputs passed, for ``--plan``. Datasets: listing, pairing and emptiness,
    every file's header and a few decoded files (``SegDataset.verify``); ``check_data`` decodes
    every file.
    """
    out = Checks()

    def record(check: str, error: str | None, detail: str = "") -> bool:
        out.verdicts.append(Verdict(check, error, detail))
        if error is not None and stop_at_first:
            raise _Stop
        return error is None

    try:
        _run_checks(cfg, check_data, out, record)
    except _Stop:
        pass
    return out


def _run_checks(cfg: JobConfig, check_data: bool, out: Checks, record: Callable[..., bool]) -> None:
    try:
        out.candidates = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
        record("selection.parameters", None, f"{len(out.candidates)} candidates")
    except SelectionError as e:
        record("selection.parameters", str(e))
    # A rule the config cannot feed (seed agreement without replicates, ATC
    # without a source-val split), would only fail at the vote, after every training.
    rule = None
    try:
        rule = check_rule(
            cfg.selection.rule,
            replicates=cfg.selection.replicates,
            has_source_val=cfg.data.source_val is not None or holdout_applies(cfg.data),
        )
        record("selection.rule", None, rule.text)
    except SelectionError as e:
        record("selection.rule", str(e))
    if cfg.selection.early_stop is not None and rule is not None:
        # Only replicate 0 predicts at the rung.
        if "replicates" in rule_needs(rule):
            record(
                "selection.early_stop",
                f"selection.early_stop: the rule {rule.text!r} reads seed agreement, which the rung (one "
                "replicate's outputs) cannot give; use another selection.rule or drop selection.early_stop",
            )
        else:
            record("selection.early_stop", None, f"after round {cfg.selection.early_stop.after_round}")
    if out.candidates:
        try:
            for c in out.candidates:  # every candidate must itself be a valid config (ranges, integer k)
                cfg.with_parameters(c.params)
            record("candidate configs", None, "every candidate is a valid config")
        except ConfigError as e:
            record("candidate configs", str(e))
    for name in ("model.pretrained_backbone", "warmup.checkpoint"):
        section, attr = name.split(".")
        path = getattr(getattr(cfg, section), attr)
        if path is None:
            continue
        if Path(path).is_file():
            record(name, None, str(path))
        else:
            record(name, f"{name}: file {path} not found")
    target_ids: list[str] | None = None
    for split in SPLITS:
        spec = getattr(cfg.data, split)
        if spec is None:
            continue
        try:
            dataset = build_dataset(spec, cfg.data, with_labels=split != "target")
            dataset.verify(full=check_data)
        except (DatasetError, FileNotFoundError) as e:
            record(f"data.{split}", f"data.{split}: {e}")
            continue
        out.split_sizes[split] = len(dataset)
        what = "every file decoded" if check_data else "headers and a few files decoded"
        record(f"data.{split}", None, f"{len(dataset)} images ({what})")
        if split == "source":
            _check_holdout(cfg, dataset.ids, out, record)
        if split == "target":
            target_ids = list(dataset.ids)
    if target_ids is not None:
        try:
            out.subset = select_subset(target_ids, cfg.selection.subset_size, cfg.selection.subset_seed)
            record("selection.subset_size", None, f"{len(out.subset)} of {len(target_ids)} target images")
        except SelectionError as e:
            record("selection.subset_size", str(e))


def _check_holdout(cfg: JobConfig, ids: list[str], out: Checks, record: Callable[..., bool]) -> None:
    """The held-out source-val split's verdict (its files were checked with data.source's)."""
    try:
        parts = source_split(cfg, ids)
    except ConfigError as e:
        record(HELD_OUT_CHECK, str(e))
        return
    if parts is None:
        return
    out.split_sizes["source"] = len(parts.train)
    out.split_sizes["source_val"] = len(parts.held_out)
    record(
        HELD_OUT_CHECK,
        None,
        f"{len(parts.held_out)} of {parts.source_size} source images held out (seed {parts.settings.seed}), "
        f"{len(parts.train)} left to train on",
    )


def preflight(cfg: JobConfig, *, check_data: bool = False) -> tuple[list[Candidate], list[str]]:
    """Candidates and subset ids; raises ConfigError naming the field for anything that would fail
    later (the first failing check of :func:`run_checks`)."""
    checks = run_checks(cfg, check_data=check_data)
    if checks.first_error is not None:
        raise ConfigError(checks.first_error)
    return checks.candidates, checks.subset


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    # The ray section may change between a run and its resume (another cluster); nothing else may.
    return {k: v for k, v in config.items() if k != "ray"}


def check_experiment(cfg: JobConfig, paths: ExperimentPaths, resume: bool) -> bool:
    """True when a saved Tune run is to be restored. Refuses to mix two different searches.

    Reads storage only, so it runs before Ray starts.
    """
    snapshot_uri = join(paths.root, CONFIG_SNAPSHOT)
    if not exists(snapshot_uri):
        return False  # nothing started here yet (--resume then simply starts)
    if not resume:
        raise JobError(
            f"{paths.root} already holds the experiment {cfg.experiment!r}: pass --resume to continue "
            "it, or choose another --storage or experiment name"
        )
    saved = json.loads(read_bytes(snapshot_uri))
    current = cfg.model_dump(mode="json")
    if _comparable(saved) != _comparable(current):
        changed = sorted(
            k for k in set(saved) | set(current) if k != "ray" and saved.get(k) != current.get(k)
        )
        raise JobError(
            f"--resume: the config differs from the one {paths.root} was started with (sections: "
            f"{', '.join(changed)}); resume with the same config"
        )
    return ray.tune.Tuner.can_restore(paths.root)


def save_config(cfg: JobConfig, paths: ExperimentPaths) -> None:
    # Marks the experiment as started; a later run must --resume it with the same config.
    uri = join(paths.root, CONFIG_SNAPSHOT)
    if not exists(uri):
        write_bytes_atomic(uri, json.dumps(cfg.model_dump(mode="json"), indent=1).encode())
