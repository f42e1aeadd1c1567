"""The benchmark's requirements on the landscapes, checked on a summary.

Definitions (also written into the report):

* a regime where self-training *helps* / *hurts*: the default candidate (the paper's settings)
  ends above / below the warm-up, in mean truth;
* *spread*: max − min of the mean truth over the regime's sweep candidates (broken excluded);
  required >= 4 points in every regime;
* where self-training helps, the best sweep candidate must beat the warm-up by >= 4 points;
* the α optimum must sit at different grid positions across regimes, at least one interior and
  one at a high value; each counts only if it stands clear (best value of its sweep in every seed).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MIN_SPREAD", "MIN_GAIN", "check_requirements", "requirements_markdown"]

MIN_SPREAD = 4.0
MIN_GAIN = 4.0


def check_requirements(summary: dict[str, Any]) -> dict[str, Any]:
    regimes: dict[str, Any] = {}
    for name, r in summary.items():
        if "best" not in r or r.get("warmup") is None:
            continue
        alpha = r["sweeps"].get("alpha")
        d = r.get("default_minus_warmup")
        helps = d is not None and d > 0
        regimes[name] = {
            "effect": None if d is None else "helps" if helps else "hurts",
            "default_minus_warmup": r.get("default_minus_warmup"),
            "best_minus_warmup": r["best_minus_warmup"],
            "spread": r["spread"],
            "spread_ok": r["spread"] >= MIN_SPREAD,
            "gain_ok": (r["best_minus_warmup"] >= MIN_GAIN) if helps else None,
            "alpha_optimum": None
            if alpha is None
            else {
                "value": alpha["optimum"]["value"],
                "index": alpha["optimum"]["index"],
                "position": alpha["optimum"]["position"],
                "clear": alpha["clear"],
                "n_values": len(alpha["points"]),
            },
            "broken": len(r.get("broken_minus_warmup", {})),
        }
    optima = [v["alpha_optimum"] for v in regimes.values() if v["alpha_optimum"]]
    clear = [o for o in optima if o["clear"]]
    return {
        "regimes": regimes,
        "helps_somewhere": any(v["effect"] == "helps" for v in regimes.values()),
        "hurts_somewhere": any(v["effect"] == "hurts" for v in regimes.values()),
        "alpha_positions": sorted({o["index"] for o in optima}),
        "alpha_positions_clear": sorted({o["index"] for o in clear}),
        "interior_optimum": any(o["position"] == "interior" for o in optima),
        "interior_optimum_clear": any(o["position"] == "interior" for o in clear),
        "high_end_optimum": any(o["position"] == "high end" for o in optima),
        "high_end_optimum_clear": any(o["position"] == "high end" for o in clear),
    }


def _yes(v: bool | None) -> str:
    return "–" if v is None else "yes" if v else "**no**"


def requirements_markdown(req: dict[str, Any]) -> list[str]:
    lines = [
        "## Requirements on the landscapes",
        "",
        "Helps / hurts: the default candidate (paper settings) above / below the warm-up. Spread: max − min "
        f"of mean truth over the sweep candidates (>= {MIN_SPREAD:g} required). Gain: best sweep candidate − "
        f"warm-up (>= {MIN_GAIN:g} required where self-training helps).",
        "",
        "| regime | self-training | default − warm-up | best − warm-up | gain ok | spread | spread ok | "
        "α optimum | clear | broken candidates |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in req["regimes"].items():
        a = v["alpha_optimum"]
        lines.append(
            f"| {name} | {v['effect'] or 'no default'} | {v['default_minus_warmup'] or float('nan'):+.1f} | "
            f"{v['best_minus_warmup']:+.1f} | "
            f"{_yes(v['gain_ok'])} | {v['spread']:.1f} | {_yes(v['spread_ok'])} | "
            + (f"{a['value']:g} ({a['position']}) | {_yes(a['clear'])}" if a else "– | –")
            + f" | {v['broken']} |"
        )
    lines += [
        "",
        f"- A regime where self-training helps: {_yes(req['helps_somewhere'])}; where it hurts: "
        f"{_yes(req['hurts_somewhere'])}.",
        f"- α optimum grid positions across regimes (0 = lowest value): {req['alpha_positions']}; of "
        f"those standing clear: {req['alpha_positions_clear']}.",
        f"- An interior α optimum: {_yes(req['interior_optimum'])} "
        f"(clear: {_yes(req['interior_optimum_clear'])}); one at the high end: "
        f"{_yes(req['high_end_optimum'])} (clear: {_yes(req['high_end_optimum_clear'])}).",
    ]
    return lines
