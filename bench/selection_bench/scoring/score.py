"""The selection benchmark's scoring stage: the product's outputs and selection on the trained candidates.

For every finished candidate the stage writes what the job's Train worker writes
(:func:`ray_jobs.candidate_outputs.write_candidate_outputs`: label maps of the subset, evidence
with the MixVal and source-val passes) next to its checkpoint, once; ``--rescore`` reuses them and
retrains nothing. Then, per regime and seed, it runs :func:`selection.run.runner.run_selection` (the job's
one selection sequence) over that seed's candidates, the broken ones included as ordinary voters
of every sweep, with the other seeds' label maps as replicates (so ``seed_agreement`` is what a
3-replicate job would compute: each replicate has its own warm-up). Every validator's and every
benchmarked rule's table per sweep is kept in ``scores.json`` per seed (the early-stop stage reads
it). The committed tables come from the same run: every candidate's validator values per vote
group, the round-1 (rung) validators, the confidence the job reports for its default rule
(:mod:`selection_bench.scoring.rows`, :mod:`selection_bench.tables.scores`) and the per-image target-val
counts (:mod:`selection_bench.tables.target_images`); :mod:`selection_bench.rules.table` reads those.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ray_jobs.config import JobConfig
from selection.candidates import Candidate
from selection.config import DEFAULT_RULE
from selection.decision.rules import parse_rule
from selection.run import SelectionSpec
from selection.run.runner import run_selection
from selection.store.subset import select_subset
from selection_bench.layout import FinishedCandidate, finished_candidates, read_json, write_json
from selection_bench.rules import BENCH_RULES
from selection_bench.scoring.rows import group_rows, target_counts
from selection_bench.tables import ScoresTable, TargetImages

log = logging.getLogger(__name__)

__all__ = [
    "Scored",
    "read_scores",
    "rule_tables",
    "score_all",
    "score_seed",
    "seed_candidates",
    "subset_of",
    "tables_of",
    "write_outputs",
]

PREDICTIONS = "predictions.parquet"
EVIDENCE = "evidence.npz"


def subset_of(cfg: JobConfig) -> list[str]:
    """The job's subset for this config (its target-train ids, size and seed)."""
    from hiast.data import build_dataset

    ids = build_dataset(cfg.data.target, cfg.data, with_labels=False).ids
    return select_subset(ids, cfg.selection.subset_size, cfg.selection.subset_seed)


def write_outputs(
    fc: FinishedCandidate, subset: Sequence[str], at_round: int | None = None
) -> tuple[Path, Path]:
    """The candidate's predictions and evidence files (written once, next to its checkpoint): of its
    final model, or (``at_round``) of its model after that round (the early-stopping rung)."""
    from hiast.pipeline import load_model
    from ray_jobs.candidate_outputs import write_candidate_outputs

    d = fc.checkpoint.parent
    checkpoint, prefix = (
        (fc.checkpoint, "") if at_round is None else (d / f"round{at_round}.pt", f"round{at_round}_")
    )
    pred, ev = d / (prefix + PREDICTIONS), d / (prefix + EVIDENCE)
    if not (pred.is_file() and ev.is_file()):
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: no such checkpoint (trained before it was kept?)")
        start = time.process_time()
        write_candidate_outputs(
            load_model(checkpoint),
            fc.config(),
            candidate_id=fc.id,
            subset_ids=list(subset),
            predictions_uri=str(pred),
            evidence_uri=str(ev),
        )
        cpu = time.process_time() - start
        log.info("%s seed %d %s%s: outputs in %.1f CPU s", fc.regime, fc.seed, prefix, fc.id, cpu)
    return pred, ev


def rule_tables(validators: Mapping[str, pd.DataFrame], rules: Mapping[str, Any]) -> dict[str, Any]:
    """Per vote group: its candidates and, per rule, the pick and the scores (JSON-able)."""
    groups = {}
    for group, table in validators.items():
        out = {}
        for label, rule in rules.items():
            r = parse_rule(rule)
            if not r.requires <= set(table.columns):
                continue
            scores = r.scores(table)
            out[label] = {
                "pick": r.pick(table, prefer="default"),
                "scores": {k: (None if not math.isfinite(v) else float(v)) for k, v in scores.items()},
            }
        groups[group] = {"candidates": list(table.index), "rules": out}
    return groups


def seed_candidates(work: Path, regime: str, seed: int) -> tuple[list[FinishedCandidate], list[Candidate]]:
    """One regime and seed's finished candidates, and the same as selection candidates."""
    mine = finished_candidates(work, regime, seed)
    if not mine:
        raise ValueError(f"{work}/{regime}/seed{seed}: no finished candidates")
    default = next(c for c in mine if c.id == "default")
    # Sweeps with at least two finished points (a pilot may have trained one sweep only).
    named = {s for c in mine for s in c.sweeps}
    sweep_names = sorted(g for g in named if sum(g in c.sweeps for c in mine) >= 2)
    return mine, [_candidate(fc, default.params, sweep_names) for fc in mine]


def _candidate(fc: FinishedCandidate, default_params: dict[str, float], sweep_names: list[str]) -> Candidate:
    # Broken candidates take part in every sweep's vote and are ranked there like any other: the
    # rules are never told which are broken.
    sweeps = tuple(sweep_names) if fc.broken else tuple(s for s in fc.sweeps if s in sweep_names)
    varied = tuple(k for k, v in fc.params.items() if float(v) != float(default_params[k]))
    return Candidate(fc.id, dict(fc.params), sweeps, varied, fc.id == "default", fc.id)


def _rung_validators(
    mine: Sequence[FinishedCandidate], cands: Sequence[Candidate], subset: Sequence[str], num_classes: int
) -> dict[str, pd.DataFrame] | None:
    """The validator tables of the round-1 models (the early-stop rung), voted among themselves;
    None (logged) when a candidate has no round-1 checkpoint or the run had one round only."""
    if any(fc.config().selftrain.rounds < 2 for fc in mine):
        return None
    missing = [fc.id for fc in mine if not (fc.checkpoint.parent / "round1.pt").is_file()]
    if missing:
        log.warning(
            "%s seed %d: no round-1 checkpoint for %s: round1.* left NaN",
            mine[0].regime,
            mine[0].seed,
            missing,
        )
        return None
    rung = {fc.id: write_outputs(fc, subset, at_round=1) for fc in mine}
    result = run_selection(
        cands,
        {cid: str(p) for cid, (p, _) in rung.items()},
        SelectionSpec(subset, num_classes),
        evidence_uris={cid: str(e) for cid, (_, e) in rung.items()},
    )
    return result.validators


class Scored(dict):
    """One regime and seed scored: the ``scores.json`` record, plus ``rows`` (scores table rows) and
    ``counts`` (per-image target-val counts) as attributes, kept out of the JSON."""

    rows: list[dict[str, Any]]
    counts: list[pd.DataFrame]


def score_seed(work: Path, regime: str, seed: int, seeds: Sequence[int]) -> Scored:
    """Every validator and benchmarked rule on one regime and seed; written to ``scores.json``."""
    mine, cands = seed_candidates(work, regime, seed)
    cfg = mine[0].config()
    subset = subset_of(cfg)
    default = next(c for c in mine if c.id == "default")
    others = {s: {c.id: c for c in finished_candidates(work, regime, s)} for s in seeds if s != seed}
    uris, evidence, truth = {}, {}, {}
    for fc in mine:
        pred, ev = write_outputs(fc, subset)
        reps = [str(pred)]
        for s in sorted(others):
            if fc.id in others[s]:
                reps.append(str(write_outputs(others[s][fc.id], subset)[0]))
        uris[fc.id], evidence[fc.id], truth[fc.id] = reps, str(ev), 100 * fc.truth
    full = all(len(u) == len(seeds) for u in uris.values())
    # The job's configured default rule: the confidence recorded in the table is the one the job
    # reports for it (the validator tables do not depend on the rule).
    result = run_selection(
        cands,
        uris if full else {k: v[0] for k, v in uris.items()},
        SelectionSpec(subset, cfg.data.num_classes, rule=DEFAULT_RULE),
        evidence_uris=evidence,
        true_miou=truth,
    )
    replicate_seeds = [seed, *sorted(others)] if full else [seed]
    out = Scored(
        {
            "regime": regime,
            "seed": seed,
            "replicate_seeds": replicate_seeds,
            "subset_size": len(subset),
            "truth": truth,
            "broken": [c.id for c in mine if c.broken],
            "warmup_truth": 100 * default.warmup_truth,
            "groups": rule_tables(result.validators, BENCH_RULES),
        }
    )
    write_json(work / regime / f"seed{seed}" / "scores.json", out)
    rung = _rung_validators(mine, cands, subset, cfg.data.num_classes)
    out.rows = group_rows(mine, result, rung, len(replicate_seeds))
    out.counts = [target_counts(fc) for fc in mine]
    return out


def score_all(work: Path, regimes: Sequence[str], seeds: Sequence[int], threads: int = 1) -> list[Scored]:
    """Score every trained (regime, seed). ``threads``: torch's, as the train stage's (``--threads``):
    a convolution summed in another order flips the odd pixel, and the per-image target-val counts
    must add up to the train stage's target-val mIoU exactly (a broken candidate missed by 1.5e-4
    points with 2 threads against training's 1)."""
    torch.set_num_threads(threads)
    out = []
    for regime in regimes:
        for seed in seeds:
            if not (work / regime / f"seed{seed}").is_dir():
                continue
            start = time.perf_counter()
            out.append(score_seed(work, regime, seed, seeds))
            log.info("%s seed %d scored in %.0f s", regime, seed, time.perf_counter() - start)
    return out


def tables_of(scored: Sequence[Scored]) -> tuple[ScoresTable, TargetImages]:
    """The committed tables of everything scored (rows without a round-1 model: NaN there)."""
    if not scored:
        raise ValueError("nothing scored: no finished candidates")
    frame = pd.DataFrame([r for s in scored for r in s.rows])
    for c in frame.columns:
        if c.startswith(("val.", "round1.", "param.")):
            frame[c] = frame[c].astype(float)
    return ScoresTable(frame), TargetImages(
        pd.concat([c for s in scored for c in s.counts], ignore_index=True)
    )


def read_scores(work: Path) -> list[dict[str, Any]]:
    return [read_json(p) for p in sorted(work.glob("*/seed*/scores.json"))]
