"""The Ray Tune run over the candidates: one trial per (candidate, replicate).

The trial list is fixed up front (``grid_search`` over explicit trial dicts), so a restored run
has exactly the same trials, and Tune's ``params.json`` holds each trial's parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import ray.tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from ray_jobs.search.trainable import SearchSpec, candidate_trainable
from selection import Candidate

__all__ = ["trial_specs", "param_space", "tune_config", "make_tuner", "trial_dirname"]

log = logging.getLogger("ray_jobs")


def trial_specs(candidates: Sequence[Candidate], replicates: int) -> list[dict[str, Any]]:
    """One dict per trial: the candidate's id, its full parameter dict, its sweeps, the replicate."""
    return [
        {
            "candidate_id": c.id,
            "replicate": r,
            "params": dict(c.params),
            "sweeps": list(c.sweeps),
            "digest": c.digest,
        }
        for c in candidates
        for r in range(replicates)
    ]


def trial_dirname(trial: Trial) -> str:
    """Short, filesystem-safe trial folder name (candidate ids hold '=' and ',')."""
    spec = trial.config["candidate"]
    return f"cand_{spec['digest']}_rep{spec['replicate']}_{trial.trial_id}"


def param_space(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Tune's ``param_space``: a grid over the explicit trial dicts, each trial's config
    ``{"candidate": <its trial dict>}``."""
    return {"candidate": ray.tune.grid_search(trials)}


def tune_config(
    spec: SearchSpec,
    *,
    trial_name_creator: Callable[[Trial], str] | None = None,
    scheduler: TrialScheduler | None = None,
) -> ray.tune.TuneConfig:
    """How Tune runs the trials: as many at once as the layout allows, named by ``trial_dirname``."""
    return ray.tune.TuneConfig(
        max_concurrent_trials=spec.resources.max_concurrent_trials,
        trial_dirname_creator=trial_dirname,
        trial_name_creator=trial_name_creator,
        scheduler=scheduler,
        # The drivers hold nothing between trials: reusing their processes saves a Python
        # start-up and the Ray/torch imports per candidate. Not with early stopping: a paused
        # trial's driver must end, and its Train controller and workers (which it owns) with it.
        reuse_actors=scheduler is None,
    )


def _trainable(spec: SearchSpec):
    # The driver only waits on its TorchTrainer: a sliver of a CPU, or the driver resource.
    return ray.tune.with_resources(
        ray.tune.with_parameters(candidate_trainable, spec=spec), spec.resources.driver
    )


def make_tuner(
    spec: SearchSpec,
    trials: list[dict[str, Any]],
    *,
    trial_max_failures: int,
    callbacks: list[ray.tune.Callback],
    resume: bool,
    trial_name_creator: Callable[[Trial], str] | None = None,
    verbose: int = 1,
    scheduler: TrialScheduler | None = None,
) -> ray.tune.Tuner:
    """A new Tuner over ``trials``, or (``resume``) the one saved in the experiment folder.

    ``trial_name_creator`` names trials in Tune's logs and tables (readable candidate ids, see
    ray_jobs.console); ``verbose`` is Tune's own output level (0-2). A restored Tuner keeps the
    ones it was saved with. ``scheduler``: label-free early stopping's
    (:class:`ray_jobs.search.early_stop.RungScheduler`), or None for Tune's FIFO.
    """
    if resume:
        # Finished trials stay finished; trials that were running or errored when the driver died
        # continue (their Train run restores its last round checkpoint). resume_errored rather
        # than restart_errored: the latter ignores max_concurrent_trials (ray#40652).
        return ray.tune.Tuner.restore(spec.paths.root, _trainable(spec), resume_errored=True)
    return ray.tune.Tuner(
        _trainable(spec),
        param_space=param_space(trials),
        tune_config=tune_config(spec, trial_name_creator=trial_name_creator, scheduler=scheduler),
        run_config=ray.tune.RunConfig(
            name=spec.paths.experiment,
            storage_path=spec.paths.storage,
            failure_config=ray.tune.FailureConfig(max_failures=trial_max_failures),
            callbacks=callbacks,
            verbose=verbose,
        ),
    )
