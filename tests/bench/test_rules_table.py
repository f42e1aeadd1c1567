"""The selection benchmark's rule x regime table (bench/selection_bench/rules_table.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from selection_bench.rules_table import choose_default, rule_costs, rules_table  # noqa: E402


def _seed(seed: int, truth: dict[str, float], picks: dict[str, str], scores: dict[str, dict]) -> dict:
    ids = list(truth)
    return {
        "regime": "r",
        "seed": seed,
        "replicate_seeds": [seed],
        "truth": truth,
        "broken": ["broken:x"],
        "groups": {
            "alpha": {
                "candidates": ids,
                "rules": {lab: {"pick": p, "scores": scores[lab]} for lab, p in picks.items()},
            }
        },
    }


def test_regret_is_against_the_truth_averaged_over_seeds() -> None:
    # Mean truth: a 50, default 60, b 70, broken 10. Seed 1's f_miou picks b (regret 0), seed 2's
    # picks the broken candidate (regret 60); im picks a then default (regret 20 and 10).
    s1 = {"a": 40.0, "default": 62.0, "b": 72.0, "broken:x": 12.0}
    s2 = {"a": 60.0, "default": 58.0, "b": 68.0, "broken:x": 8.0}
    ranks = {"a": 1.0, "default": 2.0, "b": 3.0, "broken:x": 0.0}
    t = rules_table(
        [
            _seed(1, s1, {"f_miou": "b", "im": "a"}, {"f_miou": ranks, "im": ranks}),
            _seed(2, s2, {"f_miou": "broken:x", "im": "default"}, {"f_miou": ranks, "im": ranks}),
        ]
    )["r"]
    assert t["f_miou"]["regret"] == pytest.approx(30.0)
    assert t["f_miou"]["broken"] == 1 and t["f_miou"]["top1"] == 0.5
    assert t["im"]["regret"] == pytest.approx(15.0) and t["im"]["centre"] == 0.5
    assert t["f_miou"]["spearman"] == pytest.approx(1.0)  # scores order the mean truth exactly
    assert t["centre"]["regret"] == pytest.approx(10.0)
    assert t["random"]["regret"] == pytest.approx(70 - (50 + 60 + 70 + 10) / 4)
    assert t["random"]["broken"] == pytest.approx(2 * 0.25)


def test_default_is_the_lowest_mean_regret_and_the_target_is_checked_per_regime() -> None:
    def m(regret: float, broken: float = 0) -> dict:
        return {"regret": regret, "broken": broken}

    table = {
        "r1": {"centre": m(2.0), "random": m(2.5), "f_miou": m(0.5), "im": m(0.2, broken=1)},
        "r2": {"centre": m(1.0), "random": m(2.0), "f_miou": m(0.9), "im": m(0.3)},
    }
    v = choose_default(table, {"f_miou", "im"})
    assert v["default"] == "im"  # lowest mean regret wins, even though it picked a broken one...
    assert v["meets_target"] == {"f_miou": True, "im": False}  # ...which fails the target


def test_costs_count_shared_passes_once() -> None:
    assert rule_costs("f_miou", 1) == (0, 0)
    assert rule_costs({"rank_average": ["atc", "source_val_miou"]}, 1) == (1, 0)
    assert rule_costs({"rank_average": ["mixval", "atc"]}, 1) == (2, 0)
    assert rule_costs("seed_agreement", 3) == (2, 2)
