"""The benchmark's tests import its package (bench/selection_bench) and their shared fixture module
(rules_fixtures, in this folder), neither of which is installed."""

import sys
from pathlib import Path

for _path in (Path(__file__).resolve().parents[2] / "bench", Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
