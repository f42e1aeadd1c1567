"""A two-regime, two-seed scores table and its per-image counts, every figure small enough to check
by hand (tests/bench/test_rules_table.py computes them; test_selection_tables.py round-trips them)."""

from __future__ import annotations

import json

import pandas as pd
from selection_bench.tables import ScoresTable, TargetImages

__all__ = ["CONFIDENCE", "COUNTS", "IDS", "VALUES", "fixture_images", "fixture_scores"]

IDS = ["alpha=0.1", "default", "broken:x"]  # the sweep's order: rules break ties by it
# regime -> seed -> candidate -> (target-val mIoU, f_miou, f_miou_trimmed, bnm)
VALUES = {
    "r1": {
        1: {
            "alpha=0.1": (50.0, 0.3, 0.3, 0.2),
            "default": (60.0, 0.5, 0.5, 0.1),
            "broken:x": (20.0, 0.1, 0.1, 0.9),
        },
        2: {
            "alpha=0.1": (64.0, 0.6, 0.6, 0.1),
            "default": (58.0, 0.5, 0.5, 0.8),
            "broken:x": (10.0, 0.1, 0.1, 0.2),
        },
    },
    "r2": {
        1: {
            "alpha=0.1": (40.0, 0.2, 0.2, 0.5),
            "default": (30.0, 0.4, 0.4, 0.1),
            "broken:x": (5.0, 0.1, 0.1, 0.2),
        },
        2: {
            "alpha=0.1": (42.0, 0.2, 0.2, 0.5),
            "default": (36.0, 0.4, 0.4, 0.1),
            "broken:x": (7.0, 0.1, 0.1, 0.2),
        },
    },
}
# Confidence the job reported per (regime, seed) for its pick (one sweep per seed here).
CONFIDENCE = {
    ("r1", 1): ("default", "high", []),
    ("r1", 2): (
        "alpha=0.1",
        "low",
        ["the families disagree: 1 of the 3 families pick alpha=0.1 (not more than half; consensus default)"],
    ),
    ("r2", 1): (
        "default",
        "low",
        ["within noise: on the subset's two halves the rule picks a and b, not default on both"],
    ),
    ("r2", 2): ("alpha=0.1", "high", []),
}
# r1's per-image counts of its one class, (intersection, union) per image im0, im1, im2.
COUNTS = {
    1: {"alpha=0.1": [(1, 2), (1, 2), (2, 2)], "default": [(2, 2), (0, 2), (1, 2)], "broken:x": [(0, 2)] * 3},
    2: {"alpha=0.1": [(2, 2), (2, 2), (0, 2)], "default": [(1, 2), (1, 2), (1, 2)], "broken:x": [(0, 2)] * 3},
}


def fixture_scores(guarded: dict | None = None) -> ScoresTable:
    """``guarded``: (regime, seed) -> {candidate: reason} the job's guard flagged (default: none)."""
    guarded = guarded or {}
    rows = []
    for regime, seeds in VALUES.items():
        for seed, cands in seeds.items():
            pick, level, reasons = CONFIDENCE[regime, seed]
            for pos, cid in enumerate(IDS):
                truth, f, ft, bnm = cands[cid]
                rows.append(
                    {
                        "regime": regime,
                        "seed": seed,
                        "sweep": "alpha",
                        "candidate": cid,
                        "position": pos,
                        "candidate_sweeps": "" if cid.startswith("broken") else "alpha",
                        "broken": cid.startswith("broken"),
                        "is_default": cid == "default",
                        "guard_reason": guarded.get((regime, seed), {}).get(cid, ""),
                        "group_validators": "f_miou,f_miou_trimmed,bnm",
                        "target_val_miou": truth,
                        "round1_target_val_miou": truth - 1,
                        "source_val_miou": 70.0,
                        "warmup_target_val_miou": 45.0,
                        "replicates": 1,
                        "confidence_rule": "two_stage[f_miou_trimmed 0.5 -> bnm]",
                        "job_pick": pick,
                        "confidence_level": level,
                        "confidence_reasons": json.dumps(reasons),
                        "confidence_agreeing": 1,
                        "confidence_validators": 3,
                        "centre_bound": 0.0,
                        "confidence_half_picks": json.dumps([pick, pick]),
                        "confidence_family_picks": json.dumps({"consensus": pick}),
                        "param.alpha": {"alpha=0.1": 0.1, "default": 0.5, "broken:x": 1.0}[cid],
                        "val.f_miou": f,
                        "val.f_miou_trimmed": ft,
                        "val.bnm": bnm,
                        "round1.f_miou": f,
                    }
                )
    return ScoresTable(pd.DataFrame(rows))


def fixture_images(n_images_r2: int = 1) -> TargetImages:
    rows = [
        {
            "regime": "r1",
            "seed": s,
            "candidate": c,
            "image": f"im{k}",
            "classes": [0],
            "intersection": [i],
            "union": [u],
        }
        for s, cands in COUNTS.items()
        for c, per in cands.items()
        for k, (i, u) in enumerate(per)
    ]
    # r2 has fewer target-val images than any N the test asks for: its few-label row must say so.
    rows += [
        {
            "regime": "r2",
            "seed": s,
            "candidate": c,
            "image": f"im{k}",
            "classes": [0],
            "intersection": [1],
            "union": [2],
        }
        for s in (1, 2)
        for c in IDS
        for k in range(n_images_r2)
    ]
    return TargetImages(pd.DataFrame(rows))
