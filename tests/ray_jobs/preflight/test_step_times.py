"""The step-time table --plan reads: its owner round-trips it, refuses a malformed one by name, and a
config matches only a measurement of its own model, crop, batch and device."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_jobs.config import load_job_config
from ray_jobs.preflight import (
    StepTime,
    StepTimeError,
    load_step_times,
    measured_step,
    save_step_times,
    step_key,
)


def test_round_trip_and_lookup(tmp_path: Path) -> None:
    cfg = load_job_config(None)
    path = tmp_path / "step_times.json"
    entry = StepTime(step_key(cfg), 0.25, "a test")
    save_step_times({entry.key: entry}, path)
    table = load_step_times(path)
    assert table == {entry.key: entry}
    assert measured_step(cfg, table) == entry
    assert not list(tmp_path.glob(".step_times.json.*"))  # no temp file left behind


def test_another_batch_or_device_does_not_match() -> None:
    cfg = load_job_config(None)
    table = {step_key(cfg): StepTime(step_key(cfg), 0.25, "a test")}
    assert measured_step(load_job_config(None, {"selftrain.batch_size": 4}), table) is None
    assert measured_step(load_job_config(None, {"ray.use_gpu": True}), table) is None
    assert measured_step(load_job_config(None, {"ray.cpus_per_worker": 2}), table) is None
    assert "deeplab_v2_small(width=16) crop 64x128 batch 8" in step_key(cfg)


def test_the_packaged_table_is_readable() -> None:
    for entry in load_step_times().values():
        assert entry.seconds > 0 and entry.measured


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not a readable JSON step-time table"),
        ('{"format": "other"}', "expected format 'hiast-select/step-times/v1'"),
        ('{"format": "hiast-select/step-times/v1", "entries": [{"key": "k"}]}', "entries[0]: expected key"),
        (
            '{"format": "hiast-select/step-times/v1", '
            '"entries": [{"key": "k", "seconds": 0, "measured": "m"}]}',
            "seconds must be > 0",
        ),
    ],
)
def test_a_malformed_table_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "step_times.json"
    path.write_text(text)
    with pytest.raises(StepTimeError, match=r"step_times\.json|seconds") as e:
        load_step_times(path)
    assert message in str(e.value)
