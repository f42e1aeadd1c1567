"""Candidates (one parameter setting each) for a ``sweep`` or a ``grid`` selection.

* ``sweep`` (paper Table 8): each parameter varied alone, the others at their defaults; each
  parameter's values are voted within their own sweep and the best value per parameter is kept.
  The default configuration belongs to every sweep but is one candidate (trained once); a sweep's
  list gets the default value added if it lacks it.
* ``grid``: the Cartesian product of the listed values; one vote across all of them.

Ids are readable and stable: ``"default"``, ``"alpha=0.3"``, ``"alpha=0.3,gamma=8"`` (swept
parameters in name order; integral values printed without ``.0``). ``digest`` is a short hash of the
full parameter dict, for file names that must stay short.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from selection.errors import SelectionError

__all__ = [
    "Candidate",
    "Line",
    "MODES",
    "GRID_GROUP",
    "build_candidates",
    "format_value",
    "vote_groups",
    "lines",
]

MODES = ("sweep", "grid")
GRID_GROUP = "grid"


def format_value(v: float) -> str:
    """Stable, unambiguous text for a parameter value: 8.0 -> '8', 0.3 -> '0.3' (repr, never rounded)."""
    f = float(v)
    if math.isfinite(f) and f.is_integer() and abs(f) < 2**53:
        return str(int(f))
    return repr(f)


def _digest(params: Mapping[str, float]) -> str:
    canon = json.dumps({k: float(params[k]) for k in sorted(params)}, sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Candidate:
    """One parameter setting to train and score.

    ``params``: every parameter's value (defaults with the varied ones replaced).
    ``sweeps``: the vote groups it takes part in (sweep names, or ``"grid"``).
    ``varied``: the parameters whose value differs from the default.
    """

    id: str
    params: dict[str, float] = field(hash=False)
    sweeps: tuple[str, ...]
    varied: tuple[str, ...]
    is_default: bool
    digest: str


@dataclass(frozen=True)
class Line:
    """A 1-D family: candidates that differ only in ``parameter``, ordered by its value.

    In sweep mode a line is a sweep (named by the parameter); in grid mode every setting of the
    other parameters gives one line (named ``"alpha|gamma=8,k=3"``). ``group`` is the vote group
    the line's candidates belong to. The centre-bias diagnostic works on lines.
    """

    name: str
    parameter: str
    group: str
    candidate_ids: tuple[str, ...]
    values: tuple[float, ...]


def _check_values(name: str, values: Sequence[float]) -> list[float]:
    where = f"selection.parameters.{name}"
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise SelectionError(f"{where} must be a list of numbers, got {values!r}")
    if len(values) == 0:
        raise SelectionError(f"{where} is an empty list of values")
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise SelectionError(f"{where} holds {v!r}, not a number") from None
        if not math.isfinite(f):
            raise SelectionError(f"{where} holds {v!r}, not a finite number")
        out.append(v)
    floats = [float(v) for v in out]
    if len(set(floats)) != len(floats):
        raise SelectionError(f"{where} lists a value twice: {list(values)}")
    return sorted(out, key=float)


def build_candidates(
    defaults: Mapping[str, float],
    parameters: Mapping[str, Sequence[float]],
    mode: Literal["sweep", "grid"] | str,
) -> list[Candidate]:
    """The candidates of a selection, in a stable order.

    ``defaults``: every tunable parameter's default (``HIASTConfig.parameters()``).
    ``parameters``: the values to try per parameter (``selection.parameters``).
    Sweep order: the default first, then each sweep's other values ascending, sweeps in the order
    of ``parameters``. Grid order: ``itertools.product`` over ``parameters`` with ascending values.
    Raises SelectionError (a ValueError) naming the field: unknown mode, empty parameters, an
    unknown parameter, an empty/duplicate/non-numeric value list, a sweep with nothing but its default.
    """
    if mode not in MODES:
        raise SelectionError(f"selection.mode must be one of {', '.join(MODES)}; got {mode!r}")
    if not parameters:
        raise SelectionError(
            f"selection.parameters is empty: a {mode} needs at least one parameter with values"
        )
    for name in parameters:
        if name not in defaults:
            raise SelectionError(
                f"selection.parameters.{name}: unknown parameter; known: {', '.join(sorted(defaults))}"
            )
    values = {name: _check_values(name, vals) for name, vals in parameters.items()}
    base = {k: defaults[k] for k in defaults}

    def make(params: dict[str, float], sweeps: tuple[str, ...], default_id: bool) -> Candidate:
        varied = tuple(sorted(k for k in params if float(params[k]) != float(base[k])))
        if default_id:
            cid = "default"
        else:
            shown = sorted(parameters) if mode == "grid" else list(varied)
            cid = ",".join(f"{k}={format_value(params[k])}" for k in shown)
        return Candidate(cid, dict(params), sweeps, varied, not varied, _digest(params))

    if mode == "sweep":
        sweeps = tuple(parameters)
        out = [make(base, sweeps, True)]
        for name in parameters:
            others = [v for v in values[name] if float(v) != float(base[name])]
            if not others:
                raise SelectionError(
                    f"selection.parameters.{name}: the sweep holds only the default value {base[name]!r}; "
                    "add at least one other value"
                )
            out.extend(make({**base, name: v}, (name,), False) for v in others)
        return out

    names = list(parameters)
    out = []
    for combo in itertools.product(*(values[n] for n in names)):
        out.append(make({**base, **dict(zip(names, combo, strict=True))}, (GRID_GROUP,), False))
    return out


def vote_groups(candidates: Sequence[Candidate]) -> dict[str, list[str]]:
    """Vote group -> candidate ids. Sweep groups are ordered by the swept value; grid keeps order."""
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        for g in c.sweeps:
            groups.setdefault(g, []).append(c)
    out = {}
    for g, members in groups.items():
        if g != GRID_GROUP:
            members = sorted(members, key=lambda c: float(c.params[g]))
        out[g] = [c.id for c in members]
    return out


def lines(candidates: Sequence[Candidate]) -> list[Line]:
    """Every 1-D family of the candidates (sweeps; or grid lines, one per setting of the others)."""
    groups = vote_groups(candidates)
    by_id = {c.id: c for c in candidates}
    out: list[Line] = []
    for g, ids in groups.items():
        members = [by_id[i] for i in ids]
        if g != GRID_GROUP:
            out.append(Line(g, g, g, tuple(ids), tuple(float(by_id[i].params[g]) for i in ids)))
            continue
        params = [p for p in members[0].params if len({float(c.params[p]) for c in members}) > 1]
        for p in params:
            rest = [q for q in params if q != p]
            buckets: dict[tuple[float, ...], list[Candidate]] = {}
            for c in members:
                buckets.setdefault(tuple(float(c.params[q]) for q in rest), []).append(c)
            for key, cs in buckets.items():
                cs = sorted(cs, key=lambda c: float(c.params[p]))
                label = ",".join(f"{q}={format_value(v)}" for q, v in zip(rest, key, strict=True))
                name = f"{p}|{label}" if label else p
                out.append(Line(name, p, g, tuple(c.id for c in cs), tuple(float(c.params[p]) for c in cs)))
    return out
