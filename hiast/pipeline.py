"""The entry points an orchestrator calls: warm-up, rounds, prediction, evaluation.

``ray_jobs/`` and the single-process CLI both go through these functions and nothing else.
"""

from hiast.predict import evaluate, evaluate_splits, predict_labels, predict_probabilities
from hiast.selftrain import RoundResult, train_rounds
from hiast.training import load_model, resolve_device, seed_everything
from hiast.warmup import run_warmup

__all__ = [
    "RoundResult",
    "evaluate",
    "evaluate_splits",
    "load_model",
    "predict_labels",
    "predict_probabilities",
    "resolve_device",
    "run_warmup",
    "seed_everything",
    "train_rounds",
]
