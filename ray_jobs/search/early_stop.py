"""Label-free early stopping on Tune's scheduler API: pause at the rung, let the vote actor cut.

:class:`RungScheduler` is a FIFO scheduler with one rung (``selection.early_stop.after_round``).
A trial's report of that round (its rung outputs are written by then, see ray_jobs.worker.train_loop)
pauses it: Tune saves the trial (a function trainable's save holds no model; Train keeps the round
checkpoint) and ends its driver actor, whose Train controller and workers end with it. The slot it
frees lets a trial that was waiting start and reach the rung too. When every trial has reached the
rung or ended, the scheduler asks the vote actor once (``VoteActor.early_stop``): the actor scores
the rung outputs with the configured rule, decides (:mod:`selection.run.early_stop`), writes
``early_stop.json`` and returns the cut. The scheduler only carries it out: paused trials of a cut
candidate (every replicate) are stopped, the others are resumed, no more at once than
``max_concurrent`` (their Train run restores its last round checkpoint). A restored job reads
``early_stop.json``: the decision stands.

The vote takes minutes at full size, and every scheduler callback runs on Tune's event loop, which
also serves every trial's results, checkpoints and failures. So the scheduler never waits on it:
it starts the vote, polls it (``ray.wait(timeout=0)``) on each later callback and carries the cut
out once it is done; meanwhile every trial at the rung stays paused, the last one to arrive too.
Tune calls ``choose_trial_to_run`` on every step of its loop, paused trials or not, so the poll
goes on when nothing else reports.

Tune's ``max_concurrent_trials`` counts paused trials as live; so a trial paused at the rung is
reported complete to the search algorithm (``ray_compat.release_search_slot``, which only frees
its concurrency slot) and the resumptions are limited here.
"""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from ray_jobs.ray_compat import release_search_slot
from ray_jobs.records import EarlyStopFile
from ray_jobs.storage import ExperimentPaths

__all__ = ["RungScheduler"]

log = logging.getLogger("ray_jobs")


def _candidate(trial: Trial) -> str:
    return trial.config["candidate"]["candidate_id"]


class RungScheduler(FIFOScheduler):
    """Pause every trial at round ``after_round``; once all are there (or ended), stop the vote
    actor's cut and resume the rest. Holds the actor's name, not its handle (Tune pickles it)."""

    def __init__(
        self,
        actor_name: str,
        paths: ExperimentPaths,
        after_round: int,
        total_trials: int,
        max_concurrent: int,
    ) -> None:
        super().__init__()
        self.actor_name = actor_name
        self.paths = paths
        self.after_round = after_round
        self.total_trials = total_trials
        self.max_concurrent = max_concurrent
        self._reset()

    def _reset(self) -> None:
        self.at_rung: dict[str, str] = {}  # trial id -> candidate id
        self.ended: set[str] = set()
        self.stopped: set[str] | None = None  # candidate ids; None: not decided yet
        self.vote: ray.ObjectRef | None = None  # the rung vote under way, if any

    def __getstate__(self) -> dict[str, Any]:
        # A restored job starts from early_stop.json, not from a pickled half-way state.
        return {k: v for k, v in self.__dict__.items() if k not in ("at_rung", "ended", "stopped", "vote")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # -- the decision --------------------------------------------------------------------------

    def _load_decision(self) -> None:
        # A restored job's decision; a vote under way writes the file before it returns, and is
        # carried out (and logged) when its poll sees it done.
        if self.stopped is None and self.vote is None:
            decision = EarlyStopFile.read(self.paths)
            if decision is not None:
                self.stopped = set(decision.stopped)

    def _decide(self, tune_controller: Any) -> None:
        """Start the actor's vote once every trial is at the rung or ended; once it is done, stop the
        paused trials it cuts. Never waits for the vote (see the module)."""
        if self.stopped is not None or len(set(self.at_rung) | self.ended) < self.total_trials:
            return
        if self.vote is None:
            actor = ray.get_actor(self.actor_name)
            self.vote = actor.early_stop.remote(sorted(set(self.at_rung.values())))
            log.debug("early stopping after round %d: the vote started", self.after_round)
        done, _ = ray.wait([self.vote], timeout=0)
        if not done:
            return
        # Done: get returns at once (and raises the actor's error, if the vote failed).
        decision: EarlyStopFile = ray.get(self.vote)
        self.vote = None
        self.stopped = set(decision.stopped)
        if self.stopped:
            log.info(
                "early stopping after round %d: %d candidate(s) stopped: %s",
                self.after_round,
                len(self.stopped),
                ", ".join(sorted(self.stopped)),
            )
        else:
            log.info("early stopping after round %d: every candidate goes on", self.after_round)
        self._stop_cut(tune_controller)

    def _stop_cut(self, tune_controller: Any) -> None:
        # As HyperBand does for the paused trials it cuts; a trial still saving (its pause not yet
        # done) is stopped as well.
        for t in tune_controller.get_trials():
            if (t.status == Trial.PAUSED or t.is_saving) and _candidate(t) in (self.stopped or ()):
                tune_controller.stop_trial(t)

    # -- Tune's scheduler API ------------------------------------------------------------------

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        self._load_decision()

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        self._load_decision()
        if self.stopped is not None:
            return TrialScheduler.STOP if _candidate(trial) in self.stopped else TrialScheduler.CONTINUE
        done_round = result.get("round")
        if result.get("finished") or not isinstance(done_round, int) or done_round < self.after_round:
            return TrialScheduler.CONTINUE
        # At the rung (or past it: a trial restored after the driver died resumes from its last
        # round checkpoint; its rung outputs were written before that).
        self.at_rung[trial.trial_id] = _candidate(trial)
        # Free its concurrency slot: a paused trial still counts as live for the search algorithm.
        release_search_slot(tune_controller, trial.trial_id)
        self._decide(tune_controller)
        if self.stopped is None:
            return TrialScheduler.PAUSE
        return TrialScheduler.STOP if _candidate(trial) in self.stopped else TrialScheduler.CONTINUE

    def _ended(self, tune_controller: Any, trial: Trial) -> None:
        if trial.trial_id not in self.at_rung:
            self.ended.add(trial.trial_id)
        self._decide(tune_controller)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        self._ended(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        if trial.should_recover():
            return  # Tune retries it (trial_max_failures): it will reach the rung yet
        self._ended(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._ended(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """Pending trials first (the search algorithm limits them); paused ones only after the
        decision, never a cut one, and only while fewer than ``max_concurrent`` trials run."""
        trials = tune_controller.get_trials()
        for t in trials:
            if t.status == Trial.PENDING:
                return t
        # Called on every step of Tune's loop: where the vote is polled while all trials wait.
        self._decide(tune_controller)
        if self.stopped is None:
            return None
        self._stop_cut(tune_controller)
        if sum(t.status == Trial.RUNNING for t in trials) >= self.max_concurrent:
            return None
        for t in trials:
            if t.status == Trial.PAUSED and _candidate(t) not in self.stopped:
                return t
        return None

    def debug_string(self) -> str:
        state = "waiting at the rung" if self.stopped is None else f"{len(self.stopped)} candidate(s) stopped"
        return f"Label-free early stopping after round {self.after_round}: {state}."
