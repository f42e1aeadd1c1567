"""``bench/results/selection_scores.parquet``: every candidate's validator values, one owner.

One row per (regime, seed, vote group, candidate). The issue asks for one row per (regime, seed,
candidate), but the vote validators (F-mIoU and its variants) are relative to the group's voters:
the default candidate has one F-mIoU in the α sweep and another in the γ sweep, and the broken
candidates vote (and can be picked) in every sweep. So a candidate has one row per group it is
in (the evidence validators, the truth and the parameters simply repeat); a table keyed by
candidate alone could not reproduce a single pick.

Columns (every figure in mIoU points where it is an mIoU):

==========================  ===================================================================
regime, seed                the regime (file stem) and the training seed
sweep                       the vote group (a sweep) the row's validator values belong to
position                    the candidate's place in the group (the order rules break ties by)
candidate                   the candidate id (``default``, ``alpha=0.3``, ``broken:...``)
candidate_sweeps            the sweeps the candidate is a point of, comma-joined ("" if broken)
broken, is_default          the broken marker (the rules never see it) and the centre
guard_reason                why the job's broken-candidate guard (``selection.decision.guard``)
                            flagged the candidate ("" if it did not): the job never picks it,
                            in any group of the seed, and neither does the rules stage
param.<name>                every tunable parameter's value
val.<validator>             every validator the group's table had (NaN: not computed there)
group_validators            the columns the group's validator table had, comma-joined (a rule
                            needing another one is skipped there, as the score stage did)
round1.<validator>          the same validators of the round-1 models (the early-stop rung),
                            voted among the round-1 models; NaN where no round-1 checkpoint
target_val_miou             true target-val mIoU of this seed's candidate (final model)
round1_target_val_miou      the same after round 1
source_val_miou             source-val mIoU of this seed's candidate
warmup_target_val_miou      the seed's warm-up on target-val
replicates                  label-map replicates the group's seed agreement used
confidence_rule             the rule the job's confidence below was computed for
job_pick                    that rule's pick in this group, as the job made it ("" if none)
confidence_level            ``selection.decision.confidence``: "high" / "low" for this group ...
confidence_reasons          ... its reasons (JSON list), and its inputs: validators agreeing
confidence_agreeing,        with the pick of those with a value, the centre-bound verdict
confidence_validators,      (NaN when not judged), the rule's picks on the subset's two halves
centre_bound,               (JSON list), each validator family's pick (JSON object,
confidence_half_picks,      ``selection.decision.families``)
confidence_family_picks
==========================  ===================================================================

The per-group fields (``group_validators``, ``confidence_*``, ``job_pick``, ``centre_bound``)
repeat on every row of their group.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from selection.filesystem import write_bytes_atomic

__all__ = [
    "BASE_COLUMNS",
    "PARAM",
    "ROUND1",
    "VAL",
    "Group",
    "ScoresTable",
    "TableError",
    "read_parquet_checked",
    "read_scores_table",
    "write_parquet_atomic",
    "write_scores_table",
]

PARAM, VAL, ROUND1 = "param.", "val.", "round1."
KEY = ("regime", "seed", "sweep", "candidate")
# The job's confidence in the group's pick, and its inputs (one value per group).
CONFIDENCE_COLUMNS = (
    "confidence_rule",
    "job_pick",
    "confidence_level",
    "confidence_reasons",
    "confidence_agreeing",
    "confidence_validators",
    "centre_bound",
    "confidence_half_picks",
    "confidence_family_picks",
)
BASE_COLUMNS = (
    *KEY,
    "position",
    "candidate_sweeps",
    "broken",
    "is_default",
    "guard_reason",
    "group_validators",
    "target_val_miou",
    "round1_target_val_miou",
    "source_val_miou",
    "warmup_target_val_miou",
    "replicates",
    *CONFIDENCE_COLUMNS,
)


class TableError(ValueError):
    """A committed benchmark table that is missing columns or has a bad key; names the file."""


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` through a temporary name, so a reader never sees half a file."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.getvalue())


def read_parquet_checked(path: Path, required: Sequence[str], key: Sequence[str]) -> pd.DataFrame:
    """Read ``path``; TableError naming the file and the missing columns, or a duplicated key."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise TableError(f"{path}: unreadable table ({e})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise TableError(f"{path}: missing column(s) {', '.join(missing)} (written by an older score stage?)")
    dup = frame.duplicated(list(key))
    if dup.any():
        raise TableError(
            f"{path}: key {'/'.join(key)} repeats, e.g. {frame.loc[dup, list(key)].iloc[0].tolist()}"
        )
    return frame


@dataclass(frozen=True)
class Group:
    """One (regime, seed, vote group): its candidates in order and what a rule or oracle needs."""

    regime: str
    seed: int
    sweep: str
    ids: list[str]
    validators: pd.DataFrame  # index: candidate ids in group order; the group's validator columns
    rung: pd.DataFrame  # the same of the round-1 models (all-NaN columns where none)
    seed_truth: dict[str, float]  # this seed's target-val mIoU per candidate
    broken: frozenset[str]
    guarded: dict[str, str]  # the guard's flags of this seed: candidate -> reason (never picked)
    replicates: int
    confidence: dict[str, object]  # the per-group confidence fields of the table

    @property
    def eligible(self) -> pd.DataFrame:
        """The validator table a rule picks from, as in the job: without the guard's flagged candidates."""
        return self.validators.drop(index=list(self.guarded), errors="ignore")


@dataclass(frozen=True)
class ScoresTable:
    """The scores table in memory (``frame``: the file's rows)."""

    frame: pd.DataFrame

    @property
    def validator_names(self) -> list[str]:
        return [c.removeprefix(VAL) for c in self.frame.columns if c.startswith(VAL)]

    @property
    def regimes(self) -> list[str]:
        return sorted(self.frame["regime"].unique())

    def seeds(self) -> list[tuple[str, int]]:
        pairs = self.frame[["regime", "seed"]].drop_duplicates()
        return sorted((str(r), int(s)) for r, s in pairs.itertuples(index=False))

    def mean_truth(self, regime: str) -> dict[str, float]:
        """Per candidate: its target-val mIoU averaged over the regime's seeds (each seed once)."""
        rows = self.frame[self.frame["regime"] == regime].drop_duplicates(["seed", "candidate"])
        return {str(k): float(v) for k, v in rows.groupby("candidate")["target_val_miou"].mean().items()}

    def without_guard(self) -> ScoresTable:
        """The same table as if the job had no broken-candidate guard (every ``guard_reason`` empty):
        what the rule figures were before it, to tell its effect from the rest."""
        return ScoresTable(self.frame.assign(guard_reason=""))

    def groups(self, regime: str | None = None) -> Iterator[Group]:
        """Every (regime, seed, vote group), sorted; the validator frames keep the group's order."""
        frame = self.frame if regime is None else self.frame[self.frame["regime"] == regime]
        for (reg, seed, sweep), rows in frame.groupby(["regime", "seed", "sweep"], sort=True):
            rows = rows.sort_values("position")
            ids = [str(i) for i in rows["candidate"]]
            present = [v for v in str(rows["group_validators"].iloc[0]).split(",") if v]
            index = pd.Index(ids, name="candidate_id")
            vals = pd.DataFrame({v: rows[VAL + v].to_numpy(float) for v in present}, index=index)
            rung_cols = [c for c in rows.columns if c.startswith(ROUND1)]
            rung = pd.DataFrame(
                {c.removeprefix(ROUND1): rows[c].to_numpy(float) for c in rung_cols}, index=index
            )
            first = rows.iloc[0]
            yield Group(
                regime=str(reg),
                seed=int(seed),
                sweep=str(sweep),
                ids=ids,
                validators=vals,
                rung=rung,
                seed_truth=dict(zip(ids, rows["target_val_miou"].astype(float), strict=True)),
                broken=frozenset(i for i, b in zip(ids, rows["broken"], strict=True) if bool(b)),
                guarded={i: str(r) for i, r in zip(ids, rows["guard_reason"], strict=True) if r},
                replicates=int(first["replicates"]),
                confidence={k: first[k] for k in CONFIDENCE_COLUMNS},
            )


def _check(frame: pd.DataFrame, path: Path) -> None:
    if not any(c.startswith(VAL) for c in frame.columns):
        raise TableError(f"{path}: no validator column (val.<name>)")
    for c in frame.columns:
        if c.startswith(VAL) or c.startswith(ROUND1) or c.startswith(PARAM):
            if not pd.api.types.is_float_dtype(frame[c]):
                raise TableError(f"{path}: column {c} must hold floats, has {frame[c].dtype}")


def write_scores_table(table: ScoresTable, path: Path) -> None:
    """Check the columns and write atomically (sorted by regime, seed, group, position)."""
    missing = [c for c in BASE_COLUMNS if c not in table.frame.columns]
    if missing:
        raise TableError(f"{path}: refusing to write a scores table without column(s) {', '.join(missing)}")
    _check(table.frame, path)
    frame = table.frame.sort_values(["regime", "seed", "sweep", "position"]).reset_index(drop=True)
    write_parquet_atomic(frame, path)


def read_scores_table(path: Path) -> ScoresTable:
    """Read and validate ``path`` (TableError naming the file and the missing column)."""
    frame = read_parquet_checked(path, BASE_COLUMNS, KEY)
    _check(frame, path)
    return ScoresTable(frame)
