"""The choice a selection makes: how it is made (:func:`choose`), the typed record, ``choice.json``.

How the choice is made: within each vote group (a sweep, or the grid) the configured rule
(``selection.rule``, :mod:`selection.decision.rules`) picks from the group's validator table, ties going to
the default candidate (:func:`selection.run.group_scoring.group_scores`). Sweep mode combines each sweep's
picked value into one parameter dict; the combination is only a trained candidate if at most one
sweep moved off the default (noted). Every validator's own pick is kept beside the rule's
(``picks``), the paper's F-mIoU pick among them, and ``confidence`` says when the pick is weak
(:mod:`selection.decision.confidence`).

:meth:`Choice.as_dict` gives its document (``["per_sweep"]["alpha"]["candidate_id"]``), the form
readers written against the JSON (the dashboard) take. In memory, undefined scores are NaN; the
file writes them as null, and :func:`load_choice` reads null back as None.

Which keys a document has (schema version 5):

* always: ``schema_version``, ``parameters``, ``candidate_id``, ``f_miou`` (the mean F-mIoU of the
  groups' picks), ``notes``;
* when a vote took place (``mode`` is set): ``mode``, ``score_used`` (the rule's text),
  ``per_sweep``, ``centre_bound``, ``centre_bias``, ``degenerate``, ``trim_rule``, ``subset``,
  ``num_classes``, ``rule`` (``config``: the rule as configured, normalised; ``text``;
  ``description``), ``picks`` (group -> validator -> its pick, and ``rule`` -> the rule's pick),
  ``confidence`` (``level`` "high"/"low", ``reasons``, and the same per group under ``groups``,
  each with what it was judged on: validators agreeing, the halves' picks, the centre-bias verdict,
  and, since version 5, the families' picks and how many agree),
  ``broken`` (candidate -> why it is broken, :mod:`selection.decision.guard`: never picked);
* written by the Ray job only (None: absent): ``unfinished`` (provisional) or ``failed`` (final),
  ``provisional``, ``finished``, ``total``, ``early_stop`` (label-free early stopping:
  ``after_round``, ``keep``, ``stopped``: the candidates cut at the rung, left out of the vote),
  ``source_val`` (the labelled source-val split: ``origin``, ``images``, ``record``).

Adding a field: give it a default, list it above and bump :data:`CHOICE_SCHEMA_VERSION`; a version
a release has written stays in :data:`READABLE_VERSIONS` (with the default, every older document is
one). No release has written a version before 4. Version 5 added the families' picks to each
group's confidence (a version-4 document reads with none).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, TypeAdapter, ValidationError

from selection.candidates import GRID_GROUP, Candidate
from selection.decision.centre_bias import CentreBias
from selection.decision.confidence import Confidence, overall_confidence
from selection.decision.rules import Rule
from selection.decision.trimming import TrimRule
from selection.errors import SelectionError
from selection.filesystem import read_json_document
from selection.store.subset import subset_hash
from selection.tables import GroupScores, write_json

__all__ = [
    "CHOICE_SCHEMA_VERSION",
    "Choice",
    "SweepChoice",
    "SourceValRecord",
    "CandidateScores",
    "CentreBiasRecord",
    "SubsetRecord",
    "RuleRecord",
    "EarlyStopRecord",
    "READABLE_VERSIONS",
    "VOTED_DOCUMENT_KEYS",
    "load_choice",
    "choose",
    "default_parameters",
]

CHOICE_SCHEMA_VERSION = 5
READABLE_VERSIONS = (4, 5)

_STRICT = ConfigDict(extra="forbid")
_CORE_VOTE_FIELDS = (
    "mode",
    "score_used",
    "per_sweep",
    "centre_bound",
    "centre_bias",
    "degenerate",
    "trim_rule",
    "subset",
    "num_classes",
)
_VOTE_FIELDS = (*_CORE_VOTE_FIELDS, "rule", "picks", "confidence", "broken")
# What a document that holds a vote has at the least (readers that take a plain mapping, such as the
# dashboard, check these).
VOTED_DOCUMENT_KEYS = ("parameters", "candidate_id", "f_miou", "notes", *_CORE_VOTE_FIELDS)
_JOB_FIELDS = ("unfinished", "failed", "provisional", "finished", "total", "early_stop", "source_val")


@dataclass(frozen=True, kw_only=True)
class CandidateScores:
    """One candidate's scores in one vote group (``value``: its value of the sweep's parameter)."""

    __pydantic_config__ = _STRICT

    value: float | None
    f_miou: float | None
    f_miou_trimmed: float | None


@dataclass(frozen=True, kw_only=True)
class SweepChoice:
    """The pick of one vote group (a sweep, or the grid) and every member's scores."""

    __pydantic_config__ = _STRICT

    candidate_id: str | None
    value: float | None
    f_miou: float | None
    f_miou_trimmed: float | None
    score_used: str
    untrimmed_pick: str | None
    centre_bound: bool | None
    degenerate: list[str]
    undecided_fraction: float | None
    candidates: dict[str, CandidateScores]


@dataclass(frozen=True, kw_only=True)
class CentreBiasRecord:
    """The centre-bias verdict for one parameter (see :mod:`selection.decision.centre_bias`)."""

    __pydantic_config__ = _STRICT

    centre_bound: bool | None
    sentence: str
    windows: list[str]
    picks: list[str | None]


@dataclass(frozen=True, kw_only=True)
class SubsetRecord:
    __pydantic_config__ = _STRICT

    size: int
    hash: str


@dataclass(frozen=True, kw_only=True)
class RuleRecord:
    """The rule that picked: as configured (normalised, parses back to it), its text, what it does."""

    __pydantic_config__ = _STRICT

    config: str | dict[str, Any]
    text: str
    description: str

    @classmethod
    def of(cls, rule: Rule) -> RuleRecord:
        return cls(config=rule.to_config(), text=rule.text, description=rule.description)


@dataclass(frozen=True, kw_only=True)
class EarlyStopRecord:
    """Label-free early stopping as configured (``selection.early_stop``) and whom it stopped."""

    __pydantic_config__ = _STRICT

    after_round: int
    keep: float
    stopped: list[str]


@dataclass(frozen=True, kw_only=True)
class SourceValRecord:
    """The labelled source-val split the source-side validators read: ``origin`` says whether the
    config named it or it was held out of ``data.source`` (then ``record`` names the file listing
    the held-out images); ``images``: how many."""

    __pydantic_config__ = _STRICT

    origin: Literal["data.source_val", "held out of data.source"]
    images: int
    record: str | None = None


@dataclass(frozen=True, kw_only=True)
class Choice:
    """What was chosen and why (module docstring: which fields a document carries)."""

    __pydantic_config__ = _STRICT

    schema_version: int = CHOICE_SCHEMA_VERSION
    mode: Literal["sweep", "grid"] | None = None
    parameters: dict[str, float]
    candidate_id: str | None
    f_miou: float | None
    score_used: str | None = None
    per_sweep: dict[str, SweepChoice] = field(default_factory=dict)
    centre_bound: list[str] = field(default_factory=list)
    centre_bias: dict[str, CentreBiasRecord] = field(default_factory=dict)
    degenerate: list[str] = field(default_factory=list)
    trim_rule: str | None = None
    notes: list[str] = field(default_factory=list)
    subset: SubsetRecord | None = None
    num_classes: int | None = None
    rule: RuleRecord | None = None
    picks: dict[str, dict[str, str | None]] = field(default_factory=dict)
    confidence: Confidence | None = None
    unfinished: list[str] | None = None
    failed: list[str] | None = None
    provisional: bool | None = None
    finished: int | None = None
    total: int | None = None
    early_stop: EarlyStopRecord | None = None
    broken: dict[str, str] = field(default_factory=dict)
    source_val: SourceValRecord | None = None

    @classmethod
    def no_vote(cls, notes: list[str]) -> Choice:
        """Nothing could be voted on (too few finished candidates): no parameters, the notes say why."""
        return cls(parameters={}, candidate_id=None, f_miou=None, notes=list(notes))

    @property
    def voted(self) -> bool:
        return self.mode is not None

    def as_dict(self) -> dict[str, Any]:
        """The ``choice.json`` document as Python values (NaN where the file holds null)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if (f.name in _JOB_FIELDS and value is None) or (f.name in _VOTE_FIELDS and not self.voted):
                continue
            out[f.name] = _plain(value)
        return out

    def write(self, uri: str | os.PathLike[str]) -> None:
        """Write ``choice.json`` atomically (NaN as null)."""
        write_json(self.as_dict(), uri)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


_ADAPTER = TypeAdapter(Choice)


def load_choice(uri: str | os.PathLike[str]) -> Choice:
    """Read and validate a stored ``choice.json``; SelectionError naming the file and the field."""
    where = f"choice file {os.fspath(uri)}"
    doc = read_json_document(uri, where, SelectionError)
    version = doc.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise SelectionError(
            f"{where}: schema_version is {version!r}, this version reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    try:
        return _ADAPTER.validate_python(doc)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(document)'}: {err['msg']}" for err in e.errors()
        )
        raise SelectionError(f"{where}: {problems}") from None


def default_parameters(candidates: Sequence[Candidate]) -> dict[str, float]:
    """The default setting; rebuilt from the varied candidates when the default one is missing
    (its training failed): a parameter's default is its value in any candidate that does not vary it.
    """
    for c in candidates:
        if c.is_default:
            return dict(c.params)
    out = dict(candidates[0].params)
    for p in out:
        keep = next((c for c in candidates if p not in c.varied), None)
        if keep is not None:
            out[p] = keep.params[p]
    return out


def _sweep_choice(
    g: str, gs: GroupScores, by_id: Mapping[str, Candidate], centre_bound: bool | None
) -> SweepChoice:
    def value(cid: str) -> float | None:
        return float(by_id[cid].params[g]) if g != GRID_GROUP else None

    return SweepChoice(
        candidate_id=gs.pick,
        value=value(gs.pick) if gs.pick else None,
        f_miou=gs.f_miou.get(gs.pick) if gs.pick else None,
        f_miou_trimmed=gs.f_miou_trimmed.get(gs.pick) if gs.pick else None,
        score_used=gs.score_used,
        untrimmed_pick=gs.untrimmed_pick,
        centre_bound=centre_bound,
        degenerate=list(gs.degenerate),
        undecided_fraction=gs.undecided_fraction,
        candidates={
            i: CandidateScores(value=value(i), f_miou=gs.f_miou[i], f_miou_trimmed=gs.f_miou_trimmed[i])
            for i in gs.ids
        },
    )


def choose(
    candidates: Sequence[Candidate],
    groups: Mapping[str, GroupScores],
    *,
    mode: Literal["sweep", "grid"],
    centre: CentreBias,
    degenerate: Sequence[str],
    trim_rule: TrimRule | None,
    subset_ids: Sequence[str],
    num_classes: int,
    notes: Sequence[str],
    rule: Rule,
) -> Choice:
    """The choice from the groups' picks (module docstring); ``notes`` gain one if a sweep combination
    was not itself a candidate. ``f_miou``: the pick's F-mIoU (grid), or the mean of the sweeps' picks'."""
    by_id = {c.id: c for c in candidates}
    notes = list(notes)
    broken: dict[str, str] = {}
    for gs in groups.values():
        for cid, why in gs.broken.items():
            broken.setdefault(cid, why)
    if broken:
        notes.append(
            "Broken, never picked (on their own outputs, not on agreement): "
            + "; ".join(f"{cid}: {why}" for cid, why in broken.items())
            + "."
        )

    def sweep_bound(g: str) -> bool | None:  # the verdict's flag, in sweep mode only
        if mode != "sweep":
            return None
        return centre.verdicts[g].centre_bound if g in centre.verdicts else None

    score_used = rule.text
    if mode == "grid":
        gs = groups[GRID_GROUP]
        chosen_params = dict(by_id[gs.pick].params) if gs.pick else {}
        chosen_id = gs.pick
        summary = gs.f_miou.get(gs.pick, float("nan")) if gs.pick else float("nan")
    else:
        chosen_params = default_parameters(candidates)
        for g, gs in groups.items():
            if gs.pick is not None:
                chosen_params[g] = by_id[gs.pick].params[g]
        chosen_id = next(
            (
                c.id
                for c in candidates
                if all(float(c.params[p]) == float(v) for p, v in chosen_params.items())
            ),
            None,
        )
        vals = [gs.f_miou[gs.pick] for gs in groups.values() if gs.pick]
        summary = float(np.mean(vals)) if vals else float("nan")
        if chosen_id is None:
            notes.append(
                "The combined choice moves more than one parameter off its default; that combination was not "
                "itself a candidate, so it has not been trained or scored."
            )
    return Choice(
        mode=mode,
        parameters={k: float(v) for k, v in chosen_params.items()},
        candidate_id=chosen_id,
        f_miou=summary,
        score_used=score_used,
        per_sweep={g: _sweep_choice(g, gs, by_id, sweep_bound(g)) for g, gs in groups.items()},
        centre_bound=list(centre.centre_bound),
        centre_bias={
            p: CentreBiasRecord(
                centre_bound=v.centre_bound, sentence=v.sentence, windows=list(v.windows), picks=list(v.picks)
            )
            for p, v in centre.verdicts.items()
        },
        degenerate=list(degenerate),
        trim_rule=trim_rule.describe() if trim_rule else None,
        notes=notes,
        subset=SubsetRecord(size=len(subset_ids), hash=subset_hash(subset_ids)),
        num_classes=num_classes,
        rule=RuleRecord.of(rule),
        picks={g: dict(gs.picks) for g, gs in groups.items()},
        confidence=overall_confidence({g: gs.confidence for g, gs in groups.items()}),
        broken=broken,
    )
