"""The search: one Ray Tune trial per (candidate, replicate).

* :mod:`~ray_jobs.search.tune_grid`: the trial list and the Tuner over it (a new one or the saved
  one, for ``--resume``).
* :mod:`~ray_jobs.search.trainable`: the Tune function trainable, the driver of one candidate's
  Ray Train run (:mod:`ray_jobs.worker`), and :class:`SearchSpec`, what all trials share.
* :mod:`~ray_jobs.search.early_stop`: label-free early stopping as a Tune scheduler
  (:class:`RungScheduler`), the vote actor deciding the cut.
* :mod:`~ray_jobs.search.tune_handoff`: the wait that lets Train's last report reach Tune.
"""

from ray_jobs.search.early_stop import RungScheduler
from ray_jobs.search.trainable import (
    SearchSpec,
    build_loop_config,
    candidate_trainable,
    replicate_seed,
    result_metrics,
)
from ray_jobs.search.tune_grid import make_tuner, param_space, trial_dirname, trial_specs, tune_config
from ray_jobs.search.tune_handoff import wait_for_reports_to_reach_tune

__all__ = [
    "SearchSpec",
    "replicate_seed",
    "build_loop_config",
    "result_metrics",
    "candidate_trainable",
    "trial_specs",
    "param_space",
    "tune_config",
    "trial_dirname",
    "make_tuner",
    "RungScheduler",
    "wait_for_reports_to_reach_tune",
]
