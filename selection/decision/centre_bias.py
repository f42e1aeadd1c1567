"""Centre-bias diagnostic: does the vote discriminate between the values of a sweep at all?

Measured on synthscape: F-mIoU picked the centre of the window in 27 of 27 sub-sweeps (shift the
grid and the pick shifts with it), and paper Table 8 picks the middle value in four of five sweeps.
A consensus score favours the candidate nearest everyone else, which along a 1-D family is the
middle one, whatever the true quality.

Test: for every line (1-D sweep) of at least 5 values, re-vote each contiguous window of 3 values,
and of m-2 values, as its own sweep (each window's own fusion; accumulated in the same pass over
the stored predictions as the main vote, see :mod:`selection.run.plan`). Even-sized windows have no
centre and are skipped. If every window picks its own centre, the line is ``centre_bound``: the
vote did not discriminate between these values, and its pick says where the grid is centred, not
which value is best. A family with a clear winner off-centre does not fire: a window that has the
winner off its centre picks the winner.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from selection.candidates import Line
from selection.decision.audit import pick

__all__ = [
    "Window",
    "CentreBiasVerdict",
    "CentreBias",
    "MIN_LINE_VALUES",
    "windows_for_line",
    "centre_bias_verdict",
    "assess_centre_bias",
    "windows_table",
    "WINDOW_COLUMNS",
]

MIN_LINE_VALUES = 5


@dataclass(frozen=True)
class Window:
    """Contiguous values ``start:start+size`` of a line, re-voted on their own."""

    line: str
    parameter: str
    start: int
    size: int
    candidate_ids: tuple[str, ...]
    values: tuple[float, ...]

    @property
    def name(self) -> str:
        return f"{self.line}[{self.start}:{self.start + self.size}]"

    @property
    def centre_id(self) -> str:
        return self.candidate_ids[self.size // 2]


def windows_for_line(line: Line, min_values: int = MIN_LINE_VALUES) -> list[Window]:
    """The windows of 3 and of m-2 values (odd sizes only, each once) of a line of m >= 5 values."""
    m = len(line.candidate_ids)
    if m < max(min_values, 5):
        return []
    sizes = sorted({s for s in (3, m - 2) if s % 2 == 1})
    return [
        Window(
            line.name,
            line.parameter,
            start,
            size,
            line.candidate_ids[start : start + size],
            line.values[start : start + size],
        )
        for size in sizes
        for start in range(m - size + 1)
    ]


@dataclass(frozen=True)
class CentreBiasVerdict:
    """Outcome for one line (or, in grid mode, all lines of one parameter).

    ``centre_bound``: True if every assessed window picked its centre; False if at least one did
    not; None if no window could be assessed (line too short, or every window held a degenerate).
    """

    name: str
    parameter: str
    centre_bound: bool | None
    windows: tuple[str, ...]
    picks: tuple[str, ...]
    centres: tuple[str, ...]
    skipped: tuple[str, ...]
    sentence: str


def centre_bias_verdict(
    name: str,
    parameter: str,
    windows: Sequence[Window],
    picks: Mapping[str, str],
    *,
    exclude: Collection[str] = (),
) -> CentreBiasVerdict:
    """Judge a line from each window's pick (window name -> picked candidate id).

    Windows containing a candidate in ``exclude`` (degenerates) are skipped: their vote is
    contaminated and would say nothing about the others.
    """
    assessed = [w for w in windows if not set(w.candidate_ids) & set(exclude)]
    skipped = tuple(w.name for w in windows if w not in assessed)
    if not assessed:
        why = "fewer than 5 values" if not windows else "every window held a degenerate candidate"
        return CentreBiasVerdict(
            name, parameter, None, (), (), (), skipped, f"{name}: centre bias not assessed ({why})."
        )
    pick_ids = tuple(picks[w.name] for w in assessed)
    centres = tuple(w.centre_id for w in assessed)
    hits = sum(p == c for p, c in zip(pick_ids, centres, strict=True))
    bound = hits == len(assessed)
    if bound:
        sentence = (
            f"{name} is centre_bound: re-voted on its own, each of its {len(assessed)} windows of "
            "neighbouring values picked that window's centre value, so the vote did not discriminate "
            f"between these values of {parameter}; its pick reflects where the grid is centred, not which "
            "value is best. Shift the grid or weigh the other scores."
        )
    else:
        off = [f"{w.name}->{p}" for w, p, c in zip(assessed, pick_ids, centres, strict=True) if p != c]
        sentence = (
            f"{name}: {len(assessed) - hits} of {len(assessed)} windows picked off their centre "
            f"({', '.join(off)}); the vote does discriminate between values of {parameter}."
        )
    return CentreBiasVerdict(
        name, parameter, bound, tuple(w.name for w in assessed), pick_ids, centres, skipped, sentence
    )


@dataclass(frozen=True)
class CentreBias:
    """The diagnostic over all windows of a selection.

    ``picks``: window name -> its own vote's pick. ``verdicts``: parameter -> verdict.
    ``centre_bound``: the centre-bound parameters. ``candidate_ids``: the candidates on their lines
    (in sweep mode, the whole sweep). ``notes``: the verdicts that warn (centre-bound, or not assessed).
    """

    picks: dict[str, str | None]
    verdicts: dict[str, CentreBiasVerdict]
    centre_bound: list[str]
    candidate_ids: set[str]
    notes: list[str]


def assess_centre_bias(
    windows: Sequence[Window],
    window_scores: Mapping[str, Mapping[str, float]],
    mode: str,
    groups: Mapping[str, Sequence[str]],
    degenerate: Collection[str],
) -> CentreBias:
    """Pick of every window's own vote (``window_scores``: window name -> id -> F-mIoU), judged per parameter.

    ``groups``: vote group -> candidate ids (a centre-bound sweep marks all its candidates).
    """
    picks = {w.name: pick(w.candidate_ids, window_scores[w.name], True) for w in windows}
    by_param: dict[str, list[Window]] = {}
    for w in windows:
        by_param.setdefault(w.parameter, []).append(w)
    verdicts: dict[str, CentreBiasVerdict] = {}
    for p, ws in by_param.items():
        name = f"sweep {p!r}" if mode == "sweep" else f"parameter {p!r} (grid lines)"
        verdicts[p] = centre_bias_verdict(name, p, ws, picks, exclude=degenerate)
    centre_bound = [p for p, v in verdicts.items() if v.centre_bound]
    ids: set[str] = set()
    for p in centre_bound:
        for w in by_param[p]:
            ids.update(w.candidate_ids)
        if mode == "sweep":
            ids.update(groups[p])
    notes = [v.sentence for v in verdicts.values() if v.centre_bound or v.centre_bound is None]
    return CentreBias(picks, verdicts, centre_bound, ids, notes)


WINDOW_COLUMNS = [
    "parameter",
    "line",
    "window",
    "start",
    "size",
    "candidate_ids",
    "values",
    "f_miou",
    "centre",
    "pick",
    "picked_centre",
    "assessed",
]


def windows_table(
    windows: Sequence[Window],
    window_scores: Mapping[str, Mapping[str, float]],
    picks: Mapping[str, str | None],
    degenerate: Collection[str],
    true_miou: Mapping[str, float] | None,
) -> pd.DataFrame:
    """One row per window (``windows.parquet``); with true mIoU, the window's best and the pick's regret."""
    rows = []
    for w in windows:
        scores = window_scores[w.name]
        row = {
            "parameter": w.parameter,
            "line": w.line,
            "window": w.name,
            "start": w.start,
            "size": w.size,
            "candidate_ids": list(w.candidate_ids),
            "values": [float(v) for v in w.values],
            "f_miou": [float(scores[i]) for i in w.candidate_ids],
            "centre": w.centre_id,
            "pick": picks[w.name],
            "picked_centre": picks[w.name] == w.centre_id,
            "assessed": not set(w.candidate_ids) & set(degenerate),
        }
        if true_miou is not None:
            known = [i for i in w.candidate_ids if i in true_miou and np.isfinite(true_miou[i])]
            best = max(known, key=lambda i: true_miou[i]) if known else None
            row["true_best"] = best
            row["pick_regret"] = (
                float(true_miou[best] - true_miou[picks[w.name]])
                if best and picks[w.name] in true_miou
                else float("nan")
            )
        rows.append(row)
    cols = WINDOW_COLUMNS + (["true_best", "pick_regret"] if true_miou is not None else [])
    return pd.DataFrame(rows, columns=cols)
