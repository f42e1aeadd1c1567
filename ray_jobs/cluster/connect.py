"""Connect to the Ray cluster the job runs in, or start a local one for the length of the job.

Inside ``ray job submit`` (or with ``RAY_ADDRESS`` set) the driver joins that cluster and asks for
nothing: the cluster's size is whatever it is. Otherwise a single-node cluster is started on this
machine with all its cores and shut down when the job ends.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ray
import torch

from ray_jobs.cluster.placement_groups import remove_leaked_placement_groups
from ray_jobs.cluster.resources import DRIVER_RESOURCE
from ray_jobs.ray_compat import RayCompatError, autoscaler_cluster_config

__all__ = ["ClusterInfo", "local_node_resources", "ray_cluster", "node_resources", "scalable_nodes"]

log = logging.getLogger("ray_jobs")


@dataclass(frozen=True)
class ClusterInfo:
    started_here: bool
    address: str


@contextmanager
def ray_cluster(address: str | None = None, **init_options: Any) -> Iterator[ClusterInfo]:
    """Join ``address`` / ``RAY_ADDRESS`` if given, else start a local cluster; disconnect at exit.

    ``init_options`` go to ``ray.init`` either way (logging levels, runtime env). A session that is
    already initialised (a caller that set Ray up itself) is used as it is and left running.
    """
    if ray.is_initialized():
        yield ClusterInfo(started_here=False, address=ray.get_runtime_context().gcs_address)
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        # The cluster decides its own resources; passing num_cpus here would be an error.
        ray.init(address=address, **init_options)
        started = False
        # A shared cluster may hold groups a killed driver's job left behind (see the module).
        remove_leaked_placement_groups()
    else:
        ray.init(
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            # Tune's trial drivers only wait on their TorchTrainer: give them a resource of their
            # own so they take no CPU a Train worker needs (see resources.py).
            resources={DRIVER_RESOURCE: 1.0},
            **init_options,
        )
        started = True
    info = ClusterInfo(started_here=started, address=ray.get_runtime_context().gcs_address)
    log.info("%s Ray cluster at %s", "started a local" if started else "joined the", info.address)
    try:
        yield info
    finally:
        ray.shutdown()


def node_resources() -> list[dict[str, float]]:
    """Total resources of every node the job may use: the live ones, plus those the autoscaler
    may still add (so a GPU job on a cluster whose GPU workers start on demand is not refused)."""
    live = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
    return live + scalable_nodes(live)


# Node groups of an unbounded autoscaler (max_count -1) count as this many nodes when sizing.
_UNBOUNDED_GROUP = 16


def scalable_nodes(live: list[dict[str, float]]) -> list[dict[str, float]]:
    # The autoscaler (v2, the default of `ray up` in 2.60) publishes its node groups in the GCS;
    # Ray Data reads them the same way. No public API yet (see ray_compat): a Ray without it
    # stops the job; a read that fails (a local or fixed-size cluster) means only live nodes count.
    try:
        config = autoscaler_cluster_config()
    except RayCompatError:
        raise
    except Exception as e:  # noqa: BLE001 - private API: any failure to read means "unknown"
        log.debug("no autoscaler node groups: %s", e)
        return []
    if config is None:
        return []
    extra: list[dict[str, float]] = []
    for group in config.node_group_configs:
        resources = {k: float(v) for k, v in group.resources.items()}
        if not resources or group.max_count == 0:
            continue
        most = _UNBOUNDED_GROUP if group.max_count < 0 else group.max_count
        # Nodes of this group already up are among the live ones (same total resources).
        up = sum(all(n.get(k) == v for k, v in resources.items()) for n in live)
        extra += [dict(resources) for _ in range(max(0, most - up))]
    if extra:
        log.info("counting %d node(s) the autoscaler may add", len(extra))
    return extra


def local_node_resources() -> dict[str, float]:
    """The node :func:`ray_cluster` would start on this machine, without starting it (``--plan``):
    all its cores, the GPUs torch sees, and the trial drivers' own resource."""
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count()), DRIVER_RESOURCE: 1.0}
