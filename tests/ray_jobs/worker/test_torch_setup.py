"""ray_jobs.worker.torch_setup: a worker's CPU threads and device."""

from __future__ import annotations

import torch

from ray_jobs.worker import set_cpu_threads, train_device


def test_threads_are_the_reserved_cpus() -> None:
    threads = torch.get_num_threads()
    try:
        set_cpu_threads(2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_a_cpu_worker_trains_on_the_cpu_whatever_the_memory_fraction() -> None:
    assert train_device(False, None) == torch.device("cpu")
    assert train_device(False, 0.5) == torch.device("cpu")
