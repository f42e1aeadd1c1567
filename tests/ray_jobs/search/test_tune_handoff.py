"""ray_jobs.search.tune_handoff (no cluster): the trial waits until Train's report queue is empty,
then a grace period; it gives up after its timeout, saying so; a Ray without the queue is an error."""

from __future__ import annotations

import logging

import pytest

from ray_jobs.ray_compat import RayCompatError
from ray_jobs.search import tune_handoff, wait_for_reports_to_reach_tune


class _Queue:
    """Holds ``items`` reports; each look at it hands one on, as the trial's main thread would."""

    def __init__(self, items: int | None) -> None:
        self.items = items  # None: never drains
        self.looks = 0

    def empty(self) -> bool:
        self.looks += 1
        if self.items is None:
            return False
        if self.items:
            self.items -= 1
            return False
        return True


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(tune_handoff.time, "sleep", slept.append)
    return slept


def test_outside_a_train_in_tune_trial_there_is_nothing_to_wait_for(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.setattr(tune_handoff, "train_to_tune_queue", lambda: None)
    assert wait_for_reports_to_reach_tune() is True
    assert sleeps == []


def test_waits_until_the_queue_is_empty_then_the_grace_period(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    queue = _Queue(3)
    monkeypatch.setattr(tune_handoff, "train_to_tune_queue", lambda: queue)
    assert wait_for_reports_to_reach_tune(grace_s=0.75, poll_s=0.01) is True
    assert queue.items == 0 and queue.looks == 4
    assert sleeps == [0.01, 0.01, 0.01, 0.75]


def test_gives_up_after_the_timeout_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _Queue(None)
    monkeypatch.setattr(tune_handoff, "train_to_tune_queue", lambda: queue)
    with caplog.at_level(logging.WARNING, logger="ray_jobs"):
        assert wait_for_reports_to_reach_tune(timeout_s=0.05, grace_s=0.0, poll_s=0.001) is False
    assert queue.looks > 1
    assert "had not reached Tune after" in caplog.text


def test_a_ray_without_the_queue_is_an_error_not_a_silent_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise RayCompatError("_TrainSession._inter_actor_queue", "the session has no such attribute")

    monkeypatch.setattr(tune_handoff, "train_to_tune_queue", missing)
    with pytest.raises(RayCompatError, match="_inter_actor_queue is missing"):
        wait_for_reports_to_reach_tune()
