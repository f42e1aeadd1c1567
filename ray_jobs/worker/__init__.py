"""What runs on the job's Ray workers: the Ray Train loop of one candidate
(:mod:`~ray_jobs.worker.train_loop`), the config its Tune trial hands it
(:mod:`~ray_jobs.worker.loop_config`), the warm-up task (:mod:`~ray_jobs.worker.warmup`) and how
each sets torch up (:mod:`~ray_jobs.worker.torch_setup`)."""

from ray_jobs.worker.loop_config import LoopConfig, from_train_config, to_train_config
from ray_jobs.worker.torch_setup import set_cpu_threads, train_device
from ray_jobs.worker.train_loop import checkpoint_round, this_node, train_loop_per_worker, write_outputs
from ray_jobs.worker.warmup import warmup_task

__all__ = [
    "LoopConfig",
    "to_train_config",
    "from_train_config",
    "train_loop_per_worker",
    "write_outputs",
    "checkpoint_round",
    "this_node",
    "warmup_task",
    "set_cpu_threads",
    "train_device",
]
