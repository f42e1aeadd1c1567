"""The dashboard of the job's own vote (ray_jobs.vote.actor, no cluster): the table as the job
writes it renders, its per-replicate columns land in their own section, class names are shown."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from vote_fixtures import vote_with_two_replicates

from selection.report.__main__ import main as rerender_main


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
