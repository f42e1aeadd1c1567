"""The job's Tune callbacks. Tune runs them on its event loop, which also serves every trial's
results, checkpoints and failures, so none of them waits there on anything slow.

* :class:`ConsoleProgress`: one console line per candidate event (:mod:`~ray_jobs.callbacks.progress`).
* :class:`ProvisionalVote`: a provisional vote after each finished candidate, sent to the vote
  actor and never waited on (:mod:`~ray_jobs.callbacks.provisional_vote`).
* ``BackgroundMLflowLogger`` (:mod:`ray_jobs.callbacks.mlflow_logger`): Ray's MLflow callback with
  its calls on a background thread. Not imported here: importing it imports mlflow, which only
  ``--mlflow-uri`` needs (:func:`ray_jobs.tracking.mlflow_callback` builds it).
"""

from ray_jobs.callbacks.progress import ConsoleProgress
from ray_jobs.callbacks.provisional_vote import ProvisionalVote

__all__ = ["ConsoleProgress", "ProvisionalVote"]
