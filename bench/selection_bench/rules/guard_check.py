"""How the job's broken-candidate guard did on the benchmark: broken candidates it caught, and every
good candidate it flagged (each one, with its reason), from the scores table alone.

The benchmark knows which candidates are broken (``broken``: trained with a setting known to
break HIAST); the guard (:mod:`selection.decision.guard`) never sees that marker. A flagged good
candidate costs the search a candidate: the rules stage reports how far it was from its sweep's best.
"""

from __future__ import annotations

from typing import Any

from selection_bench.tables import ScoresTable

__all__ = ["guard_check", "guard_markdown"]


def guard_check(scores: ScoresTable) -> dict[str, Any]:
    """Per regime: broken candidates (per seed) and how many the guard flagged; every flagged good
    candidate with its reason, its seed-mean truth and its sweeps' best truth."""
    per_regime: dict[str, dict[str, int]] = {}
    wrong: list[dict[str, Any]] = []
    for regime in scores.regimes:
        truth = scores.mean_truth(regime)
        seen: set[tuple[int, str]] = set()
        counts = {"broken": 0, "broken_flagged": 0, "good": 0, "good_flagged": 0}
        for g in scores.groups(regime):
            for cid in g.ids:
                if (g.seed, cid) in seen:
                    continue  # a candidate is in several sweeps (the default, broken ones): count it once
                seen.add((g.seed, cid))
                kind = "broken" if cid in g.broken else "good"
                counts[kind] += 1
                if cid in g.guarded:
                    counts[f"{kind}_flagged"] += 1
                    if kind == "good":
                        best = max(truth[i] for i in g.ids)
                        wrong.append(
                            {
                                "regime": regime,
                                "seed": g.seed,
                                "candidate": cid,
                                "reason": g.guarded[cid],
                                "truth": truth[cid],
                                "best_in_sweep": best,
                                "sweep": g.sweep,
                            }
                        )
        per_regime[regime] = counts
    return {"per_regime": per_regime, "good_flagged": wrong}


def guard_markdown(check: dict[str, Any]) -> str:
    lines = [
        "| regime | broken candidates flagged | good candidates flagged |",
        "|---|---|---|",
        *(
            f"| {r} | {c['broken_flagged']} of {c['broken']} | {c['good_flagged']} of {c['good']} |"
            for r, c in check["per_regime"].items()
        ),
    ]
    wrong = check["good_flagged"]
    if wrong:
        lines += ["", "Every good candidate the guard flagged (never picked, so lost to the search):", ""]
        lines += [
            f"- {w['regime']} seed {w['seed']} {w['candidate']} ({w['sweep']}): {w['reason']}; "
            f"truth {w['truth']:.2f}, its sweep's best {w['best_in_sweep']:.2f}"
            for w in wrong
        ]
    else:
        lines += ["", "The guard flagged no good candidate."]
    return "\n".join(lines) + "\n"
