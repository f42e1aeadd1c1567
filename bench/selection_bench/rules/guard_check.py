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
    candidate with its reason, its seed-mean truth and the best truth of each sweep it is in."""
    per_regime: dict[str, dict[str, int]] = {}
    wrong: list[dict[str, Any]] = []
    for regime in scores.regimes:
        truth = scores.mean_truth(regime)
        # A candidate is in several sweeps (the default, broken ones): count it once per seed.
        seen: dict[tuple[int, str], dict[str, Any]] = {}
        for g in scores.groups(regime):
            for cid in g.ids:
                rec = seen.setdefault(
                    (g.seed, cid),
                    {"broken": cid in g.broken, "reason": g.guarded.get(cid, ""), "best_in_sweeps": {}},
                )
                rec["best_in_sweeps"][g.sweep] = max(truth[i] for i in g.ids)
        counts = {"broken": 0, "broken_flagged": 0, "good": 0, "good_flagged": 0}
        for (seed, cid), rec in sorted(seen.items()):
            kind = "broken" if rec["broken"] else "good"
            counts[kind] += 1
            if rec["reason"]:
                counts[f"{kind}_flagged"] += 1
                if kind == "good":
                    wrong.append(
                        {
                            "regime": regime,
                            "seed": seed,
                            "candidate": cid,
                            "reason": rec["reason"],
                            "truth": truth[cid],
                            "best_in_sweeps": rec["best_in_sweeps"],
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
            f"- {w['regime']} seed {w['seed']} {w['candidate']}: {w['reason']}; truth {w['truth']:.2f}; "
            "best in its sweeps: " + ", ".join(f"{k} {v:.2f}" for k, v in w["best_in_sweeps"].items())
            for w in wrong
        ]
    else:
        lines += ["", "The guard flagged no good candidate."]
    return "\n".join(lines) + "\n"
