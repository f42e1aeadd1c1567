"""The job's records: early_stop.json through its one owner, and the trial status."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ray_jobs.records import EarlyStopFile, RecordError, RungEntry, TrialStatus, stopped_early
from ray_jobs.storage import ExperimentPaths
from selection.early_stop import EarlyStopDecision, RungRecord
from selection.outcomes import STOPPED


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
