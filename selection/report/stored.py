"""Read a selection's stored outputs back, and re-render its dashboard from them (no Ray needed).

An experiment folder (``<storage>/<experiment>``, local or any pyarrow.fs URI) holds
``candidates.parquet`` and ``choice.json`` — written by the job (:mod:`ray_jobs.vote.actor`) or by
:meth:`selection.run.runner.SelectionResult.write` — ``sweeps/<group>.parquet`` for each vote group of
the choice (optional: without them the page has no rankings per sweep), and, for a job,
``job_config.json`` (the run's config; optional here: without it the page has no run settings).
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from selection.errors import SelectionError
from selection.filesystem import exists, read_bytes, resolve, write_bytes_atomic
from selection.report.render import render_dashboard

__all__ = [
    "TABLE_FILE",
    "CHOICE_FILE",
    "CONFIG_FILE",
    "SWEEPS_DIR",
    "DASHBOARD_FILE",
    "StoredOutputs",
    "load_outputs",
    "rerender",
]

TABLE_FILE = "candidates.parquet"
CHOICE_FILE = "choice.json"
CONFIG_FILE = "job_config.json"
SWEEPS_DIR = "sweeps"
DASHBOARD_FILE = "dashboard.html"


@dataclass(frozen=True)
class StoredOutputs:
    root: str
    table: pd.DataFrame
    choice: dict[str, Any]
    config: dict[str, Any] | None
    sweeps: dict[str, pd.DataFrame]


def _join(root: str, name: str) -> str:
    return posixpath.join(root, name) if "://" in root else os.path.join(root, name)


def _read_json(uri: str) -> Any:
    try:
        return json.loads(read_bytes(uri))
    except json.JSONDecodeError as e:
        raise SelectionError(f"{uri}: not valid JSON ({e})") from None


def load_outputs(root: str | os.PathLike[str]) -> StoredOutputs:
    """The table, choice and (if stored) config of one experiment folder; errors name the file."""
    root = os.fspath(root).rstrip("/") or "/"
    table_uri, choice_uri = _join(root, TABLE_FILE), _join(root, CHOICE_FILE)
    missing = [u for u in (table_uri, choice_uri) if not exists(u)]
    if missing:
        raise SelectionError(
            f"{' and '.join(missing)} not found: {root} is not a finished selection's output folder "
            f"(expected {TABLE_FILE} and {CHOICE_FILE})"
        )
    table = _read_parquet(table_uri)
    choice = _read_json(choice_uri)
    if not isinstance(choice, dict):
        raise SelectionError(f"{choice_uri}: expected a JSON object, got {type(choice).__name__}")
    config_uri = _join(root, CONFIG_FILE)
    config = _read_json(config_uri) if exists(config_uri) else None
    sweeps = {}
    for g in choice.get("per_sweep") or {}:
        uri = _join(_join(root, SWEEPS_DIR), f"{g}.parquet")
        if exists(uri):
            sweeps[str(g)] = _read_parquet(uri)
    return StoredOutputs(root, table, choice, config, sweeps)


def _read_parquet(uri: str) -> pd.DataFrame:
    fs, path = resolve(uri)
    try:
        with fs.open_input_file(path) as f:
            return pq.read_table(f).to_pandas()
    except (pa.ArrowException, OSError) as e:
        raise SelectionError(f"{uri}: cannot be read as Parquet ({e})") from None


def rerender(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    class_names: Sequence[str] | None = None,
) -> str:
    """Render the dashboard of the experiment folder ``root`` again; returns where it was written
    (``out``, default ``<root>/dashboard.html``; written atomically)."""
    stored = load_outputs(root)
    try:
        page = render_dashboard(
            stored.table,
            stored.choice,
            stored.config,
            provisional=bool(stored.choice.get("provisional", False)),
            class_names=class_names,
            sweeps=stored.sweeps,
        )
    except SelectionError as e:
        raise SelectionError(f"{stored.root}: {e}") from None
    target = os.fspath(out) if out is not None else _join(stored.root, DASHBOARD_FILE)
    write_bytes_atomic(target, page.encode("utf-8"))
    return target
