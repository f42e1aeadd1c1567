"""Layout is the architecture: hiast/ and selection/ never import Ray, selection/ never imports hiast,
and no module of the project reaches into another module's private (``_x``) names.

Read from the source with ``ast`` (imports inside functions count too); importlib strings are out
of scope. The checker is tested on made-up sources first, so a pass means something.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hiast", "selection", "ray_jobs")


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "selection.fusion"
    path: Path
    is_package: bool
    rel: str  # path relative to the project root, for messages


def project_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[Module]:
    out = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            out.append(Module(".".join(parts), path, is_package, path.relative_to(root).as_posix()))
    return out


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module an ``from ... import`` reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(module: Module) -> list[tuple[str, int]]:
    """Every module name the source imports, with its line: ``import a.b`` and ``from a.b import c``
    give ``a.b`` (and ``a.b.c``, in case c is a submodule)."""
    tree = ast.parse(module.path.read_text(), filename=str(module.path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            out.append((base, node.lineno))
            out += [(f"{base}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(module: Module, known: dict[str, Module]) -> list[str]:
    """``from m import _x`` and ``alias._x`` where m / alias is another project module."""
    tree = ast.parse(module.path.read_text(), filename=str(module.path))
    where = module.rel
    problems = []
    aliases: dict[str, str] = {}  # local name -> project module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in known:
                    aliases[alias.asname] = alias.name
                elif not alias.asname and alias.name.split(".")[0] in known:
                    top = alias.name.split(".")[0]  # "import a.b" binds "a"
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            if base not in known or base == module.name:
                continue
            for alias in node.names:
                if _private(alias.name):
                    problems.append(f"{where}:{node.lineno}: from {base} import {alias.name}")
                elif f"{base}.{alias.name}" in known:
                    aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            target = _dotted(node.value)
            bound = aliases.get(target.split(".")[0]) if target else None
            full = (bound + target[len(target.split(".")[0]) :]) if bound else None
            if full in known and full != module.name:
                problems.append(f"{where}:{node.lineno}: {target}.{node.attr} (private name of {full})")
    return sorted(problems)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def forbidden_imports(modules: list[Module], package: str, forbidden: str) -> list[str]:
    out = []
    for m in modules:
        if m.name.split(".")[0] != package:
            continue
        for name, line in imported_modules(m):
            if name == forbidden or name.startswith(forbidden + "."):
                out.append(f"{m.rel}:{line}: {name}")
    return sorted(set(out))


# -- the checker itself -----------------------------------------------------------------------------


@pytest.fixture
def fake_project(tmp_path: Path) -> Path:
    files = {
        "selection/__init__.py": "",
        "selection/a.py": "import numpy as np\n_SECRET = 1\ndef _helper(): pass\n",
        "selection/b.py": (
            "from selection.a import _helper\n"
            "import selection.a as a\n"
            "from selection import a as aa\n"
            "x = a._SECRET + aa._SECRET + a.__name__.__len__()\n"
            "def f():\n    import ray.tune\n    from hiast.config import load_config\n"
        ),
        "selection/c.py": "from . import a\nfrom .a import _SECRET\ny = a._helper\n",
        "hiast/__init__.py": "",
        "hiast/config.py": "from ray import train\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_the_checker_finds_every_kind_of_violation(fake_project: Path) -> None:
    modules = project_modules(fake_project, ("selection", "hiast"))
    assert forbidden_imports(modules, "selection", "ray") == ["selection/b.py:6: ray.tune"]
    assert forbidden_imports(modules, "hiast", "ray") == [
        "hiast/config.py:1: ray",
        "hiast/config.py:1: ray.train",
    ]
    assert forbidden_imports(modules, "selection", "hiast") == [
        "selection/b.py:7: hiast.config",
        "selection/b.py:7: hiast.config.load_config",
    ]
    known = {m.name: m for m in modules}
    found = {m.name: private_uses(m, known) for m in modules}
    assert found["selection.b"] == [
        "selection/b.py:1: from selection.a import _helper",
        "selection/b.py:4: a._SECRET (private name of selection.a)",
        "selection/b.py:4: aa._SECRET (private name of selection.a)",
    ]
    assert found["selection.c"] == [
        "selection/c.py:2: from selection.a import _SECRET",
        "selection/c.py:3: a._helper (private name of selection.a)",
    ]
    assert found["selection.a"] == [] and found["hiast.config"] == []


# -- the project --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def modules() -> list[Module]:
    found = project_modules()
    assert {m.name for m in found} >= {
        "hiast",
        "selection",
        "ray_jobs",
        "selection.fusion",
        "ray_jobs.select",
    }
    return found


@pytest.mark.parametrize("package", ["hiast", "selection"])
def test_the_method_and_the_selection_never_import_ray(modules: list[Module], package: str) -> None:
    assert forbidden_imports(modules, package, "ray") == []


def test_selection_never_imports_hiast(modules: list[Module]) -> None:
    assert forbidden_imports(modules, "selection", "hiast") == []


def test_no_module_uses_another_modules_private_names(modules: list[Module]) -> None:
    known = {m.name: m for m in modules}
    assert [p for m in modules for p in private_uses(m, known)] == []


def test_importing_selection_and_hiast_loads_no_ray() -> None:
    code = "import sys, selection, hiast.pipeline; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
