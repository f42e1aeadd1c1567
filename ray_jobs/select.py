"""``python -m ray_jobs.select``: label-free selection of HIAST's hyperparameters on Ray.

Warm-up once per replicate, then one Ray Tune trial per candidate (a Ray Train run each), then a
vote over the candidates' predictions on the target subset (F-mIoU). Outputs, under
``<storage>/<experiment>/``: ``candidates.parquet``, ``choice.json``, ``dashboard.html`` (a
provisional dashboard appears while the search runs), Tune's trial folders (TensorBoard).

Examples::

    python -m ray_jobs.select                                   # synthscape demo, local Ray, ./results
    python -m ray_jobs.select --config gta5_to_cityscapes --storage s3://bucket/hiast
    python -m ray_jobs.select --config my.yaml --storage ... --resume   # after the driver died
    hiast-select --config gta5_to_cityscapes --set data.source.root=/data/GTA5 --plan

Inside ``ray job submit`` the job joins that cluster; otherwise it starts a local one. The last
lines printed are the choice, its confidence and where the outputs are.
``--plan`` prints what the search would launch (candidates, trials, layout, rounds, cost
estimates with their basis, every pre-start check's verdict) and exits without training.
Exit status: 0 chosen (or planned); 1 no choice possible (too few candidates finished); 2 bad
config or data, or a search that has to be resumed; 3 resources that cannot fit the cluster.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import posixpath
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import ray.tune

from hiast import pipeline
from hiast.config import ConfigError, packaged_configs, parse_overrides
from ray_jobs import console
from ray_jobs.callbacks import ConsoleProgress, ProvisionalVote
from ray_jobs.cluster import (
    ResourceError,
    TrialResources,
    local_node_resources,
    node_resources,
    plan_resources,
    ray_cluster,
)
from ray_jobs.config import JobConfig, load_job_config
from ray_jobs.preflight import (
    JobError,
    SearchPlan,
    Verdict,
    check_experiment,
    make_plan,
    preflight,
    record_source_holdout,
    run_checks,
    save_config,
)
from ray_jobs.records import CandidateResult, EarlyStopFile, TrialStatus, outcome_record
from ray_jobs.search import RungScheduler, SearchSpec, make_tuner, replicate_seed, trial_specs
from ray_jobs.storage import (
    ExperimentPaths,
    StorageError,
    check_storage,
    exists,
    join,
    upload_file,
)
from ray_jobs.tracking import INSTALL_HINT, log_final_results, mlflow_callback, mlflow_installed
from ray_jobs.vote import VoteActor, vote_actor_name
from ray_jobs.worker import warmup_task
from selection import Candidate
from selection.store import load_subset, save_subset

__all__ = ["main", "run", "preflight", "check_experiment", "JobError"]

log = logging.getLogger("ray_jobs")
_VOTE_RESTARTS = 3


# --------------------------------------------------------------------------------------------
# Steps


def _subset(paths: ExperimentPaths, subset: list[str], cfg: JobConfig) -> list[str]:
    if exists(paths.subset):
        stored = load_subset(paths.subset)
        if stored != subset:
            raise JobError(f"{paths.subset} holds another image subset than this config selects")
        return stored
    save_subset(paths.subset, subset, seed=cfg.selection.subset_seed)
    return subset


def run_warmups(cfg: JobConfig, paths: ExperimentPaths, plan: TrialResources) -> None:
    """One warm-up per replicate, in parallel as Ray tasks; stored ones (a resumed job) are kept."""
    replicates = range(cfg.selection.replicates)
    if cfg.warmup.checkpoint is not None:
        # A given warm-up model: checked here, copied to storage so every node can read it.
        with tempfile.TemporaryDirectory() as d:
            given = pipeline.run_warmup(cfg, Path(d))
        for r in replicates:
            if not exists(paths.warmup(r)):
                upload_file(given, paths.warmup(r))
        return
    task = ray.remote(warmup_task).options(
        num_cpus=plan.warmup_cpus, num_gpus=plan.warmup_gpus, resources=plan.warmup_resources or None
    )
    config = cfg.model_dump(mode="json")
    threads = max(1, int(plan.warmup_cpus))
    refs = [
        task.remote(config, paths.warmup(r), replicate_seed(cfg.seed, r), plan.use_gpu, threads)
        for r in replicates
        if not exists(paths.warmup(r))
    ]
    start = time.perf_counter()
    ray.get(refs)
    if refs:
        log.info("%d warm-up(s) done in %.1fs", len(refs), time.perf_counter() - start)


def _trial_outcomes(results: ray.tune.ResultGrid, paths: ExperimentPaths) -> list[dict[str, Any]]:
    """Per trial: its spec, its status (done or failed: the result record decides; stopped: cut by
    early stopping, early_stop.json decides, with its rung scores), metrics, error text."""
    decision = EarlyStopFile.read(paths)
    stopped = set(decision.stopped) if decision is not None else set()
    rung = decision.candidates if decision is not None else {}
    out = []
    for result in results:
        spec = result.config["candidate"]
        cid = spec["candidate_id"]
        # Trial folders sit directly under the experiment; keep the URI's scheme.
        trial_dir = join(paths.root, posixpath.basename(result.path.rstrip("/")))
        if cid in stopped:
            # Cut at the rung (its driver may have finished a round more before it ended: no matter).
            out.append(outcome_record(spec, TrialStatus.STOPPED, rung=rung[cid], trial_dir=trial_dir))
            continue
        record = CandidateResult.read(paths.result(cid, spec["replicate"]))
        if record is None and result.error is None:
            # Neither finished nor failed: the search was stopped (Ctrl-C, SIGTERM). Voting now
            # would report live candidates as failed.
            raise JobError(
                f"the search stopped before candidate {cid!r} finished; run the same "
                "command with --resume to continue it"
            )
        if record is not None:
            out.append(
                outcome_record(spec, TrialStatus.DONE, result=record, rung=rung.get(cid), trial_dir=trial_dir)
            )
        else:
            error = (str(result.error).strip().splitlines() or ["failed"])[-1]
            out.append(
                outcome_record(spec, TrialStatus.FAILED, rung=rung.get(cid), error=error, trial_dir=trial_dir)
            )
    return out


def run(
    cfg: JobConfig,
    storage: str,
    *,
    restore: bool = False,
    prepared: tuple[list[Candidate], list[str]] | None = None,
    verbosity: int = console.NORMAL,
    mlflow_uri: str | None = None,
) -> dict:
    """The whole job on the connected Ray cluster; returns the choice (also in choice.json).

    ``restore``: continue the Tune run saved under the experiment, as :func:`check_experiment`
    decided before Ray started (the caller runs that check, once, and refuses what it refuses).
    ``prepared``: :func:`preflight`'s result when the caller already ran it. ``verbosity``: how
    much the run prints (ray_jobs.console). ``mlflow_uri``: also log trials, scores and outputs to
    MLflow there (:mod:`ray_jobs.tracking`).
    """
    candidates, subset = prepared or preflight(cfg)
    paths = ExperimentPaths(storage, cfg.experiment)
    replicates = cfg.selection.replicates
    nodes = node_resources()
    plan = plan_resources(cfg.ray, nodes, len(candidates) * replicates, warmups=replicates)
    if len(nodes) > 1 and "://" not in storage:
        log.warning(
            "--storage %s is a local path on a %d-node cluster: every node must see it (NFS), "
            "or use an s3:// / gs:// URI",
            storage,
            len(nodes),
        )
    for note in plan.notes:
        log.warning("%s", note)
    mlflow = [mlflow_callback(mlflow_uri, cfg.experiment, paths.root)] if mlflow_uri else []
    save_config(cfg, paths)
    log.info(
        "%d candidates x %d replicate(s), %d at a time, under %s",
        len(candidates),
        replicates,
        plan.max_concurrent_trials,
        paths.root,
    )
    subset = _subset(paths, subset, cfg)
    record_source_holdout(cfg, paths.source_val_holdout)
    run_warmups(cfg, paths, plan)

    spec = SearchSpec(cfg.model_dump(mode="json"), paths, subset, plan, single_node=len(nodes) == 1)
    trials = trial_specs(candidates, replicates)
    name = vote_actor_name(cfg.experiment)
    vote = VoteActor.options(
        name=name,
        resources=plan.vote or None,
        # Everything it needs is in its arguments and in storage: if its node dies, Ray starts it
        # again elsewhere and re-runs the call it was in (its writes are atomic, so a rerun is safe).
        max_restarts=_VOTE_RESTARTS,
        max_task_retries=-1,
    ).remote(cfg.model_dump(mode="json"), paths, subset, candidates)
    progress = ConsoleProgress(len(trials), cfg.selftrain.rounds, replicates)
    stop = cfg.selection.early_stop
    scheduler = None
    if stop is not None:
        scheduler = RungScheduler(name, paths, stop.after_round, len(trials), plan.max_concurrent_trials)
    tuner = make_tuner(
        spec,
        trials,
        trial_max_failures=cfg.ray.trial_max_failures,
        callbacks=[ProvisionalVote(name, len(trials)), progress, *mlflow],
        resume=restore,
        trial_name_creator=console.TrialNames(replicates),
        verbose=console.tune_verbosity(verbosity),
        scheduler=scheduler,
    )
    results = tuner.fit()
    outcomes = _trial_outcomes(results, paths)
    choice = ray.get(vote.finalize.remote(outcomes))
    if mlflow_uri:
        log_final_results(mlflow_uri, cfg.experiment, paths)
    return choice


# --------------------------------------------------------------------------------------------
# Command line


def _parse(argv: list[str] | None) -> argparse.Namespace:
    names = ", ".join(packaged_configs())
    p = argparse.ArgumentParser(
        prog="hiast-select",
        description=__doc__,
        epilog=f"packaged configs (--config NAME): {names}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help=f"a YAML file, or a packaged config: {names} (default: synthscape)")
    p.add_argument("--storage", default="./results", help="local folder or pyarrow URI (s3://, gs://, ...)")
    p.add_argument("--resume", action="store_true", help="continue the experiment found under --storage")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (dotted key, YAML value; repeatable), e.g. --set selection.rule=f_miou",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print what the search would launch and cost, run the pre-start checks, and exit",
    )
    p.add_argument(
        "--step-seconds",
        type=float,
        help="with --plan: seconds of one self-training iteration of one trial, for the time estimate "
        "(default: a step time measured in bench/ for this model and device, if there is one)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="with --plan: output format")
    p.add_argument(
        "--check-data",
        action="store_true",
        help="before starting, decode every dataset file (default: headers and a few files)",
    )
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("--quiet", action="store_true", help="print only warnings, errors and the summary")
    loud.add_argument("--verbose", action="store_true", help="also Ray's own logs and Tune's tables")
    p.add_argument("--mlflow-uri", help=f"also log to this MLflow tracking URI (needs {INSTALL_HINT})")
    args = p.parse_args(argv)
    if not args.plan and (args.step_seconds is not None or args.format != "text"):
        p.error("--step-seconds and --format go with --plan")
    if args.step_seconds is not None and not args.step_seconds > 0:
        p.error(f"--step-seconds must be > 0, got {args.step_seconds:g}")
    if args.mlflow_uri and not mlflow_installed():
        p.error(f"--mlflow-uri needs mlflow, which is not installed: {INSTALL_HINT}")
    return args


def _plan_nodes() -> tuple[list[dict[str, float]], str]:
    address = os.environ.get("RAY_ADDRESS")
    if address:  # the cluster the job would join: read its nodes, start nothing on it
        with ray_cluster(address, **console.ray_init_options(console.QUIET)):
            return node_resources(), f"the Ray cluster at {address}"
    return [local_node_resources()], "this machine (the job would start a local Ray cluster)"


def _print_plan(args: argparse.Namespace, cfg: JobConfig) -> int:
    """``--plan``: every check the job runs before it starts, then the plan; 2 if a check failed,
    3 if the layout cannot fit the cluster, else 0."""
    checks = run_checks(cfg, check_data=args.check_data, stop_at_first=False)
    paths = ExperimentPaths(args.storage, cfg.experiment)
    for name, check in (
        ("storage", lambda: check_storage(args.storage)),
        ("experiment", lambda: check_experiment(cfg, paths, args.resume)),
    ):
        try:
            check()
            checks.verdicts.append(Verdict(name, None, paths.root if name == "storage" else "can start"))
        except (JobError, StorageError) as e:
            checks.verdicts.append(Verdict(name, str(e)))
    nodes, where = _plan_nodes()
    plan: SearchPlan = make_plan(
        cfg,
        config_label=args.config or "synthscape (the embedded default)",
        storage_root=paths.root,
        checks=checks,
        nodes=nodes,
        cluster=where,
        step_seconds=args.step_seconds,
    )
    if args.format == "json":
        print(json.dumps(plan.as_dict(), indent=1))
    else:
        print("\n".join(plan.lines()))
    if plan.checks_failed:
        return 2
    return 3 if plan.resource_error is not None else 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    verbosity = console.QUIET if args.quiet else console.VERBOSE if args.verbose else console.NORMAL
    console.configure_driver(verbosity)
    try:
        cfg = load_job_config(args.config, parse_overrides(args.set))
        if args.plan:
            return _print_plan(args, cfg)
        # Checked before Ray starts: a bad config, a missing dataset or storage that cannot be
        # written costs nothing.
        prepared = preflight(cfg, check_data=args.check_data)
        check_storage(args.storage)
        paths = ExperimentPaths(args.storage, cfg.experiment)
        restore = check_experiment(cfg, paths, args.resume)
        with ray_cluster(**console.ray_init_options(verbosity)):
            choice = run(
                cfg,
                args.storage,
                restore=restore,
                prepared=prepared,
                verbosity=verbosity,
                mlflow_uri=args.mlflow_uri,
            )
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ResourceError as e:
        print(f"error: resources: {e}", file=sys.stderr)
        return 3
    except (JobError, StorageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not choice.get("parameters"):
        notes = " ".join(str(n) for n in choice.get("notes") or [])
        print(f"No choice: {notes}\nOutputs: {paths.root}", file=sys.stderr)
        return 1
    # The whole choice is in choice.json; the console ends with what a person reads first.
    print("\n".join(console.summary_lines(choice, paths.root)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
