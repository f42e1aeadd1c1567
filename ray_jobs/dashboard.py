"""One self-contained HTML page that explains a label-free selection run.

The Ray dashboard shows cluster state and TensorBoard shows training curves; neither can show *why*
a setting was picked, because F-mIoU exists only after the majority vote. This page does: per
swept parameter the F-mIoU curve with the pick marked (and the true mIoU beside it when target
labels were available for auditing), the centre-bias warning, degenerate and failed candidates,
how much the candidates agree with each other, per-class IoU against the fusion, the other
label-free scores side by side, and the run's settings.

The page must open from an S3 download, an air-gapped laptop or a CI artifact, so it has no
scripts, no CDN, no web fonts and no external references: charts are inline SVG generated here,
and every piece of text from the table, the choice or the config goes through ``html.escape``.

Input: the results table of :mod:`selection.tables` (``sweeps``, ``f_miou__<group>``,
``per_class_iou`` lists, ``agreement__<id>``, ``degenerate``, ``picked_in`` …) and the choice of
:func:`selection.run.run_selection`. Simpler tables are read as well (``sweep`` as a
comma-separated string, ``status``, ``iou_<class>`` and ``agree_<id>`` columns): a missing column
drops its part of the page, it is never an error.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hiast.config import TUNABLE_PARAMETERS, HIASTConfig
from selection.filesystem import write_bytes_atomic

__all__ = [
    "CENTRE_BOUND_SENTENCE",
    "SCORE_DIRECTIONS",
    "render_dashboard",
    "write_dashboard",
]

CENTRE_BOUND_SENTENCE = (
    "The vote did not discriminate between these values: the pick is the centre of every window"
)

# +1: higher is better, -1: lower is better; selection.scores.SCORES is merged in at import.
# Other columns (unless they end in "_loss") are shown with an unknown direction rather than a
# guessed one: a wrong arrow misleads more than none.
SCORE_DIRECTIONS: dict[str, int] = {
    "f_miou": +1,
    "f_miou_trimmed": +1,
    "true_miou": +1,
    "mean_confidence": +1,
    "neg_entropy": +1,
    "entropy": -1,
    "mean_entropy": -1,
    "rescale_consistency": +1,
    "source_miou": +1,
    "source_val_miou": +1,
    "seed_agreement": +1,
}
try:
    from selection.scores import SCORES as _SCORES

    SCORE_DIRECTIONS.update({name: (+1 if s.higher_is_better else -1) for name, s in _SCORES.items()})
except ImportError:  # the page still renders with the table above
    pass

# Columns that describe a candidate rather than score it.
_NON_SCORE_COLUMNS = frozenset(
    {
        "candidate_id",
        "digest",
        "role",
        "sweep",
        "sweeps",
        "status",
        "f_miou",
        "true_miou",
        "per_class_iou",
        "degenerate",
        "degenerate_in",
        "picked_in",
        "centre_bound",
        "replicate",
        "replicates",
        "seed",
        "trial_id",
        "trial_dir",
        "error",
        "reason",
        "iteration",
        "iterations",
        "rounds",
        "timestamp",
        "pid",
    }
)
_NON_SCORE_PREFIXES = (
    "f_miou__",
    "f_miou_trimmed__",
    "per_class_iou__",
    "agreement__",
    "agree_",
    "iou_",
)
_NON_SCORE_SUFFIXES = ("_s", "_seconds", "_time", "_id", "_path")
_AGREEMENT_PREFIXES = ("agreement__", "agree_")
_DONE_STATUSES = {"ok", "done", "success", "succeeded", "terminated", "finished"}
_FINISHED = {"ok", "degenerate", "failed", "no score"}
_GRID = "grid"
_DEFAULT = "default"

_F_COLOUR = "#1f5fa8"
_T_COLOUR = "#d9670b"
_FAIL_COLOUR = "#c0392b"
_DEGEN_COLOUR = "#7f7f7f"


def write_dashboard(
    path_or_uri: str,
    table: pd.DataFrame,
    choice: Mapping[str, Any] | None,
    cfg: HIASTConfig | Mapping[str, Any],
    provisional: bool = False,
    *,
    agreement: pd.DataFrame | None = None,
    failed: Sequence[Mapping[str, Any]] | None = None,
    total_candidates: int | None = None,
) -> None:
    """Render the selection dashboard and write it atomically to ``path_or_uri``.

    ``path_or_uri`` names the HTML file itself (``…/dashboard.html``), a local path or any URI
    pyarrow.fs reads (``s3://…``); the page appears whole or not at all (temporary name, then
    moved). See :func:`render_dashboard` for the other arguments.
    """
    page = render_dashboard(
        table,
        choice,
        cfg,
        provisional=provisional,
        agreement=agreement,
        failed=failed,
        total_candidates=total_candidates,
    )
    write_bytes_atomic(path_or_uri, page.encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Small helpers


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(float(value))
    return False


def _num(value: Any) -> float | None:
    """A finite float, or None for missing/non-numeric/infinite values."""
    if _is_missing(value) or isinstance(value, bool | np.bool_):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _fmt(value: Any, digits: int = 4) -> str:
    x = _num(value)
    if x is None:
        return "–" if _is_missing(value) else str(value)
    return f"{x:.{digits}f}"


def _fmt_value(value: Any) -> str:
    """A parameter value as people write it (0.5, 8, 1e-05), not 0.5000."""
    x = _num(value)
    if x is None:
        return "–" if _is_missing(value) else str(value)
    return f"{x:g}"


def _same(a: Any, b: Any) -> bool:
    xa, xb = _num(a), _num(b)
    if xa is not None and xb is not None:
        return math.isclose(xa, xb, rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)


def _tokens(value: Any) -> list[str]:
    """Names in a list-like cell: "alpha,gamma", "alpha; gamma", a list, or a Parquet array."""
    if isinstance(value, str):
        return [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        return [str(v).strip() for v in value if not _is_missing(v) and str(v).strip()]
    return []


def _cfg_dict(cfg: HIASTConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    if cfg is None:
        return {}
    if hasattr(cfg, "model_dump"):
        return cfg.model_dump(mode="json")
    return json.loads(json.dumps(dict(cfg), default=str))


def _defaults(cfgd: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (section, field) in TUNABLE_PARAMETERS.items():
        sec = cfgd.get(section)
        if isinstance(sec, Mapping) and field in sec:
            out[name] = sec[field]
    return out


def _expected_candidates(cfgd: Mapping[str, Any]) -> int | None:
    """How many candidates the config's selection section defines (None if it cannot tell)."""
    sel = cfgd.get("selection")
    if not isinstance(sel, Mapping) or not sel.get("parameters"):
        return None
    try:
        from selection.candidates import build_candidates

        return len(build_candidates(_defaults(cfgd), sel["parameters"], sel.get("mode", "sweep")))
    except (ImportError, ValueError):
        return None


def _class_names(cfgd: Mapping[str, Any], n: int) -> list[str]:
    target = (cfgd.get("data") or {}).get("target") or {}
    try:
        from hiast.data.classes import class_names

        names = list(class_names(str(target.get("class_set", "cityscapes19"))))
    except (ImportError, KeyError):
        names = []
    return names if len(names) == n else [str(i) for i in range(n)]


def _lerp_colour(t: float, lo: tuple[int, int, int], hi: tuple[int, int, int]) -> str:
    t = min(1.0, max(0.0, t))
    r, g, b = (round(a + (c - a) * t) for a, c in zip(lo, hi, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _heat_cell(value: Any, lo: float, hi: float) -> str:
    x = _num(value)
    if x is None:
        return '<td class="heat na">–</td>'
    t = 1.0 if hi - lo < 1e-12 else (x - lo) / (hi - lo)
    bg = _lerp_colour(t, (247, 251, 255), (8, 48, 107))
    fg = "#ffffff" if t > 0.55 else "#111111"
    return f'<td class="heat" style="background:{bg};color:{fg}">{x:.3f}</td>'


def _sort_key(v: Any) -> tuple[bool, float, str]:
    x = _num(v)
    return (x is None, x if x is not None else 0.0, str(v))


# --------------------------------------------------------------------------------------------
# Reading the table defensively


def _failed_rows(failed: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows for candidates that never finished (e.g. ``ray_jobs.select``'s failed outcomes)."""
    rows: dict[str, dict[str, Any]] = {}
    for item in failed:
        cid = str(item.get("candidate_id", f"failed-{len(rows)}"))
        row: dict[str, Any] = {"candidate_id": cid, "status": "failed"}
        params = item.get("params")
        if isinstance(params, Mapping):
            row.update({str(k): v for k, v in params.items()})
        row.update({k: v for k, v in item.items() if k in TUNABLE_PARAMETERS})
        if "sweeps" in item:
            row["sweeps"] = list(_tokens(item["sweeps"]))
        elif "sweep" in item:
            row["sweep"] = item["sweep"]
        row["error"] = str(item.get("error") or "failed")
        if cid in rows:  # several replicates of one candidate: one row, every distinct error
            if row["error"] not in rows[cid]["error"]:
                rows[cid]["error"] += f" | {row['error']}"
            continue
        rows[cid] = row
    return pd.DataFrame(list(rows.values()))


class _View:
    """The table and choice normalised once, so every section reads the same facts."""

    def __init__(
        self,
        table: pd.DataFrame,
        choice: Mapping[str, Any] | None,
        cfg: HIASTConfig | Mapping[str, Any] | None,
        failed: Sequence[Mapping[str, Any]] | None,
    ) -> None:
        df = table.reset_index(drop=True).copy()
        if "candidate_id" not in df.columns:
            df["candidate_id"] = [f"#{i}" for i in range(len(df))]
        df["candidate_id"] = df["candidate_id"].map(str)
        if failed:
            extra = _failed_rows(failed)
            extra = extra[~extra["candidate_id"].isin(set(df["candidate_id"]))]
            df = pd.concat([df, extra], ignore_index=True) if len(df) else extra.reset_index(drop=True)
        self.df = df
        self.choice: dict[str, Any] = dict(choice or {})
        self.cfgd = _cfg_dict(cfg)
        self.defaults = _defaults(self.cfgd)

        raw_status = df["status"].tolist() if "status" in df.columns else [None] * len(df)
        df["status"] = [
            "ok" if _is_missing(s) or str(s).strip().lower() in _DONE_STATUSES else str(s).strip().lower()
            for s in raw_status
        ]
        for col in ("f_miou", "true_miou"):
            if col not in df.columns:
                df[col] = np.nan
            df[col] = pd.to_numeric(df[col], errors="coerce")
        self.has_true = bool(df["true_miou"].notna().any())

        self.per_sweep: dict[str, dict[str, Any]] = {
            str(k): dict(v) if isinstance(v, Mapping) else {"value": v}
            for k, v in (self.choice.get("per_sweep") or {}).items()
        }
        self.score_used = str(self.choice.get("score_used") or "f_miou")
        self.mode = str(self.choice.get("mode") or self.cfgd.get("selection", {}).get("mode") or "sweep")
        self.param_cols = [p for p in TUNABLE_PARAMETERS if p in df.columns]

        # Vote groups per row: the "sweeps" list (selection.tables) or a "sweep" string. The
        # default candidate belongs to every sweep.
        if "sweeps" in df.columns:
            groups = [_tokens(v) for v in df["sweeps"].tolist()]
            if "sweep" in df.columns:  # rows appended without a list (failed ones, say)
                groups = [g or _tokens(s) for g, s in zip(groups, df["sweep"].tolist(), strict=True)]
        elif "sweep" in df.columns:
            groups = [_tokens(v) for v in df["sweep"].tolist()]
        else:
            groups = [[] for _ in range(len(df))]
        self.row_groups = groups
        if self.mode == "sweep" and any(_GRID in g for g in groups) and not self.choice:
            self.mode = _GRID
        self.params = self._swept_parameters()

        # Degenerate (trimmed) candidates, with a reason where one is known.
        self.degenerate: dict[str, str] = {}
        for item in self.choice.get("degenerate") or []:
            if isinstance(item, Mapping):
                cid = str(item.get("candidate_id", item.get("id", "")))
                reason = str(item.get("reason", "") or "")
            else:
                cid, reason = str(item), ""
            if cid:
                self.degenerate[cid] = reason
        flagged = df["degenerate"].tolist() if "degenerate" in df.columns else [False] * len(df)
        flagged_in = df["degenerate_in"].tolist() if "degenerate_in" in df.columns else [None] * len(df)
        reason_col = next((c for c in ("degenerate_reason", "reason") if c in df.columns), None)
        for i, cid in enumerate(df["candidate_id"]):
            is_deg = df.at[i, "status"] == "degenerate" or (not _is_missing(flagged[i]) and bool(flagged[i]))
            if not is_deg and cid not in self.degenerate:
                continue
            reason = self.degenerate.get(cid, "")
            if not reason and reason_col and not _is_missing(df.at[i, reason_col]):
                reason = str(df.at[i, reason_col])
            if not reason and _tokens(flagged_in[i]):
                reason = "flagged in " + ", ".join(_tokens(flagged_in[i]))
            self.degenerate[cid] = reason

        self.centre_bound: set[str] = {str(p) for p in self.choice.get("centre_bound") or []}
        self.centre_bound |= {g for g, info in self.per_sweep.items() if info.get("centre_bound") is True}
        self.centre_sentence: dict[str, str] = {
            str(p): str(v.get("sentence"))
            for p, v in (self.choice.get("centre_bias") or {}).items()
            if isinstance(v, Mapping) and v.get("sentence")
        }
        self.chosen_params: dict[str, Any] = dict(self.choice.get("parameters") or {})

    def _swept_parameters(self) -> list[str]:
        seen: list[str] = []

        def add(name: str) -> None:
            if name not in seen and name in self.df.columns and name in TUNABLE_PARAMETERS:
                seen.append(name)

        for name in (self.cfgd.get("selection", {}) or {}).get("parameters", {}) or {}:
            add(str(name))
        for name in self.per_sweep:
            add(name)
        for groups in self.row_groups:
            for name in groups:
                add(name)
        if not seen or self.mode == _GRID:
            # A grid (or an ad-hoc table): every tunable column that varies.
            for name in self.param_cols:
                if self.df[name].nunique(dropna=True) > 1:
                    add(name)
        return seen

    # -- per sweep ---------------------------------------------------------------------------

    def group_of(self, param: str) -> str:
        return _GRID if self.mode == _GRID else param

    def rows_for(self, param: str) -> pd.DataFrame:
        """Candidates in ``param``'s vote group: its sweep (with the default), or the grid."""
        if self.mode == _GRID:
            return self.df
        mask = [param in g or _DEFAULT in g for g in self.row_groups]
        if any(param in g for g in self.row_groups):
            return self.df[mask]
        if self.defaults and self.param_cols:
            # No group information: the sweep is the rows with every other parameter at default.
            others = [q for q in self.param_cols if q != param and q in self.defaults]
            keep = [all(_same(r[q], self.defaults[q]) for q in others) for _, r in self.df.iterrows()]
            if any(keep):
                return self.df[keep]
        return self.df

    def score_col(self, param: str) -> str:
        """The column the pick in this group was made on (the default's exact per-group value)."""
        g = self.group_of(param)
        for col in (f"{self.score_used}__{g}", f"f_miou__{g}", self.score_used, "f_miou"):
            if col in self.df.columns and pd.to_numeric(self.df[col], errors="coerce").notna().any():
                return col
        return "f_miou"

    def score_label(self, col: str) -> str:
        return "F-mIoU (trimmed)" if col.startswith("f_miou_trimmed") else "F-mIoU"

    def pick_id(self, param: str) -> str | None:
        entry = self.per_sweep.get(self.group_of(param)) or {}
        cid = entry.get("candidate_id")
        if cid is None and self.mode == _GRID:
            cid = self.choice.get("candidate_id")
        return None if cid is None else str(cid)

    def pick_value(self, param: str) -> Any:
        entry = self.per_sweep.get(param) or {}
        if entry.get("value") is not None:
            return entry["value"]
        cid = self.pick_id(param)
        if cid is not None and param in self.df.columns:
            match = self.df.loc[self.df["candidate_id"] == cid, param]
            if len(match):
                return match.iloc[0]
        return self.chosen_params.get(param)

    def is_pick(self, param: str, row: Mapping[str, Any]) -> bool:
        cid = self.pick_id(param)
        if cid is not None:
            return str(row["candidate_id"]) == cid
        if self.mode == _GRID:
            return self.is_chosen(row)
        pick = self.pick_value(param)
        return pick is not None and _same(row.get(param), pick)

    # -- per candidate -----------------------------------------------------------------------

    def is_chosen(self, row: Mapping[str, Any]) -> bool:
        """The candidate that is the final choice; in a sweep that combination may not exist."""
        if "candidate_id" in self.choice:
            cid = self.choice["candidate_id"]
            return cid is not None and str(row["candidate_id"]) == str(cid)
        if not self.chosen_params or not any(p in row for p in self.chosen_params):
            return False
        return all(_same(row[p], v) for p, v in self.chosen_params.items() if p in row)

    def picked_in(self, i: int) -> list[str]:
        """The vote groups whose pick is row ``i``."""
        if "picked_in" in self.df.columns:
            return _tokens(self.df.at[i, "picked_in"])
        row = self.df.iloc[i]
        members = self.row_groups[i]
        return [
            p
            for p in self.params
            if (self.group_of(p) in self.per_sweep or self.chosen_params)
            and (self.mode == _GRID or not members or p in members or _DEFAULT in members)
            and self.is_pick(p, row)
        ]

    def score_columns(self) -> list[str]:
        cols = []
        for c in self.df.columns:
            if c in _NON_SCORE_COLUMNS or c in TUNABLE_PARAMETERS:
                continue
            if c.startswith(_NON_SCORE_PREFIXES) or c.endswith(_NON_SCORE_SUFFIXES):
                continue
            s = self.df[c]
            if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
                continue
            if s.notna().any():
                cols.append(c)
        return cols

    def direction(self, col: str) -> int:
        override = (self.choice.get("score_directions") or {}).get(col)
        if override is not None:
            text = str(override).lower()
            if text in {"higher", "max", "+1", "1", "up", "true"}:
                return +1
            if text in {"lower", "min", "-1", "down", "false"}:
                return -1
        if col in SCORE_DIRECTIONS:
            return SCORE_DIRECTIONS[col]
        if col.endswith("_loss"):
            return -1
        return 0


# --------------------------------------------------------------------------------------------
# Sweep charts


def _nice_range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.12, 0.01)
    lo, hi = lo - pad, hi + pad
    if min(values) >= 0.0:
        lo = max(lo, 0.0)
    if max(values) <= 1.0:
        hi = min(hi, 1.0)
    return lo, hi


def _sweep_chart(view: _View, param: str) -> str:
    rows = view.rows_for(param)
    ycol = view.score_col(param)
    pick = view.pick_value(param)
    cats: list[Any] = []
    for v in sorted((v for v in rows[param].tolist() if not _is_missing(v)), key=_sort_key):
        if not any(_same(v, c) for c in cats):
            cats.append(v)
    if pick is not None and not any(_same(pick, c) for c in cats):
        cats = sorted([*cats, pick], key=_sort_key)
    if not cats:
        return '<p class="muted">No candidate of this sweep has a value to plot.</p>'

    width, height = 540, 300
    ml, mr, mt, mb = 58, 62 if view.has_true else 20, 26, 58
    pw, ph = width - ml - mr, height - mt - mb
    n = len(cats)
    step = pw / n

    def cx(k: int) -> float:
        return ml + step * (k + 0.5)

    def cat_index(v: Any) -> int:
        return next(k for k, c in enumerate(cats) if _same(v, c))

    ys = pd.to_numeric(rows[ycol], errors="coerce")
    alive = rows["status"] != "failed"
    f_vals = [float(v) for v in ys[alive].dropna()]
    t_vals = [float(v) for v in rows.loc[alive, "true_miou"].dropna()]
    f_lo, f_hi = _nice_range(f_vals) if f_vals else (0.0, 1.0)
    t_lo, t_hi = _nice_range(t_vals) if t_vals else (0.0, 1.0)

    def fy(v: float) -> float:
        return mt + ph * (1 - (v - f_lo) / (f_hi - f_lo))

    def ty(v: float) -> float:
        return mt + ph * (1 - (v - t_lo) / (t_hi - t_lo))

    label = view.score_label(ycol)
    svg: list[str] = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(label)} against {_e(param)}">'
    ]
    # The pick's column first, so everything else is drawn on top of it.
    if pick is not None:
        k = cat_index(pick)
        svg.append(
            f'<rect class="pick-band" x="{cx(k) - step / 2:.1f}" y="{mt}" width="{step:.1f}" '
            f'height="{ph}" fill="#fff3c4"/>'
            f'<text class="pick-marker" data-pick="{_e(param)}" x="{cx(k):.1f}" y="{mt - 8}" '
            f'text-anchor="middle" font-weight="700" fill="#8a6d00">&#9660; pick</text>'
        )
    for i in range(6):  # grid lines with both scales
        y = fy(f_lo + (f_hi - f_lo) * i / 5)
        svg.append(
            f'<line x1="{ml}" x2="{ml + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>'
            f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{_F_COLOUR}">{f_lo + (f_hi - f_lo) * i / 5:.3f}</text>'
        )
        if view.has_true:
            svg.append(
                f'<text x="{ml + pw + 6}" y="{y + 4:.1f}" font-size="11" fill="{_T_COLOUR}">'
                f"{t_lo + (t_hi - t_lo) * i / 5:.3f}</text>"
            )
    mid = mt + ph / 2
    svg.append(
        f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>'
        f'<text x="14" y="{mid:.1f}" transform="rotate(-90 14 {mid:.1f})" text-anchor="middle" '
        f'font-size="12" fill="{_F_COLOUR}">{_e(label)} vs fusion</text>'
    )
    if view.has_true:
        rx = width - 10
        svg.append(
            f'<text x="{rx}" y="{mid:.1f}" transform="rotate(90 {rx} {mid:.1f})" text-anchor="middle" '
            f'font-size="12" fill="{_T_COLOUR}">true mIoU (audit)</text>'
        )
    default = view.defaults.get(param)
    for k, c in enumerate(cats):
        is_default = default is not None and _same(c, default)
        weight = ' font-weight="700"' if is_default else ""
        svg.append(
            f'<text x="{cx(k):.1f}" y="{mt + ph + 16}" text-anchor="middle" font-size="12"{weight}>'
            f"{_e(_fmt_value(c))}</text>"
        )
        if is_default:
            svg.append(
                f'<text x="{cx(k):.1f}" y="{mt + ph + 29}" text-anchor="middle" font-size="10" '
                f'fill="#666">default</text>'
            )
    svg.append(
        f'<text x="{ml + pw / 2:.1f}" y="{height - 8}" text-anchor="middle" font-size="12">{_e(param)}</text>'
    )

    # True mIoU sits a few pixels right of the vote's score and underneath it: with two
    # independently scaled axes the series can coincide, and the pick is made on the vote's score.
    t_dx = 7.0

    def polyline(values: pd.Series, scale: Any, colour: str, extra: str, dx: float) -> None:
        pts = []
        for k, c in enumerate(cats):
            at_c = pd.Series([_same(v, c) for v in rows[param].tolist()], index=rows.index)
            sel = values[at_c & alive & values.notna()]
            if len(sel):
                # The mean per value: one point in a sweep, the marginal over a grid.
                pts.append(f"{cx(k) + dx:.1f},{scale(float(sel.mean())):.1f}")
        if len(pts) > 1:
            svg.append(
                f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="2"{extra}/>'
            )

    # Several candidates at one value (a grid) are spread so that none hides another.
    placed: list[tuple[int, pd.Series, float]] = []
    counts: dict[int, int] = {}
    crowded = len(rows) > n
    for idx, row in rows.iterrows():
        if _is_missing(row[param]):
            continue
        k = cat_index(row[param])
        j = counts.get(k, 0)
        counts[k] = j + 1
        placed.append((idx, row, cx(k) + ((j % 5) - 2) * 5.0 * crowded))

    def tip_of(idx: int, row: pd.Series) -> str:
        tip = (
            f"{row['candidate_id']}: {param}={_fmt_value(row[param])}, {label}={_fmt(ys[idx])}, "
            f"status={row['status']}"
        )
        return tip + (f", true mIoU={_fmt(row['true_miou'])}" if view.has_true else "")

    if view.has_true:
        polyline(rows["true_miou"], ty, _T_COLOUR, ' stroke-dasharray="6 4"', t_dx)
        for idx, row, x in placed:
            t = _num(row["true_miou"])
            if t is not None and row["status"] != "failed":
                svg.append(
                    f'<g class="point-true"><title>{_e(tip_of(idx, row))}</title>'
                    f'<rect x="{x + t_dx - 4:.1f}" y="{ty(t) - 4:.1f}" width="8" height="8" '
                    f'fill="{_T_COLOUR}"/></g>'
                )
    polyline(ys, fy, _F_COLOUR, "", 0.0)
    for idx, row, x in placed:
        cid = str(row["candidate_id"])
        tip = _e(tip_of(idx, row))
        y_val = _num(ys[idx])
        if row["status"] == "failed" or y_val is None:
            svg.append(
                f'<g class="failed-point"><title>{tip}</title>'
                f'<text x="{x:.1f}" y="{mt + ph - 5:.1f}" text-anchor="middle" font-size="16" '
                f'font-weight="700" fill="{_FAIL_COLOUR}">&#215;</text></g>'
            )
            continue
        y = fy(y_val)
        degenerate = cid in view.degenerate
        fill = "#ffffff" if degenerate else _F_COLOUR
        stroke = _DEGEN_COLOUR if degenerate else _F_COLOUR
        svg.append(
            f'<g class="point"><title>{tip}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="5" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="2"/></g>'
        )
        if view.is_pick(param, row):
            svg.append(
                f'<circle class="pick-ring" cx="{x:.1f}" cy="{y:.1f}" r="10" fill="none" '
                f'stroke="#b8860b" stroke-width="2.5"/>'
            )
    svg.append("</svg>")
    return "".join(svg)


def _legend(view: _View) -> str:
    items = [
        f'<span><i class="sw" style="background:{_F_COLOUR}"></i>F-mIoU against the fused labels '
        f"({_e(view.score_used)})</span>",
        '<span><i class="sw ring"></i>the pick</span>',
        f'<span><i class="sw hollow" style="border-color:{_DEGEN_COLOUR}"></i>degenerate (trimmed)</span>',
        f'<span><b style="color:{_FAIL_COLOUR}">&#215;</b> failed</span>',
    ]
    if view.has_true:
        items.insert(
            1,
            f'<span><i class="sw sq" style="background:{_T_COLOUR}"></i>'
            "true mIoU (target labels; audit only, right axis)</span>",
        )
    return '<div class="legend">' + "".join(items) + "</div>"


def _centre_banner(view: _View, param: str) -> str:
    theirs = view.centre_sentence.get(param, "")
    detail = (
        f' <span class="small">({_e(theirs)})</span>'
        if theirs and CENTRE_BOUND_SENTENCE not in theirs
        else ""
    )
    return (
        f'<div class="banner warn centre-bound"><b>Centre-bound sweep ({_e(param)}).</b> '
        f"{_e(CENTRE_BOUND_SENTENCE)}.{detail}</div>"
    )


def _sweep_section(view: _View) -> str:
    if not view.params:
        return (
            '<section><h2>F-mIoU per parameter</h2><p class="muted">The table names no swept '
            "parameter.</p></section>"
        )
    cards = []
    for p in view.params:
        parts = [f'<div class="card sweep" id="sweep-{_e(p)}"><h3>{_e(p)}</h3>']
        if p in view.centre_bound:
            parts.append(_centre_banner(view, p))
        pick = view.pick_value(p)
        entry = view.per_sweep.get(view.group_of(p), {})
        if pick is not None:
            score = entry.get(view.score_used, entry.get("f_miou"))
            line = f"Pick: <b>{_e(p)} = {_e(_fmt_value(pick))}</b>"
            if view.pick_id(p):
                line += f" ({_e(view.pick_id(p))}"
                line += f", {_e(view.score_used)} {_e(_fmt(score))})" if _num(score) is not None else ")"
            if p in view.defaults:
                line += f"; run default {_e(_fmt_value(view.defaults[p]))}"
            parts.append(f'<p class="pick-line">{line}</p>')
        facts = []
        untrimmed = entry.get("untrimmed_pick")
        if untrimmed is not None and str(untrimmed) != str(entry.get("candidate_id")):
            facts.append(f"without trimming the pick would be {_e(untrimmed)}")
        if _num(entry.get("undecided_fraction")) is not None:
            facts.append(f"undecided pixels in the vote: {100 * float(entry['undecided_fraction']):.1f}%")
        if entry.get("degenerate"):
            facts.append("degenerate here: " + ", ".join(_e(x) for x in _tokens(entry["degenerate"])))
        if facts:
            parts.append('<p class="muted small">' + "; ".join(facts) + "</p>")
        parts.append(_sweep_chart(view, p))
        parts.append("</div>")
        cards.append("".join(parts))
    return (
        "<section><h2>F-mIoU per parameter</h2>"
        + _legend(view)
        + '<div class="grid">'
        + "".join(cards)
        + "</div></section>"
    )


# --------------------------------------------------------------------------------------------
# Other sections


def _summary_section(view: _View, provisional: bool, total: int | None) -> str:
    df = view.df
    finished = int(df["status"].isin(_FINISHED).sum())
    m = max(total or len(df), finished)
    out = []
    if provisional:
        out.append(
            f'<div class="banner provisional">PROVISIONAL — {finished} of {m} candidates finished. '
            "Scores and the pick will change as the rest finish.</div>"
        )
    ch = view.choice
    if ch:
        rows = []
        for p, v in view.chosen_params.items():
            d = view.defaults.get(p)
            changed = d is not None and not _same(v, d)
            cls = ' class="changed"' if changed else ""
            rows.append(
                f"<tr{cls}><td>{_e(p)}</td><td><b>{_e(_fmt_value(v))}</b></td>"
                f'<td>{_e(_fmt_value(d))}</td><td class="t">{"changed" if changed else ""}</td></tr>'
            )
        facts = [f"Mode: <b>{_e(view.mode)}</b>", f"score: <b>{_e(view.score_used)}</b>"]
        if _num(ch.get("f_miou")) is not None:
            facts.append(f"value of the choice: <b>{_e(_fmt(ch.get('f_miou')))}</b>")
        if "candidate_id" in ch:
            cid = ch["candidate_id"]
            facts.append(
                f"candidate <b>{_e(cid)}</b>" if cid is not None else "a combination no candidate trained"
            )
        subset = ch.get("subset")
        if isinstance(subset, Mapping) and subset.get("size") is not None:
            facts.append(f"subset: {_e(subset['size'])} target images")
        out.append(
            '<div class="card"><h2>Chosen setting</h2><p>'
            + "; ".join(facts)
            + ".</p>"
            + (
                '<table class="data"><tr><th>parameter</th><th>chosen</th><th>run default</th>'
                "<th></th></tr>" + "".join(rows) + "</table>"
                if rows
                else ""
            )
        )
        if view.centre_bound:
            out.append(
                '<div class="banner warn">Centre-bound sweeps: '
                + ", ".join(_e(p) for p in sorted(view.centre_bound))
                + f". {_e(CENTRE_BOUND_SENTENCE)}.</div>"
            )
        notes = [str(n) for n in ch.get("notes") or []]
        if notes:
            out.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
        out.append("</div>")
    else:
        out.append('<div class="card"><h2>Chosen setting</h2><p class="muted">No choice yet.</p></div>')
    n_failed = int((df["status"] == "failed").sum())
    out.append(
        f'<p class="muted">{len(df)} candidates in the table; {n_failed} failed; '
        f"{len(view.degenerate)} degenerate (trimmed from the vote).</p>"
    )
    return "<section>" + "".join(out) + "</section>"


def _candidates_section(view: _View) -> str:
    df = view.df
    params = view.param_cols
    has_groups = any(view.row_groups)
    head = (
        "<tr><th>candidate</th>"
        + ('<th class="t">sweeps</th>' if has_groups else "")
        + "".join(f"<th>{_e(p)}</th>" for p in params)
        + '<th class="t">status</th><th>F-mIoU</th>'
        + ("<th>true mIoU</th>" if view.has_true else "")
        + '<th class="t">marks</th></tr>'
    )
    body = []
    for i, row in df.iterrows():
        cid = str(row["candidate_id"])
        marks = ['<span class="tag pick">chosen</span>'] if view.is_chosen(row) else []
        marks += [f'<span class="tag pick">pick for {_e(g)}</span>' for g in view.picked_in(int(i))]
        picked = bool(marks)
        if cid in view.degenerate:
            marks.append('<span class="tag degen">degenerate</span>')
        if (
            "centre_bound" in df.columns
            and not _is_missing(row["centre_bound"])
            and bool(row["centre_bound"])
        ):
            marks.append('<span class="tag warn">centre-bound line</span>')
        cls = "failed" if row["status"] == "failed" else ("pickrow" if picked else "")
        groups = f'<td class="t wrap">{_e(", ".join(view.row_groups[int(i)]))}</td>' if has_groups else ""
        body.append(
            f'<tr class="{cls}"><td class="cid">{_e(cid)}</td>{groups}'
            + "".join(f"<td>{_e(_fmt_value(row[p]))}</td>" for p in params)
            + f'<td class="t">{_e(row["status"])}</td><td>{_e(_fmt(row["f_miou"]))}</td>'
            + (f"<td>{_e(_fmt(row['true_miou']))}</td>" if view.has_true else "")
            + f'<td class="t wrap">{"".join(marks)}</td></tr>'
        )
    note = (
        '<p class="muted small">F-mIoU of a candidate in several sweeps (the default) is the mean of '
        "its per-sweep values; the charts use the exact value of each sweep.</p>"
        if any(c.startswith("f_miou__") for c in df.columns)
        else ""
    )
    return (
        '<section><h2>Candidates</h2><div class="scroll"><table class="data">'
        + head
        + "".join(body)
        + "</table></div>"
        + note
        + "</section>"
    )


def _excluded_section(view: _View) -> str:
    df = view.df
    parts = ["<section><h2>Excluded candidates</h2>"]
    if view.degenerate:
        items = [
            f"<li><b>{_e(cid)}</b>{': ' + _e(reason) if reason else ''}</li>"
            for cid, reason in view.degenerate.items()
        ]
        rule = view.choice.get("trim_rule")
        parts.append(
            "<h3>Degenerate (trimmed from the vote, cannot be picked)</h3>"
            + (f'<p class="muted small">Rule: {_e(rule)}</p>' if rule else "")
            + '<ul class="degenerate">'
            + "".join(items)
            + "</ul>"
        )
    else:
        parts.append('<p class="muted">No degenerate candidate.</p>')
    failed = df[df["status"] == "failed"]
    if len(failed):
        err_col = next((c for c in ("error", "failure", "reason") if c in df.columns), None)
        items = []
        for _, row in failed.iterrows():
            err = row[err_col] if err_col else None
            items.append(
                f"<li><b>{_e(row['candidate_id'])}</b>"
                + (f": <code>{_e(err)}</code>" if err is not None and not _is_missing(err) else "")
                + "</li>"
            )
        parts.append(
            '<h3>Failed</h3><div class="banner fail">These candidates did not finish; they take no '
            'part in the vote.</div><ul class="failed">' + "".join(items) + "</ul>"
        )
    else:
        parts.append('<p class="muted">No failed candidate.</p>')
    parts.append("</section>")
    return "".join(parts)


def _group_score(view: _View, col: str, group: str) -> str:
    """The column holding ``col`` within one vote: vote scores have per-group columns."""
    per_group = f"{col}__{group}"
    return per_group if per_group in view.df.columns else col


def _scores_section(view: _View) -> str:
    """Each label-free score as a selection rule of its own, beside the vote, per sweep.

    Scores from different votes are not comparable (each sweep is its own vote), so every score
    picks within each sweep; the question the table answers is whether it picks what F-mIoU did.
    """
    alive = view.df[view.df["status"] != "failed"]
    cols = [c for c in ["f_miou", *view.score_columns()] if c in alive.columns and alive[c].notna().any()]
    cols = list(dict.fromkeys(cols))
    if view.has_true:
        cols.append("true_miou")
    if len(alive) == 0 or len(cols) < 2:
        return ""
    groups = view.params if view.mode != _GRID else view.params[:1]
    arrows = {+1: "&#8593; higher", -1: "&#8595; lower", 0: "direction unknown"}
    head = (
        "<tr><th>score</th><th>direction</th>"
        + "".join(f"<th>{_e(view.group_of(p))}</th>" for p in groups)
        + "<th>same pick as the vote</th></tr>"
    )
    rows = []
    for c in cols:
        d = view.direction(c)
        cells, same, comparable = [], 0, 0
        for p in groups:
            members = view.rows_for(p)
            members = members[members["status"] != "failed"]
            col = _group_score(view, c, view.group_of(p))
            values = (
                pd.to_numeric(members[col], errors="coerce") if col in members else pd.Series(dtype=float)
            )
            if d == 0 or values.notna().sum() == 0:
                cells.append("<td>–</td>")
                continue
            best = values.max() if d > 0 else values.min()
            tied = [
                i for i, v in values.items() if _num(v) is not None and math.isclose(v, best, abs_tol=1e-9)
            ]
            comparable += 1
            if len(tied) > 1:
                # A tie is no pick: the score does not discriminate between these candidates.
                names = ", ".join(
                    _fmt_value(members.at[i, p]) if view.mode != _GRID else str(members.at[i, "candidate_id"])
                    for i in tied
                )
                cells.append(f'<td class="tie">tie: {_e(names)}</td>')
                continue
            row = members.loc[tied[0]]
            cid = str(row["candidate_id"])
            shown = _fmt_value(row[p]) if view.mode != _GRID else cid
            agrees = view.is_pick(p, row)
            same += agrees
            cls = ' class="agree"' if agrees else ""
            flag = ' <span class="tag degen">degenerate</span>' if cid in view.degenerate else ""
            cells.append(f'<td{cls} title="{_e(cid)}">{_e(shown)}{flag}</td>')
        audit = ' <span class="tag audit">audit</span>' if c == "true_miou" else ""
        rows.append(
            f'<tr><td>{_e(c)}{audit}</td><td class="t">{arrows[d]}</td>{"".join(cells)}'
            f"<td>{same} of {comparable}</td></tr>"
        )
    summary = f'<table class="data picks">{head}{"".join(rows)}</table>'

    full_head = "<tr><th>candidate</th>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>"
    full = []
    for _, row in alive.iterrows():
        cid = str(row["candidate_id"])
        degen = cid in view.degenerate
        tag = ' <span class="tag degen">degenerate</span>' if degen else ""
        row_cls = ' class="degen"' if degen else ""
        cells = "".join(f"<td>{_e(_fmt(row[c]))}</td>" for c in cols)
        full.append(f'<tr{row_cls}><td class="cid">{_e(cid)}{tag}</td>{cells}</tr>')
    return (
        "<section><h2>Label-free scores side by side</h2>"
        '<p class="muted">Each score used as the selection rule within every sweep: the value it '
        "would pick (highlighted where that is the vote's pick). true_miou, when present, is the "
        "oracle: it uses target labels and only audits the others. A label-free score that picks a "
        "degenerate candidate is blind to that failure.</p>"
        + summary
        + '<details><summary>all values</summary><div class="scroll"><table class="data scores">'
        + full_head
        + "".join(full)
        + "</table></div>"
        + '<p class="muted small">F-mIoU values come from separate votes (one per sweep) and are '
        "comparable only within a sweep.</p></details></section>"
    )


def _agreement_matrix(view: _View, agreement: pd.DataFrame | None) -> pd.DataFrame | None:
    if agreement is not None and agreement.size:
        mat = agreement.copy()
        mat.index = [str(i) for i in mat.index]
        mat.columns = [str(c) for c in mat.columns]
    else:
        prefix = next((p for p in _AGREEMENT_PREFIXES if any(c.startswith(p) for c in view.df.columns)), None)
        if prefix is None:
            return None
        cols = [c for c in view.df.columns if c.startswith(prefix)]
        mat = view.df[cols].apply(pd.to_numeric, errors="coerce")
        mat.index = view.df["candidate_id"].tolist()
        mat.columns = [c[len(prefix) :] for c in cols]
    # Failed candidates have no predictions: their all-empty rows and columns carry nothing.
    return mat.dropna(how="all", axis=0).dropna(how="all", axis=1)


def _agreement_section(view: _View, agreement: pd.DataFrame | None) -> str:
    mat = _agreement_matrix(view, agreement)
    if mat is None or mat.empty:
        return (
            '<section><h2>Agreement between candidates</h2><p class="muted">No pairwise agreement '
            "in the table.</p></section>"
        )
    off = [float(v) for r, row in mat.iterrows() for c, v in row.items() if r != c and _num(v) is not None]
    if not off:
        off = [float(v) for v in mat.to_numpy().ravel() if _num(v) is not None]
    lo, hi = min(off), max(off)
    head = "<tr><th></th>" + "".join(f'<th class="vert">{_e(c)}</th>' for c in mat.columns) + "</tr>"
    body = [
        f'<tr><th class="cid">{_e(r)}</th>' + "".join(_heat_cell(v, lo, hi) for v in row.tolist()) + "</tr>"
        for r, row in mat.iterrows()
    ]
    return (
        "<section><h2>Agreement between candidates</h2>"
        f'<p class="muted">How much two candidates\' predictions agree on the subset. Colour runs from '
        f"the lowest ({lo:.3f}) to the highest ({hi:.3f}) off-diagonal value; a row much lighter than "
        "the rest is a candidate the others disagree with.</p>"
        f'<div class="scroll"><table class="heatmap">{head}{"".join(body)}</table></div></section>'
    )


def _per_class_frame(view: _View) -> pd.DataFrame | None:
    df = view.df[view.df["status"] != "failed"]
    cols = [c for c in df.columns if c.startswith("iou_")]
    if cols:
        out = df[cols].apply(pd.to_numeric, errors="coerce")
        out.columns = [c[len("iou_") :] for c in cols]
    elif "per_class_iou" in df.columns:
        lists = [
            [_num(x) for x in v] if isinstance(v, Iterable) else [] for v in df["per_class_iou"].tolist()
        ]
        n = max((len(v) for v in lists), default=0)
        if n == 0:
            return None
        arr = np.full((len(lists), n), np.nan)
        for i, v in enumerate(lists):
            arr[i, : len(v)] = [np.nan if x is None else x for x in v]
        names = _class_names(view.cfgd, n)
        out = pd.DataFrame(arr, columns=names)
        eval_classes = (view.cfgd.get("data") or {}).get("eval_classes")
        if eval_classes:
            # The classes the run's mIoU averages; the others never occur in these scenes.
            out = out[[names[c] for c in eval_classes if 0 <= c < n]]
    else:
        return None
    out.index = df["candidate_id"].tolist()
    out = out.dropna(how="all", axis=1)
    return out if not out.empty else None


def _per_class_section(view: _View) -> str:
    frame = _per_class_frame(view)
    if frame is None:
        return ""
    head = "<tr><th></th>" + "".join(f'<th class="vert">{_e(c)}</th>' for c in frame.columns) + "</tr>"
    body = [
        f'<tr><th class="cid">{_e(cid)}</th>'
        + "".join(_heat_cell(v, 0.0, 1.0) for v in row.tolist())
        + "</tr>"
        for cid, row in frame.iterrows()
    ]
    return (
        "<section><h2>Per-class IoU against the fusion</h2>"
        '<p class="muted">IoU of each candidate\'s predictions with the majority-vote labels, per '
        "class (colour 0 to 1). A class that is dark for one candidate and light for the others "
        "is where that candidate departs from the consensus.</p>"
        f'<div class="scroll"><table class="heatmap">{head}{"".join(body)}</table></div></section>'
    )


def _settings_section(view: _View) -> str:
    if not view.cfgd:
        return ""
    # One row per section keeps the whole config on one screen; the full JSON is kept (folded)
    # for copying into a config file.
    rows = []
    for section, value in view.cfgd.items():
        if isinstance(value, Mapping):
            cell = "; ".join(
                f"<b>{_e(k)}</b>: {_e(json.dumps(v, default=str, separators=(', ', ': ')))}"
                for k, v in value.items()
            )
        else:
            cell = _e(json.dumps(value, default=str))
        rows.append(f'<tr><th>{_e(section)}</th><td class="t wrap">{cell}</td></tr>')
    dump = json.dumps(view.cfgd, indent=2, default=str)
    return (
        '<section><h2>Run settings</h2><table class="data settings">'
        + "".join(rows)
        + "</table><details><summary>full configuration (JSON)</summary>"
        + f"<pre>{_e(dump)}</pre></details></section>"
    )


_CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif;
 margin:0;background:#f6f7f9;color:#1b1b1b;font-size:14px;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:18px 20px 40px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:22px 0 8px}h3{font-size:15px;margin:4px 0 6px}
.card h2{margin-top:2px}
.muted{color:#5b5b5b}.small{font-size:12px}
.card{background:#fff;border:1px solid #dcdfe4;border-radius:6px;padding:10px 14px;margin:8px 0}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.grid .card{flex:1 1 460px;max-width:calc(50% - 6px);min-width:0;margin:0}
@media (max-width:900px){.grid .card{max-width:100%}}
.banner{padding:9px 12px;border-radius:5px;margin:8px 0;border:1px solid}
.banner.provisional{background:#fff4d6;border-color:#e0b100;font-weight:700;font-size:16px}
.banner.warn{background:#fdecdf;border-color:#e08a4b}
.banner.fail{background:#fbe3e1;border-color:#c0392b}
table.data{border-collapse:collapse;background:#fff;margin:6px 0}
table.data th,table.data td{border:1px solid #dcdfe4;padding:3px 8px;text-align:right;white-space:nowrap}
table.data th{background:#eef1f5}
table.data td:first-child,table.data th:first-child{text-align:left}
table.data td.t,table.data th.t{text-align:left}table.data td.wrap{white-space:normal;min-width:110px}
table.settings th{vertical-align:top}table.settings td{font-size:12px}
tr.failed td{color:#a02b1f;background:#fdf1f0}
tr.pickrow td,tr.changed td{background:#fff8dc}
tr.degen td{color:#777;font-style:italic}
table.picks td.agree{background:#f5d76e;font-weight:700}table.picks td.tie{color:#777}
.tag{display:inline-block;border-radius:3px;padding:0 5px;margin-right:4px;font-size:12px;font-style:normal}
.tag.pick{background:#f5d76e}.tag.degen{background:#ddd}.tag.audit{background:#fde2c8}
.tag.warn{background:#f7c6a3}
.scroll{overflow-x:auto}
table.heatmap{border-collapse:collapse;font-size:11px}
table.heatmap td,table.heatmap th{border:1px solid #fff;padding:2px 4px;text-align:center;min-width:42px}
table.heatmap th.vert{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:600;padding:4px 2px;
 white-space:nowrap}
table.heatmap th.cid{text-align:left;white-space:nowrap}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;align-items:center;margin:4px 0 8px}
.legend span{display:inline-flex;align-items:center;gap:5px}
.sw{display:inline-block;width:11px;height:11px;border-radius:50%}
.sw.sq{border-radius:0}.sw.hollow{background:#fff;border:2px solid}
.sw.ring{border:2.5px solid #b8860b;width:15px;height:15px}
.pick-line{margin:2px 0 4px}
pre{background:#fff;border:1px solid #dcdfe4;padding:8px;font-size:12px;overflow-x:auto}
svg.chart{display:block;font-family:inherit;width:100%;height:auto;max-width:540px}
footer{margin-top:28px;color:#777;font-size:12px}
"""


def render_dashboard(
    table: pd.DataFrame,
    choice: Mapping[str, Any] | None,
    cfg: HIASTConfig | Mapping[str, Any] | None,
    provisional: bool = False,
    *,
    agreement: pd.DataFrame | None = None,
    failed: Sequence[Mapping[str, Any]] | None = None,
    total_candidates: int | None = None,
) -> str:
    """The dashboard as one HTML string.

    ``table``: one row per candidate (module docstring). ``choice``: the selection's choice dict
    (``choice.json``), or None before there is one. ``cfg``: the run's config (model or dict).
    ``provisional``: adds "PROVISIONAL — n of m candidates finished"; m is ``total_candidates``,
    else the number of candidates ``cfg.selection`` defines. ``agreement``: a square candidate x
    candidate frame, used instead of the table's ``agreement__<id>`` columns. ``failed``: candidates
    that did not finish and are not in ``table`` (dicts with ``candidate_id``, ``params`` or the
    parameters themselves, ``sweeps``, ``error``; ``ray_jobs.select``'s failed outcomes fit).
    """
    view = _View(table, choice, cfg, failed)
    total = total_candidates if total_candidates is not None else _expected_candidates(view.cfgd)
    experiment = view.cfgd.get("experiment", "selection")
    title = f"hiast-select — {experiment}"
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = "".join(
        [
            f"<h1>{_e(title)}</h1>",
            '<p class="muted">Label-free hyperparameter selection: every candidate is scored by '
            "F-mIoU against the majority vote of all candidates' predictions on the target "
            "subset. True mIoU, when shown, uses target labels and is for auditing only.</p>",
            _summary_section(view, provisional, total),
            _sweep_section(view),
            _candidates_section(view),
            _excluded_section(view),
            _scores_section(view),
            _agreement_section(view, agreement),
            _per_class_section(view),
            _settings_section(view),
            f"<footer>Generated {_e(generated)} by ray_jobs.dashboard. Self-contained: no scripts "
            "and no external resources.</footer>",
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
