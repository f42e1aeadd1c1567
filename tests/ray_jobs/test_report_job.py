"""The dashboard of the job's own vote (ray_jobs.vote_actor, no cluster): the table as the job
writes it renders, its per-replicate columns land in their own section, class names are shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from jobtools import write_config

from ray_jobs.config import load_job_config
from ray_jobs.storage import ExperimentPaths
from ray_jobs.vote_actor import _Vote
from selection.candidates import build_candidates
from selection.report.__main__ import main as rerender_main
from selection.store.predictions_writer import PredictionWriter

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
    _Vote(cfg.model_dump(mode="json"), paths, SUBSET, candidates).vote(outcomes, provisional=False)
    Path(paths.root, "job_config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    return paths, candidates


def test_job_dashboard_with_two_replicates(tmp_path: Path) -> None:
    paths, _ = vote_with_two_replicates(tmp_path)
    table = pd.read_parquet(paths.candidates)
    assert {"true_miou__rep1", "source_val_miou__rep1", "f_miou__rep1"} <= set(table.columns)
    page = Path(paths.dashboard).read_text()
    scores = page.split("Label-free scores side by side")[1].split("</section>")[0]
    assert "__rep" not in scores and "seed_agreement" in scores
    reps = page.split("<h2>Per replicate</h2>")[1].split("</section>")[0]
    assert re.findall(r'colspan="2">([^<]+)</th>', reps) == ["true_miou", "source_val_miou", "f_miou"]
    assert f"{0.5 - 1 / 20 - 1 / 100:.4f}" in reps  # alpha=0.1's second replicate, as its trial reported
    per_class = page.split("Per-class IoU against the fusion")[1].split("</section>")[0]
    assert re.findall(r'<th class="vert">([^<]+)</th>', per_class)[:3] == ["road", "sidewalk", "building"]

    # The command re-renders it from what the job stored (with the config snapshot select.py writes).
    out = tmp_path / "again.html"
    assert rerender_main([paths.root, "--out", str(out)]) == 0
    again = out.read_text()
    assert "<h2>Per replicate</h2>" in again and "class 0" in again and "tiny" in again
