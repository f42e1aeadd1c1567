"""Selection benchmark: synthscape regimes whose true-mIoU landscapes differ, and rules picking there.

Stages:

* ``train``: for every regime (``bench/regimes/*.yaml``) and seed: one warm-up, then every
  candidate of the regime's sweep plus the broken candidates, each trained from that warm-up;
  true target-val and source-val mIoU recorded; final and round-1 checkpoints kept per candidate.
  Resumable: finished jobs are skipped, a candidate continues after its last round. Writes the
  report after every finished job (JSON and markdown) and the plot at the end.
* ``score``: for every finished candidate the job's own outputs (subset label maps, evidence with
  the MixVal and source-val passes; written once next to the checkpoint), then the job's selection
  sequence per regime and seed with every validator, the round-1 (rung) validators, the job's
  confidence for its default rule, and every candidate's per-image target-val counts. Writes the
  committed tables ``bench/results/selection_scores.parquet`` (``selection_bench.tables.scores``)
  and ``bench/results/selection_target_images.parquet`` (``selection_bench.tables.target_images``), then
  runs the ``rules`` stage on them. ``--rescore`` is the same stage: it reuses the stored outputs
  and retrains nothing.
* ``rules``: from the committed tables only (no checkpoint): every benchmarked rule, any rule
  given with ``--rule SPEC`` (YAML, as ``selection.rule``), the per-seed and few-label oracles, the
  leave-one-regime-out figures, the verdict on the default and its targets, the guard's record and
  the confidence calibration (``selection_bench.rules.stage``); no rule picks a candidate the job's
  guard flagged (``--no-guard``: as if it had none); writes ``bench/results/selection_rules.{json,md}``
  in seconds.
* ``early-stop``: ``selection.early_stop`` replayed on the trained candidates (their round-1
  checkpoints, the job's own rung decision, the rule's pick among the survivors): candidate-rounds
  saved against regret (``selection_bench.early_stop``). Needs the score stage's results.
* ``report``: the JSON, markdown table and PNG plot from what is on disk.
* ``draw``: the regimes drawn at random from ``bench/drawn_regimes.yaml`` (a declared distribution
  and seed, committed before drawing): writes ``bench/regimes/drawn_<i>.yaml`` deterministically.

    nice -n 10 python bench/bench_selection.py train [--regimes ...] [--seeds 1 2 3] [--workers 2]
    python bench/bench_selection.py score        # or: --rescore
    python bench/bench_selection.py rules [--rule '{rank_average: [bnm, atc]}' ...] [--no-guard --out DIR/x]
    python bench/bench_selection.py report
    python bench/bench_selection.py draw --n 2

Outputs: ``bench/results/selection_landscapes.{json,md,png}``,
``bench/results/selection_scores.parquet``, ``bench/results/selection_target_images.parquet``,
``bench/results/selection_rules.{json,md}``; checkpoints under ``bench/work/selection/`` (see
``selection_bench.layout`` for the layout, and ``selection_bench.layout.finished_candidates`` to
list them).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import yaml  # noqa: E402
from selection_bench.landscapes import (  # noqa: E402  # noqa: E402
    check_requirements,
    markdown,
    plot,
    requirements_markdown,
    summarise,
    train_all,  # noqa: E402
)
from selection_bench.layout import finished_candidates, load_regime, read_json, write_json  # noqa: E402
from selection_bench.rules import compare_tables, run_rules  # noqa: E402
from selection_bench.tables import (  # noqa: E402  # noqa: E402
    read_scores_table,
    read_target_images,
    write_scores_table,
    write_target_images,
)

from selection.decision.rules import parse_rule  # noqa: E402
from selection.errors import SelectionError  # noqa: E402

DEFAULT_REGIMES = sorted(str(p) for p in (ROOT / "bench" / "regimes").glob("*.yaml"))
RESULTS = ROOT / "bench" / "results"
COMMITTED_LANDSCAPES = RESULTS / "selection_landscapes"


def regime_note(path: Path) -> str:
    """The regime file's header comment, as the description of the regime in the report."""
    out = []
    for line in Path(path).read_text().splitlines():
        if not line.startswith("#"):
            break
        out.append(line.lstrip("#").strip())
    return " ".join(out).strip()


def check_committed(summary: dict, prefix: Path) -> None:
    """The committed landscapes are the whole benchmark: refuse to write a partial run over them."""
    if prefix.resolve() != COMMITTED_LANDSCAPES.resolve():
        return
    missing = sorted({Path(p).stem for p in DEFAULT_REGIMES} - set(summary))
    if missing:
        raise SystemExit(
            f"{prefix}.json holds the whole benchmark; no finished candidate in the work folder for "
            f"{', '.join(missing)}: pass --out for a partial run"
        )


def write_report(work: Path, prefix: Path, *, with_plot: bool, timing: dict | None = None) -> dict:
    cands = finished_candidates(work) if work.is_dir() else []
    summary = summarise(cands, work)
    check_committed(summary, prefix)
    notes = {}
    for name in summary:
        reg = work / name / "regime.json"
        if reg.is_file():
            src = Path(read_json(reg)["source"])
            notes[name] = regime_note(src) if src.is_file() else ""
    timing = dict(timing or {})
    cpu = [c.record["cpu_seconds_train"] for c in cands]
    if cpu:
        timing["candidates"] = len(cpu)
        timing["mean CPU s per candidate (training)"] = round(float(sum(cpu) / len(cpu)), 1)
        timing["CPU h of candidate training"] = round(sum(cpu) / 3600, 2)
    req = check_requirements(summary)
    out = {"summary": summary, "requirements": req, "timing": timing, "work": str(work)}
    write_json(prefix.with_suffix(".json"), out)
    md = prefix.with_suffix(".md")
    md.write_text(markdown(summary, notes, timing, requirements_markdown(req)))
    if with_plot and cands:
        plot(summary, prefix.with_suffix(".png"))
    return out


def parse_rule_specs(specs: list[str]) -> dict[str, object]:
    """``--rule`` values (YAML, as ``selection.rule``) -> {rule text: rule}; SystemExit naming a bad one."""
    out = {}
    for spec in specs:
        try:
            rule = parse_rule(yaml.safe_load(spec), field="--rule")
        except (yaml.YAMLError, SelectionError) as e:
            raise SystemExit(f"--rule {spec!r}: {e}") from None
        out[rule.text] = rule.to_config()
    return out


def rules_stage(
    scores_path: Path, images_path: Path, prefix: Path, specs: list[str], *, guard: bool = True
) -> None:
    """The ``rules`` stage: the committed tables -> ``<prefix>.{json,md}``; prints what changed."""
    if not scores_path.is_file():
        raise SystemExit(f"{scores_path}: no scores table; run the score stage first (it needs checkpoints)")
    scores = read_scores_table(scores_path)
    if not guard:
        scores = scores.without_guard()
    images = read_target_images(images_path) if images_path.is_file() else None
    if images is None:
        logging.warning("%s: missing, so no few-label oracle rows", images_path)
    old = prefix.with_suffix(".json")
    before = read_json(old)["table"] if old.is_file() else None
    start = time.perf_counter()
    out = run_rules(scores, images, prefix, parse_rule_specs(specs))
    print(prefix.with_suffix(".md").read_text())
    if before is not None:
        diffs = compare_tables(before, out["table"])
        print(f"against the previous {old.name}: {len(diffs)} difference(s)", *diffs[:40], sep="\n")
    print(f"rules stage: {time.perf_counter() - start:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", nargs="?", choices=["train", "score", "rules", "early-stop", "report", "draw"])
    ap.add_argument(
        "--rule",
        action="append",
        default=[],
        help="rules: a further rule (YAML, as selection.rule), repeatable; early-stop: the rule "
        "(a benchmarked rule's label; default: the rules stage's default)",
    )
    ap.add_argument("--scores", type=Path, default=RESULTS / "selection_scores.parquet")
    ap.add_argument("--images", type=Path, default=RESULTS / "selection_target_images.parquet")
    ap.add_argument("--n", type=int, default=2, help="draw: how many regimes to draw")
    ap.add_argument("--distribution", type=Path, default=ROOT / "bench" / "drawn_regimes.yaml")
    ap.add_argument(
        "--keep", type=float, default=0.5, help="early-stop: share of each sweep kept at the rung"
    )
    ap.add_argument(
        "--no-guard",
        action="store_true",
        help="rules: as if the job had no broken-candidate guard (to compare with tables made before it; "
        "write them elsewhere with --out)",
    )
    ap.add_argument("--rescore", action="store_true", help="the score stage (stored outputs, no training)")
    ap.add_argument("--regimes", nargs="+", default=DEFAULT_REGIMES, help="regime config files")
    # Seed 0 ran the pilots the regimes were chosen on; the benchmark's seeds exclude it, so the
    # landscapes it reports are not the ones the regimes were picked for.
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--workers", type=int, default=2, help="parallel training processes")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads per process (train and score: the same)"
    )
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "selection")
    ap.add_argument(
        "--out",
        type=Path,
        default=COMMITTED_LANDSCAPES,
        help="results path without suffix (.json, .md, .png are written); the default, the committed "
        "landscapes, is written only when every regime has finished candidates",
    )
    ap.add_argument("--sweeps", nargs="+", default=None, help="train only these sweeps (pilots)")
    ap.add_argument("--no-broken", action="store_true", help="leave out the broken candidates (pilots)")
    args = ap.parse_args()
    if args.rescore:
        args.stage = args.stage or "score"
        if args.stage != "score":
            ap.error("--rescore is the score stage")
    if args.stage is None:
        ap.error("a stage is required: train, score, rules, early-stop, report or draw (or --rescore)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.stage == "early-stop":
        from selection_bench.early_stop import run_early_stop
        from selection_bench.scoring import read_scores

        rules = read_json(args.out.with_name("selection_rules.json"))
        rule = args.rule[-1] if args.rule else rules["verdict"]["default"]
        names = [Path(p).stem for p in args.regimes]
        prefix = args.out.with_name("selection_early_stop")
        run_early_stop(args.work, names, args.seeds, read_scores(args.work), rule, args.keep, prefix)
        print(prefix.with_suffix(".md").read_text())
        return
    if args.stage == "score":
        from selection_bench.scoring import score_all, tables_of

        names = [Path(p).stem for p in args.regimes]
        scores, images = tables_of(score_all(args.work, names, args.seeds, args.threads))
        write_scores_table(scores, args.scores)
        write_target_images(images, args.images)
        rules_stage(args.scores, args.images, args.out.with_name("selection_rules"), args.rule)
        return
    if args.stage == "rules":
        rules_stage(
            args.scores,
            args.images,
            args.out.with_name("selection_rules"),
            args.rule,
            guard=not args.no_guard,
        )
        return
    if args.stage == "draw":
        from selection_bench.landscapes import write_drawn

        for path in write_drawn(args.distribution, args.n, ROOT / "bench" / "regimes"):
            print(path)
        return
    if args.stage == "report":
        write_report(args.work, args.out, with_plot=True)
        print(args.out.with_suffix(".md").read_text())
        return
    if not args.regimes:
        ap.error("no regime files (bench/regimes/*.yaml is empty); pass --regimes")
    regimes = [load_regime(p) for p in args.regimes]  # every file checked before any training
    started = time.perf_counter()

    def on_done(rec: dict) -> None:
        what = rec.get("id", "warm-up")
        print(
            json.dumps(
                {
                    "regime": rec["regime"],
                    "seed": rec["seed"],
                    "job": what,
                    "target_val_miou": round(100 * rec["target_val_miou"], 2),
                    "cpu_s": round(rec.get("cpu_seconds_train", rec.get("cpu_seconds", 0.0)), 1),
                    "elapsed_s": round(time.perf_counter() - started),
                }
            ),
            flush=True,
        )
        # Progress goes to the work folder; the committed landscapes only at the end, when whole.
        write_report(args.work, args.work / "selection_landscapes", with_plot=False)

    train_all(
        regimes,
        args.seeds,
        args.work,
        workers=args.workers,
        threads=args.threads,
        sweeps=args.sweeps,
        broken=not args.no_broken,
        on_done=on_done,
    )
    out = write_report(
        args.work,
        args.out,
        with_plot=True,
        timing={"wall s of this train run": round(time.perf_counter() - started)},
    )
    print(json.dumps(out["timing"]))


if __name__ == "__main__":
    main()
