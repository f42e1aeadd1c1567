"""Test and benchmark support that production never imports.

* ``local_cluster``: real multi-node Ray clusters on one machine (``ray start --block`` per node,
  each in its own process group, so a node can be lost on purpose: SIGKILL of that group).
* ``faults``: the wrapper the job's test hook (``ray_jobs.hooks``) puts around the Train loop to
  inject faults and hold candidates at a round.

They live in the package, not under ``tests/``, because the benchmarks use them too and because
Ray workers on any node must be able to import the wrapper by its module path.
"""
