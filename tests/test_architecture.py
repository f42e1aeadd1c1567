"""Layout is the architecture: hiast/ and selection/ never import Ray, selection/ never imports hiast,
no module of the project reaches into another module's private (``_x``) names, and Ray's private
APIs are used in ``ray_jobs.ray_compat`` alone.

The import layering is import-linter's: the contracts are ``[tool.importlinter]`` in
``pyproject.toml``, run here on the project and on made-up projects that break each one, so a pass
means something. Two rules stay hand-written (``ast``), because import-linter's graph holds modules
and whole external packages only: a private *name* (``from m import _helper``, ``m._SECRET``) is not
a module, and import-linter rejects a subpackage of an external package (``ray._private``) as a
forbidden module; most of Ray's private APIs are not imports at all (attributes, logger names,
internal environment variables). Those checkers are tested on made-up sources first.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from importlinter.api import read_configuration

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hiast", "selection", "ray_jobs")
CONTRACTS = [c["name"] for c in read_configuration(str(ROOT / "pyproject.toml"))["contracts_options"]]


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    """import-linter with the project's contracts on the packages under ``project``: the CLI puts the
    working directory first on ``sys.path``, so it reads this checkout, not the installed copy."""
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True, "
        "no_logo=True))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True)


def test_the_project_keeps_its_import_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(f"{name} KEPT" in result.stdout for name in CONTRACTS), result.stdout


# Each made-up breach and the contract it breaks: imports inside functions, from-imports and chains
# through another project module all count.
BREACHES = {
    "hiast/m.py: def f():\n    import ray.tune\n": "hiast (the method) never imports Ray",
    "selection/m.py: from ray import train\n": "selection imports neither Ray nor hiast",
    "selection/m.py: from hiast.config import load_config\n": "selection imports neither Ray nor hiast",
    "selection/m.py: import ray_jobs.run\n": "selection imports neither Ray nor hiast",
}


@pytest.mark.parametrize("breach", [None, *BREACHES])
def test_the_contracts_catch_each_breach(tmp_path: Path, breach: str | None) -> None:
    files = {
        "hiast/__init__.py": "",
        "hiast/config.py": "import numpy\ndef load_config(): pass\n",
        "selection/__init__.py": "",
        "ray_jobs/__init__.py": "",
        "ray_jobs/run.py": "import ray\nfrom hiast import config\n",
    }
    if breach is not None:
        rel, text = breach.split(": ", 1)
        files[rel] = text
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    result = lint_imports(tmp_path)
    broken = {name for name in CONTRACTS if f"{name} BROKEN" in result.stdout}
    assert broken == ({BREACHES[breach]} if breach else set()), result.stdout + result.stderr
    assert result.returncode == (1 if breach else 0), result.stdout + result.stderr


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
        ),
        "selection/c.py": "from . import a\nfrom .a import _SECRET\ny = a._helper\n",
        "hiast/__init__.py": "",
        "hiast/config.py": "import numpy as np\nz = np.__version__\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_the_checker_finds_every_private_name_use(fake_project: Path) -> None:
    modules = project_modules(fake_project, ("selection", "hiast"))
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


def test_no_module_uses_another_modules_private_names(modules: list[Module]) -> None:
    known = {m.name: m for m in modules}
    assert [p for m in modules for p in private_uses(m, known)] == []


def test_importing_selection_and_hiast_loads_no_ray() -> None:
    # What the static contracts cannot see: Ray reached through a third-party package or importlib.
    code = "import sys, selection, hiast.pipeline; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- Ray's private names live in ray_jobs.ray_compat only ---------------------------------------------

RAY_COMPAT = "ray_jobs.ray_compat"
# Not underscore-named, but TuneController is not public API: reached through ray_compat.
_RAY_INTERNAL_ATTRS = {"search_alg"}
# Environment variables Ray documents as settings (the rest are internal: ray_compat).
_PUBLIC_RAY_ENV = {
    "RAY_ADDRESS",
    "RAY_API_SERVER_ADDRESS",
    "RAY_AUTH_MODE",
    "RAY_AUTH_TOKEN_PATH",
    "RAY_USAGE_STATS_ENABLED",
}
# Underscore names that are public API of the standard library.
_PUBLIC_UNDERSCORE = {"os._exit", "sys._getframe"}


def _private_path(name: str) -> bool:
    return any(_private(part) for part in name.split("."))


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def ray_private_uses(module: Module) -> list[str]:
    """Ray's private modules, attributes, logger names and settings used in ``module``: imports of
    ``ray`` paths with an ``_x`` part, ``x._y`` on anything but ``self``/``cls``, ``getattr(x, "_y")``,
    strings naming ``_internal``/``_private`` paths or undocumented ``RAY_*``/``TUNE_*`` variables,
    and Tune's controller internals (``.search_alg``)."""
    tree = ast.parse(module.path.read_text(), filename=str(module.path))
    docs = _docstrings(tree)
    where = module.rel
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [f"{where}:{node.lineno}: import {a.name}" for a in node.names if _private_path(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            if base.split(".")[0] == "ray":
                names = [a.name for a in node.names if _private_path(f"{base}.{a.name}")]
                out += [f"{where}:{node.lineno}: from {base} import {n}" for n in names]
        elif isinstance(node, ast.Attribute):
            target = _dotted(node.value)
            if _private(node.attr) and target not in ("self", "cls"):
                if f"{target}.{node.attr}" not in _PUBLIC_UNDERSCORE:
                    out.append(f"{where}:{node.lineno}: {target or '<expr>'}.{node.attr}")
            elif node.attr in _RAY_INTERNAL_ATTRS:
                out.append(f"{where}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2:
                name = node.args[1]
                if isinstance(name, ast.Constant) and isinstance(name.value, str) and _private(name.value):
                    out.append(f"{where}:{node.lineno}: {node.func.id}(..., {name.value!r})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
            env = text.startswith(("RAY_", "TUNE_")) and text.isupper() and text not in _PUBLIC_RAY_ENV
            if env or "._internal" in text or "._private" in text or "/_internal/" in text:
                out.append(f"{where}:{node.lineno}: {text!r}")
    return sorted(set(out))


def test_the_ray_private_checker_finds_every_kind(tmp_path: Path) -> None:
    (tmp_path / "ray_jobs").mkdir()
    (tmp_path / "ray_jobs" / "__init__.py").write_text("")
    (tmp_path / "ray_jobs" / "a.py").write_text(
        '"""Docs may name ray._private.state and RAY_TRAIN_X."""\n'
        "import ray._private.state\n"
        "from ray.train._internal.session import get_session\n"
        "from ray.train import _internal\n"
        "x = get_session()._inter_actor_queue\n"
        "y = getattr(x, '_inter_actor_queue')\n"
        "LOGGER = 'ray.train.v2._internal.execution'\n"
        "ENV = 'RAY_TRAIN_HEALTH_CHECK_INTERVAL_S'\n"
        "def f(c):\n    c.search_alg.on_trial_complete(1)\n"
        "class K:\n    def g(self):\n        return self._mine, os._exit, 'RAY_ADDRESS'\n"
    )
    (module,) = [m for m in project_modules(tmp_path, ("ray_jobs",)) if m.name == "ray_jobs.a"]
    assert ray_private_uses(module) == [
        "ray_jobs/a.py:10: .search_alg",
        "ray_jobs/a.py:2: import ray._private.state",
        "ray_jobs/a.py:3: from ray.train._internal.session import get_session",
        "ray_jobs/a.py:4: from ray.train import _internal",
        "ray_jobs/a.py:5: <expr>._inter_actor_queue",
        "ray_jobs/a.py:6: getattr(..., '_inter_actor_queue')",
        "ray_jobs/a.py:7: 'ray.train.v2._internal.execution'",
        "ray_jobs/a.py:8: 'RAY_TRAIN_HEALTH_CHECK_INTERVAL_S'",
    ]


def test_only_ray_compat_touches_rays_private_names(modules: list[Module]) -> None:
    # hiast and selection never import Ray (above); ray_jobs reaches Ray's private names through
    # ray_compat alone, so a Ray upgrade is checked in one place.
    found = [
        p
        for m in modules
        if m.name.startswith("ray_jobs.") and m.name != RAY_COMPAT
        for p in ray_private_uses(m)
    ]
    assert found == []
    (compat,) = [m for m in modules if m.name == RAY_COMPAT]
    assert ray_private_uses(compat), "ray_compat holds no private name: is the checker still looking?"
