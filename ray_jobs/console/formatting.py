"""What the job's console says about candidates and the choice: trial names, the running pick after
a provisional vote, and the closing lines (stdout): the choice, its confidence and where the
outputs are."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ray.tune.experiment import Trial

from selection import format_value

__all__ = ["candidate_label", "TrialNames", "provisional_line", "summary_lines"]


def candidate_label(spec: Mapping[str, Any], replicates: int) -> str:
    cid = str(spec["candidate_id"])
    return f"{cid} [rep {spec['replicate']}]" if replicates > 1 else cid


class TrialNames:
    """Tune's ``trial_name_creator``: a trial is named by its candidate (``alpha=0.1``), not a hash."""

    def __init__(self, replicates: int) -> None:
        self.replicates = replicates

    def __call__(self, trial: Trial) -> str:
        return candidate_label(trial.config["candidate"], self.replicates)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, int | float) else "n/a"


def provisional_line(choice: Mapping[str, Any]) -> str | None:
    """The configured rule's running pick after a provisional vote, in each vote group, with the
    pick's F-mIoU (the one number every rule's table has)."""
    per_sweep = choice.get("per_sweep") or {}
    if not per_sweep:
        return None
    picks = []
    for group, info in per_sweep.items():
        if info.get("candidate_id") is None:
            continue
        value = info.get("value")
        label = f"{group}={format_value(value)}" if value is not None else str(info["candidate_id"])
        picks.append(f"{label} (F-mIoU {_fmt(info.get('f_miou'))})")
    rule = (choice.get("rule") or {}).get("text") or choice.get("score_used") or "f_miou"
    return (
        f"running pick by {rule}, {choice.get('finished', '?')} of {choice.get('total', '?')} candidates "
        f"finished: {', '.join(picks) or 'none yet'}"
    )


def _confidence(choice: Mapping[str, Any]) -> str:
    given = choice.get("confidence")
    if isinstance(given, str):
        return given
    if isinstance(given, Mapping):
        level = given.get("level") or given.get("label")
        why = given.get("reason") or given.get("reasons") or given.get("summary")
        if isinstance(why, list):
            why = "; ".join(map(str, why))
        if level or why:
            return ": ".join(str(x) for x in (level, why) if x)
        return json.dumps(given, default=str)
    if given is not None:
        return str(given)
    # No confidence field yet: what the centre-bias diagnostic and the trimming found.
    bound = [str(p) for p in choice.get("centre_bound") or []]
    degenerate = [str(c) for c in choice.get("degenerate") or []]
    parts = []
    if bound:
        parts.append(
            f"weak: the pick follows the centre of the grid ({', '.join(bound)} centre-bound), "
            "which F-mIoU favours whatever the truth"
        )
    if degenerate:
        parts.append(f"degenerate candidates left out of the vote: {', '.join(degenerate)}")
    if not parts:
        return "no sweep is centre-bound and no candidate degenerate"
    return "; ".join(parts)


_SCORE_NAMES = {"f_miou": "F-mIoU", "f_miou_trimmed": "F-mIoU of the trimmed vote"}


def summary_lines(choice: Mapping[str, Any], experiment_root: str) -> list[str]:
    """The closing lines: the choice, its confidence, where the outputs are."""
    params = choice.get("parameters") or {}
    # The parameters the search chose (a sweep's); a grid chose them all.
    swept = [p for p in (choice.get("per_sweep") or {}) if p in params] or list(params)
    chosen = ", ".join(f"{p}={format_value(params[p])}" for p in swept) or "none"
    cid = choice.get("candidate_id")
    trained = f"candidate {cid!r}" if cid else "a combination not itself trained"
    score = choice.get("score_used", "f_miou")
    rule = (choice.get("rule") or {}).get("text")
    # choice.json 2 names the rule that picked; its f_miou is the picks' F-mIoU whatever the rule
    how = f"rule {rule}; F-mIoU" if rule else _SCORE_NAMES.get(score, score)
    lines = [f"Choice: {chosen} ({trained}; {how} {_fmt(choice.get('f_miou'))})"]
    failed = choice.get("failed") or []
    if failed:
        lines.append(f"Failed: {', '.join(map(str, failed))} (left out of the vote)")
    lines.append(f"Confidence: {_confidence(choice)}")
    lines.append(
        f"Outputs: {experiment_root} (choice.json, candidates.parquet, dashboard.html; "
        f"tensorboard --logdir {experiment_root})"
    )
    return lines
