"""The job's records, each with one owner: a trial's status, a candidate's result, and early
stopping's decision.

A candidate replicate's result record (``results/<candidate>.rep<r>.json``) is written last by
its Train worker of rank 0 (its presence means "finished" to a restarted job) and read back by the
Tune trial of a restarted job and by the job when it collects the outcomes; both go through
:class:`CandidateResult`.

``early_stop.json`` is written once per search, by the vote actor, and read by the scheduler (to
carry the cut out, or to keep it in a restored job), by the Train trial (a cut candidate of a
restored job trains no more), by the final vote (the choice's note) and by the job (the rung
columns of ``candidates.parquet``). All of them go through :class:`EarlyStopFile`; a file that
does not hold what the job wrote is refused naming the file and the field.

A trial's outcome, the dict the vote actor hands ``selection.run.outcomes.Outcome.from_record`` (its
parser: ``selection`` does not import the job), is built by :func:`outcome_record` only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ray_jobs.storage import ExperimentPaths, exists, read_bytes, write_bytes_atomic

__all__ = [
    "TrialStatus",
    "RecordError",
    "CandidateResult",
    "RungEntry",
    "EarlyStopFile",
    "stopped_early",
    "outcome_record",
]


class TrialStatus(StrEnum):
    """How a trial (one candidate replicate) ended, as the outcome records and tables say it."""

    DONE = "done"  # trained every round; its result record is stored
    FAILED = "failed"  # ended with an error, for good
    STOPPED = "stopped"  # cut by label-free early stopping at the rung


class RecordError(ValueError):
    """A stored record does not hold what the job wrote there."""


def _field(doc: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise RecordError(f"{where}: field {key!r} is missing")
    value = doc[key]
    # bool is an int to Python, never a number here.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise RecordError(f"{where}: field {key!r}: expected {types}, got {value!r}")
    if not isinstance(value, types):
        raise RecordError(f"{where}: field {key!r}: expected {types}, got {value!r}")
    return value


def _str_list(doc: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = _field(doc, key, list, where)
    if not all(isinstance(v, str) for v in value):
        raise RecordError(f"{where}: field {key!r}: expected a list of strings, got {value!r}")
    return list(value)


def _optional_str(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    # Absent reads as None: the job read these fields with .get() before this record owned them.
    return _field(doc, key, (str, type(None)), where) if key in doc else None


def _metrics(doc: Mapping[str, Any], key: str, where: str) -> dict[str, float]:
    value = _field(doc, key, dict, where)
    for name, v in value.items():
        if not isinstance(name, str) or isinstance(v, bool) or not isinstance(v, (int, float)):
            raise RecordError(f"{where}: field {key!r}: expected names to numbers, got {name!r}: {v!r}")
    return dict(value)


def _read_json(uri: str) -> Any:
    try:
        return json.loads(read_bytes(uri))
    except json.JSONDecodeError as e:
        raise RecordError(f"{uri}: not JSON ({e})") from e


def _score(doc: Mapping[str, Any], key: str, where: str) -> float | None:
    value = _field(doc, key, (int, float, type(None)), where)
    return None if value is None else float(value)


@dataclass(frozen=True)
class CandidateResult:
    """One finished candidate replicate: where its files are, its labelled metrics (audit only),
    and the Ray node it last trained on (``node`` its id, ``node_name`` its name or IP)."""

    candidate_id: str
    replicate: int
    seed: int
    params: dict[str, Any]
    prediction_uri: str
    evidence_uri: str | None  # the voting replicate's (0) evidence file; None for the others
    metrics: dict[str, float]
    node: str | None = None
    node_name: str | None = None

    @classmethod
    def from_dict(cls, doc: Any, where: str = "result record") -> CandidateResult:
        if not isinstance(doc, Mapping):
            raise RecordError(f"{where}: expected an object, got {type(doc).__name__}")
        return cls(
            candidate_id=_field(doc, "candidate_id", str, where),
            replicate=_field(doc, "replicate", int, where),
            seed=_field(doc, "seed", int, where),
            params=dict(_field(doc, "params", dict, where)),
            prediction_uri=_field(doc, "prediction_uri", str, where),
            evidence_uri=_optional_str(doc, "evidence_uri", where),
            metrics=_metrics(doc, "metrics", where),
            node=_optional_str(doc, "node", where),
            node_name=_optional_str(doc, "node_name", where),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidate_id": self.candidate_id,
            "replicate": self.replicate,
            "seed": self.seed,
            "params": dict(self.params),
            "prediction_uri": self.prediction_uri,
            "evidence_uri": self.evidence_uri,
            "metrics": dict(self.metrics),
            "node": self.node,
            "node_name": self.node_name,
        }

    @classmethod
    def read(cls, uri: str) -> CandidateResult | None:
        """The record at ``uri``, or None while the candidate replicate has not finished."""
        if not exists(uri):
            return None
        return cls.from_dict(_read_json(uri), uri)

    def write(self, uri: str) -> None:
        write_bytes_atomic(uri, json.dumps(self.as_dict(), indent=1).encode())


@dataclass(frozen=True)
class RungEntry:
    """One candidate at the rung: its vote group, score (None: not scored, e.g. a two-stage rule's
    first stage dropped it), rank within its group, F-mIoU there, and whether it went on."""

    group: str
    score: float | None
    rank: int
    f_miou: float | None
    kept: bool

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> RungEntry:
        if not isinstance(doc, Mapping):
            raise RecordError(f"{where}: expected an object, got {doc!r}")
        return cls(
            group=_field(doc, "group", str, where),
            score=_score(doc, "score", where),
            rank=_field(doc, "rank", int, where),
            f_miou=_score(doc, "f_miou", where),
            kept=_field(doc, "kept", bool, where),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "score": self.score,
            "rank": self.rank,
            "f_miou": self.f_miou,
            "kept": self.kept,
        }


@dataclass(frozen=True)
class EarlyStopFile:
    """``early_stop.json``: which candidates stopped after round ``after_round``, and why."""

    after_round: int
    keep: float
    rule: str
    stopped: list[str]
    candidates: dict[str, RungEntry] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, doc: Any, where: str = "early_stop.json") -> EarlyStopFile:
        """From the JSON document (``selection``'s decision as a dict, with the settings added)."""
        if not isinstance(doc, Mapping):
            raise RecordError(f"{where}: expected an object, got {type(doc).__name__}")
        keep = float(_field(doc, "keep", (int, float), where))
        if not math.isfinite(keep):
            raise RecordError(f"{where}: field 'keep': expected a finite number, got {keep!r}")
        entries = _field(doc, "candidates", dict, where)
        return cls(
            after_round=_field(doc, "after_round", int, where),
            keep=keep,
            rule=_field(doc, "rule", str, where),
            stopped=_str_list(doc, "stopped", where),
            candidates={
                cid: RungEntry.from_dict(e, f"{where}: candidates.{cid}") for cid, e in entries.items()
            },
            notes=_str_list(doc, "notes", where),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "after_round": self.after_round,
            "keep": self.keep,
            "rule": self.rule,
            "stopped": list(self.stopped),
            "candidates": {cid: e.as_dict() for cid, e in self.candidates.items()},
            "notes": list(self.notes),
        }

    @classmethod
    def read(cls, paths: ExperimentPaths) -> EarlyStopFile | None:
        """The experiment's decision, or None before early stopping decided (or without it)."""
        if not exists(paths.early_stop):
            return None
        return cls.from_dict(_read_json(paths.early_stop), paths.early_stop)

    def write(self, paths: ExperimentPaths) -> None:
        write_bytes_atomic(paths.early_stop, json.dumps(self.as_dict(), indent=1).encode())


def stopped_early(paths: ExperimentPaths) -> set[str]:
    """Candidates label-free early stopping cut (empty before any decision, or without it)."""
    decision = EarlyStopFile.read(paths)
    return set(decision.stopped) if decision is not None else set()


def _nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def outcome_record(
    spec: Mapping[str, Any],
    status: TrialStatus,
    *,
    result: CandidateResult | None = None,
    rung: RungEntry | None = None,
    error: str | None = None,
    trial_dir: str | None = None,
    metrics: Mapping[str, float] | None = None,
    provisional: bool = False,
) -> dict[str, Any]:
    """One trial's outcome for the vote: its spec (``ray_jobs.search.trial_specs``), its status, and
    what the job knows of it.

    ``result``: a finished trial's record (given exactly when ``status`` is done, except for a
    provisional outcome). ``rung``: the candidate's entry in early stopping's decision, as the
    ``rung_*`` columns. ``provisional``: the Tune callback's outcome of a trial that just finished,
    from Tune's last result (``metrics``): it names no files and not where the trial ran, so the
    node columns are left out rather than shown empty.
    """
    if (provisional and status != TrialStatus.DONE) or (result is not None) != (
        status == TrialStatus.DONE and not provisional
    ):
        raise ValueError(
            f"outcome of {spec.get('candidate_id')!r}: status {str(status)!r}, provisional={provisional} "
            f"with{'out' if result is None else ''} a result record (only a final done outcome has one)"
        )
    if result is not None and metrics is not None:
        raise ValueError("outcome_record: pass the metrics or the result record, not both")
    record: dict[str, Any] = {
        **spec,
        "status": status,
        "metrics": dict(result.metrics if result is not None else metrics or {}),
        "prediction_uri": result.prediction_uri if result is not None else None,
        "error": error,
        "trial_dir": trial_dir,
    }
    if not provisional:
        record.update(
            evidence_uri=result.evidence_uri if result is not None else None,
            # Where it trained; shown in candidates.parquet.
            node=result.node if result is not None else None,
            node_name=result.node_name if result is not None else None,
        )
    if rung is not None:
        record.update(
            rung_score=_nan(rung.score),
            rung_rank=rung.rank,
            rung_f_miou=_nan(rung.f_miou),
            rung_group=rung.group,
        )
    return record
