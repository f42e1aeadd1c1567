"""A search's outcomes to its table and choice: who votes, statuses, pass-through columns, replicates."""

from __future__ import annotations

import numpy as np
import pytest
from selection_families import SWEEP_CLASSES, sweep_setup

from selection import SelectionError, run_selection
from selection.run import SelectionSpec
from selection.run.outcomes import Outcome, vote_outcomes, voting_candidates

C = SWEEP_CLASSES


def outcomes_for(uris, failed=(), replicates=1, **extra):
    """One record per (candidate, replicate) as the job reports them; ``uris`` id -> [file per replicate]."""
    out = []
    for k, (cid, files) in enumerate(uris.items()):
        for r in range(replicates):
            done = cid not in failed
            out.append(
                Outcome.from_record(
                    {
                        "candidate_id": cid,
                        "replicate": r,
                        "status": "done" if done else "failed",
                        "metrics": {"true_miou": 0.5 + k / 100, "source_miou": 0.7, "pixel_acc": 0.9}
                        if done
                        else {},
                        "error": None if done else "RuntimeError: boom",
                        "prediction_uri": files[r] if done else None,
                        "params": {},
                        "trial_dir": None,
                        **extra,
                    }
                )
            )
    return out


@pytest.fixture
def sweep(tmp_path):
    cands, uris, ids, _ = sweep_setup(tmp_path, replicates=True)
    return cands, uris, ids


def test_the_table_is_the_selections_plus_status_metrics_and_record_fields(sweep):
    cands, uris, ids = sweep
    outcomes = outcomes_for(uris, failed={"gamma=16"}, node="10.0.0.7")
    job = vote_outcomes(cands, outcomes, SelectionSpec(ids, C, mode="sweep", replicates=1))
    voters = [c for c in cands if c.id != "gamma=16"]
    alone = run_selection(
        voters,
        {c.id: uris[c.id] for c in voters},
        SelectionSpec(ids, C),
        true_miou={o.candidate_id: o.metrics["true_miou"] for o in outcomes if o.done},
        extra_scores={"source_val_miou": {o.candidate_id: 0.7 for o in outcomes if o.done}},
    )
    t = job.table.set_index("candidate_id")
    assert list(job.table.columns[:2]) == ["candidate_id", "status"]
    assert t["status"].to_dict() == {c.id: "failed" if c.id == "gamma=16" else "done" for c in cands}
    assert t.loc["gamma=16", "error"] == "RuntimeError: boom" and np.isnan(t.loc["gamma=16", "f_miou"])
    np.testing.assert_array_equal(t.loc[[c.id for c in voters], "f_miou"], alone.table["f_miou"])
    # metrics pass through per replicate (source_miou under its table name), record fields per candidate
    assert t.loc["alpha=0.1", "pixel_acc__rep0"] == 0.9 and t.loc["alpha=0.1", "source_val_miou__rep0"] == 0.7
    assert np.isnan(t.loc["gamma=16", "true_miou__rep0"]) and np.isnan(t.loc["gamma=16", "pixel_acc__rep0"])
    assert (t["node"] == "10.0.0.7").all()
    assert job.choice.failed == ["gamma=16"] and job.choice.unfinished is None
    assert job.choice.notes[0] == "1 candidate(s) failed and were left out of the vote: gamma=16."
    assert job.choice.parameters == alone.choice.parameters and job.choice.finished == len(cands) - 1


def test_a_record_field_may_not_overwrite_a_results_column(sweep):
    cands, uris, ids = sweep
    with pytest.raises(SelectionError, match="outcome field 'f_miou' clashes with a results column"):
        vote_outcomes(
            cands, outcomes_for(uris, f_miou=1.0), SelectionSpec(ids, C, mode="sweep", replicates=1)
        )


def test_provisional_votes_mark_unfinished_candidates_pending(sweep):
    cands, uris, ids = sweep
    first_three = outcomes_for({c.id: uris[c.id] for c in cands[:3]})
    job = vote_outcomes(
        cands, first_three, SelectionSpec(ids, C, mode="sweep", replicates=1), provisional=True
    )
    t = job.table.set_index("candidate_id")
    assert t["status"].tolist() == ["done"] * 3 + ["pending"] * (len(cands) - 3)
    assert job.choice.provisional is True and job.choice.failed is None
    assert job.choice.unfinished == [c.id for c in cands[3:]]


def test_without_a_vote_the_choice_says_why(sweep):
    cands, uris, ids = sweep
    job = vote_outcomes(
        cands, outcomes_for(uris, failed={"default"}), SelectionSpec(ids, C, mode="sweep", replicates=1)
    )
    assert job.result is None and job.choice.parameters == {} and not job.choice.voted
    assert (
        job.choice.notes[1]
        == "The default candidate did not finish; a sweep needs it (every sweep holds it)."
    )
    assert "mode" not in job.choice.as_dict() and job.table["f_miou"].isna().all()
    assert job.table["true_miou"].isna().all()  # the column is there, saying "not measured"


def test_each_replicate_is_scored_on_its_own_in_the_final_vote(sweep):
    cands, uris, ids = sweep
    outcomes = outcomes_for(uris, replicates=2)
    job = vote_outcomes(cands, outcomes, SelectionSpec(ids, C, mode="sweep", replicates=2))
    t = job.table.set_index("candidate_id")
    assert (t["replicates"] == 2).all() and t["seed_agreement"].between(0, 1).all()
    second = run_selection(
        cands,
        {c: u[1] for c, u in uris.items()},
        SelectionSpec(ids, C, trim_outliers=False),
        centre_bias=False,
        agreement=False,
    )
    np.testing.assert_array_equal(t["f_miou__rep1"], second.table.set_index("candidate_id")["f_miou"])
    # a candidate with one replicate failed is "partial" and keeps the other's scores
    partial = [o for o in outcomes if not (o.candidate_id == "alpha=0.3" and o.replicate == 1)]
    partial.append(Outcome("alpha=0.3", 1, "failed", error="OOM"))
    t2 = vote_outcomes(cands, partial, SelectionSpec(ids, C, mode="sweep", replicates=2)).table.set_index(
        "candidate_id"
    )
    assert t2.loc["alpha=0.3", "status"] == "partial" and t2.loc["alpha=0.3", "error"] == "OOM"
    assert np.isnan(t2.loc["alpha=0.3", "f_miou__rep1"]) and t2.loc["alpha=0.3", "replicates"] == 1


def test_outcome_records_need_their_identity_fields():
    with pytest.raises(SelectionError, match="has no 'status'"):
        Outcome.from_record({"candidate_id": "a", "replicate": 0})
    o = Outcome.from_record({"candidate_id": "a", "replicate": "1", "status": "done"}, prediction_uri="p")
    assert (o.replicate, o.prediction_uri, o.info, o.metrics, o.evidence_uri) == (1, "p", {}, {}, None)
    # the record's evidence file wins over the caller's guess, and is no pass-through column
    rec = {"candidate_id": "a", "replicate": 0, "status": "done", "evidence_uri": "e.npz", "node": "n1"}
    o = Outcome.from_record(rec, evidence_uri="guess.npz")
    assert o.evidence_uri == "e.npz" and o.info == {"node": "n1"}
    assert (
        Outcome.from_record({**rec, "evidence_uri": None}, evidence_uri="guess.npz").evidence_uri
        == "guess.npz"
    )


def test_voting_candidates_drop_sweeps_left_with_one(sweep):
    cands, _, _ = sweep
    voters, notes = voting_candidates(cands, {"default", "alpha=0.1", "gamma=2"})
    assert [(c.id, c.sweeps) for c in voters] == [
        ("default", ("alpha", "gamma")),
        ("alpha=0.1", ("alpha",)),
        ("gamma=2", ("gamma",)),
    ]
    assert notes == []
    voters, notes = voting_candidates(cands, {"default", "alpha=0.1"})
    assert [c.sweeps for c in voters] == [("alpha",), ("alpha",)]
    assert notes == ["sweep 'gamma' has 1 finished candidate(s): no vote there."]
