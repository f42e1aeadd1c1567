"""The score stage writes the committed tables from real (tiny) trained candidates, and the rules
stage reads them back (bench/selection_bench/scoring/): the data path end to end."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from selection_bench.landscapes import check_regime_folder, run_candidate_job, run_warmup_job
from selection_bench.layout import load_regime, regime_candidates
from selection_bench.rules import (
    BENCH_RULES,
    run_rules,
)
from selection_bench.scoring import score_all, tables_of
from selection_bench.tables import (
    read_scores_table,
    read_target_images,
    subset_miou,
    write_scores_table,
    write_target_images,
)

from selection.config import DEFAULT_RULE
from selection.decision.rules import parse_rule

ROOT = Path(__file__).resolve().parents[2]


def _tiny_regime(tmp_path: Path):
    raw = yaml.safe_load((ROOT / "configs" / "synthscape.yaml").read_text())
    raw["data"]["synthscape"].update(
        image_size=[32, 64], n_source_train=8, n_source_val=4, n_target_train=8, n_target_val=5, cache=False
    )
    raw["data"].update(crop_size=[32, 64], source_crop_height=[24, 32], target_crop_height=[24, 32])
    raw["warmup"].update(source_iters=2, adversarial_iters=1, batch_size=2)
    raw["selftrain"].update(iters_per_round=2, batch_size=2, rounds=2)
    raw["selection"].update(parameters={"alpha": [0.1, 0.5]}, subset_size=4)
    path = tmp_path / "tiny.yaml"
    path.write_text("# tiny\n" + yaml.safe_dump(raw))
    return load_regime(path)


@pytest.mark.slow
def test_score_stage_tables_reproduce_the_scores_json_picks(tmp_path) -> None:
    regime = _tiny_regime(tmp_path)
    work = tmp_path / "work"
    check_regime_folder(work, regime)
    cfg_json = regime.config.model_dump(mode="json")
    for seed in (1, 2):
        run_warmup_job("tiny", cfg_json, seed, str(work))
        for order, spec in enumerate(regime_candidates(regime.config)):
            run_candidate_job("tiny", cfg_json, asdict(spec), order, seed, str(work))
    scored = score_all(work, ["tiny"], [1, 2])
    scores, images = tables_of(scored)
    write_scores_table(scores, tmp_path / "scores.parquet")
    write_target_images(images, tmp_path / "images.parquet")
    scores, images = (
        read_scores_table(tmp_path / "scores.parquet"),
        read_target_images(tmp_path / "images.parquet"),
    )
    f = scores.frame
    # One row per (seed, group, candidate): the alpha sweep's 2 points and the 2 broken candidates.
    assert len(f) == 2 * 4 and set(f["sweep"]) == {"alpha"}
    assert f["confidence_level"].isin(["high", "low"]).all()
    assert (f["confidence_rule"] == parse_rule(DEFAULT_RULE).text).all()
    assert f["round1.f_miou"].notna().all()  # the rung's validators (round-1 checkpoints kept)
    # The per-image counts add up to each candidate's recorded truth (score_rows checks it too).
    for (seed, cid), rows in images.frame.groupby(["seed", "candidate"]):
        truth = f[(f["seed"] == seed) & (f["candidate"] == cid)]["target_val_miou"].iloc[0]
        assert subset_miou(list(rows["intersection"]), list(rows["union"])) == pytest.approx(truth, abs=1e-9)
    # The rules stage's picks from the table are the score stage's own (scores.json) picks.
    out = run_rules(scores, images, tmp_path / "rules", {})
    for s in scored:
        for g in scores.groups():
            if (g.regime, g.seed) != (s["regime"], s["seed"]):
                continue
            for label, r in s["groups"][g.sweep]["rules"].items():
                assert parse_rule(BENCH_RULES[label]).pick(g.validators, prefer="default") == r["pick"], label
    assert out["table"]["tiny"]["oracle: per seed"]["picks"] == 2
    assert "unavailable" in out["table"]["tiny"]["oracle: 10 labels"]  # 5 target-val images < 10
