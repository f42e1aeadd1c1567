"""The registry of label-free validators: name, direction, what each needs and what it costs.

``needs`` uses this vocabulary (what a candidate must produce, see :mod:`selection.validators.evidence`):

==================  =====================================================================
``labels``          label maps on the subset (``predictions/<id>.parquet``)
``target_probs``    softmax at the sampled subset pixels (evidence file)
``source_probs``    softmax and labels at sampled source-val pixels (needs ``data.source_val``)
``mixval``          MixVal probe counts (evidence file; one extra inference pass)
``replicates``      label maps of >= 2 independently trained replicates (``selection.replicates``)
``source_val_miou`` the source-val mIoU scalar (needs ``data.source_val``)
==================  =====================================================================

``scope``: "self" (from the candidate's own outputs) or "group" (against the other candidates of
its vote group). ``extra_passes``: inference passes over the subset beyond the one prediction
pass; ``extra_trainings``: whole trainings beyond the candidate's own (per extra replicate).

It is the one registry of label-free scores in the project: the results table, the audit, the rules
and the dashboard all read it. A caller may still hand :func:`selection.run.runner.run_selection` values it
computed itself (``extra_scores``): a registered name takes its registered direction
(:func:`direction`), any other name needs a :class:`ScoreValues` that states it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from selection.errors import SelectionError
from selection.fusion.majority import f_miou
from selection.validators.agreement import seed_agreement
from selection.validators.atc import atc
from selection.validators.consensus import ensv, f_miou_lno
from selection.validators.density import snd
from selection.validators.dev import dev, iwcv
from selection.validators.information import bnm, im, mean_confidence, mean_entropy
from selection.validators.mixval import mixval, mixval_inter, mixval_intra
from selection.validators.source import source_val_miou

__all__ = ["NEEDS", "ValidatorSpec", "VALIDATORS", "validator", "ScoreValues", "direction"]

NEEDS = frozenset({"labels", "target_probs", "source_probs", "mixval", "replicates", "source_val_miou"})


@dataclass(frozen=True)
class ValidatorSpec:
    name: str
    higher_is_better: bool
    needs: frozenset[str]
    scope: Literal["self", "group"]
    description: str
    function: Callable[..., object] | None
    extra_passes: int = 0
    extra_trainings: int = 0
    cost: str = "nothing beyond the prediction pass"

    def __post_init__(self) -> None:
        unknown = set(self.needs) - NEEDS
        if unknown or not self.needs:
            raise ValueError(f"validator {self.name!r}: needs must be a non-empty subset of {sorted(NEEDS)}")
        if self.scope not in ("self", "group"):
            raise ValueError(f"validator {self.name!r}: scope must be 'self' or 'group'")


def _spec(name, high, needs, scope, fn, description, **cost) -> ValidatorSpec:
    return ValidatorSpec(name, high, frozenset(needs), scope, description, fn, **cost)


_MIX = {"extra_passes": 1, "cost": "one extra inference pass over the subset (the mixed images)"}
_SRC = {"cost": "one inference pass over the source-val split (shared by atc and source_val_miou)"}
_DEV = {
    "cost": "the source-val pass (shared); a domain classifier per candidate, fitted once when its "
    "evidence is written (seconds on a CPU)"
}

VALIDATORS: dict[str, ValidatorSpec] = {
    s.name: s
    for s in (
        _spec(
            "f_miou", True, {"labels"}, "group", f_miou, "mIoU against the hard majority vote (paper §4.5)"
        ),
        _spec(
            "f_miou_trimmed",
            True,
            {"labels"},
            "group",
            None,
            "F-mIoU against the vote without degenerate candidates (selection.decision.trimming; vote pass)",
        ),
        _spec(
            "ensv",
            True,
            {"target_probs"},
            "group",
            ensv,
            "mIoU against the soft vote at sampled pixels (EnsV)",
        ),
        _spec(
            "f_miou_lno",
            True,
            {"labels"},
            "group",
            f_miou_lno,
            "F-mIoU with the candidate and its grid neighbours left out of the vote",
        ),
        _spec(
            "mixval", True, {"mixval"}, "self", mixval, "MixVal: mean accuracy of the two mix probes", **_MIX
        ),
        _spec(
            "mixval_inter", True, {"mixval"}, "self", mixval_inter, "MixVal, inter-cluster probe only", **_MIX
        ),
        _spec(
            "mixval_intra", True, {"mixval"}, "self", mixval_intra, "MixVal, intra-cluster probe only", **_MIX
        ),
        _spec(
            "atc",
            True,
            {"target_probs", "source_probs"},
            "self",
            atc,
            "predicted target mIoU from per-class ATC thresholds fitted on source-val",
            **_SRC,
        ),
        _spec(
            "snd", True, {"target_probs"}, "self", snd, "soft neighbourhood density of sampled pixels (SND)"
        ),
        _spec("im", True, {"target_probs"}, "self", im, "information maximisation: diversity minus entropy"),
        _spec("bnm", True, {"target_probs"}, "self", bnm, "nuclear norm of the pixel probability matrix / N"),
        _spec("mean_entropy", False, {"target_probs"}, "self", mean_entropy, "mean pixel entropy (nats)"),
        _spec("mean_confidence", True, {"target_probs"}, "self", mean_confidence, "mean max probability"),
        _spec(
            "seed_agreement",
            True,
            {"replicates"},
            "self",
            seed_agreement,
            "mean mIoU between independently trained replicates (own warm-up each)",
            extra_passes=1,
            extra_trainings=1,
            cost="per extra replicate: a whole training (own warm-up) and its prediction pass",
        ),
        _spec(
            "dev",
            False,
            {"target_probs", "source_probs"},
            "self",
            dev,
            "Deep Embedded Validation: density-ratio-weighted source-val loss with control variate",
            **_DEV,
        ),
        _spec(
            "iwcv",
            False,
            {"target_probs", "source_probs"},
            "self",
            iwcv,
            "importance-weighted source-val loss (DEV without the control variate)",
            **_DEV,
        ),
        _spec(
            "source_val_miou",
            True,
            {"source_val_miou"},
            "self",
            source_val_miou,
            "mIoU on the labelled source-val split",
            **_SRC,
        ),
    )
}


def validator(name: str, where: str = "validator") -> ValidatorSpec:
    """The spec of a registered validator; an unknown name raises SelectionError naming ``where``."""
    if name not in VALIDATORS:
        raise SelectionError(f"{where}: unknown validator {name!r}; known: {', '.join(VALIDATORS)}")
    return VALIDATORS[name]


@dataclass(frozen=True)
class ScoreValues:
    """Values of one score for some candidates, with its direction (for :func:`run_selection`)."""

    values: Mapping[str, float]
    higher_is_better: bool
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def direction(name: str, given: ScoreValues | Mapping[str, float]) -> bool:
    """higher_is_better of a score: from ScoreValues, else the registry; unknown plain dicts raise."""
    if isinstance(given, ScoreValues):
        return given.higher_is_better
    if name in VALIDATORS:
        return VALIDATORS[name].higher_is_better
    raise SelectionError(
        f"score {name!r} is not a registered validator ({', '.join(VALIDATORS)}); "
        "pass ScoreValues(values, higher_is_better=...)"
    )
