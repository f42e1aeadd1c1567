"""The vote actor's logic without a cluster: failures, provisional votes, what is written where."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from jobtools import write_config

from ray_jobs.config import load_job_config
from ray_jobs.storage import ExperimentPaths
from ray_jobs.vote.actor import Vote
from selection.candidates import build_candidates
from selection.run.outcomes import voting_candidates
from selection.store.predictions_writer import PredictionWriter

SUBSET = [f"img{i:02d}" for i in range(6)]


def make_vote(tmp_path: Path, replicates: int = 1) -> tuple[Vote, list, ExperimentPaths]:
    """Four alpha candidates with stored predictions; candidate j is wrong on ~j/10 of the pixels."""
    cfg = load_job_config(
        write_config(
            tmp_path / "c.yaml",
            # Label maps only, no evidence files: a rule that reads label maps.
            **{
                "selection.parameters": {"alpha": [0.1, 0.3, 0.5, 0.7]},
                "selection.replicates": replicates,
                "selection.rule": "f_miou",
            },
        )
    )
    candidates = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    paths = ExperimentPaths(str(tmp_path / "store"), cfg.experiment)
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, (len(SUBSET), 8, 16), dtype=np.uint8)
    for r in range(replicates):
        for j, c in enumerate(candidates):
            with PredictionWriter(paths.predictions(c.id, r), c.id, 19, SUBSET) as w:
                for image_id, t in zip(SUBSET, truth, strict=True):
                    noisy = t.copy()
                    noisy[rng.random(t.shape) < j / 10] = 5
                    w.write(image_id, noisy)
    return Vote(cfg.model_dump(mode="json"), paths, SUBSET, candidates), candidates, paths


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Vote, list, ExperimentPaths]:
    return make_vote(tmp_path)


def outcome(cid: str, status: str = "done", replicate: int = 0, **metrics: float) -> dict:
    return {
        "candidate_id": cid, "replicate": replicate, "params": {}, "status": status,
        "metrics": metrics, "error": None if status == "done" else "RuntimeError: boom", "trial_dir": None,
    }  # fmt: skip


def test_a_failed_candidate_is_marked_and_the_rest_vote(setup: tuple) -> None:
    vote, candidates, paths = setup
    ids = [c.id for c in candidates]  # default, alpha=0.1, alpha=0.3, alpha=0.7
    outcomes = [outcome(i, true_miou=0.5) for i in ids[:3]] + [outcome(ids[3], "failed")]
    choice = vote.vote(outcomes, provisional=False)

    table = pd.read_parquet(paths.candidates)
    assert list(table["candidate_id"]) == ids
    rows = table.set_index("candidate_id")
    assert rows.loc["alpha=0.7", "status"] == "failed"
    assert rows.loc["alpha=0.7", "error"] == "RuntimeError: boom"
    assert np.isnan(rows.loc["alpha=0.7", "f_miou"])
    assert rows.loc["alpha=0.7", "alpha"] == 0.7
    assert (rows.loc[ids[:3], "status"] == "done").all()
    assert rows.loc[ids[:3], "f_miou"].between(0, 1).all()
    assert rows.loc["default", "true_miou"] == 0.5

    saved = json.loads(Path(paths.choice).read_text())
    assert saved["failed"] == ["alpha=0.7"] == choice["failed"]
    assert saved["notes"][0].startswith("1 candidate(s) failed")
    assert saved["parameters"]["alpha"] in (0.1, 0.3, 0.5)
    page = Path(paths.dashboard).read_text()
    assert "PROVISIONAL" not in page and "alpha=0.7" in page


def test_provisional_vote_writes_only_the_dashboard(setup: tuple) -> None:
    vote, candidates, paths = setup
    ids = [c.id for c in candidates]
    choice = vote.vote([outcome(ids[0]), outcome(ids[1])], provisional=True)
    assert choice["provisional"] is True
    assert choice["unfinished"] == ids[2:]
    assert "PROVISIONAL" in Path(paths.dashboard).read_text()
    assert not Path(paths.candidates).exists() and not Path(paths.choice).exists()


def test_no_vote_without_the_default_in_a_sweep(setup: tuple) -> None:
    vote, candidates, paths = setup
    ids = [c.id for c in candidates]
    choice = vote.vote([outcome(ids[0], "failed")] + [outcome(i) for i in ids[1:]], provisional=False)
    assert choice["parameters"] == {}
    assert any("default candidate did not finish" in n for n in choice["notes"])
    assert Path(paths.choice).exists() and Path(paths.candidates).exists()


def test_sweeps_left_with_one_finished_candidate_do_not_vote(tmp_path: Path) -> None:
    cfg = load_job_config(
        write_config(tmp_path / "c.yaml", **{"selection.parameters": {"alpha": [0.3, 0.5], "k": [1, 3, 5]}})
    )
    candidates = build_candidates(cfg.parameters(), cfg.selection.parameters, "sweep")
    voters, notes = voting_candidates(candidates, {"default", "k=1", "k=5"})  # alpha=0.3 failed
    assert [c.id for c in voters] == ["default", "k=1", "k=5"]
    assert all(c.sweeps == ("k",) for c in voters)
    assert notes == ["sweep 'alpha' has 1 finished candidate(s): no vote there."]


def test_replicates_get_their_own_scores_and_seed_agreement(tmp_path: Path) -> None:
    vote, candidates, paths = make_vote(tmp_path, replicates=2)
    outcomes = [outcome(c.id, replicate=r, true_miou=0.4 + r / 10) for c in candidates for r in range(2)]
    vote.vote(outcomes, provisional=False)
    table = pd.read_parquet(paths.candidates).set_index("candidate_id")
    assert (table["status"] == "done").all() and (table["replicates"] == 2).all()
    assert table["seed_agreement"].between(0, 1).all()
    # Replicate 0 is the voting one: its own vote gives the table's (untrimmed) F-mIoU.
    np.testing.assert_allclose(table["f_miou__rep0"], table["f_miou"])
    assert table["f_miou__rep1"].between(0, 1).all()
    assert (table["true_miou__rep1"] == 0.5).all()


def test_true_miou_column_is_null_without_labels(setup: tuple) -> None:
    vote, candidates, paths = setup
    vote.vote([outcome(c.id) for c in candidates], provisional=False)
    table = pd.read_parquet(paths.candidates)
    assert "true_miou" in table.columns and table["true_miou"].isna().all()


def _write_evidence(paths: ExperimentPaths, candidates: list, shape: tuple[int, int] = (32, 64)) -> None:
    """Replicate 0's evidence for every candidate, as ray_jobs.candidate_outputs writes it (default
    settings); candidate j is less sure of itself the larger j."""
    from selection.validators.evidence import EvidenceSettings, EvidenceWriter, mixval_pairs

    settings = EvidenceSettings()
    rng = np.random.default_rng(1)
    for j, c in enumerate(candidates):
        with EvidenceWriter(paths.evidence(c.id, 0), c.id, 19, SUBSET, settings=settings) as w:
            for image_id in SUBSET:
                logits = rng.normal(size=(settings.n_pix, 19)) * (3.0 - j / 2)
                w.add_target(image_id, shape, np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
            for a, b in mixval_pairs(SUBSET, settings.mixval_seed):
                counts = np.zeros((2, 19, 2), np.int64)
                counts[:, 0] = [100, 100 - 10 * j]
                w.add_mixval(a, b, counts)


def test_the_job_vote_computes_every_validator_and_picks_by_the_rule(tmp_path: Path) -> None:
    cfg = load_job_config(
        write_config(
            tmp_path / "c.yaml",
            **{
                "selection.parameters": {"alpha": [0.1, 0.3, 0.5, 0.7]},
                "selection.rule": {"rank_average": ["mixval", "mean_confidence"]},
            },
        )
    )
    candidates = build_candidates(cfg.parameters(), cfg.selection.parameters, cfg.selection.mode)
    paths = ExperimentPaths(str(tmp_path / "store"), cfg.experiment)
    rng = np.random.default_rng(0)
    for j, c in enumerate(candidates):
        with PredictionWriter(paths.predictions(c.id, 0), c.id, 19, SUBSET) as w:
            for image_id in SUBSET:
                w.write(image_id, rng.integers(0, 3 + j, (32, 64), dtype=np.uint8))
    _write_evidence(paths, candidates)
    vote = Vote(cfg.model_dump(mode="json"), paths, SUBSET, candidates)
    ids = [c.id for c in candidates]  # default (0.5), alpha=0.1, alpha=0.3, alpha=0.7
    # a provisional vote finds replicate 0's evidence without the record naming it
    early = vote.vote([outcome(ids[0]), outcome(ids[1])], provisional=True)
    assert early["picks"]["alpha"]["mixval"] is not None and not Path(paths.choice).exists()
    done = [
        {**outcome(c.id, true_miou=0.3 + k / 10), "evidence_uri": paths.evidence(c.id, 0)}
        for k, c in enumerate(candidates)
    ]
    choice = vote.vote(done, provisional=False)
    saved = json.loads(Path(paths.choice).read_text())
    assert saved["schema_version"] == 5 and saved["rule"]["config"] == {
        "rank_average": ["mixval", "mean_confidence"]
    }
    # candidate 0 (the default) is the surest and the best on the MixVal probe: the rule's pick
    assert saved["per_sweep"]["alpha"]["candidate_id"] == "default" == saved["picks"]["alpha"]["rule"]
    assert {"mixval", "mean_confidence", "snd", "ensv", "f_miou", "f_miou_lno"} <= set(
        saved["picks"]["alpha"]
    )
    assert saved["confidence"]["level"] in ("high", "low") and choice["confidence"] == saved["confidence"]
    table = pd.read_parquet(paths.candidates)
    for col in ("f_miou_lno", "ensv", "snd", "im", "bnm", "mean_entropy", "mean_confidence", "mixval"):
        assert table[col].notna().all(), col
    audit = pd.read_parquet(Path(paths.root) / "audit.parquet")
    assert {"rule", "mixval", "f_miou", "centre", "random"} <= set(audit["score"])
    assert (audit["group"] == "alpha").all()
    sweep = pd.read_parquet(Path(paths.root) / "sweeps" / "alpha.parquet")
    assert sweep["candidate_id"].tolist() == ["alpha=0.1", "alpha=0.3", "default", "alpha=0.7"]
    assert sweep.loc[sweep["picked"], "candidate_id"].tolist() == ["default"]
    assert "Rankings per sweep" in Path(paths.dashboard).read_text()
    # The job names the source-val split the source-side validators read (here the config's).
    assert saved["source_val"]["origin"] == "data.source_val" and saved["source_val"]["images"] > 0
    assert saved["broken"] == {} and not table["broken"].any()
