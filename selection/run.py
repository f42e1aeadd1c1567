"""Score a selection end to end: stream stored predictions, vote, trim, diagnose, choose, audit.

:func:`run_selection` does it all in one process. The Ray vote actor can instead fan image chunks
out over tasks with :func:`selection.plan.accumulate`, merge, and call
:func:`score_from_accumulators` (see :mod:`selection.plan` for the recipe). Both give the same
:class:`SelectionResult`.

How the choice is made: within each vote group (a sweep, or the grid) the candidate with the
highest F-mIoU wins. With trimming on (the default) that is the F-mIoU against the fusion of the
non-degenerate candidates, and degenerate candidates cannot win; the untrimmed (paper) pick is
kept beside it. Sweep mode combines each sweep's winning value into one parameter dict; the
combination is only a trained candidate if at most one sweep moved off the default (noted).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from selection.audit import AUDIT_COLUMNS, AuditScore, audit_group, pick, summarize_audit
from selection.candidates import GRID_GROUP, Candidate, format_value
from selection.centre_bias import CentreBiasVerdict, centre_bias_verdict
from selection.errors import SelectionError
from selection.filesystem import write_bytes_atomic
from selection.fusion import IGNORE_INDEX
from selection.plan import PlanAccumulator, VotePlan, accumulate, make_plan
from selection.scores import ScoreValues, direction, seed_agreement
from selection.subset import save_subset, subset_hash
from selection.tables import GroupScores, build_results_table, write_json, write_parquet
from selection.trimming import DEFAULT_TRIM_RULE, TrimRule, find_degenerate

__all__ = ["SelectionResult", "run_selection", "score_from_accumulators"]

_COMPUTED_SCORES = {"f_miou", "f_miou_trimmed", "seed_agreement"}


@dataclass
class SelectionResult:
    """What a selection produced.

    ``table``: one row per candidate (columns: :mod:`selection.tables`). ``choice``: the dict
    written to ``choice.json``. ``notes``: plain sentences for people (centre-bound sweeps,
    degenerate candidates, caveats). ``windows``: one row per centre-bias window. ``audit``: one row
    per (group, score) when true mIoU was given (columns: :data:`selection.audit.AUDIT_COLUMNS`).
    """

    table: pd.DataFrame
    choice: dict[str, Any]
    notes: list[str]
    windows: pd.DataFrame
    subset_ids: list[str]
    audit: pd.DataFrame | None = None
    verdicts: dict[str, CentreBiasVerdict] = field(default_factory=dict)

    def audit_summary(self) -> pd.DataFrame | None:
        return None if self.audit is None else summarize_audit(self.audit)

    def summary_markdown(self) -> str:
        """A short human report (the dashboard shows it): choice, per-sweep scores, flags, notes."""
        ch = self.choice
        params = ", ".join(f"{k}={format_value(v)}" for k, v in ch["parameters"].items())
        out = [
            f"# Label-free selection ({ch['mode']}, {len(self.table)} candidates, "
            f"{ch['subset']['size']} subset images)",
            "",
            f"**Choice:** {params}  (score: {ch['score_used']}, {_fmt(ch['f_miou'])})",
            "",
        ]
        has_true = "true_miou" in self.table.columns
        for g, info in ch["per_sweep"].items():
            flag = " — centre_bound" if info.get("centre_bound") else ""
            out.append(f"## {g}{flag}")
            out.append("")
            truth_col = " true mIoU |" if has_true else ""
            head = f"| candidate | F-mIoU | F-mIoU trimmed |{truth_col} flags |"
            out.append(head)
            out.append("|" + "---|" * (head.count("|") - 1))
            for cid, s in info["candidates"].items():
                marks = []
                if cid == info["candidate_id"]:
                    marks.append("**picked**")
                if cid in info["degenerate"]:
                    marks.append("degenerate")
                t = ""
                if has_true:
                    tv = self.table.set_index("candidate_id").loc[cid, "true_miou"]
                    t = f" {tv:.4f} |"
                out.append(
                    f"| {cid} | {_fmt(s['f_miou'])} | {_fmt(s['f_miou_trimmed'])} |{t} {' '.join(marks)} |"
                )
            out.append("")
        if self.notes:
            out += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(out)

    def write(self, out_uri: str | os.PathLike[str]) -> dict[str, str]:
        """Write every artefact atomically under ``out_uri`` (local folder or cluster URI prefix)."""
        base = os.fspath(out_uri).rstrip("/")
        paths = {
            "candidates": posixpath.join(base, "candidates.parquet"),
            "windows": posixpath.join(base, "windows.parquet"),
            "choice": posixpath.join(base, "choice.json"),
            "subset": posixpath.join(base, "subset.json"),
            "summary": posixpath.join(base, "summary.md"),
        }
        write_parquet(self.table, paths["candidates"])
        write_parquet(self.windows, paths["windows"])
        if self.audit is not None:
            paths["audit"] = posixpath.join(base, "audit.parquet")
            write_parquet(self.audit, paths["audit"])
        save_subset(paths["subset"], self.subset_ids)
        write_json(self.choice, paths["choice"])
        write_bytes_atomic(paths["summary"], self.summary_markdown().encode())
        return paths


def _fmt(v: Any) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:.4f}"


def _normalise_extra(
    extra_scores: Mapping[str, ScoreValues | Mapping[str, float]] | None, ids: Sequence[str]
) -> tuple[dict[str, dict[str, float]], dict[str, bool]]:
    values: dict[str, dict[str, float]] = {}
    dirs: dict[str, bool] = {}
    for name, given in (extra_scores or {}).items():
        if name in _COMPUTED_SCORES:
            raise SelectionError(f"score {name!r} is computed by the selection itself; do not pass it")
        dirs[name] = direction(name, given)
        vals = given.values if isinstance(given, ScoreValues) else given
        unknown = [k for k in vals if k not in set(ids)]
        if unknown:
            raise SelectionError(f"score {name!r} has values for unknown candidate(s) {unknown}")
        values[name] = {k: float(v) for k, v in vals.items()}
    return values, dirs


def _centre_of_group(group: str, ids: Sequence[str], by_id: Mapping[str, Candidate]) -> str | None:
    """The middle candidate: middle value of a sweep, or every parameter's middle value in a grid."""
    if group != GRID_GROUP:
        return ids[(len(ids) - 1) // 2]
    members = [by_id[i] for i in ids]
    target = {}
    for p in members[0].params:
        vals = sorted({float(c.params[p]) for c in members})
        target[p] = vals[(len(vals) - 1) // 2]
    for c in members:
        if all(float(c.params[p]) == v for p, v in target.items()):
            return c.id
    return None


def _default_params(candidates: Sequence[Candidate]) -> dict[str, float]:
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


def score_from_accumulators(
    plan: VotePlan,
    first: PlanAccumulator,
    trimmed: PlanAccumulator | None = None,
    *,
    extra_scores: Mapping[str, ScoreValues | Mapping[str, float]] | None = None,
    true_miou: Mapping[str, float] | None = None,
) -> SelectionResult:
    """Turn merged pass-1 (and, if trimming flagged anyone, pass-2) counts into a SelectionResult.

    ``extra_scores``: name -> values per candidate id; known names (mean_confidence, mean_entropy,
    rescale_consistency, source_val_miou) take their registered direction, others need
    :class:`ScoreValues`. ``true_miou``: candidate id -> mIoU on labelled data; enables the audit.
    """
    if first.plan.groups != plan.groups or first.plan.members != plan.members:
        raise SelectionError("the pass-1 accumulator was not built from this plan")
    ids = list(plan.candidate_ids)
    by_id = {c.id: c for c in plan.candidates}
    mode = "grid" if plan.vote_groups == (GRID_GROUP,) else "sweep"
    extra, extra_dirs = _normalise_extra(extra_scores, ids)
    notes: list[str] = []

    expected = {}
    if plan.trim_rule is not None:
        for g in plan.vote_groups:
            scores = dict(zip(plan.groups[g], first.fusion[g].f_miou.tolist(), strict=True))
            bad = find_degenerate(scores, plan.trim_rule)
            if bad:
                expected[g] = tuple(bad)
    got = trimmed.plan.degenerate() if trimmed is not None else {}
    if {g: set(v) for g, v in expected.items()} != {g: set(v) for g, v in got.items()}:
        raise SelectionError(
            f"trimming flags {expected or 'nobody'} but the pass-2 accumulator covers {got or 'nothing'}: "
            "build it from plan.trimmed(first)"
        )

    groups: dict[str, GroupScores] = {}
    for g in plan.vote_groups:
        gids = plan.groups[g]
        acc = first.fusion[g]
        f = dict(zip(gids, acc.f_miou.tolist(), strict=True))
        pci = dict(zip(gids, acc.per_class_iou, strict=True))
        deg = expected.get(g, ())
        ft = dict(zip(gids, trimmed.fusion[g].f_miou.tolist(), strict=True)) if deg else dict(f)
        use_trim = plan.trim_rule is not None
        eligible = [i for i in gids if i not in deg]
        chosen = pick(gids, ft if use_trim else f, True, eligible)
        paper = pick(gids, f, True)
        undecided = acc.undecided_pixels / acc.pixels if acc.pixels else float("nan")
        groups[g] = GroupScores(
            g,
            gids,
            f,
            ft,
            pci,
            tuple(deg),
            chosen,
            paper,
            "f_miou_trimmed" if use_trim else "f_miou",
            undecided,
        )
        label = f"sweep {g!r}" if g != GRID_GROUP else "the grid"
        if chosen is None:
            notes.append(f"In {label} no candidate has a finite F-mIoU: the vote decided no pixel.")
        if len(gids) == 2:
            notes.append(
                f"{label[0].upper() + label[1:]} has only 2 candidates: any disagreement is a tie, "
                "so the vote cannot discriminate between them."
            )
        if deg:
            scores_txt = ", ".join(f"{i} {f[i]:.3f}" for i in deg)
            med = float(np.nanmedian(list(f.values())))
            notes.append(
                f"In {label}, {len(deg)} candidate(s) scored far below the rest and are reported as "
                f"degenerate ({scores_txt}; median {med:.3f}; rule: {plan.trim_rule.describe()}). "
                "The vote was redone without them; they cannot be picked."
            )
            if chosen != paper:
                notes.append(
                    f"In {label}, trimming changed the pick from {paper} (paper F-mIoU) to {chosen}."
                )

    all_deg = sorted({i for v in expected.values() for i in v}, key=ids.index)

    # Centre-bias diagnostic: pick of every window's own vote, judged per parameter.
    window_picks = {
        w.name: pick(
            w.candidate_ids,
            dict(zip(w.candidate_ids, first.fusion[w.name].f_miou.tolist(), strict=True)),
            True,
        )
        for w in plan.windows
    }
    by_param: dict[str, list] = {}
    for w in plan.windows:
        by_param.setdefault(w.parameter, []).append(w)
    verdicts: dict[str, CentreBiasVerdict] = {}
    for p, ws in by_param.items():
        name = f"sweep {p!r}" if mode == "sweep" else f"parameter {p!r} (grid lines)"
        verdicts[p] = centre_bias_verdict(name, p, ws, window_picks, exclude=all_deg)
    centre_bound = [p for p, v in verdicts.items() if v.centre_bound]
    centre_ids: set[str] = set()
    for p in centre_bound:
        for w in by_param[p]:
            centre_ids.update(w.candidate_ids)
        if mode == "sweep":
            centre_ids.update(plan.groups[p])
    for v in verdicts.values():
        if v.centre_bound or v.centre_bound is None:
            notes.append(v.sentence)

    # Seed agreement and candidate-candidate agreement from the pairwise sums.
    seed: dict[str, float] = {}
    agreement = None
    if first.agreement is not None:
        mat = first.agreement.matrix()
        k = {m: i for i, m in enumerate(plan.members)}
        prim = [k[i] for i in ids]
        agreement = mat[np.ix_(prim, prim)]
        for cid in ids:
            reps = [k[m] for m in plan.replicates[cid]]
            seed[cid] = seed_agreement(mat[np.ix_(reps, reps)]) if len(reps) >= 2 else float("nan")
    if not any(np.isfinite(v) for v in seed.values()):
        seed = {}

    if true_miou is not None:
        unknown = [k for k in true_miou if k not in set(ids)]
        if unknown:
            raise SelectionError(f"true_miou has values for unknown candidate(s) {unknown}")
    table = build_results_table(
        list(plan.candidates),
        groups,
        agreement=agreement,
        extra_scores=extra,
        seed_agreement=seed,
        replicates={c: len(plan.replicates[c]) for c in ids},
        centre_bound_ids=centre_ids,
        true_miou=true_miou,
    )

    # The choice.
    per_sweep: dict[str, Any] = {}
    for g, gs in groups.items():
        per_sweep[g] = {
            "candidate_id": gs.pick,
            "value": (float(by_id[gs.pick].params[g]) if gs.pick and g != GRID_GROUP else None),
            "f_miou": gs.f_miou.get(gs.pick) if gs.pick else None,
            "f_miou_trimmed": gs.f_miou_trimmed.get(gs.pick) if gs.pick else None,
            "score_used": gs.score_used,
            "untrimmed_pick": gs.untrimmed_pick,
            "centre_bound": (verdicts[g].centre_bound if g in verdicts else None)
            if mode == "sweep"
            else None,
            "degenerate": list(gs.degenerate),
            "undecided_fraction": gs.undecided_fraction,
            "candidates": {
                i: {
                    "value": float(by_id[i].params[g]) if g != GRID_GROUP else None,
                    "f_miou": gs.f_miou[i],
                    "f_miou_trimmed": gs.f_miou_trimmed[i],
                }
                for i in gs.ids
            },
        }
    score_used = next(iter(groups.values())).score_used
    if mode == "grid":
        gs = groups[GRID_GROUP]
        chosen_params = dict(by_id[gs.pick].params) if gs.pick else {}
        chosen_id = gs.pick
        summary = getattr(gs, score_used).get(gs.pick, float("nan")) if gs.pick else float("nan")
    else:
        chosen_params = _default_params(plan.candidates)
        for g, gs in groups.items():
            if gs.pick is not None:
                chosen_params[g] = by_id[gs.pick].params[g]
        chosen_id = next(
            (
                c.id
                for c in plan.candidates
                if all(float(c.params[p]) == float(v) for p, v in chosen_params.items())
            ),
            None,
        )
        vals = [getattr(gs, score_used)[gs.pick] for gs in groups.values() if gs.pick]
        summary = float(np.mean(vals)) if vals else float("nan")
        if chosen_id is None:
            notes.append(
                "The combined choice moves more than one parameter off its default; that combination was not "
                "itself a candidate, so it has not been trained or scored."
            )
    windows_df = _windows_table(plan, first, window_picks, all_deg, true_miou)

    audit_df = None
    if true_miou is not None:
        rows: list[dict] = []
        for g, gs in groups.items():
            sc: dict[str, AuditScore] = {
                "f_miou": AuditScore(gs.f_miou, True),
                "f_miou_trimmed": AuditScore(
                    gs.f_miou_trimmed, True, [i for i in gs.ids if i not in gs.degenerate]
                ),
            }
            for name, vals in extra.items():
                sc[name] = AuditScore(vals, extra_dirs[name])
            if seed:
                sc["seed_agreement"] = AuditScore(seed, True)
            rows += audit_group(g, gs.ids, true_miou, sc, _centre_of_group(g, gs.ids, by_id))
        audit_df = pd.DataFrame(rows, columns=AUDIT_COLUMNS)

    choice = {
        "mode": mode,
        "parameters": {k: float(v) for k, v in chosen_params.items()},
        "candidate_id": chosen_id,
        "f_miou": summary,
        "score_used": score_used,
        "per_sweep": per_sweep,
        "centre_bound": centre_bound,
        "centre_bias": {
            p: {
                "centre_bound": v.centre_bound,
                "sentence": v.sentence,
                "windows": list(v.windows),
                "picks": list(v.picks),
            }
            for p, v in verdicts.items()
        },
        "degenerate": all_deg,
        "trim_rule": plan.trim_rule.describe() if plan.trim_rule else None,
        "notes": notes,
        "subset": {"size": len(plan.subset_ids), "hash": subset_hash(plan.subset_ids)},
        "num_classes": plan.num_classes,
    }
    return SelectionResult(table, choice, notes, windows_df, list(plan.subset_ids), audit_df, verdicts)


def _windows_table(
    plan: VotePlan,
    first: PlanAccumulator,
    window_picks: Mapping[str, str | None],
    degenerate: Sequence[str],
    true_miou: Mapping[str, float] | None,
) -> pd.DataFrame:
    rows = []
    for w in plan.windows:
        f = first.fusion[w.name].f_miou
        row = {
            "parameter": w.parameter,
            "line": w.line,
            "window": w.name,
            "start": w.start,
            "size": w.size,
            "candidate_ids": list(w.candidate_ids),
            "values": [float(v) for v in w.values],
            "f_miou": [float(x) for x in f],
            "centre": w.centre_id,
            "pick": window_picks[w.name],
            "picked_centre": window_picks[w.name] == w.centre_id,
            "assessed": not set(w.candidate_ids) & set(degenerate),
        }
        if true_miou is not None:
            known = [i for i in w.candidate_ids if i in true_miou and np.isfinite(true_miou[i])]
            best = max(known, key=lambda i: true_miou[i]) if known else None
            row["true_best"] = best
            row["pick_regret"] = (
                float(true_miou[best] - true_miou[window_picks[w.name]])
                if best and window_picks[w.name] in true_miou
                else float("nan")
            )
        rows.append(row)
    cols = [
        "parameter",
        "line",
        "window",
        "start",
        "size",
        "candidate_ids",
        "values",
        "f_miou",
        "centre",
        "pick",
        "picked_centre",
        "assessed",
    ] + (["true_best", "pick_regret"] if true_miou is not None else [])
    return pd.DataFrame(rows, columns=cols)


def run_selection(
    candidates: Sequence[Candidate],
    prediction_uris: Mapping[str, str | os.PathLike[str] | Sequence[str | os.PathLike[str]]],
    subset_ids: Sequence[str],
    num_classes: int,
    *,
    extra_scores: Mapping[str, ScoreValues | Mapping[str, float]] | None = None,
    true_miou: Mapping[str, float] | None = None,
    ignore_index: int = IGNORE_INDEX,
    trim_outliers: bool = True,
    trim_rule: TrimRule = DEFAULT_TRIM_RULE,
    centre_bias: bool = True,
    agreement: bool = True,
    device: str | None = None,
) -> SelectionResult:
    """Score every candidate from its stored predictions and choose (one process, two passes at most).

    ``prediction_uris``: candidate id -> predictions file (local path or URI), or a list of
    replicate files (the first votes; all feed seed agreement). ``subset_ids``: the subset, in the
    files' order. ``agreement=False`` skips the candidate-vs-candidate matrix (the costliest part
    on large maps). Raises SelectionError/PredictionStoreError naming candidate, image or file.
    """
    plan = make_plan(
        candidates,
        prediction_uris,
        subset_ids,
        num_classes,
        ignore_index=ignore_index,
        trim_rule=trim_rule if trim_outliers else None,
        centre_bias=centre_bias,
        agreement=agreement,
    )
    first = accumulate(plan, device=device)
    second_plan = plan.trimmed(first)
    second = accumulate(second_plan, device=device) if second_plan is not None else None
    return score_from_accumulators(plan, first, second, extra_scores=extra_scores, true_miou=true_miou)
