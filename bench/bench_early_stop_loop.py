"""How long Tune's event loop goes without serving a trial while the early-stop vote runs.

``ray_jobs.search.RungScheduler`` starts the rung vote on the vote actor and polls it
(``ray.wait(timeout=0)``) on later scheduler callbacks. The baseline is the same scheduler with
its poll turned into a wait for the vote (``ray.wait`` without a timeout), which is what it did
before: ``ray.get`` on the vote inside Tune's ``on_trial_result``.

One Tune search per run, on a local Ray (2 CPUs): ``--rung`` plain function trials reach the rung
(round 1) and pause; when the last one arrives, the scheduler asks a vote actor whose
``early_stop`` takes ``--vote-s`` seconds (a sleep: the vote's length, not its CPU, is what
matters to the loop; sleeping also keeps the 2 cores free for the loop being measured) and cuts
one candidate. ``--background`` trials report every 50 ms all along and stand for everything else
Tune serves meanwhile (other trials' results, saves, failures); they never reach the rung. A Tune
callback timestamps every background result as it reaches the driver. The figure: the largest gap
between consecutive background results that overlaps the vote (and the median gap there), per
mode; the ratio is baseline / polling. Both modes run in this one process, alternating.

    python bench/bench_early_stop_loop.py [--vote-s 5] [--repeat 2]   # ~2 min on 2 cores
    -> bench/results/early_stop_loop.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Tune's classic console (quiet at verbose=0), no slow-loop warnings: the baseline is slow on purpose.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "600")

import ray  # noqa: E402
from ray import tune  # noqa: E402

import ray_jobs.search.early_stop as early_stop  # noqa: E402
from ray_jobs.records import EarlyStopFile  # noqa: E402
from ray_jobs.search import RungScheduler  # noqa: E402
from ray_jobs.storage import ExperimentPaths  # noqa: E402

ACTOR = "bench-early-stop-vote"
TICK_S = 0.05
AFTER_VOTE_S = 2.0


@ray.remote(num_cpus=0)
class SlowVote:
    """Stands in for ``VoteActor.early_stop``: takes ``vote_s`` seconds, cuts the last candidate."""

    def __init__(self, vote_s: float, done_marker: str) -> None:
        self.vote_s = vote_s
        self.done_marker = done_marker
        self.windows: list[tuple[float, float]] = []

    def early_stop(self, candidate_ids: list[str]) -> EarlyStopFile:
        start = time.time()
        time.sleep(self.vote_s)
        self.windows.append((start, time.time()))
        Path(self.done_marker).touch()
        return EarlyStopFile(after_round=1, keep=0.5, rule="bench", stopped=sorted(candidate_ids)[-1:])

    def last_window(self) -> tuple[float, float]:
        return self.windows[-1]


def trial(config: dict[str, Any]) -> None:
    cand = config["candidate"]
    if cand["kind"] == "rung":
        for r in range(3):  # paused after round 1; a resumed function trial starts again
            time.sleep(0.2)
            tune.report({"round": r})
    else:
        # Until a while after the vote (a background trial that ended before it would count as
        # ended and could start the vote early), at most ``run_s``.
        marker, start, i = Path(cand["done_marker"]), time.monotonic(), 0
        while time.monotonic() - start < cand["run_s"]:
            if marker.exists() and time.time() - marker.stat().st_mtime > AFTER_VOTE_S:
                break
            time.sleep(TICK_S)
            tune.report({"tick": i})
            i += 1


class Arrivals(tune.Callback):
    """Driver-side time of every background result, as Tune's loop processes it."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if trial.config["candidate"]["kind"] == "background":
            self.times.append(time.time())


@contextmanager
def waiting_scheduler() -> Iterator[None]:
    """The baseline: the scheduler's ``ray.wait(timeout=0)`` becomes a wait for the vote to end."""
    real = early_stop.ray
    shim = SimpleNamespace(
        get_actor=real.get_actor,
        get=real.get,
        wait=lambda refs, timeout=None: real.wait(refs, num_returns=len(refs)),
    )
    early_stop.ray = shim
    try:
        yield
    finally:
        early_stop.ray = real


def one_search(mode: str, args: argparse.Namespace, storage: str) -> dict[str, Any]:
    done_marker = os.path.join(storage, f"vote-done-{mode}-{time.monotonic_ns()}")
    actor = SlowVote.options(name=ACTOR).remote(args.vote_s, done_marker)
    rung = [{"candidate_id": f"r{i}", "kind": "rung"} for i in range(args.rung)]
    background = [
        {"candidate_id": f"b{i}", "kind": "background", "run_s": 300.0, "done_marker": done_marker}
        for i in range(args.background)
    ]
    scheduler = RungScheduler(
        ACTOR,
        ExperimentPaths(storage, f"{mode}-{time.monotonic_ns()}"),
        after_round=1,
        total_trials=args.rung,
        max_concurrent=args.rung + args.background,
    )
    arrivals = Arrivals()
    tuner = tune.Tuner(
        tune.with_resources(trial, {"CPU": 0.01}),
        param_space={"candidate": tune.grid_search(rung + background)},
        tune_config=tune.TuneConfig(scheduler=scheduler),
        run_config=tune.RunConfig(storage_path=storage, callbacks=[arrivals], verbose=0),
    )
    with waiting_scheduler() if mode == "waiting" else _nothing():
        results = tuner.fit()
    start, end = ray.get(actor.last_window.remote())
    ray.kill(actor)
    errors = [r.error for r in results if r.error]
    assert not errors, errors
    # Both modes carry out the same cut: the last rung candidate stops at round 1, the rest finish.
    last_round = {
        r.config["candidate"]["candidate_id"]: r.metrics.get("round")
        for r in results
        if r.config["candidate"]["kind"] == "rung"
    }
    cut = sorted(last_round)[-1]
    assert last_round == {c: 1 if c == cut else 2 for c in last_round}, (mode, last_round)
    gaps = [
        (a, b) for a, b in zip(arrivals.times, arrivals.times[1:], strict=False) if b >= start and a <= end
    ]
    assert gaps, f"{mode}: no background result around the vote: the bench measured nothing"
    widths = [b - a for a, b in gaps]
    return {
        "mode": mode,
        "vote_s": end - start,
        "max_gap_s": max(widths),
        "median_gap_s": statistics.median(widths),
        "results_during_vote": sum(start <= t <= end for t in arrivals.times),
    }


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vote-s", type=float, default=5.0)
    p.add_argument("--rung", type=int, default=3)
    p.add_argument("--background", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "early_stop_loop.json")
    args = p.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-early-stop-loop-") as storage:
        for i in range(args.repeat):
            # Alternate which mode goes first, so neither always meets a warmer process.
            for mode in ("waiting", "polling") if i % 2 == 0 else ("polling", "waiting"):
                run = one_search(mode, args, storage)
                runs.append(run)
                print(json.dumps(run), flush=True)
    ray.shutdown()
    worst = {m: max(r["max_gap_s"] for r in runs if r["mode"] == m) for m in ("waiting", "polling")}
    median = {
        m: statistics.median(r["max_gap_s"] for r in runs if r["mode"] == m) for m in ("waiting", "polling")
    }
    summary = {
        "bench": "early_stop_loop",
        "what": "largest gap between background trial results reaching Tune's driver during a rung vote",
        "vote_s": args.vote_s,
        "rung_trials": args.rung,
        "background_trials": args.background,
        "tick_s": TICK_S,
        "repeat": args.repeat,
        "ray": ray.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "runs": runs,
        "median_max_gap_s": median,
        "worst_max_gap_s": worst,
        "ratio_waiting_over_polling": median["waiting"] / median["polling"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(args.out)
    print(
        f"largest gap between results during a {args.vote_s:.0f} s vote (median of {args.repeat}): "
        f"waiting {median['waiting']:.2f} s, polling {median['polling']:.2f} s, "
        f"ratio {summary['ratio_waiting_over_polling']:.1f}x -> {args.out}"
    )


if __name__ == "__main__":
    main()
