"""Layouts that can never be placed fail before anything starts, naming the field; others are sized."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import RayHead
from jobtools import write_config

from ray_jobs.cluster import DRIVER_RESOURCE, DRIVER_SLIVER, ResourceError, plan_resources
from ray_jobs.config import RayConfig

TWO_CORES = [{"CPU": 2.0, "memory": 1e10}]
TWO_CORES_WITH_DRIVER = [{"CPU": 2.0, DRIVER_RESOURCE: 1.0}]
GPU_NODES = [{"CPU": 8.0}, {"CPU": 16.0, "GPU": 4.0}, {"CPU": 16.0, "GPU": 4.0}]


def test_use_gpu_on_a_cluster_without_gpus() -> None:
    with pytest.raises(ResourceError, match=r"ray\.use_gpu is true but the cluster has no GPUs"):
        plan_resources(RayConfig(use_gpu=True), TWO_CORES, 5)


def test_more_gpus_per_worker_than_any_node_has() -> None:
    with pytest.raises(ResourceError, match=r"ray\.gpus_per_worker=8 but the largest node has 4 GPU"):
        plan_resources(RayConfig(use_gpu=True, gpus_per_worker=8), GPU_NODES, 5)


def test_fractional_gpus_above_one_are_refused() -> None:
    with pytest.raises(ResourceError, match=r"gpus_per_worker=1.5"):
        plan_resources(RayConfig(use_gpu=True, gpus_per_worker=1.5), GPU_NODES, 5)


def test_ddp_ranks_must_not_share_a_gpu() -> None:
    with pytest.raises(ResourceError, match=r"DDP ranks of one candidate must not share a GPU"):
        plan_resources(RayConfig(use_gpu=True, gpus_per_worker=0.25, num_workers=2), GPU_NODES, 5)


def test_worker_larger_than_every_node() -> None:
    with pytest.raises(ResourceError, match=r"ray\.cpus_per_worker=4 but the largest node has 2 CPUs"):
        plan_resources(RayConfig(cpus_per_worker=4), TWO_CORES, 5)


def test_two_one_cpu_workers_and_a_driver_do_not_fit_two_cores() -> None:
    # 2 x 1 CPU + the driver's sliver > 2 CPUs: the worker group would wait forever.
    with pytest.raises(ResourceError, match=r"would wait forever") as err:
        plan_resources(RayConfig(num_workers=2, cpus_per_worker=1), TWO_CORES, 5)
    assert "ray.num_workers, ray.cpus_per_worker" in str(err.value)
    assert f"{DRIVER_SLIVER} CPU for its driver" in str(err.value)


def test_driver_resource_lets_two_candidates_share_two_cores() -> None:
    plan = plan_resources(RayConfig(cpus_per_worker=1, max_concurrent_trials=4), TWO_CORES_WITH_DRIVER, 11)
    assert plan.driver == {DRIVER_RESOURCE: DRIVER_SLIVER}
    assert plan.max_concurrent_trials == 2
    assert "lowered to 2" in plan.notes[0]
    # Without the driver resource the sliver costs the second worker its CPU.
    plan = plan_resources(RayConfig(cpus_per_worker=1, max_concurrent_trials=2), TWO_CORES, 11)
    assert plan.driver == {"CPU": DRIVER_SLIVER}
    assert plan.max_concurrent_trials == 1


def test_concurrency_follows_the_limiting_resource() -> None:
    # 8 GPUs over two nodes, 2 per candidate: 4 at once, whatever max_concurrent_trials allows above.
    cfg = RayConfig(use_gpu=True, num_workers=2, gpus_per_worker=1, cpus_per_worker=4)
    plan = plan_resources(cfg, GPU_NODES, 20)
    assert plan.max_concurrent_trials == 4
    assert plan.worker == {"CPU": 4, "GPU": 1}
    # Quarter GPUs, one worker each: 16 fit, but only 6 candidates exist.
    plan = plan_resources(RayConfig(use_gpu=True, gpus_per_worker=0.25, cpus_per_worker=1), GPU_NODES, 6)
    assert plan.max_concurrent_trials == 6
    assert plan.warmup_gpus == 0.25
    assert plan.warmup_cpus == 1


def test_cpu_warmups_share_the_largest_node() -> None:
    # Alone before the search, one warm-up takes both cores; two replicates take one each.
    assert plan_resources(RayConfig(cpus_per_worker=1), TWO_CORES_WITH_DRIVER, 11).warmup_cpus == 2
    assert plan_resources(RayConfig(cpus_per_worker=1), TWO_CORES_WITH_DRIVER, 22, warmups=2).warmup_cpus == 1
    assert plan_resources(RayConfig(cpus_per_worker=1), TWO_CORES_WITH_DRIVER, 33, warmups=3).warmup_cpus == 1


# A head without CPUs and two worker nodes with one GPU slot each (the multi-node test cluster).
SLOT_NODES = [
    {"CPU": 0.0},
    {"CPU": 2.0, "gpu_slot": 1.0, DRIVER_RESOURCE: 1.0},
    {"CPU": 2.0, "gpu_slot": 1.0, DRIVER_RESOURCE: 1.0},
]


def test_worker_resources_limit_candidates_to_one_per_slot() -> None:
    cfg = RayConfig(cpus_per_worker=1, worker_resources={"gpu_slot": 1}, max_concurrent_trials=4)
    plan = plan_resources(cfg, SLOT_NODES, 11)
    assert plan.worker == {"CPU": 1, "gpu_slot": 1}
    assert plan.max_concurrent_trials == 2  # 4 CPUs would take 4; the 2 slots decide
    assert plan.warmup_resources == {"gpu_slot": 1}
    assert plan.warmup_cpus == 2  # the whole of a node that can hold a worker
    # Without the custom resource the CPUs decide.
    assert (
        plan_resources(
            RayConfig(cpus_per_worker=1, max_concurrent_trials=4), SLOT_NODES, 11
        ).max_concurrent_trials
        == 4
    )


def test_worker_resource_no_node_declares() -> None:
    with pytest.raises(ResourceError, match=r"ray\.worker_resources\.a10g=1 but no node declares it"):
        plan_resources(RayConfig(worker_resources={"a10g": 1}), SLOT_NODES, 5)
    with pytest.raises(
        ResourceError, match=r"ray\.worker_resources\.gpu_slot=2 but the most any node declares is 1"
    ):
        plan_resources(RayConfig(worker_resources={"gpu_slot": 2}), SLOT_NODES, 5)


def test_worker_resources_that_no_single_node_combines() -> None:
    nodes = [{"CPU": 2.0, "a": 1.0}, {"CPU": 2.0, "b": 1.0}]
    with pytest.raises(ResourceError, match=r"would wait forever") as err:
        plan_resources(RayConfig(worker_resources={"a": 1, "b": 1}), nodes, 5)
    assert "ray.worker_resources" in str(err.value) and "1 a + 1 b" in str(err.value)


def test_vote_actor_follows_the_driver_resource() -> None:
    assert plan_resources(RayConfig(), SLOT_NODES, 3).vote == {DRIVER_RESOURCE: DRIVER_SLIVER}
    assert plan_resources(RayConfig(), TWO_CORES, 3).vote == {}  # then anywhere, holding nothing


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"GPU": 1}, "use cpus_per_worker / gpus_per_worker"),
        ({"memory": 1}, "'memory' is not a custom resource"),
        ({"gpu_slot": 0}, "gpu_slot: the amount must be > 0"),
        ({"gpu_slot": 1.5}, "gpu_slot: above 1, Ray hands out only whole units"),
    ],
)
def test_worker_resources_are_checked_when_the_config_loads(
    resources: dict, message: str, tmp_path: Path
) -> None:
    from hiast.config import ConfigError
    from ray_jobs.config import load_job_config

    path = write_config(tmp_path / "bad.yaml", **{"ray.worker_resources": resources})
    with pytest.raises(ConfigError, match="ray.worker_resources") as err:
        load_job_config(path)
    assert message in str(err.value)


def test_the_job_reports_a_bad_layout_before_starting_anything(ray_head: RayHead, tmp_path: Path) -> None:
    """Against the live 2-CPU head: use_gpu without GPUs exits with status 3 and starts nothing."""
    config = write_config(tmp_path / "gpu.yaml", **{"ray.use_gpu": True})
    proc = ray_head.run_select(config, tmp_path / "results", timeout=180)
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "ray.use_gpu is true but the cluster has no GPUs" in proc.stderr
    assert not (tmp_path / "results").exists()  # no warm-up, no trial, not even the experiment folder
