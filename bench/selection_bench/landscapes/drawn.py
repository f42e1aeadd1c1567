"""Stage ``draw``: regimes drawn at random from a declared distribution (``bench/drawn_regimes.yaml``).

The file declares a seed, a base regime (the training, grid and subset settings every regime
shares) and, per ``data.synthscape`` knob, a distribution (its header documents the syntax). Draw i
uses the random stream ``[seed, i]`` and the knobs in the file's order, so the draws do not depend
on how many are made. A drawn regime file that exists already must be what the draw gives: a
redraw (another seed or distribution after looking) is refused rather than written over.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from selection.filesystem import write_bytes_atomic
from selection_bench.layout import DRAWN_PREFIX, load_regime

__all__ = [
    "DistributionError",
    "draw_knobs",
    "drawn_config",
    "read_distribution",
    "write_drawn",
]

_ROOT = Path(__file__).resolve().parents[3]
_KINDS = ("uniform", "log_uniform", "integer")


class DistributionError(ValueError):
    """A bad distribution file; names the file and the field."""


def read_distribution(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise DistributionError(f"{path}: unreadable distribution ({e})") from None
    if not isinstance(raw, dict) or not {"seed", "base", "knobs"} <= set(raw):
        raise DistributionError(f"{path}: expected a mapping with seed, base and knobs")
    if not isinstance(raw["seed"], int) or not isinstance(raw["knobs"], dict) or not raw["knobs"]:
        raise DistributionError(f"{path}: seed must be an integer and knobs a non-empty mapping")
    for name, spec in raw["knobs"].items():
        kinds = [k for k in _KINDS if isinstance(spec, dict) and k in spec]
        if len(kinds) != 1 or set(spec) - {kinds[0], "p_zero"}:
            raise DistributionError(f"{path}: knobs.{name}: expected one of {_KINDS} (and optionally p_zero)")
        lo, hi = spec[kinds[0]]
        if not lo <= hi or (kinds[0] == "log_uniform" and lo <= 0):
            raise DistributionError(f"{path}: knobs.{name}: bad range [{lo}, {hi}]")
        if not 0 <= spec.get("p_zero", 0) <= 1:
            raise DistributionError(f"{path}: knobs.{name}.p_zero must be in [0, 1]")
    return raw


def draw_knobs(dist: Mapping[str, Any], index: int) -> dict[str, float | int]:
    """Draw ``index`` (1-based) of the knobs, in the file's order, from the stream [seed, index]."""
    rng = np.random.default_rng([int(dist["seed"]), index])
    out: dict[str, float | int] = {}
    for name, spec in dist["knobs"].items():
        # Every knob consumes the same draws whether or not it lands on zero, so one knob's
        # p_zero does not shift the others' values.
        zero = rng.random() < spec.get("p_zero", 0.0)
        u = rng.random()
        if "integer" in spec:
            lo, hi = spec["integer"]
            value: float | int = int(lo + math.floor(u * (hi - lo + 1)))
        elif "log_uniform" in spec:
            lo, hi = spec["log_uniform"]
            value = round(float(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))), 3)
        else:
            lo, hi = spec["uniform"]
            value = round(float(lo + u * (hi - lo)), 3)
        out[name] = (0 if isinstance(value, int) else 0.0) if zero else value
    return out


def drawn_config(dist: Mapping[str, Any], index: int) -> tuple[str, str]:
    """(regime name, regime file text) of draw ``index``."""
    base = _ROOT / dist["base"]
    raw = yaml.safe_load(base.read_text())
    knobs = draw_knobs(dist, index)
    name = f"{DRAWN_PREFIX}{index}"
    raw["experiment"] = f"regime-{name}"
    raw["data"]["synthscape"].update(knobs)
    settings = ", ".join(f"{k} {v}" for k, v in knobs.items())
    header = (
        f'# Regime "{name}": drawn at random from bench/drawn_regimes.yaml (seed {dist["seed"]}, draw '
        f"{index}), not piloted and not chosen: kept whatever its landscape looks like.\n"
        f"# Drawn settings of data.synthscape: {settings}. Everything else as {dist['base']}.\n"
        "# Written by `python bench/bench_selection.py draw`; do not edit (a redraw is refused).\n"
    )
    return name, header + yaml.safe_dump(raw, sort_keys=False)


def write_drawn(distribution: Path, n: int, out_dir: Path) -> list[Path]:
    """Write draws 1..n as ``out_dir/drawn_<i>.yaml`` (checked as regimes); refuse to change one."""
    dist = read_distribution(distribution)
    paths = []
    for i in range(1, n + 1):
        name, text = drawn_config(dist, i)
        path = out_dir / f"{name}.yaml"
        if path.is_file() and path.read_text() != text:
            raise DistributionError(
                f"{path}: exists and differs from draw {i} of {distribution}; drawn regimes are not redrawn"
            )
        with tempfile.TemporaryDirectory() as tmp:
            check = Path(tmp) / f"{name}.yaml"
            check.write_text(text)
            load_regime(check)  # a draw the config refuses is an error now, not at training time
        write_bytes_atomic(path, text.encode())
        paths.append(path)
    return paths
