"""selection/ stays a few faces, not a flat room (issue 18): its top level holds at most 10 modules,
and ray_jobs reaches it through at most 5 modules or faces. Both read from the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_TOP_LEVEL = 10
MAX_RAY_JOBS_FACES = 5


def top_level_modules(package: Path) -> list[str]:
    """The package's own .py files (``__init__.py`` counts), not its subpackages' ones."""
    return sorted(p.name for p in package.glob("*.py"))


def selection_imports(root: Path) -> dict[str, list[str]]:
    """Every distinct ``selection...`` module imported under ``root`` -> the files that import it."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name == "selection" or name.startswith("selection."):
                    found.setdefault(name, []).append(str(path.relative_to(root)))
    return found


def test_the_top_level_of_selection_holds_few_modules() -> None:
    modules = top_level_modules(REPO / "selection")
    assert len(modules) <= MAX_TOP_LEVEL, (
        f"selection/ holds {len(modules)} top-level modules (at most {MAX_TOP_LEVEL}): {', '.join(modules)}; "
        "put new modules in the subpackage whose purpose they serve"
    )


def test_ray_jobs_reaches_selection_through_few_faces() -> None:
    used = selection_imports(REPO / "ray_jobs")
    assert used, "ray_jobs imports nothing from selection: this test reads the wrong folder"
    listing = "; ".join(f"{m} ({', '.join(sorted(set(files)))})" for m, files in sorted(used.items()))
    assert len(used) <= MAX_RAY_JOBS_FACES, (
        f"ray_jobs imports {len(used)} selection modules (at most {MAX_RAY_JOBS_FACES}): {listing}; "
        "import from the faces (selection, selection.store, selection.validators, selection.run, "
        "selection.report)"
    )


def test_the_counters_see_what_they_count(tmp_path: Path) -> None:
    # Guards the two tests above against passing vacuously (a glob or an ast walk that finds nothing).
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "sub/__init__.py", "sub/b.py"):
        (tmp_path / "pkg" / name).write_text("")
    assert top_level_modules(tmp_path / "pkg") == ["__init__.py", "a.py"]
    (tmp_path / "pkg" / "a.py").write_text(
        "import selection\nimport selections\nfrom selection.run import x\nfrom . import y\n"
    )
    (tmp_path / "pkg" / "sub" / "b.py").write_text("def f():\n    from selection.run import z\n")
    assert selection_imports(tmp_path / "pkg") == {
        "selection": ["a.py"],
        "selection.run": ["a.py", "sub/b.py"],
    }
