"""What the dashboard reads, checked once: the results table, the choice and the run's config.

Only what the project writes is accepted:

* the table is ``candidates.parquet`` (:mod:`selection.tables`; the job adds ``status``, ``error``
  and per-replicate ``<score>__rep<r>`` columns, :mod:`ray_jobs.vote.actor`). A table without
  ``status`` comes from :func:`selection.run.runner.run_selection`, where every row took part in the vote.
* the choice is ``choice.json`` (:func:`selection.run.runner.score_from_accumulators`, plus the job's
  ``provisional`` / ``finished`` / ``total`` / ``failed`` keys); the job writes one without
  ``per_sweep`` when no vote was possible, and that renders as "no choice" with its notes.
* the config is the run's config as plain JSON (``job_config.json``, or any object with
  ``model_dump``); without it the page leaves out the run settings.
* the sweep tables are ``sweeps/<group>.parquet`` (:mod:`selection.outputs.sweeps`), optional: without
  them the page leaves out the rankings per sweep.

Anything else is an error naming the column or key, raised before anything is rendered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from selection.candidates import GRID_GROUP
from selection.errors import SelectionError
from selection.outputs.choice import VOTED_DOCUMENT_KEYS

__all__ = [
    "REQUIRED_COLUMNS",
    "STATUSES",
    "Facts",
    "as_list",
    "as_names",
    "finite",
    "read_facts",
]

REQUIRED_COLUMNS = ("candidate_id", "sweep", "sweeps", "f_miou")
# The job's statuses; a table without the column (selection.run) holds only voted candidates.
STATUSES = ("done", "pending", "partial", "failed", "stopped")  # stopped: cut by early stopping
_SWEEP_KEYS = ("candidate_id", "value", "score_used", "untrimmed_pick", "degenerate", "undecided_fraction")
SWEEP_TABLE_COLUMNS = ("candidate_id", "picked", "degenerate", "rule__rank")
DEFAULT_SWEEP = "default"  # selection.tables' ``sweep`` of the default candidate


def finite(value: Any) -> float | None:
    """The value as a finite float, or None (missing, NaN, not a number)."""
    if value is None or isinstance(value, bool | np.bool_ | str):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def as_list(cell: Any) -> list[Any]:
    """A list cell (Python list, or the numpy array Parquet gives back); NaN/None is empty."""
    if isinstance(cell, list | tuple | np.ndarray):
        return list(cell)
    return []


def as_names(cell: Any) -> list[str]:
    """A list cell of names (``sweeps``, ``degenerate_in``)."""
    return [str(v) for v in as_list(cell)]


def _config_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if hasattr(config, "model_dump"):
        return config.model_dump(mode="json")
    if not isinstance(config, Mapping):
        raise SelectionError(f"config must be a mapping or a pydantic model, got {type(config).__name__}")
    try:  # the page shows it as JSON, as job_config.json holds it
        return json.loads(json.dumps(dict(config)))
    except (TypeError, ValueError) as e:
        raise SelectionError(f"config: not plain JSON ({e})") from None


def _check_table(table: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise SelectionError(f"results table: missing column(s) {', '.join(missing)}")
    df = table.reset_index(drop=True).copy()
    df["candidate_id"] = df["candidate_id"].map(str)
    dupes = sorted(set(df["candidate_id"][df["candidate_id"].duplicated()]))
    if dupes:
        raise SelectionError(f"results table: candidate_id repeats {dupes}")
    if "status" not in df.columns:
        df["status"] = "done"
    unknown = sorted(set(df["status"].map(str)) - set(STATUSES))
    if unknown:
        raise SelectionError(
            f"results table: column status holds {unknown}; expected one of {list(STATUSES)}"
        )
    for col in ("f_miou", "true_miou"):
        if col in df.columns:
            try:
                df[col] = pd.to_numeric(df[col], errors="raise")
            except (TypeError, ValueError):
                raise SelectionError(
                    f"results table: column {col} holds values that are not numbers"
                ) from None
    return df


def _check_choice(choice: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if not isinstance(choice, Mapping):
        raise SelectionError(f"choice must be a mapping, got {type(choice).__name__}")
    if "per_sweep" not in choice:  # the job's "no vote was possible" choice: notes only
        return None
    missing = [k for k in VOTED_DOCUMENT_KEYS if k not in choice]
    if missing:
        raise SelectionError(f"choice: missing key(s) {', '.join(missing)}")
    for g, entry in choice["per_sweep"].items():
        gone = [k for k in _SWEEP_KEYS if k not in entry]
        if gone:
            raise SelectionError(f"choice: per_sweep.{g} lacks {', '.join(gone)}")
    return dict(choice)


@dataclass
class Facts:
    """The checked inputs and what every section derives from them in the same way."""

    df: pd.DataFrame
    choice: dict[str, Any] | None
    notes: list[str]
    config: dict[str, Any]
    class_names: list[str] | None
    provisional: bool
    total: int
    mode: str
    groups: list[str]
    params: list[str]
    defaults: dict[str, float]
    degenerate: dict[str, list[str]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # candidate -> why (selection.decision.guard)
    sweeps: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def has_true(self) -> bool:
        return "true_miou" in self.df.columns and bool(self.df["true_miou"].notna().any())

    def members(self, group: str) -> pd.DataFrame:
        """The rows of one vote group (the default candidate is in every sweep)."""
        return self.df[[group in as_names(s) for s in self.df["sweeps"]]]

    def group_of(self, param: str) -> str:
        return GRID_GROUP if self.mode == "grid" else param

    def pick_id(self, group: str) -> str | None:
        if self.choice is None or group not in self.choice["per_sweep"]:
            return None
        cid = self.choice["per_sweep"][group]["candidate_id"]
        return None if cid is None else str(cid)

    def score_used(self, group: str) -> str:
        if self.choice is None or group not in self.choice["per_sweep"]:
            return "f_miou"
        return str(self.choice["per_sweep"][group]["score_used"])

    def group_column(self, score: str, group: str) -> str:
        """The column with ``score`` as voted in ``group``: vote scores have one per group."""
        per_group = f"{score}__{group}"
        return per_group if per_group in self.df.columns else score

    def voted(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Rows that took part in a vote (finished, with a score)."""
        return rows[(rows["status"] != "failed") & (rows["status"] != "pending") & rows["f_miou"].notna()]


def _groups(df: pd.DataFrame, choice: dict[str, Any] | None, config: dict[str, Any]) -> list[str]:
    if choice is not None:
        return [str(g) for g in choice["per_sweep"]]
    sel = config.get("selection") or {}
    if sel.get("mode") == "grid":
        return [GRID_GROUP]
    if sel.get("parameters"):
        return [str(p) for p in sel["parameters"]]
    return list(dict.fromkeys(g for s in df["sweeps"] for g in as_names(s)))


def _swept(df: pd.DataFrame, mode: str, groups: list[str], choice: dict | None, config: dict) -> list[str]:
    # The config lists every swept parameter; a provisional choice only those that could vote yet.
    listed = list((config.get("selection") or {}).get("parameters") or {})
    if not listed and mode == "sweep":
        listed = groups
    elif not listed and choice is not None:
        listed = [p for p in choice["parameters"] if p in df.columns and df[p].nunique() > 1]
    return [p for p in listed if p in df.columns]


def _check_sweeps(sweeps: Mapping[str, pd.DataFrame] | None) -> dict[str, pd.DataFrame]:
    out = {}
    for g, t in (sweeps or {}).items():
        missing = [c for c in SWEEP_TABLE_COLUMNS if c not in t.columns]
        if missing:
            raise SelectionError(f"sweep table {g}: missing column(s) {', '.join(missing)}")
        out[str(g)] = t.reset_index(drop=True)
    return out


def read_facts(
    table: pd.DataFrame,
    choice: Mapping[str, Any] | None,
    config: Any = None,
    *,
    class_names: Sequence[str] | None = None,
    provisional: bool = False,
    total_candidates: int | None = None,
    sweeps: Mapping[str, pd.DataFrame] | None = None,
) -> Facts:
    """Check the inputs (module docstring) and derive the facts the sections share."""
    df = _check_table(table)
    checked = _check_choice(choice)
    cfg = _config_dict(config)
    if class_names is not None and checked is not None and len(class_names) != checked["num_classes"]:
        n = checked["num_classes"]
        raise SelectionError(f"class_names: {len(class_names)} names given, the choice has num_classes {n}")
    notes = [str(n) for n in (choice or {}).get("notes") or []]
    groups = _groups(df, checked, cfg)
    if checked is not None:
        mode = str(checked["mode"])
    else:
        mode = str((cfg.get("selection") or {}).get("mode") or ("grid" if GRID_GROUP in groups else "sweep"))
    params = _swept(df, mode, groups, checked, cfg)
    default_rows = df[df["sweep"] == DEFAULT_SWEEP]
    defaults = (
        {p: float(default_rows.iloc[0][p]) for p in (checked or {}).get("parameters", params) if p in df}
        if len(default_rows)
        else {}
    )
    total = total_candidates if total_candidates is not None else (choice or {}).get("total", len(df))
    degenerate: dict[str, list[str]] = {}
    if "degenerate_in" in df.columns:
        for cid, where in zip(df["candidate_id"], df["degenerate_in"], strict=True):
            if as_names(where):
                degenerate[cid] = as_names(where)
    for cid in (checked or {}).get("degenerate") or []:
        degenerate.setdefault(str(cid), [])
    broken: dict[str, str] = {}
    if "broken" in df.columns and "broken_reason" in df.columns:
        for cid, flag, why in zip(df["candidate_id"], df["broken"], df["broken_reason"], strict=True):
            if pd.notna(flag) and bool(flag):  # NaN: a failed candidate, never scored
                broken[str(cid)] = str(why)
    for cid, why in ((checked or {}).get("broken") or {}).items():
        broken.setdefault(str(cid), str(why))
    return Facts(
        df=df,
        choice=checked,
        notes=notes,
        config=cfg,
        class_names=list(class_names) if class_names is not None else None,
        provisional=provisional,
        total=max(int(total), len(df)),
        mode=mode,
        groups=groups,
        params=params,
        defaults=defaults,
        degenerate=degenerate,
        broken=broken,
        sweeps=_check_sweeps(sweeps),
    )
