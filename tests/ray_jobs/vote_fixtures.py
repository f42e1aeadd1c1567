"""A vote the job's own actor logic ran (no cluster), shared by the vote's and MLflow's tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from jobtools import write_config

from ray_jobs.config import load_job_config
from ray_jobs.storage import ExperimentPaths
from ray_jobs.vote.actor import Vote
from selection import build_candidates
from selection.store import PredictionWriter

__all__ = ["SUBSET", "vote_with_two_replicates"]

SUBSET = [f"img{i:02d}" for i in range(6)]


def vote_with_two_replicates(tmp_path: Path) -> tuple[ExperimentPaths, list]:
    """The job's final vote over four alpha candidates, two replicates each (no cluster)."""
    cfg = load_job_config(
        write_config(
            tmp_path / "c.yaml",
            # Label maps only, no evidence files: a rule that reads label maps.
            **{
                "selection.parameters": {"alpha": [0.1, 0.3, 0.5, 0.7]},
                "selection.replicates": 2,
                "selection.rule": "f_miou",
            },
        )
    )
    candidates = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    paths = ExperimentPaths(str(tmp_path / "store"), cfg.experiment)
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, (len(SUBSET), 8, 16), dtype=np.uint8)
    outcomes = []
    for r in range(2):
        for j, c in enumerate(candidates):
            with PredictionWriter(paths.predictions(c.id, r), c.id, 19, SUBSET) as w:
                for image_id, t in zip(SUBSET, truth, strict=True):
                    noisy = t.copy()
                    noisy[rng.random(t.shape) < (j + r) / 10] = 5
                    w.write(image_id, noisy)
            metrics = {"true_miou": 0.5 - j / 20 - r / 100, "source_miou": 0.6}
            outcomes.append(
                {"candidate_id": c.id, "replicate": r, "params": {}, "status": "done", "metrics": metrics,
                 "error": None, "trial_dir": None}
            )  # fmt: skip
    Vote(cfg.model_dump(mode="json"), paths, SUBSET, candidates).vote(outcomes, provisional=False)
    Path(paths.root, "job_config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    return paths, candidates
