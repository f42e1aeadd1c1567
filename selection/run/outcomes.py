"""From a search's trial outcomes to its results table and choice: which candidates vote, the vote, the rows.

A search reports one :class:`Outcome` per (candidate, replicate): done (its predictions, and for
the voting replicate its evidence file, are stored) or failed. :func:`vote_outcomes` votes over the
finished candidates with :func:`selection.run.runner.run_selection` -- every validator their files allow,
the configured rule -- (and, with several replicates, once per replicate) and builds
the job's table: one row per candidate of the search, failed or pending ones included, with its
status, the error, and the record's metrics and other fields. Nothing here knows about Ray: the
caller passes ``map_chunks`` to spread the vote's image chunks wherever it likes.

Pass-through columns, so a job can report more without changes here:

* every metric of a record (``Outcome.metrics``) becomes the column ``<metric>__rep<r>``
  (``source_miou`` is named ``source_val_miou``; ``true_miou`` and ``source_val_miou`` are always
  present, NaN where not measured);
* every other field of the record (``Outcome.info``, e.g. the node a trial ran on) becomes the
  column ``<field>`` with the value of the candidate's voting replicate (else its first record).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from selection.candidates import GRID_GROUP, Candidate
from selection.decision.rules import PAPER_RULE
from selection.errors import SelectionError
from selection.outputs.choice import Choice
from selection.outputs.result import SelectionResult
from selection.run.runner import run_selection
from selection.run.spec import SelectionSpec

__all__ = [
    "Outcome",
    "JobVote",
    "voting_candidates",
    "vote_outcomes",
    "RECORD_FIELDS",
    "METRIC_COLUMNS",
    "STOPPED",
]

# Fields of an outcome record that are not passed through as columns: they are the outcome's own
# fields, or describe the candidate (its row has them already) or the trial's folder.
RECORD_FIELDS = frozenset(
    {"candidate_id", "replicate", "status", "metrics", "error", "prediction_uri", "evidence_uri"}
    | {"params", "sweeps", "digest", "seed", "trial_dir"}
)
# The status of a candidate cut by label-free early stopping (it votes no more; selection.early_stop).
STOPPED = "stopped"
# Metric -> column stem of its per-replicate column; these are written even where not measured.
METRIC_COLUMNS = {"true_miou": "true_miou", "source_miou": "source_val_miou"}


@dataclass(frozen=True)
class Outcome:
    """One trial of the search: a candidate's replicate, ``done``, ``failed`` or ``stopped`` (early)."""

    candidate_id: str
    replicate: int
    status: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    prediction_uri: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    evidence_uri: str | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"

    @classmethod
    def from_record(
        cls,
        record: Mapping[str, Any],
        *,
        prediction_uri: str | None = None,
        evidence_uri: str | None = None,
    ) -> Outcome:
        """From the job's record dict; ``prediction_uri``/``evidence_uri``: where the files are when
        the record does not say. Fields outside :data:`RECORD_FIELDS` go to ``info`` (passed
        through as columns)."""
        for key in ("candidate_id", "replicate", "status"):
            if key not in record:
                raise SelectionError(f"trial outcome {dict(record)!r} has no {key!r}")
        return cls(
            candidate_id=str(record["candidate_id"]),
            replicate=int(record["replicate"]),
            status=str(record["status"]),
            metrics=dict(record.get("metrics") or {}),
            error=record.get("error"),
            prediction_uri=record.get("prediction_uri") or prediction_uri,
            info={k: v for k, v in record.items() if k not in RECORD_FIELDS},
            evidence_uri=record.get("evidence_uri") or evidence_uri,
        )


@dataclass(frozen=True)
class JobVote:
    """The vote over a search's outcomes: ``result`` is None when nothing could be voted on."""

    result: SelectionResult | None
    table: pd.DataFrame
    choice: Choice


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


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _cannot_vote(voters: Sequence[Candidate], mode: str) -> str | None:
    if mode == "sweep" and not any(c.is_default for c in voters):
        return "The default candidate did not finish; a sweep needs it (every sweep holds it)."
    if len(voters) < 2:
        return f"{len(voters)} candidate(s) can vote; a vote needs at least 2."
    return None


def _uri(o: Outcome) -> str:
    if o.prediction_uri is None:
        raise SelectionError(f"candidate {o.candidate_id!r} replicate {o.replicate}: no predictions file")
    return o.prediction_uri


def _select(
    candidates: Sequence[Candidate], outcomes: Sequence[Outcome], spec: SelectionSpec
) -> tuple[SelectionResult | None, list[str]]:
    """The main vote: every finished candidate, its first finished replicate voting (with its evidence)."""
    by_candidate: dict[str, list[Outcome]] = {}
    for o in sorted(outcomes, key=lambda o: o.replicate):
        if o.done:
            by_candidate.setdefault(o.candidate_id, []).append(o)
    voters, notes = voting_candidates(candidates, set(by_candidate))
    why = _cannot_vote(voters, spec.mode)
    if why is not None:
        return None, notes + [why]
    uris = {c.id: [_uri(o) for o in by_candidate[c.id]] for c in voters}
    # The first finished replicate votes; its labelled metrics go with it (audit only).
    first = {c.id: by_candidate[c.id][0].metrics for c in voters}
    true = {cid: m["true_miou"] for cid, m in first.items() if _finite(m.get("true_miou"))}
    evidence = {c.id: by_candidate[c.id][0].evidence_uri for c in voters}
    evidence = {cid: uri for cid, uri in evidence.items() if uri is not None}
    lacking = [c.id for c in voters if c.id not in evidence]
    extra = None
    if not evidence:  # no evidence file at all: source-val mIoU from the records, as reported
        source = {cid: m["source_miou"] for cid, m in first.items() if _finite(m.get("source_miou"))}
        extra = {"source_val_miou": source} if source else None
    elif lacking:
        notes.append(
            f"No evidence file for {', '.join(lacking)} (its voting replicate is not replicate 0): "
            "its evidence validators are NaN, so rules that use them rank it last."
        )
    result = run_selection(
        voters, uris, spec, extra_scores=extra, true_miou=true or None, evidence_uris=evidence or None
    )
    return result, notes


def _replicate_f_miou(
    candidates: Sequence[Candidate], outcomes: Sequence[Outcome], spec: SelectionSpec
) -> dict[str, dict[int, float]]:
    """Candidate -> replicate -> F-mIoU of that replicate's own vote (untrimmed, paper F-mIoU).

    The main vote uses one replicate per candidate; these show how much the scores move with
    the seed (beside seed_agreement, which compares a candidate's replicates directly).
    """
    out: dict[str, dict[int, float]] = {}
    # Each replicate's own vote: the paper's F-mIoU, untrimmed, whatever the job's rule.
    own = dataclasses.replace(spec, rule=PAPER_RULE, trim_outliers=False, evidence_settings=None)
    for r in range(spec.replicates):
        done = {o.candidate_id: o for o in outcomes if o.replicate == r and o.done}
        voters, _ = voting_candidates(candidates, set(done))
        if _cannot_vote(voters, spec.mode) is not None:
            continue
        uris = {c.id: _uri(done[c.id]) for c in voters}
        table = run_selection(voters, uris, own, centre_bias=False, agreement=False).table
        for cid, f in zip(table["candidate_id"], table["f_miou"], strict=True):
            out.setdefault(cid, {})[r] = float(f)
    return out


def _sweep_of(c: Candidate) -> str:
    # As selection.tables names it: the default candidate sits in every sweep.
    if GRID_GROUP in c.sweeps:
        return GRID_GROUP
    return "default" if c.is_default else c.sweeps[0]


def _row(
    c: Candidate, voted: pd.DataFrame | None, mine: Sequence[Outcome], replicates: int, provisional: bool
) -> dict[str, Any]:
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
    done = [o for o in mine if o.done]
    if any(o.status == STOPPED for o in mine):
        row["status"] = STOPPED
    elif len(done) == replicates:
        row["status"] = "done"
    else:  # while the search runs, unfinished is not failed
        row["status"] = "pending" if provisional else "partial" if done else "failed"
    row["error"] = next((o.error for o in mine if o.error), None)
    for o in mine:  # per-replicate labelled metrics (audit only; the vote uses none)
        for metric in {**dict.fromkeys(METRIC_COLUMNS), **o.metrics}:
            column = f"{METRIC_COLUMNS.get(metric, metric)}__rep{o.replicate}"
            row[column] = o.metrics.get(metric, float("nan"))
    source = min(done or mine, key=lambda o: o.replicate, default=None)
    for key, value in (source.info if source is not None else {}).items():
        if key in row:
            raise SelectionError(f"candidate {c.id!r}: outcome field {key!r} clashes with a results column")
        row[key] = value
    return row


def _job_table(
    candidates: Sequence[Candidate],
    result: SelectionResult | None,
    outcomes: Sequence[Outcome],
    replicates: int,
    provisional: bool,
    per_replicate: Mapping[str, Mapping[int, float]] | None,
) -> pd.DataFrame:
    """One row per candidate: the selection's columns where it voted, plus status and errors."""
    voted = result.table.set_index("candidate_id", drop=False) if result is not None else None
    rows = [
        _row(c, voted, [o for o in outcomes if o.candidate_id == c.id], replicates, provisional)
        for c in candidates
    ]
    table = pd.DataFrame(rows)
    if "true_miou" not in table.columns:  # no labelled target split: the column says so
        table["true_miou"] = float("nan")
    if per_replicate is not None:
        for r in range(replicates):
            table[f"f_miou__rep{r}"] = [per_replicate.get(c.id, {}).get(r, float("nan")) for c in candidates]
    first = ["candidate_id", "status"]
    return table[first + [k for k in table.columns if k not in first]]


def _job_choice(
    candidates: Sequence[Candidate],
    result: SelectionResult | None,
    notes: list[str],
    outcomes: Sequence[Outcome],
    provisional: bool,
) -> Choice:
    stopped = {o.candidate_id for o in outcomes if o.status == STOPPED}
    unfinished = [
        c.id
        for c in candidates
        if c.id not in stopped and not any(o.candidate_id == c.id and o.done for o in outcomes)
    ]
    if result is not None:
        notes = list(notes) + list(result.notes)
        choice = result.choice
    else:
        choice = Choice.no_vote(notes)
    if not provisional and unfinished:
        left_out = ", ".join(unfinished)
        notes.insert(0, f"{len(unfinished)} candidate(s) failed and were left out of the vote: {left_out}.")
    return dataclasses.replace(
        choice,
        notes=list(notes),
        unfinished=unfinished if provisional else None,
        failed=None if provisional else unfinished,
        provisional=provisional,
        finished=len(candidates) - len(unfinished) - len(stopped),
        total=len(candidates),
    )


def vote_outcomes(
    candidates: Sequence[Candidate],
    outcomes: Sequence[Outcome],
    spec: SelectionSpec,
    *,
    provisional: bool = False,
) -> JobVote:
    """Vote over the finished candidates of a search; the job's table and choice.

    ``candidates``: every candidate of the search (each gets a row). ``outcomes``: the trials so
    far (``provisional``: the search still runs, unfinished ones are ``pending``) or all of them
    (final: unfinished ones ``failed``). With ``spec.replicates`` > 1 the final vote also scores
    each replicate on its own (``f_miou__rep<r>``). ``spec``: as in run_selection (the evidence
    files are the outcomes' ``evidence_uri``), with the search's ``mode`` and ``replicates``.
    """
    result, notes = _select(candidates, outcomes, spec)
    per_replicate = None
    if spec.replicates > 1 and not provisional:
        per_replicate = _replicate_f_miou(candidates, outcomes, spec)
    table = _job_table(candidates, result, outcomes, spec.replicates, provisional, per_replicate)
    return JobVote(result, table, _job_choice(candidates, result, notes, outcomes, provisional))
