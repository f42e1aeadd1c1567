"""Score values computed outside the selection (:class:`ScoreValues`), and every score's direction.

The one registry of label-free scores is :data:`selection.validators.VALIDATORS` (name, direction,
what it needs, what it costs); the results table, the audit, the rules and the dashboard all read
it. A caller may still hand :func:`selection.run.run_selection` values it computed itself
(``extra_scores``): a registered name takes its registered direction, any other name needs a
:class:`ScoreValues` that states it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from selection.errors import SelectionError
from selection.validators.registry import VALIDATORS

__all__ = ["ScoreValues", "direction"]


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
