"""The product's default rule is the one the selection benchmark's results name as its default."""

from __future__ import annotations

import json
from pathlib import Path

from selection_bench.rules import BENCH_RULES

from selection.config import DEFAULT_RULE
from selection.decision.rules import parse_rule

ROOT = Path(__file__).resolve().parents[2]


def test_configured_default_is_the_benchmarks_verdict() -> None:
    verdict = json.loads((ROOT / "bench" / "results" / "selection_rules.json").read_text())["verdict"]
    measured = parse_rule(BENCH_RULES[verdict["default"]])
    assert parse_rule(DEFAULT_RULE).text == measured.text, (
        f"hiast.config.DEFAULT_RULE is {DEFAULT_RULE!r}, bench/results/selection_rules.json's "
        f"default is {verdict['default']!r}"
    )
