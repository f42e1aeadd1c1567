"""Ray test support that the product never imports: shared by tests/ and bench/, never shipped.

* ``local_cluster``: real multi-node Ray clusters on one machine (``ray start --block`` per node,
  each in its own process group, so a node can be lost on purpose: SIGKILL of that group).
* ``faults``: faults injected around the job's Train loop, and records of what each Train run did.
* ``fault_job``: the selection job with those faults on (``python -m raytest.fault_job``, the same
  arguments as ``python -m ray_jobs.select``).

The job has no opening for them: ``fault_job`` swaps the job's Tune trainable for one that wraps
the Train loop, in its own driver process, before the job starts. Ray ships this package to every
worker of that job (``py_modules``). Tests find it on their path (``tests/`` is, through its
conftest); benchmarks put ``tests/`` on theirs.
"""
