"""ray_jobs.callbacks.progress: one console line per candidate event."""

from __future__ import annotations

import logging
import pickle
from types import SimpleNamespace

import pytest

from ray_jobs.callbacks import ConsoleProgress


def _trial(cid: str, replicate: int = 0, **kw) -> SimpleNamespace:
    return SimpleNamespace(
        config={"candidate": {"candidate_id": cid, "replicate": replicate}},
        trial_id=f"t-{cid}-{replicate}",
        **kw,
    )


def test_a_trial_cut_by_early_stopping_is_said_stopped(caplog: pytest.LogCaptureFixture) -> None:
    progress = ConsoleProgress(total_trials=3, rounds=2, replicates=1)
    with caplog.at_level(logging.INFO, logger="ray_jobs"):
        progress.on_trial_complete(0, [], _trial("alpha=0.1", last_result={"round": 1, "rung_outputs": 1}))
    assert [r.getMessage() for r in caplog.records] == [
        "alpha=0.1: stopped early after round 1 (1 of 3 ended)"
    ]


def test_progress_lines(caplog: pytest.LogCaptureFixture, tmp_path) -> None:
    progress = ConsoleProgress(total_trials=3, rounds=2, replicates=1)
    t = _trial("alpha=0.3", last_result={"finished": 1})
    with caplog.at_level(logging.INFO, logger="ray_jobs"):
        progress.on_trial_start(0, [], t)
        progress.on_trial_result(0, [], t, {"round": 1})
        progress.on_trial_result(0, [], t, {"round": 1})  # the same round again: no new line
        progress.on_trial_result(0, [], t, {"finished": 1})
        progress.on_trial_complete(0, [], t)
        err = tmp_path / "error.txt"
        err.write_text("Traceback ...\n  File x\nRuntimeError: out of memory\n")
        progress.on_trial_error(0, [], _trial("alpha=0.7", error_file=str(err)))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "alpha=0.3: training (0 of 3 finished)"
    assert lines[1] == "alpha=0.3: round 1 of 2 done"
    assert lines[2].startswith("alpha=0.3: finished in") and lines[2].endswith("(1 of 3 finished)")
    assert lines[3] == f"alpha=0.7: FAILED: RuntimeError: out of memory (details: {err})"
    assert caplog.records[3].levelno == logging.ERROR
    assert len(lines) == 4
    # Tune pickles callbacks with its experiment state: counters start over on restore.
    restored = pickle.loads(pickle.dumps(progress))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ray_jobs"):
        restored.on_trial_complete(0, [], _trial("default", last_result={"finished": 1}))
    assert caplog.records[0].getMessage().endswith("(1 of 3 finished)")
