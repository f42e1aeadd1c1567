"""``python -m selection.report``: the dashboard re-rendered from stored outputs, without Ray."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import pytest
from report_fixtures import job_outputs

from selection.report import render_dashboard
from selection.report.__main__ import main
from selection.report.stored import load_outputs
from selection.tables import write_json, write_parquet

REPO = Path(__file__).resolve().parents[3]
_STAMP = re.compile(r"Generated [0-9: -]+ UTC")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment folder as the job leaves it: table, choice, sweep tables, config snapshot."""
    tmp = tmp_path_factory.mktemp("stored")
    o = job_outputs(tmp / "predictions")
    root = tmp / "results" / "synthscape-default"
    write_parquet(o.table, root / "candidates.parquet")
    write_json(o.choice, root / "choice.json")
    for g, sweep in o.sweeps.items():
        write_parquet(sweep, root / "sweeps" / f"{g}.parquet")
    (root / "job_config.json").write_text(json.dumps(o.config, indent=1))
    return root


def test_rerender_equals_the_direct_render(experiment: Path, capsys: pytest.CaptureFixture) -> None:
    stored = load_outputs(experiment)
    assert sorted(stored.sweeps) == sorted(stored.choice["per_sweep"])
    direct = render_dashboard(
        stored.table, stored.choice, stored.config, class_names=["c"] * 19, sweeps=stored.sweeps
    )
    assert main([str(experiment), "--class-names", ",".join(["c"] * 19)]) == 0
    assert capsys.readouterr().out.strip() == str(experiment / "dashboard.html")
    again = (experiment / "dashboard.html").read_text(encoding="utf-8")
    assert _STAMP.sub("", again) == _STAMP.sub("", direct)
    # Through Parquet the list columns come back as arrays: the page still shows every section.
    for heading in (
        "F-mIoU per parameter",
        "Rankings per sweep",
        "Label-free scores side by side",
        "Agreement between",
        "Per-class IoU",
    ):
        assert heading in again
    assert [p.name for p in experiment.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_uri_and_out(experiment: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "page.html"
    assert main([experiment.as_uri(), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "class 0" in page and "synthscape-default" in page


def test_missing_outputs_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "choice.json").write_text("{}")
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "candidates.parquet") in err and "not found" in err
    assert not (tmp_path / "dashboard.html").exists()


def test_broken_choice_names_the_file(
    experiment: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "exp"
    root.mkdir()
    (root / "candidates.parquet").write_bytes((experiment / "candidates.parquet").read_bytes())
    (root / "choice.json").write_text('{"mode": "sweep", "per_sweep": {}}')
    assert main([str(root)]) == 2
    assert f"{root}: choice: missing key(s) parameters" in capsys.readouterr().err
    (root / "choice.json").write_text("{not json")
    assert main([str(root)]) == 2
    assert f"{root / 'choice.json'}: not valid JSON" in capsys.readouterr().err


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


def test_templates_and_css_are_package_data() -> None:
    # A wheel carries them only if pyproject's package-data patterns match every one.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["selection.report"]
    root = resources.files("selection.report")
    files = [f"templates/{p.name}" for p in root.joinpath("templates").iterdir()]
    files += [f"static/{p.name}" for p in root.joinpath("static").iterdir()]
    assert "templates/dashboard.html.j2" in files and "static/dashboard.css" in files
    for f in files:
        assert any(fnmatch(f, p) for p in patterns), f
