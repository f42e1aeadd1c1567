"""The vote: one actor streams the finished candidates' predictions through ``selection``.

The final vote fans the subset's images out over Ray tasks, each returning the counts of its chunk
(``selection.plan.accumulate``); counts add, so the merge is exact. While the search runs, a Tune
callback asks the actor for a provisional vote over the candidates finished so far and the
dashboard shows it, marked provisional. The actor is the only writer of the experiment's
``candidates.parquet``, ``choice.json`` and ``dashboard.html`` (each written atomically), and being
an actor it handles one request at a time, so a late provisional vote cannot overwrite the final.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import ray
import ray.tune
from ray.tune.experiment import Trial

from hiast.config import HIASTConfig
from ray_jobs.dashboard import write_dashboard
from ray_jobs.storage import ExperimentPaths
from ray_jobs.tensorboard_hparams import write_hparams
from selection.candidates import GRID_GROUP, Candidate
from selection.errors import SelectionError
from selection.plan import PlanAccumulator, VotePlan, accumulate, image_chunks, make_plan, merge_accumulators
from selection.run import SelectionResult, score_from_accumulators
from selection.tables import write_json, write_parquet
from selection.trimming import DEFAULT_TRIM_RULE

__all__ = ["VoteActor", "ProvisionalVote", "vote_actor_name", "voting_candidates"]

log = logging.getLogger("ray_jobs")

_MIN_IMAGES_PER_TASK = 8


def vote_actor_name(experiment: str) -> str:
    return f"hiast-vote-{experiment}"


@ray.remote(num_cpus=1)
def _accumulate_chunk(plan: VotePlan, start: int, stop: int) -> PlanAccumulator:
    return accumulate(plan, start, stop)


def voting_candidates(
    candidates: Sequence[Candidate], finished: set[str]
) -> tuple[list[Candidate], list[str]]:
    """The finished candidates restricted to the vote groups that still hold two of them.

    A failed candidate leaves its sweep; a sweep left with fewer than two finished candidates
    cannot vote, and its parameter stays at the default (said in the notes).
    """
    done = [c for c in candidates if c.id in finished]
    members: dict[str, int] = {}
    for c in done:
        for g in c.sweeps:
            members[g] = members.get(g, 0) + 1
    notes = []
    for g in dict.fromkeys(g for c in candidates for g in c.sweeps):
        if members.get(g, 0) < 2:
            label = "the grid" if g == GRID_GROUP else f"sweep {g!r}"
            notes.append(f"{label} has {members.get(g, 0)} finished candidate(s): no vote there.")
    out = []
    for c in done:
        kept = tuple(g for g in c.sweeps if members.get(g, 0) >= 2)
        if kept:
            out.append(dataclasses.replace(c, sweeps=kept))
    return out, notes


def _sweep_of(c: Candidate) -> str:
    # As selection.tables names it: the default candidate sits in every sweep.
    if GRID_GROUP in c.sweeps:
        return GRID_GROUP
    return "default" if c.is_default else c.sweeps[0]


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


class _Vote:
    """The actor's logic, kept as a plain class so it can be exercised without a cluster."""

    def __init__(
        self,
        config: dict[str, Any],
        paths: ExperimentPaths,
        subset_ids: list[str],
        candidates: list[Candidate],
    ) -> None:
        self.cfg = HIASTConfig.model_validate(config)
        self.paths = paths
        self.subset_ids = list(subset_ids)
        self.candidates = list(candidates)

    # -- the vote -------------------------------------------------------------------------------

    def _accumulate(self, plan: VotePlan, fan_out: bool) -> PlanAccumulator:
        if not fan_out:
            return accumulate(plan)
        cpus = int(ray.available_resources().get("CPU", 1))
        chunks = image_chunks(
            len(plan.subset_ids), max(1, min(cpus, len(plan.subset_ids) // _MIN_IMAGES_PER_TASK))
        )
        parts = ray.get([_accumulate_chunk.remote(plan, a, b) for a, b in chunks])
        return merge_accumulators(parts)

    def _select(
        self, outcomes: list[dict[str, Any]], fan_out: bool
    ) -> tuple[SelectionResult | None, list[str]]:
        by_candidate: dict[str, list[dict[str, Any]]] = {}
        for o in sorted(outcomes, key=lambda o: o["replicate"]):
            if o["status"] == "done":
                by_candidate.setdefault(o["candidate_id"], []).append(o)
        voters, notes = voting_candidates(self.candidates, set(by_candidate))
        sweep = self.cfg.selection.mode == "sweep"
        if sweep and not any(c.is_default for c in voters):
            return None, notes + [
                "The default candidate did not finish; a sweep needs it (every sweep holds it)."
            ]
        if len(voters) < 2:
            return None, notes + [f"{len(voters)} candidate(s) can vote; a vote needs at least 2."]
        uris = {
            c.id: [
                o.get("prediction_uri") or self.paths.predictions(c.id, o["replicate"])
                for o in by_candidate[c.id]
            ]
            for c in voters
        }
        # The first finished replicate votes; its labelled metrics go with it (audit only).
        first = {c.id: by_candidate[c.id][0]["metrics"] for c in voters}
        true = {cid: m["true_miou"] for cid, m in first.items() if _finite(m.get("true_miou"))}
        source = {cid: m["source_miou"] for cid, m in first.items() if _finite(m.get("source_miou"))}
        plan = make_plan(
            voters,
            uris,
            self.subset_ids,
            self.cfg.data.num_classes,
            trim_rule=DEFAULT_TRIM_RULE if self.cfg.selection.trim_outliers else None,
        )
        first_pass = self._accumulate(plan, fan_out)
        trimmed_plan = plan.trimmed(first_pass)
        second = self._accumulate(trimmed_plan, fan_out) if trimmed_plan is not None else None
        result = score_from_accumulators(
            plan,
            first_pass,
            second,
            extra_scores={"source_val_miou": source} if source else None,
            true_miou=true or None,
        )
        return result, notes

    def _replicate_f_miou(self, outcomes: list[dict[str, Any]], fan_out: bool) -> dict[str, dict[int, float]]:
        """Candidate -> replicate -> F-mIoU of that replicate's own vote (untrimmed, paper F-mIoU).

        The main vote uses one replicate per candidate; these show how much the scores move with
        the seed (beside seed_agreement, which compares a candidate's replicates directly).
        """
        out: dict[str, dict[int, float]] = {}
        for r in range(self.cfg.selection.replicates):
            done = {o["candidate_id"]: o for o in outcomes if o["replicate"] == r and o["status"] == "done"}
            voters, _ = voting_candidates(self.candidates, set(done))
            if len(voters) < 2 or (
                self.cfg.selection.mode == "sweep" and not any(c.is_default for c in voters)
            ):
                continue
            uris = {c.id: done[c.id].get("prediction_uri") or self.paths.predictions(c.id, r) for c in voters}
            plan = make_plan(
                voters, uris, self.subset_ids, self.cfg.data.num_classes,
                trim_rule=None, centre_bias=False, agreement=False,
            )  # fmt: skip
            table = score_from_accumulators(plan, self._accumulate(plan, fan_out)).table
            for cid, f in zip(table["candidate_id"], table["f_miou"], strict=True):
                out.setdefault(cid, {})[r] = float(f)
        return out

    def _table(
        self, result: SelectionResult | None, outcomes: list[dict[str, Any]], provisional: bool
    ) -> pd.DataFrame:
        """One row per candidate: the selection's columns where it voted, plus status and errors."""
        voted = result.table.set_index("candidate_id", drop=False) if result is not None else None
        rows = []
        for c in self.candidates:
            if voted is not None and c.id in voted.index:
                row = voted.loc[c.id].to_dict()
            else:  # failed, or its sweep could not vote: parameters only, no scores
                row = {
                    "candidate_id": c.id,
                    "digest": c.digest,
                    "sweep": _sweep_of(c),
                    "sweeps": list(c.sweeps),
                    **{p: float(v) for p, v in c.params.items()},
                    "f_miou": float("nan"),
                }
            mine = [o for o in outcomes if o["candidate_id"] == c.id]
            done = [o for o in mine if o["status"] == "done"]
            if len(done) == self.cfg.selection.replicates:
                row["status"] = "done"
            else:  # while the search runs, unfinished is not failed
                row["status"] = "pending" if provisional else "partial" if done else "failed"
            row["error"] = next((o["error"] for o in mine if o.get("error")), None)
            for key in ("node", "node_name"):  # where it trained (one per replicate)
                row[key] = ",".join(dict.fromkeys(o[key] for o in done if o.get(key))) or None
            for o in mine:  # per-replicate labelled metrics (audit only; the vote uses none)
                r = o["replicate"]
                row[f"true_miou__rep{r}"] = o["metrics"].get("true_miou", float("nan"))
                row[f"source_val_miou__rep{r}"] = o["metrics"].get("source_miou", float("nan"))
            rows.append(row)
        table = pd.DataFrame(rows)
        if "true_miou" not in table.columns:  # no labelled target split: the column says so
            table["true_miou"] = float("nan")
        if self.cfg.selection.replicates > 1 and not provisional:
            per_rep = self._replicate_f_miou(outcomes, fan_out=ray.is_initialized())
            for r in range(self.cfg.selection.replicates):
                table[f"f_miou__rep{r}"] = [
                    per_rep.get(c.id, {}).get(r, float("nan")) for c in self.candidates
                ]
        first = ["candidate_id", "status"]
        return table[first + [k for k in table.columns if k not in first]]

    def vote(self, outcomes: list[dict[str, Any]], *, provisional: bool) -> dict[str, Any]:
        """Vote over the finished candidates; write the outputs. Returns the choice."""
        kind = "provisional" if provisional else "final"
        log.info("%s vote over %d finished trial(s)", kind, sum(o["status"] == "done" for o in outcomes))
        try:
            # Provisional votes stay in the actor: their tasks would queue behind the trials' workers.
            result, notes = self._select(outcomes, fan_out=not provisional and ray.is_initialized())
        except SelectionError as e:
            if provisional:  # a partial search can be unvotable; the final one says why
                log.warning("provisional vote skipped: %s", e)
                return {}
            raise
        table = self._table(result, outcomes, provisional)
        unfinished = [
            c.id
            for c in self.candidates
            if not any(o["candidate_id"] == c.id and o["status"] == "done" for o in outcomes)
        ]
        if result is not None:
            choice = dict(result.choice)
            choice["notes"] = list(notes) + list(result.notes)
        else:
            choice = {"parameters": {}, "candidate_id": None, "f_miou": None, "notes": list(notes)}
        if provisional:
            choice["unfinished"] = unfinished
        else:
            choice["failed"] = unfinished
            if unfinished:
                choice["notes"].insert(
                    0,
                    f"{len(unfinished)} candidate(s) failed and were left out of the vote: "
                    f"{', '.join(unfinished)}.",
                )
        choice["provisional"] = provisional
        choice["finished"] = len(self.candidates) - len(unfinished)
        choice["total"] = len(self.candidates)
        if not provisional:
            write_parquet(table, self.paths.candidates)
            write_json(choice, self.paths.choice)
        write_dashboard(
            self.paths.dashboard,
            table,
            choice if result is not None else None,
            self.cfg,
            provisional=provisional,
            total_candidates=len(self.candidates),
        )
        if not provisional:
            self._write_hparams(table, outcomes)
        return choice

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
                write_hparams(o["trial_dir"], params, metrics, failed=o["status"] != "done")
            except OSError as e:  # a view for people; never fail the job over it
                log.warning("TensorBoard hparams for %s not written: %s", o["candidate_id"], e)


@ray.remote(num_cpus=0)
class VoteActor(_Vote):
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


class ProvisionalVote(ray.tune.Callback):
    """After each finished trial, a provisional vote over those finished so far (from 2 on).

    Holds the actor's name, not its handle: Tune pickles its callbacks with the experiment, and a
    resumed job creates a new actor under the same name. At most one request is in flight.
    """

    def __init__(self, actor_name: str, total_trials: int) -> None:
        self.actor_name = actor_name
        self.total_trials = total_trials
        self._pending: Any = None
        self._dirty = False
        self._finished: dict[str, dict[str, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"actor_name": self.actor_name, "total_trials": self.total_trials}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["actor_name"], state["total_trials"])

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        spec = trial.config["candidate"]
        metrics = {
            k: trial.last_result.get(k) for k in ("true_miou", "source_miou") if k in trial.last_result
        }
        self._finished[trial.trial_id] = {
            **spec,
            "status": "done",
            "metrics": metrics,
            "error": None,
            "trial_dir": None,
            "prediction_uri": None,
        }
        self._dirty = True
        self._maybe_send()

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self._dirty:
            self._maybe_send()

    def _maybe_send(self) -> None:
        if len(self._finished) < 2 or len(self._finished) >= self.total_trials:
            return  # nothing to vote yet; or everything is done and the final vote follows
        if self._pending is not None:
            ready, _ = ray.wait([self._pending], timeout=0)
            if not ready:
                return
        try:
            actor = ray.get_actor(self.actor_name)
        except ValueError:
            return
        self._pending = actor.provisional.remote(list(self._finished.values()))
        self._dirty = False
