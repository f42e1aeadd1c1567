"""The search job's config: the method's (``hiast.config.HIASTConfig``) with the ``selection``
section (``selection.config``) and the ``ray`` section (here), checked together.

One YAML file still configures a whole run; what needs both halves (a swept parameter exists and
each of its values is a valid setting; early stopping before the last round) is checked here, so a
bad field stops the job, named, before anything starts.
"""

from __future__ import annotations

import os
from importlib.resources.abc import Traversable
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hiast.config import TUNABLE_PARAMETERS, ConfigError, HIASTConfig, load_config
from selection import SelectionConfig

__all__ = ["JobConfig", "RayConfig", "load_job_config"]


# Resources with their own RayConfig fields (or none a job should ask for by name).
_BUILTIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")


class RayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    num_workers: int = Field(1, ge=1, description="Train workers (DDP ranks) per candidate")
    use_gpu: bool = False
    gpus_per_worker: float = Field(1.0, gt=0)
    cpus_per_worker: float = Field(1.0, gt=0)
    # Custom resources each Train worker (and each warm-up) asks for on top of CPUs and GPUs, e.g.
    # {a10g: 1} on a cluster whose GPU nodes declare `--resources='{"a10g": 1}'`: the candidates
    # then land only on those nodes, as many at once as the nodes declare.
    worker_resources: dict[str, float] = Field(default_factory=dict)
    max_concurrent_trials: int | None = Field(None, ge=1)
    trial_max_failures: int = Field(1, ge=0, description="Tune-level restarts of a candidate")
    worker_max_failures: int = Field(1, ge=0, description="Train-level restarts of the worker group")
    # Cap of the GPU memory one worker may take when several candidates share a card.
    gpu_memory_fraction: float | None = Field(None, gt=0, le=1)

    @field_validator("worker_resources")
    @classmethod
    def _custom_resources(cls, v: dict[str, float]) -> dict[str, float]:
        for name, amount in v.items():
            if name in _BUILTIN_RESOURCES:
                raise ValueError(
                    f"{name!r} is not a custom resource; use cpus_per_worker / gpus_per_worker"
                    if name in ("CPU", "GPU")
                    else f"{name!r} is not a custom resource"
                )
            if not name or name.startswith("node:"):
                raise ValueError(f"{name!r} is not a custom resource name")
            if not amount > 0:
                raise ValueError(f"{name}: the amount must be > 0, got {amount!r}")
            if amount > 1 and amount != int(amount):
                # Ray's own rule, checked here so it fails before anything starts.
                raise ValueError(f"{name}: above 1, Ray hands out only whole units, got {amount!r}")
        return v


class JobConfig(HIASTConfig):
    """What ``hiast-select`` runs: the method's config, the selection around it, and its Ray layout."""

    selection: SelectionConfig = SelectionConfig()
    ray: RayConfig = RayConfig()

    @model_validator(mode="after")
    def _early_stop_before_last_round(self) -> JobConfig:
        stop = self.selection.early_stop
        if stop is not None and stop.after_round >= self.selftrain.rounds:
            raise ValueError(
                f"selection.early_stop.after_round must be below selftrain.rounds "
                f"({self.selftrain.rounds}): stopping after the last round saves nothing; "
                f"got {stop.after_round}"
            )
        return self

    @model_validator(mode="after")
    def _selection_values_valid(self) -> JobConfig:
        for name, values in self.selection.parameters.items():
            if name not in TUNABLE_PARAMETERS:
                raise ValueError(
                    f"selection.parameters: unknown parameter {name!r}; "
                    f"allowed: {', '.join(sorted(TUNABLE_PARAMETERS))}"
                )
            # Every candidate value must itself be a valid setting of its field.
            for v in values:
                try:
                    self.with_parameters({name: v})
                except ConfigError as e:
                    raise ValueError(f"selection.parameters.{name} value {v!r}: {e}") from None
        return self

    def with_parameters(self, params: dict[str, Any]) -> Self:
        """A candidate's config: some tunable parameters replaced, and no sweep of its own."""
        plain = self.model_copy(update={"selection": self.selection.model_copy(update={"parameters": {}})})
        return HIASTConfig.with_parameters(plain, params)


def load_job_config(
    path: str | os.PathLike[str] | Traversable | None = None, overrides: dict[str, Any] | None = None
) -> JobConfig:
    """:func:`hiast.config.load_config` for the whole run: a YAML file or packaged name (``None``:
    the embedded default), dotted overrides; ConfigError naming the file and every bad field."""
    return load_config(path, overrides, model=JobConfig)
