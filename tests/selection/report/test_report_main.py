"""``python -m selection.report`` (selection.report.__main__): exit status, output path, class
names, and errors that name the file, on the small experiment folder of ``report_tables``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from report_tables import write_experiment

from selection.report.__main__ import main

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return write_experiment(tmp_path / "results" / "tiny-exp")


def test_writes_beside_the_outputs_and_prints_where(experiment: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(experiment)]) == 0
    target = experiment / "dashboard.html"
    assert capsys.readouterr().out.strip() == str(target)
    page = target.read_text(encoding="utf-8")
    assert "hiast-select — tiny" in page and "class 0" in page  # numbered classes by default


def test_class_names_are_split_on_commas_and_stripped(experiment: Path) -> None:
    assert main([str(experiment), "--class-names", "road, sky ,car"]) == 0
    page = (experiment / "dashboard.html").read_text(encoding="utf-8")
    assert ">road<" in page and ">sky<" in page and "class 0" not in page


def test_uri_and_out(experiment: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "page.html"
    assert main([experiment.as_uri(), "--out", str(out)]) == 0
    assert "hiast-select — tiny" in out.read_text(encoding="utf-8")
    assert not (experiment / "dashboard.html").exists()


def test_missing_outputs_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "choice.json").write_text("{}")
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "candidates.parquet") in err and "not found" in err
    assert not (tmp_path / "dashboard.html").exists()


def test_broken_choice_names_the_file(experiment: Path, capsys: pytest.CaptureFixture) -> None:
    (experiment / "choice.json").write_text('{"mode": "sweep", "per_sweep": {}}')
    assert main([str(experiment)]) == 2
    assert f"{experiment}: choice: missing key(s) parameters" in capsys.readouterr().err
    (experiment / "choice.json").write_text("{not json")
    assert main([str(experiment)]) == 2
    assert f"{experiment / 'choice.json'}: not valid JSON" in capsys.readouterr().err


def test_wrong_class_names_exit_2(experiment: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(experiment), "--class-names", "road,sky"]) == 2
    assert "class_names: 2 names given, the choice has num_classes 3" in capsys.readouterr().err
    assert not (experiment / "dashboard.html").exists()


def test_an_unknown_option_is_argparses_exit_2(experiment: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main([str(experiment), "--colour", "blue"])
    assert e.value.code == 2


def test_runs_as_a_module_without_ray(experiment: Path, tmp_path: Path) -> None:
    # A fresh interpreter: the command works, and neither Ray nor the method package is imported.
    probe = (
        "import runpy, sys; sys.argv = ['x', sys.argv[1], '--out', sys.argv[2]];"
        "code = 0\n"
        "try:\n runpy.run_module('selection.report', run_name='__main__')\n"
        "except SystemExit as e:\n code = e.code\n"
        "print(code, 'ray' in sys.modules, 'hiast' in sys.modules)"
    )
    out = tmp_path / "d.html"
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(experiment), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=True,
    )
    assert proc.stdout.split()[-3:] == ["0", "False", "False"], proc.stderr
    assert out.stat().st_size > 10_000
