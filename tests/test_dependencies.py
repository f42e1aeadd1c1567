"""Every third-party module the tests, benches and packages import is installed by the project's own
requirements, so ``pip install -e '.[dev]'`` on a fresh venv gives a suite that runs.

A module counts as covered when the distribution that provides it (``packages_distributions``) is
named in ``pyproject.toml``: ``dependencies`` for the packages; those plus the ``dev`` extra for
``tests/`` and ``bench/``. A dependency of a dependency does not count: it may go away in its next
release. Imports inside functions and ``pytest.importorskip("x")`` count too; a skipped test hides a
missing package as well as a failing one.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = {"hiast", "selection", "ray_jobs"}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports in one file (relative imports are the file's own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"importorskip", "import_module"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value.split(".")[0])
    return found


def local_modules(folder: Path) -> set[str]:
    """Helper modules and packages a folder's own files import by bare name (conftest, jobtools,
    bench/selection_bench, ...)."""
    return {p.stem for p in folder.rglob("*.py")} | {p.parent.name for p in folder.rglob("__init__.py")}


def requirement_names(pyproject: dict, extras: set[str]) -> set[str]:
    """Canonical distribution names of ``dependencies`` and the given extras.

    An extra may name the project itself with other extras (``hiast-select[s3]``): those count too.
    """
    project = pyproject["project"]
    own = canonicalize_name(project["name"])
    optional = project.get("optional-dependencies", {})
    names: set[str] = set()
    todo, seen = [None, *sorted(extras)], set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        if extra is not None and extra not in optional:
            raise AssertionError(f"pyproject.toml: no optional-dependencies extra {extra!r}")
        for line in project["dependencies"] if extra is None else optional[extra]:
            req = Requirement(line)
            if canonicalize_name(req.name) == own:
                todo += sorted(req.extras)
            else:
                names.add(canonicalize_name(req.name))
    return names


def uncovered(files: list[Path], allowed: set[str], local: set[str], root: Path = ROOT) -> dict[str, str]:
    """Module -> why it is not covered, for every third-party import in ``files`` (under ``root``)."""
    providers = packages_distributions()
    problems: dict[str, str] = {}
    for path in files:
        for module in sorted(imported_modules(path)):
            if module in sys.stdlib_module_names or module in PROJECT_PACKAGES or module in local:
                continue
            where = path.relative_to(root)
            dists = {canonicalize_name(d) for d in providers.get(module, [])}
            if not dists:
                problems.setdefault(
                    module, f"{where}: imports {module!r}, which no installed distribution provides"
                )
            elif not dists & allowed:
                problems.setdefault(
                    module,
                    f"{where}: imports {module!r} (from {', '.join(sorted(dists))}), which pyproject.toml "
                    "does not name",
                )
    return problems


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_tests_and_benches_import_only_declared_packages(pyproject: dict) -> None:
    allowed = requirement_names(pyproject, {"dev"})
    files = sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "bench").glob("*.py"))
    local = local_modules(ROOT / "tests") | local_modules(ROOT / "bench")
    problems = uncovered(files, allowed, local)
    assert not problems, "add to pyproject.toml:\n  " + "\n  ".join(problems.values())


def test_packages_import_only_runtime_dependencies(pyproject: dict) -> None:
    # An optional feature may import its own extra's packages (lazily); never the dev extra's.
    extras = set(pyproject["project"].get("optional-dependencies", {})) - {"dev"}
    allowed = requirement_names(pyproject, extras)
    files = sorted(f for pkg in PROJECT_PACKAGES for f in (ROOT / pkg).rglob("*.py"))
    problems = uncovered(files, allowed, set())
    assert not problems, "add to pyproject.toml's dependencies:\n  " + "\n  ".join(problems.values())


def test_the_guard_sees_a_missing_requirement(tmp_path: Path, pyproject: dict) -> None:
    # boto3 is installed here, but a project that does not name it must be told so.
    (tmp_path / "test_x.py").write_text(
        "import boto3\n\ndef f():\n    import pytest\n    pytest.importorskip('scipy')\n"
    )
    assert imported_modules(tmp_path / "test_x.py") == {"boto3", "pytest", "scipy"}
    without = requirement_names(pyproject, {"dev"}) - {"boto3"}
    problems = uncovered([tmp_path / "test_x.py"], without, set(), root=tmp_path)
    assert set(problems) == {"boto3"} and "does not name" in problems["boto3"]


def test_self_referencing_extras_are_followed() -> None:
    project = {
        "project": {
            "name": "Hiast_Select",
            "dependencies": ["numpy>=1"],
            "optional-dependencies": {
                "s3": ["boto3; python_version>='3'"],
                "dev": ["hiast-select[s3]", "pytest"],
            },
        }
    }
    assert requirement_names(project, {"dev"}) == {"numpy", "boto3", "pytest"}
    with pytest.raises(AssertionError, match="no optional-dependencies extra 'gpu'"):
        requirement_names(project, {"gpu"})
