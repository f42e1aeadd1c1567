"""ray_jobs.console.formatting: readable trial names, the running pick, the closing summary."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

from ray_jobs import console


def _trial(cid: str, replicate: int = 0, **kw) -> SimpleNamespace:
    return SimpleNamespace(
        config={"candidate": {"candidate_id": cid, "replicate": replicate}},
        trial_id=f"t-{cid}-{replicate}",
        **kw,
    )


def test_trials_are_named_by_their_parameters() -> None:
    assert console.TrialNames(1)(_trial("alpha=0.1")) == "alpha=0.1"
    assert console.TrialNames(2)(_trial("alpha=0.1", 1)) == "alpha=0.1 [rep 1]"
    assert pickle.loads(pickle.dumps(console.TrialNames(2)))(_trial("default")) == "default [rep 0]"


SWEEP_CHOICE = {
    "mode": "sweep",
    "parameters": {"alpha": 0.5, "beta": 0.9, "gamma": 8.0, "k": 3.0},
    "candidate_id": "default",
    "f_miou": 0.61234,
    "score_used": "f_miou",
    "per_sweep": {
        "alpha": {"candidate_id": "default", "value": 0.5, "f_miou": 0.7},
        "gamma": {"candidate_id": "gamma=2", "value": 2.0, "f_miou": 0.65},
        "k": {"candidate_id": None, "value": None, "f_miou": None},
    },
    "centre_bound": ["alpha"],
    "degenerate": [],
    "failed": [],
    "finished": 5,
    "total": 11,
}


def test_provisional_line() -> None:
    line = console.provisional_line(SWEEP_CHOICE)
    assert line == (
        "running pick by f_miou, 5 of 11 candidates finished: "
        "alpha=0.5 (F-mIoU 0.7000), gamma=2 (F-mIoU 0.6500)"
    )
    ruled = {**SWEEP_CHOICE, "rule": {"text": "two_stage(drop=f_miou_trimmed, fraction=0.5, pick=bnm)"}}
    assert console.provisional_line(ruled).startswith(
        "running pick by two_stage(drop=f_miou_trimmed, fraction=0.5, pick=bnm), 5 of 11"
    )
    assert console.provisional_line({}) is None


def test_summary_names_choice_confidence_and_outputs() -> None:
    lines = console.summary_lines(SWEEP_CHOICE, "/r/synthscape-default")
    assert lines[0] == "Choice: alpha=0.5, gamma=8, k=3 (candidate 'default'; F-mIoU 0.6123)"
    assert lines[1].startswith("Confidence: weak: the pick follows the centre") and "alpha" in lines[1]
    assert lines[2].startswith("Outputs: /r/synthscape-default (choice.json")
    calm = dict(SWEEP_CHOICE, centre_bound=[], degenerate=["alpha=0.9"], failed=["k=5"])
    lines = console.summary_lines(calm, "s3://b/x")
    assert lines[1] == "Failed: k=5 (left out of the vote)"
    assert lines[2] == "Confidence: degenerate candidates left out of the vote: alpha=0.9"
    # A confidence field, when choice.json has one, is printed as it is.
    given = dict(SWEEP_CHOICE, confidence={"level": "low", "reasons": ["the rules disagree", "centre-bound"]})
    assert console.summary_lines(given, "x")[1] == "Confidence: low: the rules disagree; centre-bound"
    assert console.summary_lines(dict(SWEEP_CHOICE, confidence="high"), "x")[1] == "Confidence: high"
    # choice.json 2 names the rule; the value printed stays the picks' F-mIoU
    ruled = dict(SWEEP_CHOICE, rule={"text": "rank_average(ensv, atc)"}, score_used="rank_average(ensv, atc)")
    assert console.summary_lines(ruled, "x")[0] == (
        "Choice: alpha=0.5, gamma=8, k=3 (candidate 'default'; rule rank_average(ensv, atc); F-mIoU 0.6123)"
    )
