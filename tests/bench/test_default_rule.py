"""The product's default rule is the one the selection benchmark's results name as its default."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from selection_bench.score import BENCH_RULES  # noqa: E402

from selection.config import DEFAULT_RULE  # noqa: E402
from selection.decision.rules import parse_rule  # noqa: E402


def test_configured_default_is_the_benchmarks_verdict() -> None:
    verdict = json.loads((ROOT / "bench" / "results" / "selection_rules.json").read_text())["verdict"]
    measured = parse_rule(BENCH_RULES[verdict["default"]])
    assert parse_rule(DEFAULT_RULE).text == measured.text, (
        f"hiast.config.DEFAULT_RULE is {DEFAULT_RULE!r}, bench/results/selection_rules.json's "
        f"default is {verdict['default']!r}"
    )
