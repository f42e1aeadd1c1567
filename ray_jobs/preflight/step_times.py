"""Measured self-training step times, the basis of ``--plan``'s time estimate when no
``--step-seconds`` is given.

``step_times.json`` (package data beside this module) holds what ``bench/bench_step_time.py``
measured: the seconds of one self-training iteration (one trial, all its Train workers) for a model,
crop, batch and device. A config matches an entry only if all of those are equal: a step time of
another model or device says nothing about this one, so ``--plan`` then asks for ``--step-seconds``
rather than guess.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from ray_jobs.config import JobConfig

__all__ = [
    "STEP_TIMES_FILE",
    "StepTime",
    "StepTimeError",
    "load_step_times",
    "measured_step",
    "save_step_times",
]

STEP_TIMES_FILE = "step_times.json"
_FORMAT = "hiast-select/step-times/v1"


class StepTimeError(ValueError):
    """The step-time table is unreadable or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class StepTime:
    """One measurement. ``key`` is :func:`step_key` of the config it was measured with."""

    key: str
    seconds: float
    measured: str  # what and where: "bench/bench_step_time.py on 2 CPU cores, 2026-12-06"

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise StepTimeError(f"step time {self.key!r}: seconds must be > 0, got {self.seconds!r}")


def step_key(cfg: JobConfig) -> str:
    """What a self-training step's time depends on, as one string."""
    m, s, r = cfg.model, cfg.selftrain, cfg.ray
    arch = f"{m.arch}(width={m.width})" if m.arch == "deeplab_v2_small" else m.arch
    crop = "x".join(str(v) for v in cfg.data.crop_size)
    if r.use_gpu:
        device = f"gpu x{r.num_workers}"
        precision = ("bf16" if s.bf16 else "fp32") + (",channels_last" if s.channels_last else "")
    else:
        device = f"cpu x{r.num_workers}, {max(1, int(r.cpus_per_worker))} thread(s) each"
        precision = "fp32"
    return f"{arch} crop {crop} batch {s.batch_size} {precision} on {device}"


def _default_path() -> Path:
    return Path(str(files(__package__) / STEP_TIMES_FILE))


def load_step_times(path: str | os.PathLike[str] | None = None) -> dict[str, StepTime]:
    """The table, by key; the packaged one when ``path`` is None (an empty table if absent)."""
    path = Path(path) if path is not None else _default_path()
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise StepTimeError(f"{path}: not a readable JSON step-time table ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise StepTimeError(f"{path}: expected format {_FORMAT!r}")
    out: dict[str, StepTime] = {}
    for i, entry in enumerate(doc.get("entries", [])):
        try:
            item = StepTime(
                key=str(entry["key"]), seconds=float(entry["seconds"]), measured=str(entry["measured"])
            )
        except (KeyError, TypeError, ValueError) as e:
            raise StepTimeError(f"{path}: entries[{i}]: expected key, seconds and measured ({e})") from None
        out[item.key] = item
    return out


def save_step_times(entries: dict[str, StepTime], path: str | os.PathLike[str] | None = None) -> Path:
    """Write the table atomically (temp file, then rename)."""
    path = Path(path) if path is not None else _default_path()
    doc: dict[str, Any] = {
        "format": _FORMAT,
        "entries": [asdict(e) for e in sorted(entries.values(), key=lambda e: e.key)],
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def measured_step(cfg: JobConfig, table: dict[str, StepTime] | None = None) -> StepTime | None:
    """The measured step time for exactly this config's model, crop, batch and device, or None."""
    table = load_step_times() if table is None else table
    return table.get(step_key(cfg))
