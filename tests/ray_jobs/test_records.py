"""The job's records: early_stop.json and the candidate result through their one owner each, and
the trial status."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ray_jobs.records import (
    CandidateResult,
    EarlyStopFile,
    RecordError,
    RungEntry,
    TrialStatus,
    outcome_record,
    stopped_early,
)
from ray_jobs.storage import ExperimentPaths
from selection.run.early_stop import EarlyStopDecision, RungRecord
from selection.run.outcomes import STOPPED, Outcome


def _decision() -> EarlyStopFile:
    decision = EarlyStopDecision(
        ["a=2"],
        {
            "default": RungRecord(group="a", score=0.9, rank=1, f_miou=0.5, kept=True),
            "a=2": RungRecord(group="a", score=float("nan"), rank=2, f_miou=0.25, kept=False),
        },
        ["a note"],
    )
    return EarlyStopFile.from_dict({"after_round": 1, "keep": 0.5, "rule": "agree", **decision.as_dict()})


def test_the_file_round_trips_and_holds_what_the_vote_decided(tmp_path: Path) -> None:
    paths = ExperimentPaths(str(tmp_path), "x")
    assert EarlyStopFile.read(paths) is None and stopped_early(paths) == set()
    record = _decision()
    Path(paths.root).mkdir(parents=True)
    record.write(paths)
    back = EarlyStopFile.read(paths)
    assert back == record and stopped_early(paths) == {"a=2"}
    assert back.candidates["a=2"] == RungEntry(group="a", score=None, rank=2, f_miou=0.25, kept=False)
    # The document as the vote actor wrote it before this record owned it (key order included).
    doc = json.loads(Path(paths.early_stop).read_text())
    assert list(doc) == ["after_round", "keep", "rule", "stopped", "candidates", "notes"]
    assert list(doc["candidates"]["default"]) == ["group", "score", "rank", "f_miou", "kept"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("stopped"), r"field 'stopped' is missing"),
        (lambda d: d.update(after_round="1"), r"field 'after_round': expected"),
        (lambda d: d.update(keep=True), r"field 'keep': expected"),
        (lambda d: d.update(stopped=[1]), r"field 'stopped': expected a list of strings"),
        (lambda d: d["candidates"]["default"].pop("rank"), r"candidates\.default: field 'rank' is missing"),
        (lambda d: d["candidates"]["default"].update(kept="yes"), r"candidates\.default: field 'kept'"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_the_field(tmp_path: Path, change, message: str) -> None:
    paths = ExperimentPaths(str(tmp_path), "x")
    Path(paths.root).mkdir(parents=True)
    doc = _decision().as_dict()
    change(doc)
    Path(paths.early_stop).write_text(json.dumps(doc))
    with pytest.raises(RecordError, match=message) as info:
        EarlyStopFile.read(paths)
    assert str(info.value).startswith(paths.early_stop)


def test_a_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    paths = ExperimentPaths(str(tmp_path), "x")
    Path(paths.root).mkdir(parents=True)
    Path(paths.early_stop).write_text("{not json")
    with pytest.raises(RecordError, match="not JSON"):
        stopped_early(paths)


def test_the_status_is_the_string_the_tables_hold() -> None:
    assert [str(s) for s in TrialStatus] == ["done", "failed", "stopped"]
    assert TrialStatus.STOPPED == STOPPED  # selection's outcome records compare against it
    assert json.dumps({"status": TrialStatus.DONE}) == '{"status": "done"}'
    assert not math.isnan(_decision().candidates["default"].score)


def _result() -> CandidateResult:
    return CandidateResult(
        candidate_id="alpha=0.7",
        replicate=0,
        seed=3,
        params={"alpha": 0.7, "beta": 2},
        prediction_uri="/s/x/predictions/rep0/alpha=0.7.parquet",
        evidence_uri="/s/x/evidence/rep0/alpha=0.7.npz",
        metrics={"true_miou": 0.5, "source_miou": float("nan")},
        node="abc123",
        node_name="10.0.0.1",
    )


def test_the_result_record_round_trips_as_the_train_loop_wrote_it(tmp_path: Path) -> None:
    paths = ExperimentPaths(str(tmp_path), "x")
    uri = paths.result("alpha=0.7", 0)
    assert CandidateResult.read(uri) is None  # not finished yet
    record = _result()
    record.write(uri)
    back = CandidateResult.read(uri)
    assert back is not None and back.as_dict().keys() == record.as_dict().keys()
    assert back.metrics["true_miou"] == 0.5 and math.isnan(back.metrics["source_miou"])
    assert back.params == {"alpha": 0.7, "beta": 2} and back.node_name == "10.0.0.1"
    # The document the train loop wrote by hand before this record owned it (key order included).
    doc = json.loads(Path(uri).read_text())
    assert list(doc) == [
        "candidate_id", "replicate", "seed", "params", "prediction_uri", "evidence_uri", "metrics", "node",
        "node_name",
    ]  # fmt: skip
    assert Path(uri).read_text() == json.dumps(doc, indent=1)
    assert [p.name for p in Path(uri).parent.iterdir()] == [Path(uri).name]  # no temp file left


def test_a_result_without_the_optional_fields_reads_them_as_none(tmp_path: Path) -> None:
    uri = str(tmp_path / "r.json")
    doc = _result().as_dict()
    for key in ("evidence_uri", "node", "node_name"):
        doc.pop(key)
    Path(uri).write_text(json.dumps(doc))
    back = CandidateResult.read(uri)
    assert back is not None and (back.evidence_uri, back.node, back.node_name) == (None, None, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("metrics"), r"field 'metrics' is missing"),
        (lambda d: d.update(replicate="0"), r"field 'replicate': expected"),
        (lambda d: d.update(seed=True), r"field 'seed': expected"),
        (lambda d: d.update(prediction_uri=None), r"field 'prediction_uri': expected"),
        (lambda d: d.update(evidence_uri=3), r"field 'evidence_uri': expected"),
        (lambda d: d.update(metrics={"true_miou": "high"}), r"field 'metrics': expected names to numbers"),
        (lambda d: d.update(params=[1]), r"field 'params': expected"),
    ],
)
def test_a_bad_result_is_refused_naming_the_file_and_the_field(tmp_path: Path, change, message: str) -> None:
    uri = str(tmp_path / "r.json")
    doc = _result().as_dict()
    change(doc)
    Path(uri).write_text(json.dumps(doc))
    with pytest.raises(RecordError, match=message) as info:
        CandidateResult.read(uri)
    assert str(info.value).startswith(uri)


def test_a_result_that_is_not_json_or_not_an_object_is_named(tmp_path: Path) -> None:
    uri = tmp_path / "r.json"
    uri.write_text("{not json")
    with pytest.raises(RecordError, match=f"^{uri}: not JSON"):
        CandidateResult.read(str(uri))
    uri.write_text("[1]")
    with pytest.raises(RecordError, match=f"^{uri}: expected an object"):
        CandidateResult.read(str(uri))


_SPEC = {
    "candidate_id": "alpha=0.7",
    "replicate": 0,
    "params": {"alpha": 0.7},
    "sweeps": ["alpha"],
    "digest": "d1",
}
_RUNG = RungEntry(group="alpha", score=None, rank=3, f_miou=0.25, kept=False)


def test_a_done_outcome_carries_its_result_record_and_rung_columns_to_the_vote() -> None:
    record = outcome_record(_SPEC, TrialStatus.DONE, result=_result(), rung=_RUNG, trial_dir="/s/x/cand_d1")
    # The keys the job built by hand before outcome_record owned them.
    assert set(record) == {*_SPEC, "status", "metrics", "prediction_uri", "evidence_uri", "error", "node"} | {
        "node_name", "trial_dir", "rung_score", "rung_rank", "rung_f_miou", "rung_group",
    }  # fmt: skip
    outcome = Outcome.from_record(record)
    assert outcome.done and outcome.prediction_uri == _result().prediction_uri
    assert outcome.evidence_uri == _result().evidence_uri and outcome.metrics["true_miou"] == 0.5
    # Only the node and rung fields become columns of their own, in this order.
    assert list(outcome.info) == ["node", "node_name", "rung_score", "rung_rank", "rung_f_miou", "rung_group"]
    assert math.isnan(outcome.info["rung_score"]) and outcome.info["rung_rank"] == 3
    assert outcome.info["node_name"] == "10.0.0.1"


def test_failed_and_stopped_outcomes_name_no_files_and_no_node() -> None:
    failed = Outcome.from_record(outcome_record(_SPEC, TrialStatus.FAILED, error="boom", trial_dir="/t"))
    assert (failed.status, failed.error, failed.prediction_uri, failed.metrics) == (
        "failed",
        "boom",
        None,
        {},
    )
    assert failed.info == {"node": None, "node_name": None}
    stopped = Outcome.from_record(outcome_record(_SPEC, TrialStatus.STOPPED, rung=_RUNG))
    assert (
        stopped.status == STOPPED and stopped.info["rung_group"] == "alpha" and stopped.info["node"] is None
    )


def test_a_provisional_outcome_holds_only_what_tunes_result_holds() -> None:
    record = outcome_record(_SPEC, TrialStatus.DONE, metrics={"true_miou": 0.4}, provisional=True)
    assert set(record) == {*_SPEC, "status", "metrics", "prediction_uri", "error", "trial_dir"}
    outcome = Outcome.from_record(record, prediction_uri="/p.parquet")
    assert (
        outcome.prediction_uri == "/p.parquet"
        and outcome.info == {}
        and outcome.metrics == {"true_miou": 0.4}
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": TrialStatus.DONE},  # a final done outcome without its record
        {"status": TrialStatus.FAILED, "result": _result()},
        {"status": TrialStatus.FAILED, "provisional": True},
        {"status": TrialStatus.DONE, "result": _result(), "provisional": True},
        {"status": TrialStatus.DONE, "result": _result(), "metrics": {"true_miou": 0.1}},
    ],
)
def test_an_outcome_that_contradicts_itself_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="outcome"):
        outcome_record(_SPEC, **kwargs)
