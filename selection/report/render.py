"""Render the dashboard: Jinja2 (autoescaped) over :func:`selection.report.context.page_context`."""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import jinja2
import pandas as pd

from selection.candidates import format_value
from selection.filesystem import write_bytes_atomic
from selection.report.context import page_context
from selection.report.inputs import finite, read_facts

__all__ = ["render_dashboard", "write_dashboard"]

_PACKAGE = "selection.report"


def _num(value: Any, digits: int = 4) -> str:
    x = finite(value)
    return "–" if x is None else f"{x:.{digits}f}"


def _value(value: Any) -> str:
    """A parameter value as candidate ids write it (0.3, 8, 1e-05)."""
    return "–" if finite(value) is None else format_value(float(value))


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name in the template fails, not renders empty
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=_num,
        value=_value,
        finite=lambda v: finite(v) is not None,
        px=lambda x: f"{float(x):.1f}",
    )
    return env


@functools.cache
def _css() -> str:
    return resources.files(_PACKAGE).joinpath("static", "dashboard.css").read_text(encoding="utf-8")


def render_dashboard(
    table: pd.DataFrame,
    choice: Mapping[str, Any] | None,
    config: Any = None,
    provisional: bool = False,
    *,
    class_names: Sequence[str] | None = None,
    total_candidates: int | None = None,
    sweeps: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """The dashboard as one self-contained HTML page.

    ``table``: ``candidates.parquet`` as the job or :func:`selection.run.runner.run_selection` writes it.
    ``choice``: ``choice.json`` (None before there is one). ``config``: the run's config, as a
    dict (``job_config.json``) or a pydantic model; without it there are no run settings and no
    ``data.eval_classes`` filter. ``provisional``: adds "PROVISIONAL — n of m candidates finished",
    m being ``total_candidates`` (else the choice's ``total``, else the table's length).
    ``class_names``: names of the classes in index order, for the per-class table. ``sweeps``:
    vote group -> its sweep table (``SelectionResult.sweeps``), for the rankings per sweep.
    Raises :class:`~selection.errors.SelectionError` naming the column or key it cannot read.
    """
    facts = read_facts(
        table,
        choice,
        config,
        class_names=class_names,
        provisional=provisional,
        total_candidates=total_candidates,
        sweeps=sweeps,
    )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    context = page_context(facts, generated)
    return _environment().get_template("dashboard.html.j2").render(css=_css(), **context)


def write_dashboard(
    path_or_uri: str | os.PathLike[str],
    table: pd.DataFrame,
    choice: Mapping[str, Any] | None,
    config: Any = None,
    provisional: bool = False,
    *,
    class_names: Sequence[str] | None = None,
    total_candidates: int | None = None,
    sweeps: Mapping[str, pd.DataFrame] | None = None,
) -> None:
    """Render (:func:`render_dashboard`) and write the page atomically to ``path_or_uri``: the HTML
    file itself, a local path or any URI pyarrow.fs reads (``s3://…``). A failed write keeps the
    previous page."""
    page = render_dashboard(
        table,
        choice,
        config,
        provisional,
        class_names=class_names,
        total_candidates=total_candidates,
        sweeps=sweeps,
    )
    write_bytes_atomic(path_or_uri, page.encode("utf-8"))
