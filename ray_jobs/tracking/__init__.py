"""The job's results where users already look, besides its own outputs: MLflow (optional,
``--mlflow-uri``: :mod:`~ray_jobs.tracking.mlflow_results`) and TensorBoard's HParams view, where
each candidate's F-mIoU is added once the vote has it (:mod:`~ray_jobs.tracking.tensorboard_hparams`).
mlflow itself is imported only when asked for."""

from ray_jobs.tracking.mlflow_results import (
    INSTALL_HINT,
    log_final_results,
    mlflow_callback,
    mlflow_installed,
)
from ray_jobs.tracking.tensorboard_hparams import HPARAMS_EVENT_FILE, METRICS, write_hparams

__all__ = [
    "INSTALL_HINT",
    "mlflow_installed",
    "mlflow_callback",
    "log_final_results",
    "HPARAMS_EVENT_FILE",
    "METRICS",
    "write_hparams",
]
