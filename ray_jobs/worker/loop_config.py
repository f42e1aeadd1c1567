"""What one candidate's Train workers are told: :class:`LoopConfig`, built by its Tune trial.

Ray Train hands ``train_loop_config`` to every worker and documents it as a dict, so the typed
config crosses that boundary as ``{"loop": LoopConfig}`` (:func:`to_train_config`, read back by
:func:`from_train_config`): a dict for Ray, the dataclass itself (pickled, like any argument) for
the worker, with no field list to keep in step on either side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LoopConfig", "to_train_config", "from_train_config"]

_KEY = "loop"


@dataclass(frozen=True)
class LoopConfig:
    """One candidate replicate's Train run: its config, where its inputs and outputs live, and
    how its workers run. The URIs are the experiment's (``storage.ExperimentPaths``)."""

    cfg: dict[str, Any]  # the candidate's JobConfig (base with its parameters), JSON-able
    candidate_id: str
    replicate: int
    params: dict[str, Any]
    seed: int
    warmup_uri: str
    predictions_uri: str
    evidence_uri: str | None  # the voting replicate (0) leaves the evidence the validators read
    result_uri: str
    pseudo_label_cache: str
    subset_ids: list[str]
    use_gpu: bool
    gpu_memory_fraction: float | None
    torch_threads: int
    rung_round: int | None  # early stopping's rung (every replicate waits there); None without it
    vote_actor: str
    rung_predictions_uri: str | None  # replicate 0 at the rung only
    rung_evidence_uri: str | None  # ... and only when the rule reads evidence


def to_train_config(loop: LoopConfig) -> dict[str, Any]:
    """``train_loop_config`` for Ray Train."""
    return {_KEY: loop}


def from_train_config(config: Mapping[str, Any]) -> LoopConfig:
    """The worker's :class:`LoopConfig` from what Ray Train passed it."""
    loop = config.get(_KEY)
    if not isinstance(loop, LoopConfig):
        raise TypeError(
            f"train_loop_config[{_KEY!r}]: expected a LoopConfig (to_train_config), got {type(loop).__name__}"
        )
    return loop
