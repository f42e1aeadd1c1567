"""What the job prints: levels per verbosity, readable trial names, progress lines, the closing summary.

The end-to-end console (a failing candidate's error on the console, the summary last) is checked
on real runs in test_select_job.py and test_fault_tolerance.py.
"""

from __future__ import annotations

import importlib
import logging
import pickle
from types import SimpleNamespace

import pytest

from ray_jobs import console
from ray_jobs.select import main


@pytest.fixture(autouse=True)
def _restore_levels():
    names = [
        "ray",
        "ray_jobs",
        "hiast",
        "selection",
        console.PG_CLEANER_LOGGER,
        console.TRAIN_REPORT_LOGGER,
    ]
    saved = {
        n: (logging.getLogger(n).level, logging.getLogger(n).propagate, logging.getLogger(n).handlers[:])
        for n in names
    }
    yield
    for n, (level, propagate, handlers) in saved.items():
        logger = logging.getLogger(n)
        logger.setLevel(level)
        logger.propagate = propagate
        logger.handlers[:] = handlers


def test_levels_per_verbosity() -> None:
    normal = console.log_levels(console.NORMAL, driver=True)
    assert normal["ray"] == logging.WARNING and normal["ray_jobs"] == logging.INFO
    assert normal[console.PG_CLEANER_LOGGER] == logging.ERROR
    # Workers keep their INFO to themselves unless verbose; warnings always pass.
    assert console.log_levels(console.NORMAL, driver=False)["hiast"] == logging.WARNING
    assert console.log_levels(console.QUIET, driver=True)["ray_jobs"] == logging.WARNING
    verbose = console.log_levels(console.VERBOSE, driver=False)
    assert verbose["ray"] == logging.INFO and verbose["hiast"] == logging.INFO
    assert console.PG_CLEANER_LOGGER not in verbose
    # Nothing is ever set above ERROR: errors always reach the console.
    for v in (console.QUIET, console.NORMAL, console.VERBOSE):
        for driver in (True, False):
            assert max(console.log_levels(v, driver=driver).values()) <= logging.ERROR


def test_worker_hook_applies_the_jobs_verbosity(monkeypatch: pytest.MonkeyPatch) -> None:
    options = console.ray_init_options(console.QUIET)
    assert options["log_to_driver"] is True
    hook = options["runtime_env"]["worker_process_setup_hook"]
    module, _, name = hook.rpartition(".")
    assert getattr(importlib.import_module(module), name) is console.setup_worker_logging
    monkeypatch.setenv(console.VERBOSITY_ENV, options["runtime_env"]["env_vars"][console.VERBOSITY_ENV])
    console.setup_worker_logging()
    assert logging.getLogger("hiast").level == logging.WARNING
    assert logging.getLogger(console.PG_CLEANER_LOGGER).level == logging.ERROR
    assert console.train_log_level() == "ERROR"
    monkeypatch.setenv(console.VERBOSITY_ENV, str(console.VERBOSE))
    console.setup_worker_logging()
    assert logging.getLogger("hiast").level == logging.INFO
    assert console.train_log_level() == "INFO"


def test_driver_shows_its_own_info_and_only_warnings_of_others(caplog: pytest.LogCaptureFixture) -> None:
    console.configure_driver(console.NORMAL)
    logging.getLogger("ray_jobs").info("our progress")
    assert [r.getMessage() for r in caplog.records] == ["our progress"]
    ray_tune = logging.getLogger("ray.tune")  # Ray's loggers print through Ray's own handler
    assert ray_tune.isEnabledFor(logging.WARNING) and not ray_tune.isEnabledFor(logging.INFO)
    console.configure_driver(console.QUIET)
    logging.getLogger("ray_jobs").info("quiet now")
    assert "quiet now" not in caplog.text
    console.configure_driver(console.VERBOSE)
    assert ray_tune.isEnabledFor(logging.INFO)


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


def test_a_trial_cut_by_early_stopping_is_said_stopped(caplog: pytest.LogCaptureFixture) -> None:
    progress = console.ConsoleProgress(total_trials=3, rounds=2, replicates=1)
    with caplog.at_level(logging.INFO, logger="ray_jobs"):
        progress.on_trial_complete(0, [], _trial("alpha=0.1", last_result={"round": 1, "rung_outputs": 1}))
    assert [r.getMessage() for r in caplog.records] == [
        "alpha=0.1: stopped early after round 1 (1 of 3 ended)"
    ]


def test_progress_lines(caplog: pytest.LogCaptureFixture, tmp_path) -> None:
    progress = console.ConsoleProgress(total_trials=3, rounds=2, replicates=1)
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


def test_help_lists_packaged_configs_and_verbosity_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("synthscape", "gta5_to_cityscapes", "synthia_to_cityscapes", "cityscapes_to_robotcar"):
        assert name in out
    assert "--quiet" in out and "--verbose" in out
    with pytest.raises(SystemExit):
        main(["--quiet", "--verbose"])
    assert "not allowed with argument" in capsys.readouterr().err
