"""The Ray cluster the job runs on: joining or starting it and what its nodes hold
(:mod:`~ray_jobs.cluster.connect`), the resources each trial, warm-up and the vote actor take
(:mod:`~ray_jobs.cluster.resources`), and the placement groups a killed driver left behind
(:mod:`~ray_jobs.cluster.placement_groups`)."""

from ray_jobs.cluster.connect import ClusterInfo, local_node_resources, node_resources, ray_cluster
from ray_jobs.cluster.placement_groups import leaked_placement_groups, remove_leaked_placement_groups
from ray_jobs.cluster.resources import (
    DRIVER_RESOURCE,
    DRIVER_SLIVER,
    ResourceError,
    TrialResources,
    plan_resources,
)

__all__ = [
    "ClusterInfo",
    "ray_cluster",
    "node_resources",
    "local_node_resources",
    "DRIVER_RESOURCE",
    "DRIVER_SLIVER",
    "ResourceError",
    "TrialResources",
    "plan_resources",
    "leaked_placement_groups",
    "remove_leaked_placement_groups",
]
