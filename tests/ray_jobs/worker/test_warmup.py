"""ray_jobs.worker.warmup (no cluster): one replicate's warm-up model stored where the search reads
it, and a stored one kept (a resumed job trains no warm-up twice)."""

from __future__ import annotations

from pathlib import Path

import torch
from jobtools import write_config

from ray_jobs.config import load_job_config
from ray_jobs.worker import warmup_task


def test_the_warmup_is_stored_once(tmp_path: Path) -> None:
    cfg = load_job_config(write_config(tmp_path / "c.yaml"))
    out = str(tmp_path / "store" / "warmup" / "rep0.pt")
    threads = torch.get_num_threads()
    try:
        assert warmup_task(cfg.model_dump(mode="json"), out, 0, False, 1) == out
        assert torch.get_num_threads() == 1  # the CPUs Ray reserved for the task
    finally:
        torch.set_num_threads(threads)
    stored = Path(out).read_bytes()
    assert stored
    Path(out).write_bytes(b"kept")  # a stored warm-up is not trained again
    assert warmup_task(cfg.model_dump(mode="json"), out, 0, False, 1) == out
    assert Path(out).read_bytes() == b"kept"
