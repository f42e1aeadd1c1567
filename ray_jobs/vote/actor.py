"""The vote: one actor streams the finished candidates' predictions through ``selection``.

The vote itself is ``selection``'s (``selection.run.outcomes.vote_outcomes``, which runs
``selection.run.run_selection``: every validator the candidates' predictions and evidence files
allow, the configured ``selection.rule``); the actor only orchestrates. The final vote hands
selection a chunk map that fans the subset's images out over Ray tasks, each returning the counts
of its chunk (``selection.run.plan.accumulate``: label maps and evidence); counts add, so the merge is
exact. While the search runs, a Tune callback (:class:`ray_jobs.callbacks.ProvisionalVote`) asks
the actor for a provisional vote over the candidates finished so far and the dashboard shows it,
marked provisional. The actor is the only
writer of the experiment's ``candidates.parquet``, ``choice.json``, ``audit.parquet``,
``sweeps/<group>.parquet`` and ``dashboard.html`` (each written atomically), and being an actor it
handles one request at a time, so a late provisional vote cannot overwrite the final.
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import threading
from collections.abc import Sequence
from typing import Any

import pandas as pd
import ray

from hiast.data.classes import class_names
from hiast.data.holdout import build_split
from ray_jobs.config import JobConfig
from ray_jobs.preflight import read_holdout
from ray_jobs.records import EarlyStopFile, TrialStatus, stopped_early
from ray_jobs.storage import ExperimentPaths, exists
from ray_jobs.tracking import write_hparams
from selection import Candidate, Choice, EarlyStopRecord, SelectionError, SourceValRecord, write_parquet
from selection.report import write_dashboard
from selection.run import (
    ChunkCounts,
    EarlyStopDecision,
    Outcome,
    SelectionSpec,
    VotePlan,
    accumulate,
    rung_selection,
    vote_outcomes,
)
from selection.validators import EvidenceSettings

__all__ = ["Vote", "VoteActor", "vote_actor_name"]

log = logging.getLogger("ray_jobs")

_MIN_IMAGES_PER_TASK = 8


def vote_actor_name(experiment: str) -> str:
    return f"hiast-vote-{experiment}"


@ray.remote(num_cpus=1)
def _accumulate_chunk(plan: VotePlan, start: int, stop: int) -> ChunkCounts:
    return accumulate(plan, start, stop)


def _ray_map(plan: VotePlan, chunks: Sequence[tuple[int, int]]) -> list[ChunkCounts]:
    """selection's chunk map on Ray: one task per image chunk, wherever the cluster has a CPU."""
    return ray.get([_accumulate_chunk.remote(plan, a, b) for a, b in chunks])


class Vote:
    """The actor's logic, kept as a plain class so it can be exercised without a cluster."""

    def __init__(
        self,
        config: dict[str, Any],
        paths: ExperimentPaths,
        subset_ids: list[str],
        candidates: list[Candidate],
    ) -> None:
        self.cfg = JobConfig.model_validate(config)
        self.paths = paths
        self.subset_ids = list(subset_ids)
        self.candidates = list(candidates)
        # The selection settings of both votes (final/provisional and the early-stop rung), built once.
        self.spec = SelectionSpec(
            self.subset_ids,
            self.cfg.data.num_classes,
            rule=self.cfg.selection.rule,
            trim_outliers=self.cfg.selection.trim_outliers,
            evidence_settings=EvidenceSettings(),  # what ray_jobs.candidate_outputs writes with
            mode=self.cfg.selection.mode,
            replicates=self.cfg.selection.replicates,
        )
        self._decided = threading.Event()  # early stopping's decision is written

    def _evidence(self, outcome: dict[str, Any]) -> str | None:
        """Replicate 0's evidence file where the record does not name it (the provisional
        callback's records), if it was written (a run from before evidence files has none)."""
        if outcome.get("evidence_uri") or outcome["replicate"] != 0 or outcome["status"] != TrialStatus.DONE:
            return None
        uri = self.paths.evidence(outcome["candidate_id"], 0)
        return uri if exists(uri) else None

    def _num_chunks(self) -> int:
        cpus = int(ray.available_resources().get("CPU", 1))
        return max(1, min(cpus, len(self.subset_ids) // _MIN_IMAGES_PER_TASK))

    def vote(self, outcomes: list[dict[str, Any]], *, provisional: bool) -> dict[str, Any]:
        """Vote over the finished candidates; write the outputs. Returns the choice."""
        kind = "provisional" if provisional else "final"
        log.info(
            "%s vote over %d finished trial(s)", kind, sum(o["status"] == TrialStatus.DONE for o in outcomes)
        )
        # Provisional votes stay in the actor: their tasks would queue behind the trials' workers.
        fan_out = not provisional and ray.is_initialized()
        records = [
            Outcome.from_record(
                o,
                prediction_uri=self.paths.predictions(o["candidate_id"], o["replicate"]),
                evidence_uri=self._evidence(o),
            )
            for o in outcomes
        ]
        try:
            spec = self.spec
            if fan_out:
                spec = dataclasses.replace(spec, map_chunks=_ray_map, num_chunks=self._num_chunks())
            job = vote_outcomes(self.candidates, records, spec, provisional=provisional)
        except SelectionError as e:
            if provisional:  # a partial search can be unvotable; the final one says why
                log.warning("provisional vote skipped: %s", e)
                return {}
            raise
        final = job.choice if provisional else self._with_source_val(self._with_early_stop(job.choice))
        choice = final.as_dict()
        if not provisional:
            write_parquet(job.table, self.paths.candidates)
            final.write(self.paths.choice)
            if job.result is not None:
                job.result.write_tables(self.paths.root)  # audit.parquet, sweeps/<group>.parquet
        write_dashboard(
            self.paths.dashboard,
            job.table,
            choice if job.result is not None else None,
            self.cfg,
            provisional=provisional,
            class_names=class_names(self.cfg.data.target.class_set),
            total_candidates=len(self.candidates),
            sweeps=job.result.sweeps if job.result is not None else None,
        )
        if not provisional:
            self._write_hparams(job.table, outcomes)
        return choice

    def _with_source_val(self, choice: Choice) -> Choice:
        """The choice naming the labelled source-val split the source-side validators read."""
        if self.cfg.data.source_val is not None:
            split = build_split(self.cfg.data, "source_val")
            record = SourceValRecord(origin="data.source_val", images=len(split) if split else 0)
        elif exists(self.paths.source_val_holdout):
            held = read_holdout(self.paths.source_val_holdout)
            record = SourceValRecord(
                origin="held out of data.source",
                images=len(held.held_out),
                record=posixpath.basename(self.paths.source_val_holdout),
            )
        else:
            return choice
        return dataclasses.replace(choice, source_val=record)

    def _with_early_stop(self, choice: Choice) -> Choice:
        """The choice with early stopping's record and a note on whom it stopped (when it ran)."""
        decision = EarlyStopFile.read(self.paths)
        if decision is None:
            return choice
        stopped = list(decision.stopped)
        note = (
            f"Early stopping after round {decision.after_round} (keep {decision.keep:g} of each sweep) "
            f"stopped {len(stopped)} candidate(s), left out of the vote: {', '.join(stopped) or 'none'}."
        )
        return dataclasses.replace(
            choice,
            early_stop=EarlyStopRecord(after_round=decision.after_round, keep=decision.keep, stopped=stopped),
            notes=[note, *choice.notes, *decision.notes],
        )

    def early_stop(self, at_rung: list[str]) -> EarlyStopFile:
        """Label-free early stopping's cut over the candidates at the rung (``at_rung``: their ids).

        Scores their rung outputs with the configured rule, decides (:mod:`selection.run.early_stop`)
        and writes ``early_stop.json``; returns that record. Asked once per search; a decision
        already written (a resumed job, a restarted actor) is returned as it is.
        """
        written = EarlyStopFile.read(self.paths)
        if written is not None:
            return written
        stop = self.cfg.selection.early_stop
        if stop is None:
            raise SelectionError("early stopping was asked for, but selection.early_stop is not set")
        after = stop.after_round
        predictions = {
            cid: self.paths.rung_predictions(cid, after)
            for cid in at_rung
            if exists(self.paths.rung_predictions(cid, after))
        }
        evidence = {
            cid: self.paths.rung_evidence(cid, after)
            for cid in predictions
            if exists(self.paths.rung_evidence(cid, after))
        }
        try:
            decision = rung_selection(
                self.candidates, predictions, self.spec, keep=stop.keep, evidence_uris=evidence or None
            )
        except SelectionError as e:
            # The cut is an economy: if the rung cannot be scored, every candidate goes on (said).
            log.warning("early stopping after round %d skipped: %s", after, e)
            decision = EarlyStopDecision([], {}, [f"Early stopping after round {after} skipped: {e}"])
        record = EarlyStopFile.from_dict(
            {
                "after_round": after,
                "keep": stop.keep,
                "rule": str(self.cfg.selection.rule.to_config()),
                **decision.as_dict(),
            },
            "the early-stop decision",
        )
        record.write(self.paths)
        self._decided.set()
        return record

    def rung_wait(self) -> list[str]:
        """Block until early stopping has decided; the stopped candidates. (A candidate at the rung
        waits here: it is paused, its processes ended, before it can train on in the background.)"""
        if not exists(self.paths.early_stop):
            self._decided.wait()
        return list(stopped_early(self.paths))

    def _write_hparams(self, table: pd.DataFrame, outcomes: list[dict[str, Any]]) -> None:
        """F-mIoU exists only now: add it to every trial's TensorBoard HParams."""
        rows = table.set_index("candidate_id")
        for o in outcomes:
            if not o.get("trial_dir"):
                continue
            row = rows.loc[o["candidate_id"]]
            params = {**o["params"], "candidate_id": o["candidate_id"], "replicate": o["replicate"]}
            metrics = {"f_miou": row.get("f_miou"), **o["metrics"]}
            try:
                write_hparams(o["trial_dir"], params, metrics, failed=o["status"] != TrialStatus.DONE)
            except OSError as e:  # a view for people; never fail the job over it
                log.warning("TensorBoard hparams for %s not written: %s", o["candidate_id"], e)


# Candidates waiting at early stopping's rung are served by a thread pool of their own; every
# other request keeps the default group's one-at-a-time order.
_RUNG_WAITERS = 256


@ray.remote(num_cpus=0, concurrency_groups={"rung": _RUNG_WAITERS})
class VoteActor(Vote):
    """Holds the search's candidates and subset; votes when asked (one request at a time).

    No CPU reserved: it must not take a slot a candidate's worker needs. The final vote's heavy
    part runs in tasks that do take CPUs, once the search has finished and freed them.
    """

    def __init__(self, *args: Any) -> None:
        # The actor's own process: make its log lines reach the driver's console.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        super().__init__(*args)

    def provisional(self, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
        return self.vote(outcomes, provisional=True)

    def finalize(self, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
        return self.vote(outcomes, provisional=False)

    @ray.method(concurrency_group="rung")
    def rung_wait(self) -> list[str]:
        return super().rung_wait()
