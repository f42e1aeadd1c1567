"""Early stopping on the Ray side without a cluster: the preflight check, and the scheduler's logic
with fake trials and a fake vote actor."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

import ray_jobs.search.early_stop as early_stop
from hiast.config import ConfigError
from ray_jobs.config import load_job_config
from ray_jobs.records import EarlyStopFile
from ray_jobs.search import RungScheduler
from ray_jobs.storage import ExperimentPaths


class FakeTrial:
    def __init__(self, cid: str, replicate: int = 0) -> None:
        self.trial_id = f"{cid}-{replicate}"
        self.config = {"candidate": {"candidate_id": cid, "replicate": replicate}}
        self.status = Trial.PENDING
        self.is_saving = False

    def should_recover(self) -> bool:
        return False


class FakeController:
    def __init__(self, trials: list[FakeTrial]) -> None:
        self.trials = trials
        self.stopped: list[str] = []
        self.completed_in_search: list[str] = []
        self.search_alg = types.SimpleNamespace(on_trial_complete=self.completed_in_search.append)

    def get_trials(self) -> list[FakeTrial]:
        return self.trials

    def stop_trial(self, t: FakeTrial) -> None:
        self.stopped.append(t.trial_id)
        t.status = Trial.TERMINATED


@pytest.fixture()
def actor(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A fake vote actor that cuts ``cut`` and records what it was asked; its vote is done at once
    unless a test sets ``ready`` to False (then ``ray.wait`` says so until it is set back)."""
    state: dict = {"cut": [], "asked": [], "ready": True, "waits": 0}

    def remote(ids: list[str]) -> EarlyStopFile:
        state["asked"].append(ids)
        return EarlyStopFile(after_round=1, keep=0.5, rule="r", stopped=list(state["cut"]))

    def wait(refs: list, timeout: float) -> tuple[list, list]:
        assert timeout == 0, "the scheduler must never wait for the vote"
        state["waits"] += 1
        return (refs, []) if state["ready"] else ([], refs)

    def get(ref: EarlyStopFile) -> EarlyStopFile:
        assert state["ready"], "ray.get on a vote that is not done blocks Tune's loop"
        return ref

    handle = types.SimpleNamespace(early_stop=types.SimpleNamespace(remote=remote))
    fake_ray = types.SimpleNamespace(get_actor=lambda name: handle, get=get, wait=wait)
    monkeypatch.setattr(early_stop, "ray", fake_ray)
    return state


def _rung(s: RungScheduler, c: FakeController, t: FakeTrial, round_: int = 1) -> str:
    t.status = Trial.RUNNING
    decision = s.on_trial_result(c, t, {"round": round_, "rung_outputs": 1})
    if decision == TrialScheduler.PAUSE:
        t.status = Trial.PAUSED
    return decision


def test_pauses_at_the_rung_then_stops_the_cut_and_resumes_the_rest(tmp_path: Path, actor: dict) -> None:
    trials = [FakeTrial(c) for c in ("default", "a=1", "a=2", "a=3")]
    c = FakeController(trials)
    s = RungScheduler("vote", ExperimentPaths(str(tmp_path), "x"), 1, total_trials=4, max_concurrent=2)
    actor["cut"] = ["a=2"]
    t0, t1, t2, t3 = trials
    assert s.choose_trial_to_run(c) is t0  # pending ones first
    assert s.on_trial_result(c, t0, {"round": 0}) == TrialScheduler.CONTINUE
    assert _rung(s, c, t0) == TrialScheduler.PAUSE
    assert _rung(s, c, t1) == TrialScheduler.PAUSE
    assert c.completed_in_search == [t0.trial_id, t1.trial_id]  # their concurrency slots are freed
    assert _rung(s, c, t2) == TrialScheduler.PAUSE
    assert actor["asked"] == []  # not before every trial is at the rung
    t3.status = Trial.RUNNING
    assert s.choose_trial_to_run(c) is None  # paused ones wait for the decision
    # The last one reaches the rung: the actor is asked once, the paused cut one is stopped, the
    # reporting one goes on.
    assert s.on_trial_result(c, t3, {"round": 1}) == TrialScheduler.CONTINUE
    assert actor["asked"] == [["a=1", "a=2", "a=3", "default"]]
    assert c.stopped == [t2.trial_id]
    # One slot left beside t3: the first paused survivor resumes, never the stopped one.
    assert s.choose_trial_to_run(c) is t0
    t0.status = Trial.RUNNING
    assert s.choose_trial_to_run(c) is None  # two running: wait
    t3.status = Trial.TERMINATED
    assert s.choose_trial_to_run(c) is t1
    assert s.on_trial_result(c, t0, {"round": 2}) == TrialScheduler.CONTINUE


def test_a_slow_vote_keeps_every_trial_paused_and_is_polled_until_done(tmp_path: Path, actor: dict) -> None:
    trials = [FakeTrial(c) for c in ("default", "a=1", "a=2")]
    c = FakeController(trials)
    s = RungScheduler("vote", ExperimentPaths(str(tmp_path), "x"), 1, total_trials=3, max_concurrent=2)
    actor["cut"], actor["ready"] = ["a=1"], False
    for t in trials:
        assert _rung(s, c, t) == TrialScheduler.PAUSE  # the last one too: the vote is not done
    assert actor["asked"] == [["a=1", "a=2", "default"]]
    # Every step of Tune's loop polls; nothing resumes, nothing is stopped, the vote is asked once.
    for _ in range(3):
        assert s.choose_trial_to_run(c) is None
    assert c.stopped == [] and len(actor["asked"]) == 1 and actor["waits"] == 4
    assert "waiting at the rung" in s.debug_string()
    actor["ready"] = True
    assert s.choose_trial_to_run(c) is trials[0]  # the cut is carried out, a survivor resumes
    assert c.stopped == [trials[1].trial_id] and s.stopped == {"a=1"}
    assert len(actor["asked"]) == 1


def test_the_reporting_trial_itself_can_be_cut_and_ended_trials_count(tmp_path: Path, actor: dict) -> None:
    trials = [FakeTrial(c) for c in ("default", "a=1", "a=2")]
    c = FakeController(trials)
    s = RungScheduler("vote", ExperimentPaths(str(tmp_path), "x"), 1, total_trials=3, max_concurrent=2)
    actor["cut"] = ["a=2"]
    assert _rung(s, c, trials[0]) == TrialScheduler.PAUSE
    trials[1].status = Trial.ERROR
    s.on_trial_error(c, trials[1])  # failed for good before the rung
    assert _rung(s, c, trials[2]) == TrialScheduler.STOP
    assert actor["asked"] == [["a=2", "default"]]


def test_every_replicate_of_a_cut_candidate_stops(tmp_path: Path, actor: dict) -> None:
    trials = [FakeTrial("default"), FakeTrial("a=1"), FakeTrial("a=1", 1), FakeTrial("default", 1)]
    c = FakeController(trials)
    s = RungScheduler("vote", ExperimentPaths(str(tmp_path), "x"), 1, total_trials=4, max_concurrent=4)
    actor["cut"] = ["a=1"]
    for t in trials[:3]:
        assert _rung(s, c, t) == TrialScheduler.PAUSE
    assert _rung(s, c, trials[3]) == TrialScheduler.CONTINUE
    assert sorted(c.stopped) == ["a=1-0", "a=1-1"]


def test_a_retried_trial_is_not_counted_as_ended(tmp_path: Path, actor: dict) -> None:
    trials = [FakeTrial("default"), FakeTrial("a=1")]
    c = FakeController(trials)
    s = RungScheduler("vote", ExperimentPaths(str(tmp_path), "x"), 1, total_trials=2, max_concurrent=2)
    _rung(s, c, trials[0])
    trials[1].should_recover = lambda: True  # type: ignore[method-assign]
    s.on_trial_error(c, trials[1])
    assert actor["asked"] == []


def test_a_restored_job_keeps_the_decision(tmp_path: Path, actor: dict) -> None:
    paths = ExperimentPaths(str(tmp_path), "x")
    Path(paths.root).mkdir(parents=True)
    EarlyStopFile(after_round=1, keep=0.5, rule="r", stopped=["a=2"]).write(paths)
    trials = [FakeTrial(c) for c in ("default", "a=2")]
    c = FakeController(trials)
    s = RungScheduler("vote", paths, 1, total_trials=2, max_concurrent=2)
    s.on_trial_add(c, trials[0])
    # Restored trials come back PENDING; a cut one that reports is stopped, the others go on.
    assert s.on_trial_result(c, trials[1], {"stopped_early": 1}) == TrialScheduler.STOP
    assert s.on_trial_result(c, trials[0], {"round": 2}) == TrialScheduler.CONTINUE
    assert actor["asked"] == []


def test_pickled_scheduler_forgets_progress_but_not_its_settings(tmp_path: Path, actor: dict) -> None:
    import pickle

    s = RungScheduler("vote", ExperimentPaths(str(tmp_path), "x"), 2, total_trials=3, max_concurrent=1)
    s.at_rung["t"] = "a"
    back = pickle.loads(pickle.dumps(s))
    assert back.at_rung == {} and back.stopped is None and back.after_round == 2 and back.total_trials == 3


def test_a_rule_reading_seed_agreement_is_refused_before_ray_starts() -> None:
    from ray_jobs.select import preflight

    cfg = load_job_config(
        None,
        {
            "selection.early_stop": {"after_round": 1},
            "selection.replicates": 2,
            "selection.rule": "seed_agreement",
        },
    )
    with pytest.raises(ConfigError, match="selection.early_stop"):
        preflight(cfg)
