"""One self-contained HTML page that explains a label-free selection run.

The Ray dashboard shows cluster state, TensorBoard shows training curves; neither can show *why* a
setting was picked, because F-mIoU exists only after the majority vote. This page does: per swept
parameter the F-mIoU curve with the pick marked (and the true mIoU beside it when target labels
were available for auditing), the centre-bias warning, excluded and failed candidates, how much the
candidates agree with each other, per-class IoU against the fusion, the other label-free scores
side by side, and the run's settings.

The page must open from an S3 download, an air-gapped laptop or a CI artifact, so it has no
scripts, no CDN, no web fonts and no external references: charts are inline SVG generated here,
and every piece of text from the table, the choice or the config goes through ``html.escape``.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import posixpath
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from hiast.config import TUNABLE_PARAMETERS, HIASTConfig

__all__ = [
    "CENTRE_BOUND_SENTENCE",
    "SCORE_DIRECTIONS",
    "render_dashboard",
    "write_atomic",
    "write_dashboard",
]

CENTRE_BOUND_SENTENCE = (
    "The vote did not discriminate between these values: the pick is the centre of every window"
)

# +1: higher is better, -1: lower is better. Columns not listed (and not ending in "_loss") are
# shown with an unknown direction rather than a guessed one: a wrong arrow misleads more than none.
SCORE_DIRECTIONS: dict[str, int] = {
    "f_miou": +1,
    "true_miou": +1,
    "mean_confidence": +1,
    "neg_entropy": +1,
    "entropy": -1,
    "mean_entropy": -1,
    "rescale_consistency": +1,
    "source_miou": +1,
    "seed_agreement": +1,
}

# Numeric columns that describe a candidate rather than score it.
_NON_SCORE_COLUMNS = frozenset(
    {
        "candidate_id",
        "sweep",
        "status",
        "f_miou",
        "true_miou",
        "replicate",
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
        "n_images",
        "n_pixels",
    }
)
_NON_SCORE_SUFFIXES = ("_s", "_seconds", "_time", "_id", "_path")

# Object stores make a single upload visible atomically, and their "move" is copy + delete.
_OBJECT_STORES = frozenset({"s3", "gcs"})

_F_COLOUR = "#1f5fa8"
_T_COLOUR = "#d9670b"
_FAIL_COLOUR = "#c0392b"
_DEGEN_COLOUR = "#7f7f7f"


# --------------------------------------------------------------------------------------------
# Writing


def _filesystem(path_or_uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path_or_uri:
        return pafs.FileSystem.from_uri(path_or_uri)
    # from_uri rejects relative paths; a plain path is always local.
    return pafs.LocalFileSystem(), os.path.abspath(path_or_uri)


def write_atomic(path_or_uri: str, data: bytes, content_type: str | None = None) -> None:
    """Write ``data`` to a local path or any URI pyarrow.fs understands, never leaving a torn file.

    Local and other file systems: a temporary sibling, then a rename, so a reader (a browser, a
    sync job, TensorBoard) sees either the old file or the whole new one. S3/GCS: one upload, which
    is already all-or-nothing there (their rename would be a second full copy).
    """
    fs, path = _filesystem(path_or_uri)
    if fs.type_name in _OBJECT_STORES:
        metadata = {"Content-Type": content_type} if content_type else None
        with fs.open_output_stream(path, compression=None, metadata=metadata) as out:
            out.write(data)
        return
    parent, name = posixpath.split(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    tmp = posixpath.join(parent, f".{name}.tmp-{uuid.uuid4().hex}")
    try:
        with fs.open_output_stream(tmp, compression=None) as out:
            out.write(data)
        fs.move(tmp, path)
    except BaseException:
        try:
            fs.delete_file(tmp)
        except OSError:
            pass
        raise


def write_dashboard(
    path_or_uri: str,
    table: pd.DataFrame,
    choice: Mapping[str, Any] | None,
    cfg: HIASTConfig | Mapping[str, Any],
    provisional: bool = False,
    *,
    agreement: pd.DataFrame | None = None,
    total_candidates: int | None = None,
) -> None:
    """Render the selection dashboard and write it atomically to ``path_or_uri``.

    ``path_or_uri`` names the HTML file itself (``…/dashboard.html``), local or ``s3://…``.
    ``table`` has one row per candidate (columns are described in ``render_dashboard``); absent
    columns are skipped, not errors. ``choice`` is the selection's result dict, or None before
    there is one. ``provisional`` adds the "PROVISIONAL — n of m candidates finished" banner;
    ``total_candidates`` is m (derived from ``cfg.selection`` when not given).
    """
    page = render_dashboard(
        table,
        choice,
        cfg,
        provisional=provisional,
        agreement=agreement,
        total_candidates=total_candidates,
    )
    write_atomic(path_or_uri, page.encode("utf-8"), content_type="text/html; charset=utf-8")


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


def _sweeps_of(value: Any) -> list[str]:
    """The sweeps a row belongs to: "alpha,gamma", "alpha; gamma", a list, or an array."""
    if isinstance(value, str):
        parts = value.replace(";", ",").split(",")
        return [p.strip() for p in parts if p.strip()]
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
    """How many candidates the selection config implies (sweep: default + one-at-a-time changes)."""
    sel = cfgd.get("selection")
    if not isinstance(sel, Mapping) or not sel.get("parameters"):
        return None
    params: Mapping[str, Sequence[Any]] = sel["parameters"]
    replicates = int(sel.get("replicates") or 1)
    if sel.get("mode") == "grid":
        return int(np.prod([len(v) for v in params.values()])) * replicates
    defaults = _defaults(cfgd)
    combos = {tuple(sorted((k, float(v)) for k, v in defaults.items()))}
    for name, values in params.items():
        for v in values:
            combo = {**defaults, name: v}
            combos.add(tuple(sorted((k, float(x)) for k, x in combo.items())))
    return len(combos) * replicates


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


def _spearman(a: pd.Series, b: pd.Series) -> float | None:
    # Rank correlation without scipy: Pearson on average ranks.
    both = pd.concat([pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")], axis=1)
    both = both.dropna()
    if len(both) < 3:
        return None
    ra = both.iloc[:, 0].rank().to_numpy(dtype=float)
    rb = both.iloc[:, 1].rank().to_numpy(dtype=float)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


# --------------------------------------------------------------------------------------------
# Reading the table defensively


class _View:
    """The table and choice normalised once, so every section reads the same facts."""

    def __init__(
        self,
        table: pd.DataFrame,
        choice: Mapping[str, Any] | None,
        cfg: HIASTConfig | Mapping[str, Any] | None,
    ) -> None:
        self.df = table.reset_index(drop=True).copy()
        self.choice: dict[str, Any] = dict(choice or {})
        self.cfgd = _cfg_dict(cfg)
        self.defaults = _defaults(self.cfgd)
        df = self.df
        if "candidate_id" not in df.columns:
            df["candidate_id"] = [f"#{i}" for i in range(len(df))]
        df["candidate_id"] = df["candidate_id"].map(str)
        if "status" not in df.columns:
            df["status"] = "ok"
        df["status"] = ["ok" if _is_missing(s) else str(s).strip().lower() for s in df["status"].tolist()]
        for col in ("f_miou", "true_miou"):
            if col not in df.columns:
                df[col] = np.nan
            df[col] = pd.to_numeric(df[col], errors="coerce")
        # A row with no F-mIoU and status "ok" cannot be plotted; call it what it is.
        df.loc[(df["status"] == "ok") & df["f_miou"].isna(), "status"] = "no score"

        # Candidates the choice names as degenerate/trimmed (ids, or dicts with an id and reason).
        self.degenerate_reasons: dict[str, str] = {}
        for item in self.choice.get("degenerate") or []:
            if isinstance(item, Mapping):
                cid = str(item.get("candidate_id", item.get("id", "")))
                reason = str(item.get("reason", ""))
            else:
                cid, reason = str(item), ""
            if cid:
                self.degenerate_reasons[cid] = reason
        for i, cid in enumerate(df["candidate_id"]):
            if df.at[i, "status"] == "degenerate" and cid not in self.degenerate_reasons:
                self.degenerate_reasons[cid] = ""

        self.mode = str(self.choice.get("mode") or self.cfgd.get("selection", {}).get("mode") or "sweep")
        self.param_cols = [p for p in TUNABLE_PARAMETERS if p in df.columns]
        self.has_true = bool(df["true_miou"].notna().any())
        self.row_sweeps: list[list[str]] = (
            [_sweeps_of(v) for v in df["sweep"].tolist()] if "sweep" in df.columns else [[]] * len(df)
        )
        self.params = self._swept_parameters()
        self.per_sweep: dict[str, dict[str, Any]] = {
            str(k): dict(v) if isinstance(v, Mapping) else {"value": v}
            for k, v in (self.choice.get("per_sweep") or {}).items()
        }
        self.centre_bound = {str(p) for p in self.choice.get("centre_bound") or []}
        self.chosen_params: dict[str, Any] = dict(self.choice.get("parameters") or {})

    def _swept_parameters(self) -> list[str]:
        seen: list[str] = []

        def add(name: str) -> None:
            if name not in seen and name in self.df.columns:
                seen.append(name)

        for name in (self.cfgd.get("selection", {}) or {}).get("parameters", {}) or {}:
            add(str(name))
        for name in self.choice.get("per_sweep") or {}:
            add(str(name))
        for sweeps in self.row_sweeps:
            for name in sweeps:
                add(name)
        if not seen:
            # No declared sweeps (e.g. an ad-hoc table): every tunable column that varies.
            for name in self.param_cols:
                if self.df[name].nunique(dropna=True) > 1:
                    add(name)
        return seen

    def rows_for(self, param: str) -> pd.DataFrame:
        """Candidates that vary ``param``: its sweep (sweep mode) or every candidate (grid mode)."""
        if self.mode == "grid" or "sweep" not in self.df.columns:
            return self.df
        mask = [param in s for s in self.row_sweeps]
        if not any(mask):
            return self.df
        return self.df[mask]

    def pick_value(self, param: str) -> Any:
        entry = self.per_sweep.get(param)
        if entry is not None and "value" in entry:
            return entry["value"]
        return self.chosen_params.get(param)

    def is_chosen(self, row: Mapping[str, Any]) -> bool:
        """The row whose parameters equal the final choice (may not exist in sweep mode)."""
        if not self.chosen_params or not self.param_cols:
            return False
        for p, v in self.chosen_params.items():
            if p in row and not _same(row[p], v):
                return False
        return any(p in row for p in self.chosen_params)

    def sweep_picks(self, i: int) -> list[str]:
        """The sweeps whose per-sweep pick is this row."""
        out = []
        row = self.df.iloc[i]
        for p in self.params:
            if p not in self.per_sweep:
                continue
            in_sweep = self.mode == "grid" or not self.row_sweeps[i] or p in self.row_sweeps[i]
            if in_sweep and _same(row.get(p), self.pick_value(p)):
                # In a sweep every other parameter sits at its default; the row is the pick only
                # if it also matches that (the default candidate belongs to every sweep).
                others_default = all(
                    _same(row.get(q), self.defaults[q])
                    for q in self.param_cols
                    if q != p and q in self.defaults
                )
                if self.mode == "grid" or others_default or not self.defaults:
                    out.append(p)
        return out

    def score_columns(self) -> list[str]:
        cols = []
        for c in self.df.columns:
            if c in _NON_SCORE_COLUMNS or c in TUNABLE_PARAMETERS:
                continue
            if c.startswith(("iou_", "agree_")) or c.endswith(_NON_SCORE_SUFFIXES):
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
            if text in {"higher", "max", "+1", "1", "up"}:
                return +1
            if text in {"lower", "min", "-1", "down"}:
                return -1
        if col in SCORE_DIRECTIONS:
            return SCORE_DIRECTIONS[col]
        if col.endswith("_loss"):
            return -1
        return 0


# --------------------------------------------------------------------------------------------
# Sections


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
    xs_raw = [v for v in rows[param].tolist() if not _is_missing(v)] if param in rows else []
    pick = view.pick_value(param)
    cats: list[Any] = []
    for v in sorted(xs_raw, key=lambda v: (_num(v) is None, _num(v) or 0.0, str(v))):
        if not any(_same(v, c) for c in cats):
            cats.append(v)
    if pick is not None and not any(_same(pick, c) for c in cats):
        cats.append(pick)
        cats.sort(key=lambda v: (_num(v) is None, _num(v) or 0.0, str(v)))
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

    scored = rows[rows["f_miou"].notna() & (rows["status"] != "failed")]
    f_vals = [float(v) for v in scored["f_miou"]]
    t_vals = [float(v) for v in rows["true_miou"].dropna()]
    f_lo, f_hi = _nice_range(f_vals) if f_vals else (0.0, 1.0)
    t_lo, t_hi = _nice_range(t_vals) if t_vals else (0.0, 1.0)

    def fy(v: float) -> float:
        return mt + ph * (1 - (v - f_lo) / (f_hi - f_lo))

    def ty(v: float) -> float:
        return mt + ph * (1 - (v - t_lo) / (t_hi - t_lo))

    svg: list[str] = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="F-mIoU against {_e(param)}">'
    ]
    # The pick's column, drawn first so everything else sits on top of it.
    if pick is not None:
        k = cat_index(pick)
        svg.append(
            f'<rect class="pick-band" x="{cx(k) - step / 2:.1f}" y="{mt}" width="{step:.1f}" '
            f'height="{ph}" fill="#fff3c4"/>'
        )
        svg.append(
            f'<text class="pick-marker" data-pick="{_e(param)}" x="{cx(k):.1f}" y="{mt - 8}" '
            f'text-anchor="middle" font-weight="700" fill="#8a6d00">&#9660; pick</text>'
        )
    # Axes and horizontal grid with the left (F-mIoU) scale.
    for i in range(6):
        v = f_lo + (f_hi - f_lo) * i / 5
        y = fy(v)
        svg.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        svg.append(
            f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{_F_COLOUR}">{v:.3f}</text>'
        )
        if view.has_true:
            tv = t_lo + (t_hi - t_lo) * i / 5
            svg.append(
                f'<text x="{ml + pw + 6}" y="{y + 4:.1f}" font-size="11" fill="{_T_COLOUR}">{tv:.3f}</text>'
            )
    svg.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    svg.append(
        f'<text x="14" y="{mt + ph / 2:.1f}" transform="rotate(-90 14 {mt + ph / 2:.1f})" '
        f'text-anchor="middle" font-size="12" fill="{_F_COLOUR}">F-mIoU vs fusion</text>'
    )
    if view.has_true:
        rx = width - 10
        svg.append(
            f'<text x="{rx}" y="{mt + ph / 2:.1f}" transform="rotate(90 {rx} {mt + ph / 2:.1f})" '
            f'text-anchor="middle" font-size="12" fill="{_T_COLOUR}">true mIoU (audit)</text>'
        )
    default = view.defaults.get(param)
    for k, c in enumerate(cats):
        is_default = default is not None and _same(c, default)
        weight = ' font-weight="700"' if is_default else ""
        svg.append(
            f'<text x="{cx(k):.1f}" y="{mt + ph + 16}" text-anchor="middle" font-size="12"'
            f"{weight}>{_e(_fmt_value(c))}</text>"
        )
        if is_default:
            svg.append(
                f'<text x="{cx(k):.1f}" y="{mt + ph + 29}" text-anchor="middle" font-size="10" '
                f'fill="#666">default</text>'
            )
    svg.append(
        f'<text x="{ml + pw / 2:.1f}" y="{height - 8}" text-anchor="middle" font-size="12">{_e(param)}</text>'
    )

    # The true-mIoU series sits a few pixels right of F-mIoU and underneath it: with two
    # independently scaled axes the series can coincide, and F-mIoU is what the pick is made on.
    t_dx = 7.0

    def polyline(col: str, scale: Any, colour: str, extra: str, dx: float) -> None:
        ok = rows[rows[col].notna() & (rows["status"] != "failed")]
        pts = []
        for k, c in enumerate(cats):
            sel = ok[[_same(v, c) for v in ok[param].tolist()]]
            if len(sel):
                # The mean per value: one point in a sweep, the marginal over a grid.
                pts.append(f"{cx(k) + dx:.1f},{scale(float(sel[col].mean())):.1f}")
        if len(pts) > 1:
            svg.append(
                f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="2"{extra}/>'
            )

    # Several candidates at one value (grid mode, replicates) are spread so none hides another.
    placed: list[tuple[pd.Series, float]] = []
    counts: dict[int, int] = {}
    crowded = len(rows) > n
    for _, row in rows.iterrows():
        v = row.get(param)
        if _is_missing(v):
            continue
        k = cat_index(v)
        j = counts.get(k, 0)
        counts[k] = j + 1
        placed.append((row, cx(k) + ((j % 5) - 2) * 5.0 * crowded))

    def tip_of(row: pd.Series) -> str:
        tip = (
            f"{row['candidate_id']}: {param}={_fmt_value(row[param])}, "
            f"F-mIoU={_fmt(row['f_miou'])}, status={row['status']}"
        )
        if view.has_true:
            tip += f", true mIoU={_fmt(row['true_miou'])}"
        return tip

    if view.has_true:
        polyline("true_miou", ty, _T_COLOUR, ' stroke-dasharray="6 4" opacity="0.9"', t_dx)
        for row, x in placed:
            t = _num(row["true_miou"])
            if t is not None and row["status"] != "failed":
                svg.append(
                    f'<g class="point-true"><title>{_e(tip_of(row))}</title>'
                    f'<rect x="{x + t_dx - 4:.1f}" y="{ty(t) - 4:.1f}" width="8" height="8" '
                    f'fill="{_T_COLOUR}"/></g>'
                )
    polyline("f_miou", fy, _F_COLOUR, "", 0.0)
    for row, x in placed:
        cid = str(row["candidate_id"])
        tip = _e(tip_of(row))
        if row["status"] == "failed" or _num(row["f_miou"]) is None:
            svg.append(
                f'<g class="failed-point"><title>{tip}</title>'
                f'<text x="{x:.1f}" y="{mt + ph - 5:.1f}" text-anchor="middle" font-size="16" '
                f'font-weight="700" fill="{_FAIL_COLOUR}">&#215;</text></g>'
            )
            continue
        y = fy(float(row["f_miou"]))
        degenerate = cid in view.degenerate_reasons
        fill = "#ffffff" if degenerate else _F_COLOUR
        stroke = _DEGEN_COLOUR if degenerate else _F_COLOUR
        svg.append(
            f'<g class="point"><title>{tip}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="5" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="2"/></g>'
        )
        if view.mode == "grid" and view.chosen_params:
            is_pick = view.is_chosen(row)
        else:
            is_pick = pick is not None and _same(row[param], pick)
        if is_pick:
            svg.append(
                f'<circle class="pick-ring" cx="{x:.1f}" cy="{y:.1f}" r="10" fill="none" '
                f'stroke="#b8860b" stroke-width="2.5"/>'
            )
    svg.append("</svg>")
    return "".join(svg)


def _legend(view: _View) -> str:
    items = [
        f'<span><i class="sw" style="background:{_F_COLOUR}"></i>F-mIoU against the fused labels</span>',
        '<span><i class="sw ring"></i>the pick</span>',
        f'<span><i class="sw hollow" style="border-color:{_DEGEN_COLOUR}"></i>degenerate / trimmed</span>',
        f'<span style="color:{_FAIL_COLOUR};font-weight:700">&#215;</span><span>failed</span>',
    ]
    if view.has_true:
        items.insert(
            1,
            f'<span><i class="sw sq" style="background:{_T_COLOUR}"></i>'
            "true mIoU (target labels; audit only, right axis)</span>",
        )
    return '<div class="legend">' + "".join(items) + "</div>"


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
            parts.append(
                f'<div class="banner warn centre-bound"><b>Centre-bound sweep ({_e(p)}).</b> '
                f"{_e(CENTRE_BOUND_SENTENCE)}.</div>"
            )
        pick = view.pick_value(p)
        entry = view.per_sweep.get(p, {})
        if pick is not None:
            score = entry.get("f_miou")
            parts.append(
                f'<p class="pick-line">Pick: <b>{_e(p)} = {_e(_fmt_value(pick))}</b>'
                + (f" (F-mIoU {_e(_fmt(score))})" if score is not None else "")
                + (f"; run default {_e(_fmt_value(view.defaults[p]))}" if p in view.defaults else "")
                + "</p>"
            )
        extra = {k: v for k, v in entry.items() if k not in {"value", "f_miou"}}
        if extra:
            parts.append(
                '<p class="muted small">'
                + "; ".join(f"{_e(k)}: {_e(_fmt(v) if _num(v) is not None else v)}" for k, v in extra.items())
                + "</p>"
            )
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


def _summary_section(view: _View, provisional: bool, total: int | None) -> str:
    df = view.df
    finished = int(df["status"].isin(["ok", "degenerate", "failed", "no score"]).sum())
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
                f"<tr{cls}><td>{_e(p)}</td>"
                f"<td><b>{_e(_fmt_value(v))}</b></td><td>{_e(_fmt_value(d))}</td>"
                f"<td>{'changed' if changed else ''}</td></tr>"
            )
        out.append(
            '<div class="card"><h2>Chosen setting</h2>'
            f"<p>Mode: <b>{_e(view.mode)}</b>. F-mIoU of the choice: <b>{_e(_fmt(ch.get('f_miou')))}</b>.</p>"
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
        f"{len(view.degenerate_reasons)} degenerate or trimmed.</p>"
    )
    return "<section>" + "".join(out) + "</section>"


def _candidates_section(view: _View) -> str:
    df = view.df
    params = view.param_cols
    head = (
        "<tr><th>candidate</th>"
        + ("<th>sweep</th>" if "sweep" in df.columns else "")
        + "".join(f"<th>{_e(p)}</th>" for p in params)
        + "<th>status</th><th>F-mIoU</th>"
        + ("<th>true mIoU</th>" if view.has_true else "")
        + "<th>marks</th></tr>"
    )
    body = []
    for i, row in df.iterrows():
        cid = str(row["candidate_id"])
        marks = []
        if view.is_chosen(row):
            marks.append('<span class="tag pick">chosen</span>')
        marks += [f'<span class="tag pick">pick for {_e(p)}</span>' for p in view.sweep_picks(int(i))]
        picked = bool(marks)
        if cid in view.degenerate_reasons:
            marks.append('<span class="tag degen">degenerate</span>')
        cls = "failed" if row["status"] == "failed" else ("pickrow" if picked else "")
        sweep_cell = (
            f'<td class="t wrap">{_e(", ".join(view.row_sweeps[int(i)]))}</td>'
            if "sweep" in df.columns
            else ""
        )
        body.append(
            f'<tr class="{cls}"><td class="cid">{_e(cid)}</td>{sweep_cell}'
            + "".join(f"<td>{_e(_fmt_value(row[p]))}</td>" for p in params)
            + f'<td class="t">{_e(row["status"])}</td><td>{_e(_fmt(row["f_miou"]))}</td>'
            + (f"<td>{_e(_fmt(row['true_miou']))}</td>" if view.has_true else "")
            + f'<td class="t wrap">{"".join(marks)}</td></tr>'
        )
    return (
        '<section><h2>Candidates</h2><div class="scroll"><table class="data">'
        + head
        + "".join(body)
        + "</table></div></section>"
    )


def _excluded_section(view: _View) -> str:
    df = view.df
    parts = ["<section><h2>Excluded candidates</h2>"]
    if view.degenerate_reasons:
        reasons_col = next((c for c in ("degenerate_reason", "reason") if c in df.columns), None)
        items = []
        for cid, reason in view.degenerate_reasons.items():
            if not reason and reasons_col:
                match = df.loc[df["candidate_id"] == cid, reasons_col]
                if len(match) and not _is_missing(match.iloc[0]):
                    reason = str(match.iloc[0])
            items.append(f"<li><b>{_e(cid)}</b>{': ' + _e(reason) if reason else ''}</li>")
        parts.append(
            '<h3>Degenerate or trimmed from the vote</h3><ul class="degenerate">' + "".join(items) + "</ul>"
        )
    else:
        parts.append('<p class="muted">No degenerate or trimmed candidate.</p>')
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


def _scores_section(view: _View) -> str:
    df = view.df[view.df["status"] != "failed"]
    cols = ["f_miou"] + [c for c in view.score_columns() if c != "f_miou"]
    if view.has_true:
        cols.append("true_miou")
    cols = [c for c in cols if c in df.columns and df[c].notna().any()]
    if len(df) == 0 or not cols:
        return ""
    arrows = {+1: "&#8593; higher is better", -1: "&#8595; lower is better", 0: "direction unknown"}
    summary = []
    best_idx: dict[str, Any] = {}
    for c in cols:
        d = view.direction(c)
        s = pd.to_numeric(df[c], errors="coerce")
        picked = "–"
        if d != 0 and s.notna().any():
            idx = s.idxmax() if d > 0 else s.idxmin()
            best_idx[c] = idx
            picked = str(df.at[idx, "candidate_id"])
        rho_f = None if c == "f_miou" else _spearman(s, df["f_miou"])
        rho_t = None if (c == "true_miou" or not view.has_true) else _spearman(s, df["true_miou"])
        audit = ' <span class="tag audit">audit</span>' if c == "true_miou" else ""
        summary.append(
            f"<tr><td>{_e(c)}{audit}</td><td>{arrows[d]}</td><td>{_e(picked)}</td>"
            f"<td>{_e(_fmt(rho_f, 2))}</td>"
            + (f"<td>{_e(_fmt(rho_t, 2))}</td>" if view.has_true else "")
            + "</tr>"
        )
    head = (
        "<tr><th>score</th><th>direction</th><th>its best candidate</th>"
        "<th>Spearman &#961; with F-mIoU</th>"
        + ("<th>Spearman &#961; with true mIoU</th>" if view.has_true else "")
        + "</tr>"
    )
    full_head = "<tr><th>candidate</th>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>"
    full = []
    for idx, row in df.iterrows():
        cells = []
        for c in cols:
            cls = ' class="best"' if best_idx.get(c) == idx else ""
            cells.append(f"<td{cls}>{_e(_fmt(row[c]))}</td>")
        cid = str(row["candidate_id"])
        degen = cid in view.degenerate_reasons
        tag = ' <span class="tag degen">degenerate</span>' if degen else ""
        row_cls = ' class="degen"' if degen else ""
        full.append(f'<tr{row_cls}><td class="cid">{_e(cid)}{tag}</td>{"".join(cells)}</tr>')
    return (
        "<section><h2>Label-free scores side by side</h2>"
        '<p class="muted">Each score as its own selection rule: which candidate it would pick, and '
        "how its ranking agrees with F-mIoU. The best value per column is outlined.</p>"
        f'<table class="data">{head}{"".join(summary)}</table>'
        f'<div class="scroll"><table class="data scores">{full_head}{"".join(full)}</table></div>'
        "</section>"
    )


def _agreement_matrix(view: _View, agreement: pd.DataFrame | None) -> pd.DataFrame | None:
    if agreement is not None and agreement.size:
        mat = agreement.copy()
        mat.index = [str(i) for i in mat.index]
        mat.columns = [str(c) for c in mat.columns]
        return mat
    cols = [c for c in view.df.columns if c.startswith("agree_")]
    if not cols:
        return None
    mat = view.df[cols].apply(pd.to_numeric, errors="coerce")
    mat.index = view.df["candidate_id"].tolist()
    mat.columns = [c[len("agree_") :] for c in cols]
    # Failed candidates have no predictions: their all-empty rows and columns carry nothing.
    return mat.dropna(how="all", axis=0).dropna(how="all", axis=1)


def _agreement_section(view: _View, agreement: pd.DataFrame | None) -> str:
    mat = _agreement_matrix(view, agreement)
    if mat is None or not mat.notna().to_numpy().any():
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
        f'<p class="muted">Fraction of pixels on which two candidates predict the same class. Colour '
        f"runs from the lowest ({lo:.3f}) to the highest ({hi:.3f}) off-diagonal value; a row much "
        "lighter than the rest is a candidate the others disagree with.</p>"
        f'<div class="scroll"><table class="heatmap">{head}{"".join(body)}</table></div></section>'
    )


def _per_class_section(view: _View) -> str:
    cols = [c for c in view.df.columns if c.startswith("iou_")]
    if not cols:
        return ""
    df = view.df[view.df["status"] != "failed"]
    head = "<tr><th></th>" + "".join(f'<th class="vert">{_e(c[4:])}</th>' for c in cols) + "</tr>"
    body = []
    for _, row in df.iterrows():
        body.append(
            f'<tr><th class="cid">{_e(row["candidate_id"])}</th>'
            + "".join(_heat_cell(row[c], 0.0, 1.0) for c in cols)
            + "</tr>"
        )
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
h1{font-size:22px;margin:0 0 4px}
.card h2{margin-top:2px}h2{font-size:18px;margin:22px 0 8px}h3{font-size:15px;margin:4px 0 6px}
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
table.data td.t{text-align:left}table.data td.wrap{white-space:normal;min-width:110px}
table.settings th{vertical-align:top}table.settings td{font-size:12px}
tr.degen td{color:#777;font-style:italic}table.data td:first-child,table.data th:first-child{text-align:left}
tr.failed td{color:#a02b1f;background:#fdf1f0}
tr.pickrow td,tr.changed td{background:#fff8dc}
td.best{outline:2px solid #b8860b;outline-offset:-2px;font-weight:700}
.tag{display:inline-block;border-radius:3px;padding:0 5px;margin-right:4px;font-size:12px}
.tag.pick{background:#f5d76e}.tag.degen{background:#ddd}.tag.audit{background:#fde2c8}
.scroll{overflow-x:auto}
table.heatmap{border-collapse:collapse;font-size:11px}
table.heatmap td,table.heatmap th{border:1px solid #fff;padding:2px 4px;text-align:center;min-width:42px}
table.heatmap th.vert{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:600;padding:4px 2px}
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
    total_candidates: int | None = None,
) -> str:
    """The dashboard as one HTML string (see ``write_dashboard``).

    Table columns read when present: ``candidate_id``, the tunable parameters (``alpha`` …
    ``k``), ``sweep`` (comma-separated names or a list), ``status`` (ok/failed/degenerate),
    ``f_miou``, ``true_miou`` (audit only), ``iou_<class>`` (per-class IoU against the fusion),
    ``agree_<candidate_id>`` (pairwise agreement; or pass ``agreement`` as a square DataFrame),
    ``error``/``reason``, and any other numeric column as a label-free score.
    """
    view = _View(table, choice, cfg)
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
