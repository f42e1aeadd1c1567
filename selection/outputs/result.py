"""What a selection produced (:class:`SelectionResult`), its short Markdown report, and its artefacts."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from selection.candidates import format_value
from selection.decision.audit import summarize_audit
from selection.decision.centre_bias import CentreBiasVerdict
from selection.filesystem import write_bytes_atomic
from selection.outputs.choice import Choice
from selection.store.subset import save_subset
from selection.tables import write_parquet

__all__ = ["SelectionResult"]


@dataclass
class SelectionResult:
    """What a selection produced.

    ``table``: one row per candidate (columns: :mod:`selection.tables`). ``choice``: the
    :class:`~selection.outputs.choice.Choice` written to ``choice.json``. ``notes``: plain sentences for
    people (centre-bound sweeps, degenerate candidates, caveats). ``windows``: one row per
    centre-bias window. ``audit``: one row per (group, score) when true mIoU was given (columns:
    :data:`selection.decision.audit.AUDIT_COLUMNS`). ``validators``: vote group -> its validator table
    (:mod:`selection.run.validator_table`); ``sweeps``: vote group -> its ranking table
    (:mod:`selection.outputs.sweeps`), written as ``sweeps/<group>.parquet``.
    """

    table: pd.DataFrame
    choice: Choice
    notes: list[str]
    windows: pd.DataFrame
    subset_ids: list[str]
    audit: pd.DataFrame | None = None
    verdicts: dict[str, CentreBiasVerdict] = field(default_factory=dict)
    validators: dict[str, pd.DataFrame] = field(default_factory=dict)
    sweeps: dict[str, pd.DataFrame] = field(default_factory=dict)

    def audit_summary(self) -> pd.DataFrame | None:
        return None if self.audit is None else summarize_audit(self.audit)

    def summary_markdown(self) -> str:
        """A short human report (the dashboard shows it): choice, per-sweep scores, flags, notes."""
        ch = self.choice
        assert ch.subset is not None  # a SelectionResult always holds a vote
        params = ", ".join(f"{k}={format_value(v)}" for k, v in ch.parameters.items())
        out = [
            f"# Label-free selection ({ch.mode}, {len(self.table)} candidates, "
            f"{ch.subset.size} subset images)",
            "",
            f"**Choice:** {params}  (rule: {ch.score_used}; F-mIoU {_fmt(ch.f_miou)})",
            "",
        ]
        if ch.confidence is not None:
            why = "; ".join(ch.confidence.reasons)
            out += [f"**Confidence:** {ch.confidence.level}" + (f" — {why}" if why else ""), ""]
        has_true = "true_miou" in self.table.columns
        for g, info in ch.per_sweep.items():
            flag = " — centre_bound" if info.centre_bound else ""
            out.append(f"## {g}{flag}")
            out.append("")
            truth_col = " true mIoU |" if has_true else ""
            head = f"| candidate | F-mIoU | F-mIoU trimmed |{truth_col} flags |"
            out.append(head)
            out.append("|" + "---|" * (head.count("|") - 1))
            for cid, s in info.candidates.items():
                marks = []
                if cid == info.candidate_id:
                    marks.append("**picked**")
                if cid in info.degenerate:
                    marks.append("degenerate")
                t = ""
                if has_true:
                    tv = self.table.set_index("candidate_id").loc[cid, "true_miou"]
                    t = f" {tv:.4f} |"
                out.append(f"| {cid} | {_fmt(s.f_miou)} | {_fmt(s.f_miou_trimmed)} |{t} {' '.join(marks)} |")
            out.append("")
        if self.notes:
            out += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(out)

    def write(self, out_uri: str | os.PathLike[str]) -> dict[str, str]:
        """Write every artefact atomically under ``out_uri`` (local folder or cluster URI prefix)."""
        base = os.fspath(out_uri).rstrip("/")
        paths = {
            "candidates": posixpath.join(base, "candidates.parquet"),
            "windows": posixpath.join(base, "windows.parquet"),
            "choice": posixpath.join(base, "choice.json"),
            "subset": posixpath.join(base, "subset.json"),
            "summary": posixpath.join(base, "summary.md"),
        }
        write_parquet(self.table, paths["candidates"])
        write_parquet(self.windows, paths["windows"])
        paths.update(self.write_tables(base))
        save_subset(paths["subset"], self.subset_ids)
        self.choice.write(paths["choice"])
        write_bytes_atomic(paths["summary"], self.summary_markdown().encode())
        return paths

    def write_tables(self, out_uri: str | os.PathLike[str]) -> dict[str, str]:
        """``audit.parquet`` (when labels exist) and ``sweeps/<group>.parquet`` under ``out_uri``."""
        base = os.fspath(out_uri).rstrip("/")
        paths = {}
        if self.audit is not None:
            paths["audit"] = posixpath.join(base, "audit.parquet")
            write_parquet(self.audit, paths["audit"])
        for g, sweep in self.sweeps.items():
            paths[f"sweep:{g}"] = posixpath.join(base, "sweeps", f"{g}.parquet")
            write_parquet(sweep, paths[f"sweep:{g}"])
        return paths


def _fmt(v: Any) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:.4f}"
