"""The project as a user installs it: a built wheel (and an editable install) in a fresh venv, used
from outside the source tree. The default config and the packaged configs must be found there.

Each venv is created with ``--system-site-packages`` and also sees the site-packages of the Python
running this test (a ``.pth`` line), so torch and Ray are not installed again; the project itself
comes only from the wheel, which the test checks through ``hiast.__file__``. Commands run from an
empty folder without PYTHONPATH, so nothing of the checkout can shadow the installed package.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hiast", "selection", "ray_jobs")
CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))
# Not sources: what a checkout accumulates, and what a build leaves.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    "results",
    "runs",
    ".pytest_cache",
    ".ruff_cache",
)


def run(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def make_venv(path: Path, cwd: Path) -> Path:
    # No pip of its own: the setuptools ensurepip would bring is older than the project needs and
    # would shadow this interpreter's; pip --python installs into it from outside.
    ok(run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(path)], cwd))
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(ok(run([str(path / "bin" / "python"), "-c", code], cwd)).strip())
    # When this suite itself runs in a venv (as .ci/run does), "system" means the base Python, which
    # lacks the venv's torch and Ray: add this interpreter's own site-packages after the new venv's.
    dirs = [d for d in [*site.getsitepackages(), site.getusersitepackages()] if Path(d).is_dir()]
    (purelib / "outer_site.pth").write_text("".join(f"import site; site.addsitedir({d!r})\n" for d in dirs))
    return path / "bin"


def pip_into(bin_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "--no-deps", *args]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout (hiast/configs stays a symlink, as git checks it out)."""
    src = tmp_path_factory.mktemp("src") / "hiast-select"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_NOT_SOURCE)
    return src


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    ok(
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(out),
                str(source),
            ],
            out,
        )
    )
    (built,) = out.glob("hiast_select-*.whl")
    return built


def test_wheel_holds_every_package_and_config(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for pkg in PACKAGES:
        for init in (ROOT / pkg).rglob("__init__.py"):
            assert init.relative_to(ROOT).as_posix() in names, f"{init.parent} is missing from the wheel"
    assert {f"hiast/configs/{c}.yaml" for c in CONFIGS} <= names
    # Package data beside its owner: --plan's measured step times (ray_jobs.preflight.step_times).
    assert "ray_jobs/preflight/step_times.json" in names
    assert CONFIGS and "synthscape" in CONFIGS


def test_wheel_holds_no_test_hook(wheel: Path) -> None:
    """Fault injection and cluster helpers are test support (tests/raytest): not in the product,
    and nothing in it imports code that an environment variable names."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ray_jobs/ray_compat.py" in names  # the listing is the package's, not an empty one
    hooks = [
        n
        for n in names
        if "/testing/" in n or n.endswith("/hooks.py") or n.startswith(("raytest/", "tests/"))
    ]
    assert hooks == []
    with zipfile.ZipFile(wheel) as whl:
        sources = {n: whl.read(n).decode() for n in names if n.endswith(".py")}
    assert [n for n, text in sources.items() if "HIAST_SELECT_TEST" in text or "raytest" in text] == []


def check_installed(bin_dir: Path, cwd: Path, expect_under: Path) -> None:
    """The package imported from ``expect_under``; default and named configs load; both CLIs list them."""
    python = str(bin_dir / "python")
    code = (
        "import hiast, hiast.config as c; print(hiast.__file__); print(c.load_config(None).experiment); "
        "print(c.load_config('gta5_to_cityscapes').experiment); print(','.join(c.packaged_configs()))"
    )
    where, default, named, listed = ok(run([python, "-c", code], cwd)).split()
    assert Path(where).resolve().is_relative_to(expect_under.resolve()), where
    assert default == "synthscape-default" and named == "gta5-to-cityscapes"
    assert listed.split(",") == CONFIGS
    for cmd in ([str(bin_dir / "hiast-select"), "--help"], [python, "-m", "hiast", "--help"]):
        out = ok(run(cmd, cwd))
        assert all(c in out for c in CONFIGS), out
    # A packaged name reaches the job: the config loads, and the files it names (weights, datasets:
    # missing here) are checked before Ray starts.
    proc = run(
        [str(bin_dir / "hiast-select"), "--config", "gta5_to_cityscapes", "--storage", str(cwd / "r")], cwd
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "pretrained_backbone" in proc.stderr and "config file not found" not in proc.stderr
    assert not (cwd / "r").exists()


def test_wheel_install_runs_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    bin_dir = make_venv(tmp_path / "venv", tmp_path)
    ok(
        run(
            [str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], tmp_path
        )
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check_installed(bin_dir, elsewhere, tmp_path / "venv")


def test_editable_install_runs_from_anywhere(source: Path, tmp_path: Path) -> None:
    bin_dir = make_venv(tmp_path / "venv", tmp_path)
    cmd = [
        str(bin_dir / "python"),
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "-e",
        str(source),
    ]
    ok(run(cmd, tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check_installed(bin_dir, elsewhere, source)
