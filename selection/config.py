"""The ``selection`` section of a run's YAML: how the candidates are laid out, voted on and picked.

The job (``ray_jobs.config.JobConfig``) composes it with the method's config; what it cannot check
alone, because the names belong to the method (which parameters exist, which values a field
takes, how many rounds there are), the job checks there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

from selection.decision.rules import Rule, parse_rule

__all__ = ["DEFAULT_RULE", "EarlyStopConfig", "SelectionConfig", "default_rule"]


# The selection benchmark's verdict (bench/README.md, "Which rule picks"): of the rules every
# packaged config can run, source-val mIoU has the lowest mean regret it can honestly claim (fixed
# in advance, so in-sample is its honest figure). It misses the benchmark's targets, and the README
# names the misses. Every search has a source-val split (data.source_val, or the one held out of
# data.source); with data.source_val_holdout: null and no data.source_val, set another rule. The
# paper's rule stays available: rule: f_miou. (A function, so no config shares one mutable value.)
def default_rule() -> Any:
    return "source_val_miou"


DEFAULT_RULE = default_rule()

# A rule in memory, its YAML form on disk: parsed (and refused, naming the field) at load time.
RuleField = Annotated[
    Rule,
    BeforeValidator(parse_rule),
    PlainSerializer(lambda rule: rule.to_config()),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class EarlyStopConfig(_Section):
    """Label-free early stopping: after round ``after_round`` every candidate predicts the subset,
    the selection rule ranks them within each sweep, and the bottom of each sweep stops there
    (only ``keep`` of each sweep goes on; the default always does). The job checks it against
    ``selftrain.rounds``."""

    after_round: int = Field(1, ge=1)
    keep: float = Field(0.5, gt=0, le=1)


class SelectionConfig(_Section):
    mode: Literal["sweep", "grid"] = "sweep"
    # Candidate values per parameter; the run's own value is the default every sweep contains.
    # Which names exist, and whether each value is a valid setting, the job checks (the method owns them).
    parameters: dict[str, list[float]] = Field(default_factory=dict)
    subset_size: int = Field(500, ge=1)
    subset_seed: int = 0
    replicates: int = Field(1, ge=1)
    # Score the candidates' trimmed vote and centre-bias diagnostic.
    trim_outliers: bool = True
    # How each sweep's (or the grid's) pick is made from the label-free validators: a validator's
    # name, or {rank_average: [...]} / {two_stage: {drop, fraction, pick}} (selection.decision.rules).
    rule: RuleField = Field(default_factory=lambda: parse_rule(default_rule()))
    # None: every candidate trains every round (the default).
    early_stop: EarlyStopConfig | None = None

    @field_validator("parameters")
    @classmethod
    def _lists(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for name, values in v.items():
            if not values:
                raise ValueError(f"parameter {name!r} has an empty list of values")
            if len(set(values)) != len(values):
                raise ValueError(f"parameter {name!r} lists a value twice: {values}")
        return v
