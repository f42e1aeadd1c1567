"""The warm-up of one replicate, run as a plain Ray task (``select.run_warmups``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hiast import pipeline
from ray_jobs.config import JobConfig
from ray_jobs.storage import exists, upload_file
from ray_jobs.worker.torch_setup import set_cpu_threads

__all__ = ["warmup_task"]


def warmup_task(config: dict[str, Any], out_uri: str, seed: int, use_gpu: bool, threads: int) -> str:
    """Train one replicate's warm-up model and store it at ``out_uri`` (skipped if already there)."""
    if exists(out_uri):
        return out_uri
    set_cpu_threads(threads)
    device = "cuda" if use_gpu else "cpu"
    cfg = JobConfig.model_validate(config)
    with tempfile.TemporaryDirectory(prefix="hiast-warmup-") as d:
        path = pipeline.run_warmup(cfg, Path(d), device=device, seed=seed)
        upload_file(path, out_uri)
    return out_uri
