"""Stored outputs read back and re-rendered (selection.report.stored), without Ray."""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import pytest
from report_fixtures import job_outputs
from report_tables import CONFIG, write_experiment

from selection.errors import SelectionError
from selection.report import render_dashboard
from selection.report.stored import load_outputs, rerender
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


def test_rerender_equals_the_direct_render(experiment: Path) -> None:
    stored = load_outputs(experiment)
    assert sorted(stored.sweeps) == sorted(stored.choice["per_sweep"])
    direct = render_dashboard(
        stored.table, stored.choice, stored.config, class_names=["c"] * 19, sweeps=stored.sweeps
    )
    assert rerender(experiment, class_names=["c"] * 19) == str(experiment / "dashboard.html")
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


def test_load_outputs_of_a_small_folder(tmp_path: Path) -> None:
    root = write_experiment(tmp_path / "exp")
    (root / "sweeps" / "k.parquet").write_bytes((root / "sweeps" / "alpha.parquet").read_bytes())
    stored = load_outputs(str(root) + "/")  # a trailing slash is the same folder
    assert stored.root == str(root)
    assert stored.table["candidate_id"].tolist() == [
        "alpha=0.1",
        "default",
        "alpha=0.9",
        "gamma=2",
        "gamma=16",
    ]
    assert list(stored.table.loc[1, "sweeps"]) == ["alpha", "gamma"]
    assert stored.config == CONFIG and stored.choice["per_sweep"]["gamma"]["candidate_id"] == "gamma=2"
    # sweep tables of the choice's groups only; gamma has none stored, k is no group
    assert list(stored.sweeps) == ["alpha"]


def test_config_and_sweeps_are_optional(tmp_path: Path) -> None:
    stored = load_outputs(write_experiment(tmp_path / "exp", config=False, sweeps=False))
    assert stored.config is None and stored.sweeps == {}


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    root = write_experiment(tmp_path / "exp")
    (root / "choice.json").write_text("[1, 2]")
    with pytest.raises(
        SelectionError, match=re.escape(f"{root / 'choice.json'}: expected a JSON object, got list")
    ):
        load_outputs(root)
    root = write_experiment(tmp_path / "exp2")
    (root / "candidates.parquet").write_bytes(b"not parquet")
    with pytest.raises(
        SelectionError, match=re.escape(f"{root / 'candidates.parquet'}: cannot be read as Parquet")
    ):
        load_outputs(root)
    (root / "job_config.json").write_text("{")
    (root / "candidates.parquet").unlink()
    (root / "choice.json").unlink()
    with pytest.raises(
        SelectionError, match=" and .*not found: .* is not a finished selection's output folder"
    ):
        load_outputs(root)


def test_rerender_names_the_folder_when_the_outputs_cannot_be_rendered(tmp_path: Path) -> None:
    root = write_experiment(tmp_path / "exp")
    with pytest.raises(SelectionError, match=re.escape(f"{root}: class_names: 1 names given")):
        rerender(root, class_names=["road"])
    assert not (root / "dashboard.html").exists()
    out = tmp_path / "page.html"
    assert rerender(root, out) == str(out) and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_provisional_choice_renders_provisional(tmp_path: Path) -> None:
    root = write_experiment(tmp_path / "exp")
    stored = json.loads((root / "choice.json").read_text())
    (root / "choice.json").write_text(json.dumps({**stored, "provisional": True, "total": 9}))
    page = Path(rerender(root)).read_text(encoding="utf-8")
    assert "PROVISIONAL — 5 of 9 candidates finished" in page
