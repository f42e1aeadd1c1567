"""The selection tests live in subfolders that mirror the package; their shared fixture modules
(``store_files``, ``evidence_files``, ``report_fixtures``, ...) stay in this folder, which pytest's
default import mode puts on ``sys.path`` only for the test files directly in it."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
