"""ray_jobs.cluster.connect (no cluster): the nodes a job may use, the autoscaler's included, and
the node a local cluster would have."""

from __future__ import annotations

import os

import pytest
import torch

from ray_jobs.cluster import DRIVER_RESOURCE, local_node_resources, plan_resources
from ray_jobs.config import RayConfig


def test_nodes_the_autoscaler_may_add_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """A head-only cluster whose GPU workers start on demand: GPU jobs are sized, not refused."""
    from ray.core.generated import autoscaler_pb2

    from ray_jobs.cluster import connect

    config = autoscaler_pb2.ClusterConfig(
        node_group_configs=[
            autoscaler_pb2.NodeGroupConfig(name="head", resources={"CPU": 8}, max_count=1),
            autoscaler_pb2.NodeGroupConfig(name="gpu", resources={"CPU": 4, "GPU": 1}, max_count=3),
        ]
    )
    # What ray_compat's accessor returns on such a cluster (the accessor itself: test_ray_compat).
    monkeypatch.setattr(connect, "autoscaler_cluster_config", lambda: config)
    head = {"CPU": 8.0, "memory": 3e10}
    nodes = [head, *connect.scalable_nodes([head])]
    assert nodes[1:] == [{"CPU": 4.0, "GPU": 1.0}] * 3  # the head is up already; 3 GPU nodes may come
    plan = plan_resources(RayConfig(use_gpu=True, gpus_per_worker=1, cpus_per_worker=4), nodes, 11)
    assert plan.max_concurrent_trials == 3


def test_the_local_node_is_this_machine_with_the_drivers_resource() -> None:
    assert local_node_resources() == {
        "CPU": float(os.cpu_count() or 1),
        "GPU": float(torch.cuda.device_count()),
        DRIVER_RESOURCE: 1.0,
    }
