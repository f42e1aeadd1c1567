"""Every third-party module the packages, tests and benches import is a requirement the project names
itself, so ``pip install -e '.[dev]'`` on a fresh venv gives a suite that runs. deptry checks it, with
the one ``[tool.deptry]`` config in ``pyproject.toml``, in two runs:

- the packages (hiast, selection, ray_jobs): nothing missing (DEP001), unused (DEP002) or reached only
  through another package's requirements (DEP003: it may go away in that package's next release),
  and nothing from the dev-only extras ``dev`` and ``bench`` (DEP004);
- tests/ and bench/: nothing missing or transitive; they may use the dev-only extras and need not
  use every runtime requirement (DEP002 and DEP004 off).

Two things deptry does not see, so this file supplies them: the helper modules tests import by bare
name from subfolders (``tests/selection/conftest.py`` puts them on ``sys.path``), which deptry would
take for missing packages; and ``pytest.importorskip("x")``, which is no import statement, yet a
skipped test hides a missing package as well as a failing one. Each check is also run against a
pyproject.toml with one requirement broken, so a pass means something.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
PACKAGES = ("hiast", "selection", "ray_jobs")


def deptry(roots: list[Path], *options: str, config: Path = PYPROJECT) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "deptry", *map(str, roots), "--config", str(config), "--no-ansi", *options]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def local_modules(*folders: Path) -> set[str]:
    """Helper modules and packages the folders' own files import by bare name (conftest, jobtools,
    store_files, selection_bench, ...)."""
    return {p.stem for folder in folders for p in folder.rglob("*.py")} | {
        p.parent.name for folder in folders for p in folder.rglob("__init__.py")
    }


def skipped_imports(folder: Path) -> set[str]:
    """The top-level modules named by ``pytest.importorskip("x")`` in the folder's files."""
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "importorskip"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value.split(".")[0])
    return found


def check_packages(config: Path = PYPROJECT) -> subprocess.CompletedProcess:
    return deptry([ROOT / p for p in PACKAGES], config=config)


def check_tests_and_benches(tmp_path: Path, config: Path = PYPROJECT) -> subprocess.CompletedProcess:
    first_party = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["deptry"]["known_first_party"]
    local = sorted(set(first_party) | local_modules(ROOT / "tests", ROOT / "bench"))
    # The importorskip names, as imports deptry reads.
    (tmp_path / "skipped").mkdir(exist_ok=True)
    lines = [f"import {name}\n" for name in sorted(skipped_imports(ROOT / "tests"))]
    (tmp_path / "skipped" / "importorskip.py").write_text("".join(lines))
    return deptry(
        [ROOT / "tests", ROOT / "bench", tmp_path / "skipped"],
        # Replaces deptry's default exclude, which leaves out tests/.
        "--exclude",
        ".*/__pycache__/",
        "--ignore",
        "DEP002,DEP004",
        *[arg for name in local for arg in ("--known-first-party", name)],
        config=config,
    )


def test_packages_import_only_their_runtime_requirements() -> None:
    result = check_packages()
    assert result.returncode == 0, result.stdout + result.stderr


def test_tests_and_benches_import_only_declared_packages(tmp_path: Path) -> None:
    result = check_tests_and_benches(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_importorskip_names_are_read() -> None:
    assert skipped_imports(ROOT / "tests") >= {"mlflow", "tensorboard"}


# Each edit of pyproject.toml and what deptry must then say, for the packages or for tests/bench:
# a requirement removed (installed here through another package, so deptry calls it transitive; one
# installed by nothing is DEP001), one added and never imported, one moved to the dev extra.
BREAKS = [
    ("packages", '    "scipy>=1.11",\n', "", "DEP003 'scipy' imported but it is a transitive"),
    ("packages", '    "pyyaml>=6",\n', "", "DEP003 'yaml' imported but it is a transitive dependency"),
    ("packages", '    "jinja2>=3.1",\n', '    "jinja2>=3.1",\n    "xlrd>=2",\n', "DEP002 'xlrd'"),
    ("packages", '    "pyyaml>=6",\n', "", "DEP004 'yaml' imported but declared as a dev dependency"),
    ("tests", '    "werkzeug>=2.2",\n', "", "DEP003 'werkzeug' imported but it is a transitive dependency"),
    ("tests", '    "hypothesis>=6.100",\n', "", "DEP003 'hypothesis' imported but it is a transitive"),
    # Only a dependency of a dependency now; seen through the tests' importorskip too.
    (
        "tests",
        '    "mlflow>=3.0",\n',
        "",
        "importorskip.py:1:8: DEP003 'mlflow' imported but it is a transitive",
    ),
]


@pytest.mark.parametrize(("checked", "old", "new", "expected"), BREAKS)
def test_a_broken_requirement_is_reported(
    tmp_path: Path, checked: str, old: str, new: str, expected: str
) -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"pyproject.toml no longer has {old!r}: update this test"
    broken = text.replace(old, new)
    if "DEP004" in expected:  # moved to the dev extra, not removed
        broken = broken.replace("dev = [\n", f"dev = [\n{old}", 1)
    if "mlflow" in old:  # the mlflow extra names it too
        broken = broken.replace('mlflow = ["mlflow>=3.0"]\n', "")
    config = tmp_path / "pyproject.toml"
    config.write_text(broken, encoding="utf-8")
    result = check_packages(config) if checked == "packages" else check_tests_and_benches(tmp_path, config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout + result.stderr, result.stdout + result.stderr
