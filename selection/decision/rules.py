"""Rules: pick one candidate per vote group from a table of label-free validator values.

A table has one row per candidate of the group (index: candidate ids, in the group's order --
ascending parameter value in a sweep) and one column per validator
(:data:`selection.validators.VALIDATORS`). Other columns (``true_miou``, flags) are never read.
Rules are not told which candidates are broken.

Syntax of ``selection.rule`` (YAML; a string or a one-key mapping, nested freely)::

    rule: f_miou                         # one validator: the best by its direction

    rule: {rank_average: [ensv, atc, mixval]}
                                         # mean over the listed rules of each candidate's rank

    rule:
      two_stage:
        drop: f_miou                     # a rule: the bottom `fraction` of the group by it ...
        fraction: 0.5                    # ... (a number in [0, 1)) is dropped,
        pick: source_val_miou            # then this rule picks among the rest

    rule:
      agree:                             # stay at the default setting unless at least `need`
        families: [{rank_average: [source_val_miou, atc, dev]}, {rank_average: [im, bnm]},
                   {rank_average: [f_miou, ensv]}]
        need: 2                          # ... of these rules pick the same other candidate

Items of ``rank_average``, ``drop``/``pick`` and ``families`` may themselves be mappings, e.g.
``{two_stage: {drop: f_miou, fraction: 0.4, pick: {rank_average: [atc, snd]}}}``. On the command
line: ``--set 'selection.rule={rank_average: [ensv, atc]}'``.

Semantics, all deterministic and independent of anything but the table:

* Scores are oriented so that higher is better (a lower-is-better validator is negated). NaN means
  "no evidence" and ranks below every number.
* ``rank_average``: each item's scores are ranked within the group (1 = worst, n = best; equal
  scores share the average rank; NaN ranks lowest, tied among NaNs), the ranks are averaged; a
  candidate that is NaN in every item gets NaN.
* ``two_stage``: with n candidates and k = floor(fraction * n) (at most n - 1), a candidate is
  dropped when at least n - k others score strictly better by ``drop``; so candidates tied at the
  boundary all stay, and a group without any finite ``drop`` score keeps everyone. ``pick`` then
  scores the remaining candidates among themselves (ranks too); dropped ones get NaN.
* ``agree``: each family rule picks (ties to ``prefer``); the candidate picked by the most
  families wins if at least ``need`` of them pick it (a tie between such candidates: ``prefer`` if
  among them, else the better mean family rank); otherwise ``prefer``, the setting one has no
  evidence to leave. Without ``prefer`` in the group, the best score wins: family votes, the mean
  family rank breaking ties. Its :meth:`Rule.scores` cannot know the anchor: they are those votes.
* Ranking: :meth:`Rule.order` lists every candidate best first (the pick first; NaN last) and
  :meth:`Rule.ranks` gives rank numbers (1 = best, ties share the best rank, NaN has none).
* Picking: the highest score wins. Ties (exactly equal scores) go to ``prefer`` (the job passes
  the default setting: no evidence to move away from it) when it is among them, otherwise to the
  first tied candidate in table order. If every score is NaN there is no pick (None).

:attr:`Rule.requires` lists the validators a rule reads; :func:`check_rule` refuses a rule the
configuration cannot feed (seed agreement with ``selection.replicates`` < 2; ATC or source-val
mIoU without a source-val split, explicit or held out of the source) before anything is trained.
Every parsing or feasibility error is a :class:`~selection.errors.SelectionError` naming
``selection.rule`` (or the nested field).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from selection.errors import SelectionError
from selection.validators.registry import VALIDATORS

__all__ = [
    "FIELD",
    "PAPER_RULE",
    "Rule",
    "Single",
    "RankAverage",
    "TwoStage",
    "Agree",
    "parse_rule",
    "rule_needs",
    "check_rule",
    "all_picks",
]

FIELD = "selection.rule"
PAPER_RULE = "f_miou"


class Rule(ABC):
    """A way to pick one candidate from a group's validator table."""

    @property
    @abstractmethod
    def requires(self) -> frozenset[str]:
        """Names of the validators the rule reads."""

    @property
    @abstractmethod
    def text(self) -> str:
        """Canonical one-line form, e.g. ``two_stage(drop=f_miou, fraction=0.5, pick=ensv)``."""

    @abstractmethod
    def to_config(self) -> str | dict[str, Any]:
        """The YAML/JSON value that parses back to this rule."""

    @abstractmethod
    def scores(self, table: pd.DataFrame) -> pd.Series:
        """Higher-is-better score per candidate (table index); NaN where it cannot judge."""

    @property
    @abstractmethod
    def description(self) -> str:
        """One sentence for people: what the rule does."""

    def pick(self, table: pd.DataFrame, prefer: str | None = None) -> str | None:
        """The chosen candidate id (ties: ``prefer`` if tied, else the first in table order)."""
        return _best(self.scores(_check_table(table, self.requires)), prefer)

    def order(self, table: pd.DataFrame, prefer: str | None = None) -> list[str]:
        """Every candidate of the table, best first; ``order(t, p)[0] == pick(t, p)`` when there is a pick.

        Higher score first; among equal scores ``prefer`` first, then table order; candidates the
        rule cannot judge (NaN) last, in table order. (Label-free early stopping stops the bottom.)
        """
        scores = self.scores(_check_table(table, self.requires)).to_numpy(dtype=np.float64)
        ids = [str(i) for i in table.index]
        key = {
            cid: (bool(np.isnan(v)), 0.0 if np.isnan(v) else -v, cid != prefer, k)
            for k, (cid, v) in enumerate(zip(ids, scores, strict=True))
        }
        return sorted(ids, key=key.__getitem__)

    def ranks(self, table: pd.DataFrame) -> pd.Series:
        """Rank of each candidate (1 = best; equal scores share the best rank of their tie; NaN: none)."""
        scores = self.scores(_check_table(table, self.requires)).astype(float)
        return scores.rank(method="min", ascending=False, na_option="keep")

    def __str__(self) -> str:
        return self.text


def _check_table(table: pd.DataFrame, requires: frozenset[str]) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise SelectionError(
            f"a rule needs a pandas DataFrame of validator values, got {type(table).__name__}"
        )
    if not table.index.is_unique:
        raise SelectionError(f"candidate ids in the validator table are not unique: {list(table.index)}")
    missing = sorted(requires - set(table.columns))
    if missing:
        raise SelectionError(f"the validator table lacks column(s) {missing} (has {list(table.columns)})")
    return table


def _best(scores: pd.Series, prefer: str | None) -> str | None:
    vals = scores.to_numpy(dtype=np.float64)
    if len(vals) == 0 or np.all(np.isnan(vals)):
        return None
    top = np.nanmax(vals)
    tied = [str(i) for i, v in zip(scores.index, vals, strict=True) if v == top]
    return prefer if prefer in tied else tied[0]


def _ranks(scores: pd.Series) -> pd.Series:
    # ascending: 1 = worst; NaN below every number ("top" of an ascending ranking = the lowest ranks)
    return scores.rank(method="average", ascending=True, na_option="top")


@dataclass(frozen=True)
class Single(Rule):
    validator: str

    @property
    def requires(self) -> frozenset[str]:
        return frozenset({self.validator})

    @property
    def text(self) -> str:
        return self.validator

    def to_config(self) -> str:
        return self.validator

    @property
    def description(self) -> str:
        spec = VALIDATORS[self.validator]
        way = "higher" if spec.higher_is_better else "lower"
        return f"the best by {self.validator} ({spec.description}; {way} is better)"

    def scores(self, table: pd.DataFrame) -> pd.Series:
        col = pd.to_numeric(_check_table(table, self.requires)[self.validator], errors="raise").astype(float)
        return col if VALIDATORS[self.validator].higher_is_better else -col


@dataclass(frozen=True)
class RankAverage(Rule):
    items: tuple[Rule, ...]

    @property
    def requires(self) -> frozenset[str]:
        return frozenset().union(*(r.requires for r in self.items))

    @property
    def text(self) -> str:
        return f"rank_average({', '.join(r.text for r in self.items)})"

    def to_config(self) -> dict[str, Any]:
        return {"rank_average": [r.to_config() for r in self.items]}

    @property
    def description(self) -> str:
        return f"the best mean rank within the group over {', '.join(r.text for r in self.items)}"

    def scores(self, table: pd.DataFrame) -> pd.Series:
        _check_table(table, self.requires)
        item_scores = pd.concat([r.scores(table) for r in self.items], axis=1)
        mean_rank = pd.concat([_ranks(item_scores[c]) for c in item_scores.columns], axis=1).mean(axis=1)
        return mean_rank.where(item_scores.notna().any(axis=1))


@dataclass(frozen=True)
class TwoStage(Rule):
    drop: Rule
    fraction: float
    then: Rule

    @property
    def requires(self) -> frozenset[str]:
        return self.drop.requires | self.then.requires

    @property
    def text(self) -> str:
        return f"two_stage(drop={self.drop.text}, fraction={self.fraction:g}, pick={self.then.text})"

    def to_config(self) -> dict[str, Any]:
        return {
            "two_stage": {
                "drop": self.drop.to_config(),
                "fraction": self.fraction,
                "pick": self.then.to_config(),
            }
        }

    @property
    def description(self) -> str:
        return (
            f"drop the bottom {self.fraction:.0%} of the group by {self.drop.text}, "
            f"then the best by {self.then.text} among the rest"
        )

    def kept(self, table: pd.DataFrame) -> list[str]:
        """The candidates that survive the first stage, in table order."""
        d = self.drop.scores(_check_table(table, self.requires)).to_numpy(dtype=np.float64)
        n = len(d)
        k = min(math.floor(self.fraction * n), n - 1)
        # How many score strictly better: NaN is beaten by every number, equal scores beat nobody.
        better = [np.count_nonzero(~np.isnan(d)) if np.isnan(x) else np.count_nonzero(d > x) for x in d]
        return [str(cid) for cid, b in zip(table.index, better, strict=True) if not (k > 0 and b >= n - k)]

    def scores(self, table: pd.DataFrame) -> pd.Series:
        keep = self.kept(table)
        inner = self.then.scores(table.loc[keep])
        return inner.reindex(table.index)


@dataclass(frozen=True)
class Agree(Rule):
    families: tuple[Rule, ...]
    need: int

    @property
    def requires(self) -> frozenset[str]:
        return frozenset().union(*(r.requires for r in self.families))

    @property
    def text(self) -> str:
        return f"agree({self.need} of: {'; '.join(r.text for r in self.families)})"

    def to_config(self) -> dict[str, Any]:
        return {"agree": {"families": [r.to_config() for r in self.families], "need": self.need}}

    @property
    def description(self) -> str:
        return (
            f"the default setting, unless at least {self.need} of {len(self.families)} independent rules "
            f"({'; '.join(r.text for r in self.families)}) pick the same other candidate"
        )

    def _votes(self, table: pd.DataFrame, prefer: str | None) -> pd.Series:
        votes = pd.Series(0.0, index=table.index)
        for r in self.families:
            p = r.pick(table, prefer)
            if p is not None:
                votes[p] += 1
        return votes

    def scores(self, table: pd.DataFrame) -> pd.Series:
        _check_table(table, self.requires)
        # Family votes, the mean family rank (in [1, n]) breaking ties within a vote count.
        rank = RankAverage(self.families).scores(table)
        return (self._votes(table, None) + rank / (len(table) + 1)).where(rank.notna())

    def pick(self, table: pd.DataFrame, prefer: str | None = None) -> str | None:
        _check_table(table, self.requires)
        if prefer is None or prefer not in table.index:
            return _best(self.scores(table), None)
        votes = self._votes(table, prefer)
        if votes.max() < self.need:
            return prefer
        winners = votes[votes == votes.max()]
        if prefer in winners.index:
            return prefer
        # Mean family rank within the whole group.
        return _best(RankAverage(self.families).scores(table).loc[winners.index], None)

    def order(self, table: pd.DataFrame, prefer: str | None = None) -> list[str]:
        first = self.pick(table, prefer)
        rest = [c for c in super().order(table, prefer) if c != first]
        return rest if first is None else [first, *rest]


def parse_rule(value: Any, field: str = FIELD) -> Rule:
    """A :class:`Rule` from a config value (string or one-key mapping); errors name ``field``."""
    if isinstance(value, Rule):
        return value
    if isinstance(value, str):
        name = value.strip()
        if name not in VALIDATORS:
            raise SelectionError(
                f"{field}: unknown rule {value!r}; a rule is a validator name ({', '.join(VALIDATORS)}) "
                "or a mapping {rank_average: [...]} / {two_stage: {drop, fraction, pick}}"
            )
        return Single(name)
    if not isinstance(value, Mapping) or len(value) != 1:
        raise SelectionError(
            f"{field}: expected a validator name or a mapping with one key (rank_average, two_stage, "
            f"agree); got {value!r}"
        )
    ((kind, arg),) = value.items()
    if kind == "rank_average":
        where = f"{field}.rank_average"
        if isinstance(arg, (str, bytes)) or not isinstance(arg, (list, tuple)) or len(arg) < 1:
            raise SelectionError(f"{where}: expected a non-empty list of rules, got {arg!r}")
        items = tuple(parse_rule(a, f"{where}[{i}]") for i, a in enumerate(arg))
        if len(set(items)) != len(items):
            raise SelectionError(f"{where}: lists a rule twice: {[r.text for r in items]}")
        return RankAverage(items)
    if kind == "two_stage":
        where = f"{field}.two_stage"
        if not isinstance(arg, Mapping) or set(arg) != {"drop", "fraction", "pick"}:
            raise SelectionError(
                f"{where}: expected a mapping with exactly drop, fraction and pick; got {arg!r}"
            )
        frac = arg["fraction"]
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= float(frac) < 1:
            raise SelectionError(f"{where}.fraction: expected a number in [0, 1), got {frac!r}")
        return TwoStage(
            parse_rule(arg["drop"], f"{where}.drop"), float(frac), parse_rule(arg["pick"], f"{where}.pick")
        )
    if kind == "agree":
        where = f"{field}.agree"
        if not isinstance(arg, Mapping) or set(arg) != {"families", "need"}:
            raise SelectionError(f"{where}: expected a mapping with exactly families and need; got {arg!r}")
        fams = arg["families"]
        if isinstance(fams, (str, bytes)) or not isinstance(fams, (list, tuple)) or len(fams) < 2:
            raise SelectionError(f"{where}.families: expected a list of at least two rules, got {fams!r}")
        families = tuple(parse_rule(a, f"{where}.families[{i}]") for i, a in enumerate(fams))
        if len(set(families)) != len(families):
            raise SelectionError(f"{where}.families: lists a rule twice: {[r.text for r in families]}")
        need = arg["need"]
        if isinstance(need, bool) or not isinstance(need, int) or not 1 <= need <= len(families):
            raise SelectionError(f"{where}.need: expected an integer in [1, {len(families)}], got {need!r}")
        return Agree(families, need)
    raise SelectionError(f"{field}: unknown rule kind {kind!r}; expected rank_average, two_stage or agree")


def rule_needs(rule: Rule) -> frozenset[str]:
    """What the candidates must produce for ``rule`` (the registry's ``needs`` vocabulary)."""
    return frozenset().union(*(VALIDATORS[v].needs for v in rule.requires))


def check_rule(rule: Any, *, replicates: int, has_source_val: bool, field: str = FIELD) -> Rule:
    """Parse ``rule`` and refuse it if the configuration cannot provide what it needs (names the fields)."""
    parsed = parse_rule(rule, field)
    uses = {
        need: sorted(v for v in parsed.requires if need in VALIDATORS[v].needs) for need in rule_needs(parsed)
    }
    if "replicates" in uses and replicates < 2:
        raise SelectionError(
            f"{field} {parsed.text!r} uses {', '.join(uses['replicates'])}, which needs "
            "selection.replicates >= 2 (independently trained replicates, each with its own warm-up); "
            f"selection.replicates is {replicates}"
        )
    source = sorted(set(uses.get("source_probs", [])) | set(uses.get("source_val_miou", [])))
    if source and not has_source_val:
        raise SelectionError(
            f"{field} {parsed.text!r} uses {', '.join(source)}, which needs a labelled source validation "
            "split: data.source_val is not set and none is held out of data.source "
            "(data.source_val_holdout is null)"
        )
    return parsed


def all_picks(
    table: pd.DataFrame, rules: Mapping[str, Any] | None = None, prefer: str | None = None
) -> dict[str, str | None]:
    """Every registered validator's pick (for the validator columns present), then each named rule's.

    ``rules``: label -> rule (config value or :class:`Rule`), e.g. ``{"rule": cfg.selection.rule}``.
    """
    _check_table(table, frozenset())
    out: dict[str, str | None] = {v: Single(v).pick(table, prefer) for v in VALIDATORS if v in table.columns}
    for label, r in (rules or {}).items():
        out[str(label)] = parse_rule(r).pick(table, prefer)
    return out
