"""Landscapes from the finished records: per regime and swept parameter, the true-mIoU curve.

The truth of a candidate is its target-val mIoU averaged over the seeds; its seed spread is the
min..max (and sd) over seeds. A sweep's optimum is the value with the highest mean truth. It
*stands clear* when it is the best value of the sweep in every seed: each seed has its own
warm-up, so comparing within a seed (paired) removes the warm-up's luck, which moves all
candidates of a seed together; the unpaired seed ranges of neighbours overlap far more often.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selection_bench.layout import FinishedCandidate, read_json

__all__ = ["markdown", "plot", "summarise", "summarise_regime", "summarise_sweep"]

PARAM_LABEL = {"alpha": "α", "gamma": "γ", "lambda_i": "λ_i", "k": "k"}


def _stats(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64) * 100
    return {
        "mean": float(a.mean()),
        "min": float(a.min()),
        "max": float(a.max()),
        "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "n": int(a.size),
    }


def _position(index: int, n: int) -> str:
    return "low end" if index == 0 else "high end" if index == n - 1 else "interior"


def summarise_sweep(param: str, cands: list[FinishedCandidate], seeds: list[int]) -> dict[str, Any]:
    """One sweep's curve: per value the seed statistics, the optimum and whether it stands clear."""
    by_id: dict[str, dict[int, float]] = {}
    value: dict[str, float] = {}
    for c in cands:
        by_id.setdefault(c.id, {})[c.seed] = c.truth
        value[c.id] = float(c.params[param])
    ids = sorted(by_id, key=lambda i: value[i])
    points = [{"id": i, "value": value[i], "truth": _stats(list(by_id[i].values()))} for i in ids]
    means = np.array([p["truth"]["mean"] for p in points])
    best = int(means.argmax())
    common = [s for s in seeds if all(s in by_id[i] for i in ids)]
    per_seed_best = {s: ids[int(np.argmax([by_id[i][s] for i in ids]))] for s in common}
    order = np.argsort(-means, kind="stable")
    runner = int(order[1]) if len(ids) > 1 else best
    gaps = [100 * (by_id[ids[best]][s] - by_id[ids[runner]][s]) for s in common]
    # Strictly above every other value of the sweep in every seed (a tie is not clear).
    margins = [
        min((by_id[ids[best]][s] - by_id[i][s] for i in ids if i != ids[best]), default=0.0) for s in common
    ]
    return {
        "parameter": param,
        "points": points,
        "optimum": {
            "id": ids[best],
            "value": value[ids[best]],
            "index": best,
            "position": _position(best, len(ids)),
        },
        "runner_up": {"id": ids[runner], "value": value[ids[runner]]},
        "gap_to_runner_up": float(means[best] - means[runner]),
        "paired_gap_min": float(min(gaps)) if gaps else None,
        "paired_gap_max": float(max(gaps)) if gaps else None,
        "best_per_seed": per_seed_best,
        "clear": len(common) >= 2 and len(ids) > 1 and min(margins) > 0,
        "seeds_complete": common,
        "spread": float(means.max() - means.min()),
    }


def summarise_regime(name: str, cands: list[FinishedCandidate], warmups: dict[int, dict]) -> dict[str, Any]:
    seeds = sorted({c.seed for c in cands} | set(warmups))
    sweep_cands = [c for c in cands if not c.broken]
    params = list(dict.fromkeys(p for c in sweep_cands for p in c.sweeps))
    # A sweep holding only the default (a pilot that trained other sweeps) has no curve.
    members = {p: [c for c in sweep_cands if p in c.sweeps] for p in params}
    per_id: dict[str, list[FinishedCandidate]] = {}
    for c in cands:
        per_id.setdefault(c.id, []).append(c)
    truth = {i: _stats([c.truth for c in cs]) for i, cs in per_id.items()}
    sweep_ids = [i for i in per_id if not per_id[i][0].broken]
    warm = _stats([w["target_val_miou"] for w in warmups.values()]) if warmups else None
    best_id = max(sweep_ids, key=lambda i: truth[i]["mean"]) if sweep_ids else None
    out: dict[str, Any] = {
        "regime": name,
        "seeds": seeds,
        "warmup": warm,
        "warmup_source_val": _stats([w["source_val_miou"] for w in warmups.values()]) if warmups else None,
        "candidates": {
            i: {
                "truth": truth[i],
                "per_seed": {c.seed: 100 * c.truth for c in cs},
                "source_val": _stats([c.source_val_miou for c in cs]),
                "broken": cs[0].broken,
                "params": cs[0].params,
                "sweeps": list(cs[0].sweeps),
                "cpu_seconds_train": float(np.mean([c.record["cpu_seconds_train"] for c in cs])),
            }
            for i, cs in per_id.items()
        },
        "sweeps": {
            p: summarise_sweep(p, members[p], seeds) for p in params if len({c.id for c in members[p]}) > 1
        },
    }
    if "default" in per_id and all("rounds" in c.record for c in per_id["default"]):
        # Whether the rounds are long enough to matter: the default's truth after each round.
        n_rounds = min(len(c.record["rounds"]) for c in per_id["default"])
        out["default_per_round"] = [
            _stats([c.record["rounds"][k]["eval"]["target_val_miou"] for c in per_id["default"]])
            for k in range(n_rounds)
        ]
    if "alpha" in out["sweeps"] and all("rounds" in c.record for c in members["alpha"]):
        # The α landscape after each round: where its optimum sits depends on how long one trains.
        pts = out["sweeps"]["alpha"]["points"]
        n_rounds = min(len(c.record["rounds"]) for c in members["alpha"])
        out["alpha_per_round"] = [
            [
                float(
                    np.mean(
                        [100 * c.record["rounds"][k]["eval"]["target_val_miou"] for c in per_id[pt["id"]]]
                    )
                )
                for pt in pts
            ]
            for k in range(n_rounds)
        ]
    if sweep_ids:
        means = [truth[i]["mean"] for i in sweep_ids]
        out["spread"] = float(max(means) - min(means))
        out["best"] = {"id": best_id, "truth": truth[best_id]["mean"]}
        if warm is not None:
            out["best_minus_warmup"] = truth[best_id]["mean"] - warm["mean"]
            if "default" in truth:
                out["default_minus_warmup"] = truth["default"]["mean"] - warm["mean"]
            out["broken_minus_warmup"] = {
                i: truth[i]["mean"] - warm["mean"] for i in per_id if per_id[i][0].broken
            }
    return out


def summarise(cands: list[FinishedCandidate], work: Path) -> dict[str, Any]:
    """Every regime found in the records (and warm-ups) under ``work``."""
    regimes = sorted({c.regime for c in cands} | {p.parent.name for p in work.glob("*/regime.json")})
    out = {}
    for name in regimes:
        warmups = {int(p.parent.name[4:]): read_json(p) for p in (work / name).glob("seed*/warmup.json")}
        out[name] = summarise_regime(name, [c for c in cands if c.regime == name], warmups)
    return out


def _fmt(s: dict[str, float] | None) -> str:
    if s is None:
        return "–"
    return f"{s['mean']:.1f} ({s['min']:.1f}–{s['max']:.1f})" if s["n"] > 1 else f"{s['mean']:.1f}"


def markdown(
    summary: dict[str, Any], notes: dict[str, str], timing: dict[str, Any], checks: list[str] | None = None
) -> str:
    """The results as markdown: an overview table, the requirement checks, one section per regime."""
    lines = [
        "# Selection benchmark: true-mIoU landscapes per regime",
        "",
        "Truth = target-val mIoU (%) of the EMA teacher after the last round, mean over seeds; "
        "(min–max over seeds). A seed is its own warm-up and self-training seed. *Clear*: the optimum "
        "is the best value of its sweep in every seed (paired by seed). Spread: max − min of the mean "
        "truth over the regime's sweep candidates (broken ones excluded).",
        "",
        "| regime | warm-up | default | best candidate | best − warm-up | spread | α optimum | "
        "γ optimum | λ_i optimum | k optimum |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in summary.items():
        if "best" not in r:
            continue
        cells = []
        for p in ("alpha", "gamma", "lambda_i", "k"):
            sw = r["sweeps"].get(p)
            cells.append(
                "–"
                if sw is None
                else f"{sw['optimum']['value']:g} ({sw['optimum']['position']}, "
                f"{'clear' if sw['clear'] else 'not clear'})"
            )
        default = r["candidates"].get("default", {}).get("truth")
        lines.append(
            f"| {name} | {_fmt(r['warmup'])} | {_fmt(default)} | {r['best']['id']} "
            f"{r['best']['truth']:.1f} | {r.get('best_minus_warmup', float('nan')):+.1f} | "
            f"{r['spread']:.1f} | " + " | ".join(cells) + " |"
        )
    if timing:
        lines += ["", "Timing: " + ", ".join(f"{k} {v}" for k, v in timing.items()) + "."]
    if checks:
        lines += ["", *checks]
    for name, r in summary.items():
        lines += ["", f"## {name}", ""]
        if notes.get(name):
            lines += [notes[name], ""]
        lines.append(
            f"Warm-up: {_fmt(r['warmup'])}; source-val {_fmt(r['warmup_source_val'])}. Seeds: {r['seeds']}."
        )
        if r.get("default_per_round"):
            rounds = " → ".join(_fmt(x) for x in r["default_per_round"])
            lines += ["", f"Default candidate's truth after each round: {rounds}."]
        if r.get("alpha_per_round"):
            values = " / ".join(f"{pt['value']:g}" for pt in r["sweeps"]["alpha"]["points"])
            lines += ["", f"α curve (mean truth at α = {values}) after each round:", ""]
            for k, curve in enumerate(r["alpha_per_round"], 1):
                lines.append(f"- round {k}: " + " / ".join(f"{v:.1f}" for v in curve))
        lines += [
            "",
            "| parameter | value: mean truth (seed min–max) | optimum | "
            "gap to runner-up (paired, per seed) | best per seed | clear |",
            "|---|---|---|---|---|---|",
        ]
        for p, sw in r["sweeps"].items():
            pts = "<br>".join(
                f"{pt['value']:g}: {_fmt(pt['truth'])}" + (" ← default" if pt["id"] == "default" else "")
                for pt in sw["points"]
            )
            paired = (
                f"{sw['gap_to_runner_up']:+.1f} vs {sw['runner_up']['value']:g} "
                f"({sw['paired_gap_min']:+.1f}..{sw['paired_gap_max']:+.1f})"
                if sw["paired_gap_min"] is not None
                else f"{sw['gap_to_runner_up']:+.1f}"
            )
            per_seed = ", ".join(f"s{s}: {i}" for s, i in sw["best_per_seed"].items())
            lines.append(
                f"| {PARAM_LABEL.get(p, p)} | {pts} | "
                f"{sw['optimum']['value']:g} ({sw['optimum']['position']}) | {paired} | {per_seed} | "
                f"{'yes' if sw['clear'] else 'no'} |"
            )
        broken = {i: c for i, c in r["candidates"].items() if c["broken"]}
        if broken:
            lines += ["", "Broken candidates (marked in the results only):", ""]
            for i, c in broken.items():
                rel = r.get("broken_minus_warmup", {}).get(i)
                lines.append(
                    f"- `{i}`: {_fmt(c['truth'])}"
                    + (f", {rel:+.1f} vs warm-up" if rel is not None else "")
                    + (f", {c['truth']['mean'] - r['best']['truth']:+.1f} vs best" if "best" in r else "")
                    + f"; source-val {_fmt(c['source_val'])}"
                )
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    """Rows: regimes; columns: α, γ, λ_i, k, then the broken candidates. Mean truth with the seed
    range as error bars, each seed as a faint line, the warm-up as a dashed line and band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = ["alpha", "gamma", "lambda_i", "k"]
    names = [n for n, r in summary.items() if r.get("candidates")]
    fig, axes = plt.subplots(len(names), 5, figsize=(19, 3.3 * len(names)), squeeze=False)
    for row, name in zip(axes, names, strict=True):
        r = summary[name]
        warm = r["warmup"]
        # The sweep panels share one scale; broken candidates (often far below) get their own panel.
        swept = [c for c in r["candidates"].values() if not c["broken"]]
        lows = [c["truth"]["min"] for c in swept] + ([warm["min"]] if warm else [])
        highs = [c["truth"]["max"] for c in swept] + ([warm["max"]] if warm else [])
        ylim = (min(lows) - 1, max(highs) + 1)
        for ax, p in zip(row[:4], params, strict=True):
            sw = r["sweeps"].get(p)
            ax.set_title(
                f"{name}: {PARAM_LABEL[p]}"
                + ("" if sw is None else f" (opt. {'clear' if sw['clear'] else 'not clear'})"),
                fontsize=9,
            )
            if warm:
                ax.axhline(warm["mean"], ls="--", c="grey", lw=1)
                ax.axhspan(warm["min"], warm["max"], color="grey", alpha=0.12)
            if sw is None:
                continue
            x = np.arange(len(sw["points"]))
            m = np.array([pt["truth"]["mean"] for pt in sw["points"]])
            lo = m - [pt["truth"]["min"] for pt in sw["points"]]
            hi = [pt["truth"]["max"] for pt in sw["points"]] - m
            for s in r["seeds"]:
                ys = [r["candidates"][pt["id"]]["per_seed"].get(s, np.nan) for pt in sw["points"]]
                ax.plot(x, ys, c="tab:blue", alpha=0.25, lw=0.8)
            ax.errorbar(x, m, yerr=[lo, hi], c="tab:blue", marker="o", capsize=3, lw=1.8)
            b = sw["optimum"]["index"]
            ax.plot([b], [m[b]], marker="*", ms=14, c="gold" if sw["clear"] else "white", mec="k")
            ax.set_xticks(
                x, [f"{pt['value']:g}" + ("*" if pt["id"] == "default" else "") for pt in sw["points"]]
            )
            ax.set_ylim(*ylim)
            ax.grid(alpha=0.3)
        row[0].set_ylabel("true target mIoU (%)")
        ax = row[4]
        broken = [(i, c) for i, c in r["candidates"].items() if c["broken"]]
        ax.set_title(f"{name}: broken candidates", fontsize=9)
        if warm:
            ax.axhline(warm["mean"], ls="--", c="grey", lw=1, label="warm-up")
        if "best" in r:
            ax.axhline(r["best"]["truth"], ls=":", c="tab:blue", lw=1, label="best sweep candidate")
        for j, (_, c) in enumerate(broken):
            t = c["truth"]
            ax.errorbar(
                [j],
                [t["mean"]],
                yerr=[[t["mean"] - t["min"]], [t["max"] - t["mean"]]],
                marker="x",
                c="tab:red",
                capsize=3,
                ms=9,
            )
        ax.set_xticks(
            range(len(broken)), [i.removeprefix("broken:") for i, _ in broken], fontsize=7, rotation=15
        )
        ax.set_xlim(-0.5, max(len(broken), 1) - 0.5)
        ax.legend(fontsize=7, loc="lower left")
        ax.grid(alpha=0.3)
    fig.suptitle(
        "True target mIoU per swept parameter (mean over seeds, bars: seed min–max, faint: each seed; "
        "dashed: warm-up; ★ gold: optimum clear in every seed; * on a tick: the default)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
