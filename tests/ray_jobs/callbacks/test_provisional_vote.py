"""ray_jobs.callbacks.provisional_vote: what the callback sends the vote actor, and when (no cluster:
the actor is a stand-in that records its calls)."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest
import ray

from ray_jobs.callbacks import ProvisionalVote
from ray_jobs.records import TrialStatus


def test_provisional_callback_pickles_without_its_state() -> None:
    cb = ProvisionalVote("hiast-vote-x", 5)
    cb._finished["t1"] = {"candidate_id": "default"}
    clone = pickle.loads(pickle.dumps(cb))
    assert clone.actor_name == "hiast-vote-x" and clone.total_trials == 5
    assert clone._finished == {} and clone._pending is None


def _trial(cid: str, **last_result: float) -> SimpleNamespace:
    spec = {"candidate_id": cid, "replicate": 0, "params": {"alpha": 0.5}, "sweeps": ["alpha"], "digest": cid}
    return SimpleNamespace(trial_id=f"t-{cid}", config={"candidate": spec}, last_result=dict(last_result))


class _Actor:
    """Stands in for the vote actor: records what ``provisional.remote`` is sent."""

    def __init__(self) -> None:
        self.sent: list[list[dict]] = []
        self.provisional = SimpleNamespace(remote=self._remote)

    def _remote(self, outcomes: list[dict]) -> str:
        self.sent.append(outcomes)
        return f"ref-{len(self.sent)}"


@pytest.fixture
def actor(monkeypatch: pytest.MonkeyPatch) -> _Actor:
    stand_in = _Actor()
    looked_up: list[str] = []

    def get_actor(name: str) -> _Actor:
        looked_up.append(name)
        return stand_in

    monkeypatch.setattr(ray, "get_actor", get_actor)
    stand_in.looked_up = looked_up  # type: ignore[attr-defined]
    return stand_in


def test_a_vote_is_sent_from_two_finished_trials_on(actor: _Actor) -> None:
    cb = ProvisionalVote("hiast-vote-x", 4)
    cb.on_trial_complete(0, [], _trial("default", finished=1, true_miou=0.5, round=2))
    assert actor.sent == []  # one finished candidate: nothing to vote on yet
    cb.on_trial_complete(0, [], _trial("alpha=0.3", finished=1, source_miou=0.4))
    assert actor.looked_up == ["hiast-vote-x"]
    (sent,) = actor.sent
    assert [o["candidate_id"] for o in sent] == ["default", "alpha=0.3"]
    assert all(o["status"] == TrialStatus.DONE for o in sent)
    # Tune's last result gives the labelled metrics only; the vote finds the files itself.
    assert sent[0]["metrics"] == {"true_miou": 0.5} and sent[1]["metrics"] == {"source_miou": 0.4}
    assert sent[0]["prediction_uri"] is None and "node" not in sent[0]


def test_a_trial_stopped_early_is_not_a_finished_candidate(actor: _Actor) -> None:
    cb = ProvisionalVote("hiast-vote-x", 4)
    cb.on_trial_complete(0, [], _trial("default", finished=1))
    cb.on_trial_complete(0, [], _trial("alpha=0.3", round=1, rung_outputs=1))
    assert actor.sent == [] and list(cb._finished) == ["t-default"]


def test_one_request_at_a_time_and_none_once_every_trial_finished(
    actor: _Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready: list[str] = []
    monkeypatch.setattr(ray, "wait", lambda refs, timeout: ([r for r in refs if r in ready], []))
    monkeypatch.setattr(ray, "get", lambda ref: {})  # an empty choice: no console line
    cb = ProvisionalVote("hiast-vote-x", 3)
    cb.on_trial_complete(0, [], _trial("a", finished=1))
    cb.on_trial_complete(0, [], _trial("b", finished=1))
    assert len(actor.sent) == 1
    # The third (last) trial finishes while the first vote is still running: no second request,
    # and none afterwards either (the final vote follows).
    cb.on_trial_complete(0, [], _trial("c", finished=1))
    assert len(actor.sent) == 1
    ready.append("ref-1")
    cb.on_step_end(0, [])
    assert len(actor.sent) == 1 and cb._pending is None
