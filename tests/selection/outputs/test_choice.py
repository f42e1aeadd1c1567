"""How the choice is made (grid, combined sweeps, missing default) and the typed choice.json."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from selection_families import (
    SWEEP_CLASSES,
    noisy,
    sweep_setup,
    true_miou,
    write_family,
)

from selection import (
    CHOICE_SCHEMA_VERSION,
    Choice,
    SelectionError,
    build_candidates,
    load_choice,
    run_selection,
)
from selection.outputs.choice import EarlyStopRecord, SourceValRecord, SweepChoice
from selection.run import SelectionSpec

DEFAULTS = {"alpha": 0.5, "gamma": 8.0, "k": 3}
C = SWEEP_CLASSES


def test_grid_mode_picks_the_best_candidate(tmp_path):
    rng = np.random.default_rng(5)
    cands = build_candidates(DEFAULTS, {"alpha": [0.3, 0.5, 0.7], "gamma": [4.0, 8.0, 16.0]}, "grid")
    ids = ["i0", "i1", "i2"]
    truth = [rng.integers(0, C, (10, 10)).astype(np.uint8) for _ in ids]
    rate = {c.id: 0.05 + 0.3 * abs(c.params["alpha"] - 0.7) + 0.01 * c.params["gamma"] for c in cands}
    maps = {c.id: [noisy(t, rng, rate[c.id], C) for t in truth] for c in cands}
    res = run_selection(
        cands,
        write_family(tmp_path, cands, maps, ids, C),
        SelectionSpec(ids, C),
        true_miou=true_miou(maps, truth, C),
    )
    ch = res.choice.as_dict()
    assert ch["mode"] == "grid" and list(ch["per_sweep"]) == ["grid"]
    best = res.table.set_index("candidate_id")["f_miou_trimmed"].idxmax()
    assert (
        ch["candidate_id"] == best
        and ch["parameters"]["alpha"] == res.table.set_index("candidate_id").loc[best, "alpha"]
    )
    centre = res.audit.set_index("score").loc["centre", "pick"]
    assert centre == "alpha=0.5,gamma=8"


def test_combined_sweep_choice_not_trained_is_noted(tmp_path):
    rng = np.random.default_rng(6)
    cands = build_candidates(DEFAULTS, {"alpha": [0.1, 0.9], "gamma": [2.0, 16.0]}, "sweep")
    ids = ["i0", "i1"]
    truth = [rng.integers(0, C, (10, 10)).astype(np.uint8) for _ in ids]
    good = {"alpha=0.9", "gamma=16"}
    maps = {c.id: [t.copy() if c.id in good else noisy(t, rng, 0.3, C) for t in truth] for c in cands}
    res = run_selection(cands, write_family(tmp_path, cands, maps, ids, C), SelectionSpec(ids, C))
    assert res.choice.as_dict()["parameters"] == {"alpha": 0.9, "gamma": 16.0, "k": 3.0}
    assert res.choice.as_dict()["candidate_id"] is None
    assert any("was not itself a candidate" in n for n in res.notes)


def test_sweeps_vote_without_the_default_candidate(tmp_path):
    # the default's training failed: each sweep votes among its other values, defaults still known
    cands, uris, ids, _ = sweep_setup(tmp_path)
    rest = [c for c in cands if not c.is_default]
    res = run_selection(rest, {c.id: uris[c.id] for c in rest}, SelectionSpec(ids, C))
    assert res.choice.as_dict()["parameters"]["k"] == 3.0
    assert {g: i["candidate_id"] for g, i in res.choice.as_dict()["per_sweep"].items()}.keys() == {
        "alpha",
        "gamma",
    }
    assert res.choice.as_dict()["parameters"]["alpha"] in (0.1, 0.3, 0.7)


# -- the typed record and choice.json -------------------------------------------------------------

# Every key choice.json had before it was versioned, in order (a vote took place).
VOTE_KEYS = [
    "mode",
    "parameters",
    "candidate_id",
    "f_miou",
    "score_used",
    "per_sweep",
    "centre_bound",
    "centre_bias",
    "degenerate",
    "trim_rule",
    "notes",
    "subset",
    "num_classes",
]
RULE_KEYS = ["rule", "picks", "confidence"]
GUARD_KEYS = ["broken"]


def test_choice_json_has_the_vote_keys_plus_a_schema_version_and_reads_back(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path)
    res = run_selection(cands, uris, SelectionSpec(ids, C, rule={"rank_average": ["f_miou", "f_miou_lno"]}))
    assert isinstance(res.choice, Choice)
    uri = tmp_path / "choice.json"
    res.choice.write(uri)
    doc = json.loads(uri.read_text())
    assert list(doc) == ["schema_version", *VOTE_KEYS, *RULE_KEYS, *GUARD_KEYS]
    assert doc["schema_version"] == CHOICE_SCHEMA_VERSION == 5
    assert doc["broken"] == {}
    assert doc["rule"] == {
        "config": {"rank_average": ["f_miou", "f_miou_lno"]},
        "text": "rank_average(f_miou, f_miou_lno)",
        "description": "the best mean rank within the group over f_miou, f_miou_lno",
    }
    assert doc["score_used"] == "rank_average(f_miou, f_miou_lno)"
    assert set(doc["picks"]) == {"alpha", "gamma"}
    assert set(doc["picks"]["alpha"]) == {"f_miou", "f_miou_trimmed", "f_miou_lno", "rule"}
    assert doc["picks"]["alpha"]["rule"] == doc["per_sweep"]["alpha"]["candidate_id"]
    assert set(doc["confidence"]) == {"level", "reasons", "groups"}
    assert set(doc["confidence"]["groups"]["alpha"]) == {
        "level", "reasons", "agreeing", "validators", "centre_bound", "half_picks", "family_picks",
        "families_agreeing",
    }  # fmt: skip
    assert doc["confidence"]["groups"]["alpha"]["validators"] == 3
    assert set(doc["per_sweep"]["alpha"]) == {
        "candidate_id", "value", "f_miou", "f_miou_trimmed", "score_used", "untrimmed_pick",
        "centre_bound", "degenerate", "undecided_fraction", "candidates",
    }  # fmt: skip
    back = load_choice(uri)
    assert back == res.choice  # no NaN here, so nothing became None on the way
    assert isinstance(back.per_sweep["alpha"], SweepChoice) and back.subset.size == len(ids)
    # the mapping view is the document itself, for readers written against the JSON
    assert back.as_dict() == json.loads(json.dumps(back.as_dict())) == doc
    assert back.as_dict()["per_sweep"]["alpha"]["candidate_id"] == back.per_sweep["alpha"].candidate_id


def test_a_choice_without_a_vote_keeps_only_its_keys():
    c = Choice.no_vote(["too few"])
    assert c.as_dict() == {
        "schema_version": 5, "parameters": {}, "candidate_id": None, "f_miou": None, "notes": ["too few"],
    }  # fmt: skip
    job = dataclasses.replace(c, failed=[], provisional=False, finished=1, total=3)
    assert list(job.as_dict())[-4:] == ["failed", "provisional", "finished", "total"]
    assert "unfinished" not in job.as_dict() and job.failed == []


def test_nan_scores_are_written_as_null_and_read_back_as_none(tmp_path):
    c = dataclasses.replace(Choice.no_vote([]), f_miou=float("nan"))
    c.write(tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text())["f_miou"] is None
    assert load_choice(tmp_path / "c.json").f_miou is None


@pytest.mark.parametrize(
    "text, message",
    [
        (None, r"choice file .*c\.json not found"),
        ("{not json", r"c\.json is unreadable"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"parameters": {}, "candidate_id": null, "f_miou": null, "notes": []}', "schema_version is None"),
        ('{"schema_version": 6, "parameters": {}}', "schema_version is 6, this version reads 4, 5"),
        ('{"schema_version": 3, "parameters": {}}', "schema_version is 3, this version reads 4, 5"),
        (
            '{"schema_version": 4, "parameters": {"a": "x"}, "candidate_id": null, "f_miou": null}',
            r"parameters\.a:",
        ),
        ('{"schema_version": 4, "candidate_id": null, "f_miou": null}', "parameters: Field required"),
        (
            '{"schema_version": 4, "parameters": {}, "candidate_id": null, "f_miou": null, "x": 1}',
            "x: Unexpected",
        ),
        (
            '{"schema_version": 4, "parameters": {}, "candidate_id": null, "f_miou": null, "mode": "line"}',
            "mode:",
        ),
    ],
)
def test_a_bad_choice_file_is_refused_naming_file_and_field(tmp_path, text, message):
    uri = tmp_path / "c.json"
    if text is not None:
        uri.write_text(text)
    with pytest.raises(SelectionError, match=message):
        load_choice(uri)


def test_early_stopping_record_round_trips(tmp_path):
    c = dataclasses.replace(
        Choice.no_vote(["x"]),
        failed=[],
        early_stop=EarlyStopRecord(after_round=1, keep=0.5, stopped=["alpha=0.1"]),
    )
    assert c.as_dict()["early_stop"] == {"after_round": 1, "keep": 0.5, "stopped": ["alpha=0.1"]}
    c.write(tmp_path / "choice.json")
    assert load_choice(tmp_path / "choice.json") == c
    assert "early_stop" not in Choice.no_vote(["x"]).as_dict()  # absent when early stopping did not run


def test_source_val_round_trips(tmp_path):
    c = dataclasses.replace(
        Choice.no_vote(["x"]),
        failed=[],
        source_val=SourceValRecord(
            origin="held out of data.source", images=499, record="source_val_holdout.json"
        ),
    )
    assert c.as_dict()["source_val"] == {
        "origin": "held out of data.source",
        "images": 499,
        "record": "source_val_holdout.json",
    }
    c.write(tmp_path / "choice.json")
    assert load_choice(tmp_path / "choice.json") == c


def test_a_version_4_document_reads_with_no_family_picks(tmp_path):
    # Version 4 had no family fields in a group's confidence: they read as none.
    group = {
        "level": "high",
        "reasons": [],
        "agreeing": 1,
        "validators": 2,
        "centre_bound": None,
        "half_picks": [],
    }
    doc = {
        "schema_version": 4, "parameters": {}, "candidate_id": None, "f_miou": None, "notes": [],
        "confidence": {"level": "high", "reasons": [], "groups": {"alpha": group}},
    }  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(doc))
    back = load_choice(tmp_path / "c.json")
    assert back.schema_version == 4
    assert (
        back.confidence.groups["alpha"].family_picks == {}
        and back.confidence.groups["alpha"].families_agreeing == 0
    )
