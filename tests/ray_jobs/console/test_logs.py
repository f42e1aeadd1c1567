"""ray_jobs.console.logs: log levels per verbosity, in the driver and in the job's other processes.

The end-to-end console (a failing candidate's error on the console, the summary last) is checked
on real runs in test_select_job.py and test_fault_tolerance.py; the lines themselves in
test_formatting.py and test_progress.py.
"""

from __future__ import annotations

import importlib
import logging

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
