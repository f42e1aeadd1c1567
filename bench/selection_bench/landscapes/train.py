"""Stage ``train``: per regime and seed, one warm-up, then every candidate; resumable.

Jobs run in a pool of worker processes (default 2, one torch thread each). Every job first
checks what is already on disk: a finished warm-up or candidate (its JSON record) is skipped, a
candidate stopped between rounds continues after its last round checkpoint. Records are written
atomically and last, so a killed run never leaves a record without its checkpoint.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any

from selection_bench.layout import (
    CandidateSpec,
    Regime,
    candidate_config,
    config_digest,
    read_json,
    regime_candidates,
    seed_dir,
    warmup_result,
    write_json,
)

__all__ = ["check_regime_folder", "run_candidate_job", "run_warmup_job", "train_all"]

log = logging.getLogger("bench.selection")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)


def _evaluate(model, cfg) -> dict[str, Any]:
    from hiast.data import build_dataset
    from hiast.predict import evaluate

    out: dict[str, Any] = {}
    for split in ("target_val", "source_val"):
        ds = build_dataset(getattr(cfg.data, split), cfg.data)
        r = evaluate(
            model,
            ds,
            num_classes=cfg.data.num_classes,
            eval_classes=cfg.data.eval_classes,
            size=cfg.data.eval_size,
        )
        out[f"{split}_miou"] = r["miou"]
        out[f"{split}_per_class_iou"] = {
            str(c): r["per_class_iou"][c] for c in (cfg.data.eval_classes or range(cfg.data.num_classes))
        }
    return out


def run_warmup_job(regime: str, cfg_json: dict, seed: int, work: str) -> dict[str, Any]:
    """Train (or reuse) the seed's warm-up and record its target-val and source-val mIoU."""
    from hiast.pipeline import load_model, run_warmup
    from ray_jobs.config import JobConfig

    sdir = seed_dir(Path(work), regime, seed)
    done = warmup_result(Path(work), regime, seed)
    if done is not None:
        return done
    cfg = JobConfig.model_validate({**cfg_json, "seed": seed})
    wall, cpu = time.perf_counter(), time.process_time()
    ckpt = sdir / "warmup.pt"
    if not ckpt.is_file():
        ckpt = run_warmup(cfg, sdir, seed=seed)
    train_cpu = time.process_time() - cpu
    rec = {
        "regime": regime,
        "seed": seed,
        "checkpoint": ckpt.name,
        **_evaluate(load_model(ckpt), cfg),
        "cpu_seconds": train_cpu,
        "wall_seconds": time.perf_counter() - wall,
    }
    write_json(sdir / "warmup.json", rec)
    return rec


def _last_round(cand_dir: Path) -> tuple[int, Path | None]:
    rounds = [
        (int(m.group(1)), p)
        for p in cand_dir.glob("round*.pt")
        if (m := re.fullmatch(r"round(\d+)\.pt", p.name))
    ]
    return max(rounds) if rounds else (0, None)


def run_candidate_job(
    regime: str, cfg_json: dict, spec_json: dict, order: int, seed: int, work: str
) -> dict[str, Any]:
    """Train one candidate from the seed's warm-up (continuing after its last finished round),
    evaluate every round's teacher on target-val, keep only the final checkpoint, write the record."""
    from hiast.checkpoint import load_checkpoint
    from hiast.pipeline import load_model, train_rounds
    from ray_jobs.config import JobConfig

    spec = CandidateSpec(**{**spec_json, "sweeps": tuple(spec_json["sweeps"])})
    sdir = seed_dir(Path(work), regime, seed)
    cand = sdir / "cand" / spec.slug
    cfg = candidate_config(JobConfig.model_validate(cfg_json), spec, seed)
    if (cand / "result.json").is_file():
        rec = read_json(cand / "result.json")
        if rec["config_digest"] != config_digest(cfg):
            raise ValueError(
                f"{cand / 'result.json'}: trained with another config than candidate {spec.id} of "
                f"regime {regime!r} has now; delete {cand} to train it again"
            )
        if cfg.selftrain.rounds > 1 and not (cand / "round1.pt").is_file():
            _restore_round_one(cfg, sdir, cand, rec, seed, work)
        return rec
    warm = warmup_result(Path(work), regime, seed)
    if warm is None:
        raise RuntimeError(f"{sdir}: no finished warm-up for candidate {spec.id}")
    rounds = cfg.selftrain.rounds
    done, last = _last_round(cand)
    prev = read_json(cand / "progress.json") if (cand / "progress.json").is_file() else {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if done < rounds:
        last = train_rounds(
            cfg,
            sdir / warm["checkpoint"],
            cand,
            seed=seed,
            resume_from=last,
            pseudo_label_cache=sdir / "pseudo_cache",
            on_round=lambda r: write_json(
                cand / "progress.json",
                {"cpu_seconds": prev.get("cpu_seconds", 0.0) + time.process_time() - cpu0, "round": r.round},
            ),
        )
    # Training CPU time over all attempts (a round cut short by a stop is not counted).
    train_cpu = prev.get("cpu_seconds", 0.0) + time.process_time() - cpu0
    cpu1 = time.process_time()
    assert last is not None
    per_round = []
    for r in range(1, rounds + 1):
        path = cand / f"round{r}.pt"
        if not path.is_file():  # removed by an earlier, interrupted clean-up: the record still needs it
            raise RuntimeError(f"{path} is missing; delete {cand} to retrain the candidate")
        ck = load_checkpoint(path)
        ev = _evaluate(load_model(path), cfg) if r < rounds else None
        per_round.append({"round": r, "metrics": ck["metrics"], "thresholds": ck["thresholds"], "eval": ev})
    final = _evaluate(load_model(last), cfg)
    per_round[-1]["eval"] = final
    rec = {
        "regime": regime,
        "seed": seed,
        "id": spec.id,
        "order": order,
        "params": spec.params,
        "overrides": spec.overrides,
        "sweeps": list(spec.sweeps),
        "broken": spec.broken,
        "why": spec.why,
        "checkpoint": Path(last).name,
        **final,
        "warmup_target_val_miou": warm["target_val_miou"],
        "warmup_source_val_miou": warm["source_val_miou"],
        "rounds": per_round,
        "cpu_seconds_train": train_cpu,
        "cpu_seconds_eval": time.process_time() - cpu1,
        "wall_seconds_this_attempt": time.perf_counter() - wall0,
        "config_digest": config_digest(cfg),
        "config": cfg.model_dump(mode="json"),
    }
    write_json(cand / "result.json", rec)
    # Kept: round 1 (the early-stop stage's rung) and the final round; the rounds between and the
    # pseudo-labels can be made again.
    for r in range(2, rounds):
        (cand / f"round{r}.pt").unlink(missing_ok=True)
    for p in cand.glob("pseudo_round*"):
        shutil.rmtree(p, ignore_errors=True)
    return rec


def _restore_round_one(cfg, sdir: Path, cand: Path, rec: dict[str, Any], seed: int, work: str) -> None:
    """Train round 1 again for a candidate finished before round-1 checkpoints were kept (the
    early-stop stage's rung), and refuse it unless it reproduces the recorded round-1 truth."""
    from hiast.pipeline import load_model, train_rounds

    warm = warmup_result(Path(work), rec["regime"], seed)
    if warm is None:
        raise RuntimeError(f"{sdir}: no finished warm-up to retrain round 1 of {rec['id']} from")
    one = cfg.model_copy(update={"selftrain": cfg.selftrain.model_copy(update={"rounds": 1})})
    tmp = cand / "round1-restore"
    shutil.rmtree(tmp, ignore_errors=True)
    path = train_rounds(
        one, sdir / warm["checkpoint"], tmp, seed=seed, pseudo_label_cache=sdir / "pseudo_cache"
    )
    got = _evaluate(load_model(path), cfg)["target_val_miou"]
    want = rec["rounds"][0]["eval"]["target_val_miou"]
    if abs(got - want) > 1e-9:
        raise RuntimeError(
            f"{cand}: round 1 trained again gives target-val mIoU {got!r}, the record says {want!r}; "
            f"training is not reproducible here, so round 1 cannot be restored (delete {cand} to retrain)"
        )
    os.replace(path, cand / "round1.pt")
    shutil.rmtree(tmp)
    log.info(
        "%s seed %d %s: round 1 restored (target-val %.2f as recorded)",
        rec["regime"],
        seed,
        rec["id"],
        got,
    )


def check_regime_folder(work: Path, regime: Regime) -> None:
    """Refuse to mix results of two different training configs under one regime name (the grid
    may change: each candidate's record is checked against its own config when reused)."""
    path = work / regime.name / "regime.json"
    digest = config_digest(regime.config)
    if path.is_file():
        old = read_json(path)
        if old.get("digest") != digest:
            raise ValueError(
                f"{path}: results in this folder were trained with another config of regime "
                f"{regime.name!r} (digest {old.get('digest')} != {digest} of {regime.path}); "
                "use another --work folder or delete this regime's folder"
            )
    write_json(
        path,
        {
            "name": regime.name,
            "source": str(regime.path),
            "digest": digest,
            "config": regime.config.model_dump(mode="json"),
        },
    )


def train_all(
    regimes: Sequence[Regime],
    seeds: Sequence[int],
    work: Path,
    *,
    workers: int = 2,
    threads: int = 1,
    sweeps: Sequence[str] | None = None,
    broken: bool = True,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Warm-ups first, each seed's candidates as soon as its warm-up is done; returns all records.

    ``sweeps`` limits the candidates to those sweeps (pilots); ``broken=False`` leaves out the
    broken ones. ``on_done`` is called in this process after each finished job.
    """
    for r in regimes:
        check_regime_folder(work, r)
    plan: dict[tuple[str, int], list[tuple[int, CandidateSpec]]] = {}
    for r in regimes:
        cands = [
            (i, c)
            for i, c in enumerate(regime_candidates(r.config))
            if (c.broken and broken) or (not c.broken and (sweeps is None or set(c.sweeps) & set(sweeps)))
        ]
        for s in seeds:
            plan[r.name, s] = cands
    cfgs = {r.name: r.config.model_dump(mode="json") for r in regimes}
    records: list[dict[str, Any]] = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
        pending: dict[Future, tuple[str, str, int]] = {}
        for name, s in plan:
            pending[pool.submit(run_warmup_job, name, cfgs[name], s, str(work))] = ("warmup", name, s)
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                kind, name, s = pending.pop(f)
                rec = f.result()  # a failed job stops the run: its error names the regime and seed
                rec["kind"] = kind
                records.append(rec)
                if on_done is not None:
                    on_done(rec)
                if kind == "warmup":
                    for order, spec in plan[name, s]:
                        fut = pool.submit(
                            run_candidate_job, name, cfgs[name], asdict(spec), order, s, str(work)
                        )
                        pending[fut] = ("candidate", name, s)
    log.info("train stage done: %d jobs (pid %d)", len(records), os.getpid())
    return records
