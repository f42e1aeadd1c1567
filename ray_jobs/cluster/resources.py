"""What each candidate asks the cluster for, checked against the cluster before anything starts.

A candidate is one Tune trial: a *driver* (the function trainable, which only builds a
``TorchTrainer`` and waits) plus ``ray.num_workers`` Train workers. A layout that cannot be placed
does not fail in Ray, it waits: Train's controller retries the worker group forever. So every
impossible request is turned into a :class:`ResourceError` here, naming the config field, and the
number of candidates that run at once is computed from the limiting resource.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ray_jobs.config import RayConfig

__all__ = ["DRIVER_RESOURCE", "DRIVER_SLIVER", "ResourceError", "TrialResources", "plan_resources"]

# A custom resource for trial drivers (declared by clusters we start, and by cluster.yaml's head).
# Without it, a driver takes DRIVER_SLIVER of a CPU: Tune rejects {"CPU": 0}, and a full CPU per
# driver would starve the workers (two drivers on two cores and no worker ever starts).
DRIVER_RESOURCE = "hiast_trial_driver"
DRIVER_SLIVER = 0.01
_EPS = 1e-6


class ResourceError(RuntimeError):
    """The requested layout can never be placed on this cluster; the message says which field."""


@dataclass(frozen=True)
class TrialResources:
    driver: dict[str, float]  # the Tune function trainable
    worker: dict[str, float]  # one Train worker (ScalingConfig.resources_per_worker)
    num_workers: int
    use_gpu: bool
    max_concurrent_trials: int
    warmup_cpus: float  # the warm-up task, which runs alone before the search
    warmup_gpus: float
    torch_threads: int  # intra-op threads of one worker: its CPU share, at least 1
    # Custom resources of the warm-up: the worker's (it trains where candidates train).
    warmup_resources: dict[str, float] = field(default_factory=dict)
    # The vote actor goes where the trial drivers go: on the driver resource when the cluster
    # declares it (cluster.yaml: the head), else anywhere, holding nothing (no resources).
    vote: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _describe(nodes: list[dict[str, float]], custom: tuple[str, ...] = ()) -> str:
    def one(n: dict[str, float]) -> str:
        amounts = [
            f"{n.get('CPU', 0):g} CPU",
            f"{n.get('GPU', 0):g} GPU",
            *(f"{n.get(c, 0):g} {c}" for c in custom),
        ]
        return "/".join(amounts)

    return f"{len(nodes)} node(s): " + ", ".join(one(n) for n in nodes)


def _worker_slots(node: dict[str, float], worker: dict[str, float], reserved_cpu: float) -> int:
    """How many workers fit on one node once ``reserved_cpu`` is set aside for drivers."""
    slots = math.inf
    for name, need in worker.items():
        have = node.get(name, 0.0) - (reserved_cpu if name == "CPU" else 0.0)
        slots = min(slots, math.floor(have / need + _EPS))
    return max(0, int(slots))


def _fits(
    nodes: list[dict[str, float]], worker: dict[str, float], num_workers: int, trials: int, driver_cpu: float
) -> bool:
    """Can ``trials`` candidates run at once? Drivers are assumed packed onto a single node."""
    for host in range(len(nodes)):
        slots = sum(
            _worker_slots(n, worker, trials * driver_cpu if i == host else 0.0) for i, n in enumerate(nodes)
        )
        if slots >= trials * num_workers:
            return True
    return False


def plan_resources(
    cfg: RayConfig, nodes: list[dict[str, float]], num_trials: int, *, warmups: int = 1
) -> TrialResources:
    """Check ``cfg`` against the cluster's nodes (total resources each) and size the search.

    ``warmups``: how many warm-ups (replicates) run at once before the search.

    Raises ResourceError for use_gpu without GPUs, a worker larger than every node, DDP ranks
    that would share a GPU, or a candidate that cannot be placed even alone.
    """
    if not nodes:
        raise ResourceError("the Ray cluster has no live nodes")
    notes: list[str] = []
    worker: dict[str, float] = {"CPU": cfg.cpus_per_worker}
    max_cpu = max(n.get("CPU", 0.0) for n in nodes)
    max_gpu = max(n.get("GPU", 0.0) for n in nodes)
    if cfg.use_gpu:
        g = cfg.gpus_per_worker
        if max_gpu <= 0:
            raise ResourceError(
                f"ray.use_gpu is true but the cluster has no GPUs ({_describe(nodes)}); "
                "set ray.use_gpu: false or add GPU nodes"
            )
        if g > 1 and g != int(g):
            raise ResourceError(f"ray.gpus_per_worker={g:g}: above 1, Ray only hands out whole GPUs")
        if g > max_gpu:
            raise ResourceError(
                f"ray.gpus_per_worker={g:g} but the largest node has {max_gpu:g} GPU(s) ({_describe(nodes)})"
            )
        if cfg.num_workers > 1 and g <= 0.5:
            # Two ranks of one DDP group could land on the same card; NCCL then refuses to start
            # ("Duplicate GPU detected", ray#48012).
            raise ResourceError(
                f"ray.gpus_per_worker={g:g} with ray.num_workers={cfg.num_workers}: DDP ranks of one "
                "candidate must not share a GPU; use gpus_per_worker > 0.5 (candidates may still share "
                "cards with num_workers: 1)"
            )
        worker["GPU"] = g
    if cfg.cpus_per_worker > max_cpu + _EPS:
        raise ResourceError(
            f"ray.cpus_per_worker={cfg.cpus_per_worker:g} but the largest node has {max_cpu:g} CPUs "
            f"({_describe(nodes)})"
        )
    custom = tuple(cfg.worker_resources)
    for name, amount in cfg.worker_resources.items():
        most = max(n.get(name, 0.0) for n in nodes)
        if amount > most + _EPS:
            has = f"the most any node declares is {most:g}" if most > 0 else "no node declares it"
            raise ResourceError(
                f"ray.worker_resources.{name}={amount:g} but {has} ({_describe(nodes, custom)}); "
                f"declare it on the nodes (ray start --resources='{{\"{name}\": 1}}') or remove it"
            )
        worker[name] = amount
    # Only nodes that can hold a worker size the warm-up (it asks for the same custom resources).
    hosts = [n for n in nodes if all(n.get(k, 0.0) >= v - _EPS for k, v in cfg.worker_resources.items())]
    max_cpu = max((n.get("CPU", 0.0) for n in hosts), default=0.0)

    has_driver_resource = any(n.get(DRIVER_RESOURCE, 0.0) >= DRIVER_SLIVER for n in nodes)
    driver = {DRIVER_RESOURCE: DRIVER_SLIVER} if has_driver_resource else {"CPU": DRIVER_SLIVER}
    driver_cpu = 0.0 if has_driver_resource else DRIVER_SLIVER
    if not _fits(nodes, worker, cfg.num_workers, 1, driver_cpu):
        need = f"{cfg.num_workers} worker(s) x {cfg.cpus_per_worker:g} CPU"
        if cfg.use_gpu:
            need += f" + {cfg.gpus_per_worker:g} GPU"
        need += "".join(f" + {v:g} {k}" for k, v in cfg.worker_resources.items())
        fields = "ray.num_workers, ray.cpus_per_worker" + (", ray.gpus_per_worker" if cfg.use_gpu else "")
        if cfg.worker_resources:
            fields += ", ray.worker_resources"
        driver_part = "" if has_driver_resource else f" plus {DRIVER_SLIVER} CPU for its driver"
        raise ResourceError(
            f"one candidate needs {need} ({fields}){driver_part}, which this cluster cannot place "
            f"({_describe(nodes, custom)}); it would wait forever. Lower them or add nodes."
        )

    limit = max(1, num_trials)
    if cfg.max_concurrent_trials is not None:
        limit = min(limit, cfg.max_concurrent_trials)
    concurrent = limit
    while concurrent > 1 and not _fits(nodes, worker, cfg.num_workers, concurrent, driver_cpu):
        concurrent -= 1
    if cfg.max_concurrent_trials is not None and concurrent < min(cfg.max_concurrent_trials, num_trials):
        notes.append(
            f"ray.max_concurrent_trials={cfg.max_concurrent_trials} lowered to {concurrent}: "
            f"that is how many candidates fit on {_describe(nodes, custom)}"
        )

    # The warm-ups run alone, before any trial: on CPU each takes an equal share of the largest
    # node (2 threads instead of 1 cut the synthscape warm-up from 48 s to 30 s). Never more
    # threads than CPUs reserved: torch's spinning threads on an oversubscribed node made a
    # warm-up 15-30x slower.
    warmup_cpus = cfg.cpus_per_worker
    if not cfg.use_gpu:
        warmup_cpus = max(warmup_cpus, float(math.floor(max_cpu / max(1, warmups))))
    warmup_gpus = min(cfg.gpus_per_worker, 1.0) if cfg.use_gpu else 0.0
    return TrialResources(
        driver=driver,
        worker=worker,
        num_workers=cfg.num_workers,
        use_gpu=cfg.use_gpu,
        max_concurrent_trials=concurrent,
        warmup_cpus=warmup_cpus,
        warmup_gpus=warmup_gpus,
        torch_threads=max(1, int(cfg.cpus_per_worker)),
        warmup_resources=dict(cfg.worker_resources),
        vote=dict(driver) if has_driver_resource else {},
        notes=notes,
    )
