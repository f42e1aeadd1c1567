"""Checks that run before Ray starts: the config, the datasets, the rule, and an earlier experiment.

A bad config or a missing dataset costs nothing here; later it would cost a warm-up or a search.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ray.tune

from hiast.config import ConfigError, HIASTConfig
from hiast.data import DatasetError, build_dataset
from ray_jobs.storage import ExperimentPaths, exists, join, read_bytes, write_bytes_atomic
from selection.candidates import Candidate, build_candidates
from selection.errors import SelectionError
from selection.rules import check_rule, rule_needs
from selection.subset import select_subset

__all__ = ["CONFIG_SNAPSHOT", "JobError", "preflight", "check_experiment", "save_config"]

CONFIG_SNAPSHOT = "job_config.json"


class JobError(RuntimeError):
    """The job cannot start or continue as asked (an existing experiment, a resume mismatch)."""


def preflight(cfg: HIASTConfig, *, check_data: bool = False) -> tuple[list[Candidate], list[str]]:
    """Candidates and subset ids; raises naming the field for anything that would fail later.

    Datasets: listing, pairing and emptiness, every file's header and a few decoded files
    (``SegDataset.verify``); ``check_data`` decodes every file.
    """
    try:
        candidates = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
        # An unknown rule, or one the config cannot feed (seed agreement without replicates, ATC
        # without a source-val split), would only fail at the vote, after every training.
        rule = check_rule(
            cfg.selection.rule,
            replicates=cfg.selection.replicates,
            has_source_val=cfg.data.source_val is not None,
        )
    except SelectionError as e:
        raise ConfigError(str(e)) from None
    if cfg.selection.early_stop is not None and "replicates" in rule_needs(rule):
        # Only replicate 0 predicts at the rung.
        raise ConfigError(
            f"selection.early_stop: the rule {rule.text!r} reads seed agreement, which the rung (one "
            "replicate's outputs) cannot give; use another selection.rule or drop selection.early_stop"
        )
    for c in candidates:  # every candidate must itself be a valid config (ranges, integer k)
        cfg.with_parameters(c.params)
    for name in ("model.pretrained_backbone", "warmup.checkpoint"):
        section, field = name.split(".")
        path = getattr(getattr(cfg, section), field)
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{name}: file {path} not found")
    target_ids: list[str] = []
    for split in ("source", "target", "source_val", "target_val"):
        spec = getattr(cfg.data, split)
        if spec is None:
            continue
        try:
            dataset = build_dataset(spec, cfg.data, with_labels=split != "target")
            dataset.verify(full=check_data)
        except (DatasetError, FileNotFoundError) as e:
            raise ConfigError(f"data.{split}: {e}") from None
        if split == "target":
            target_ids = list(dataset.ids)
    try:
        subset = select_subset(target_ids, cfg.selection.subset_size, cfg.selection.subset_seed)
    except SelectionError as e:
        raise ConfigError(str(e)) from None
    return candidates, subset


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    # The ray section may change between a run and its resume (another cluster); nothing else may.
    return {k: v for k, v in config.items() if k != "ray"}


def check_experiment(cfg: HIASTConfig, paths: ExperimentPaths, resume: bool) -> bool:
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


def save_config(cfg: HIASTConfig, paths: ExperimentPaths) -> None:
    # Marks the experiment as started; a later run must --resume it with the same config.
    uri = join(paths.root, CONFIG_SNAPSHOT)
    if not exists(uri):
        write_bytes_atomic(uri, json.dumps(cfg.model_dump(mode="json"), indent=1).encode())
