"""Label-free hyperparameter selection for HIAST (paper §4.5), plus what consensus cannot see.

Pure numpy / torch / pyarrow / pandas; no Ray (the Ray jobs call into this package). Layout, lowest
layer first (each subpackage imports only from those above it in this list):

* :mod:`selection.errors`, :mod:`selection.candidates`, :mod:`selection.filesystem` — the core
  types (errors, candidates with stable ids) and file access (local paths or ``pyarrow.fs`` URIs);
* :mod:`selection.fusion` — the majority vote, F-mIoU and pairwise agreement, numpy/torch back-ends;
* :mod:`selection.store` — the subset and each candidate's predictions file;
* :mod:`selection.validators` — the label-free validators, their registry and evidence files;
* :mod:`selection.tables` — the results table (``candidates.parquet``) and the JSON/Parquet writers;
* :mod:`selection.decision` — rules, trimming, guard, centre bias, confidence, audit;
* :mod:`selection.outputs` — the choice record (``choice.json``), the result, the sweep tables;
* :mod:`selection.run` — :class:`SelectionSpec` and the entry points ``run_selection``,
  ``vote_outcomes``, ``rung_selection``;
* :mod:`selection.report` — the dashboard.

This face re-exports what callers outside the package use most: the core types, the filesystem
helpers, the rule grammar, the choice record and ``run_selection``.
"""

from selection.candidates import Candidate, Line, build_candidates, format_value, lines, vote_groups
from selection.config import DEFAULT_RULE, EarlyStopConfig, SelectionConfig, default_rule
from selection.decision.rules import PAPER_RULE, Rule, check_rule, parse_rule, rule_needs
from selection.errors import PredictionStoreError, SelectionError
from selection.filesystem import (
    atomic_output,
    exists,
    read_bytes,
    read_json_document,
    resolve,
    write_bytes_atomic,
)
from selection.outputs.choice import (
    CHOICE_SCHEMA_VERSION,
    Choice,
    EarlyStopRecord,
    SourceValRecord,
    load_choice,
)
from selection.outputs.result import SelectionResult
from selection.run import SelectionSpec, run_selection
from selection.tables import write_json, write_parquet

__all__ = [
    "DEFAULT_RULE",
    "EarlyStopConfig",
    "SelectionConfig",
    "default_rule",
    "CHOICE_SCHEMA_VERSION",
    "PAPER_RULE",
    "Candidate",
    "Choice",
    "EarlyStopRecord",
    "Line",
    "PredictionStoreError",
    "Rule",
    "SelectionError",
    "SelectionResult",
    "SelectionSpec",
    "SourceValRecord",
    "atomic_output",
    "build_candidates",
    "check_rule",
    "exists",
    "format_value",
    "lines",
    "load_choice",
    "parse_rule",
    "read_bytes",
    "read_json_document",
    "resolve",
    "rule_needs",
    "run_selection",
    "vote_groups",
    "write_bytes_atomic",
    "write_json",
    "write_parquet",
]
