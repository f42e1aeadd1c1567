"""How a worker process of the job sets torch up: its CPU threads and its device."""

from __future__ import annotations

import ray.train.torch
import torch

__all__ = ["set_cpu_threads", "train_device"]


def set_cpu_threads(threads: int) -> None:
    """Intra-op threads = the CPUs Ray reserved for this process."""
    # (Denormal flushing, which made CPU training 5x faster, is scoped to training inside hiast:
    # hiast.training.denormals_flushed.)
    torch.set_num_threads(threads)


def train_device(use_gpu: bool, memory_fraction: float | None) -> torch.device:
    """This Train worker's device: the CPU, or the GPU Ray Train gave it, capped at
    ``memory_fraction`` of its memory when given."""
    if not use_gpu:
        return torch.device("cpu")
    dev = ray.train.torch.get_device()
    if memory_fraction is not None:
        # Ray does no GPU-memory isolation between candidates sharing a card.
        torch.cuda.set_per_process_memory_fraction(memory_fraction, dev)
    return dev
