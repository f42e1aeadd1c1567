"""What a selection hands back and writes: the choice record, the result, the per-sweep rankings.

* :mod:`.choice` — the typed :class:`Choice` (``choice.json``) and its parts;
* :mod:`.result` — :class:`SelectionResult`, the tables and choice of one selection, and their files;
* :mod:`.sweeps` — one ranking table per vote group (``sweeps/<group>.parquet``).

The results table itself (``candidates.parquet``) is :mod:`selection.tables`.
"""

from selection.outputs.choice import (
    CHOICE_SCHEMA_VERSION,
    Choice,
    EarlyStopRecord,
    SourceValRecord,
    load_choice,
)
from selection.outputs.result import SelectionResult
from selection.outputs.sweeps import sweep_table

__all__ = [
    "CHOICE_SCHEMA_VERSION",
    "Choice",
    "EarlyStopRecord",
    "SelectionResult",
    "SourceValRecord",
    "load_choice",
    "sweep_table",
]
