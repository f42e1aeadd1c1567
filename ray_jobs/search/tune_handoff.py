"""Let Train's last report reach Tune before a trial's function returns (a Ray 2.60 race).

Train-in-Tune: the Train controller hands each ``ray.train.report`` to its Tune trial through a
queue actor (``TuneReportCallback``); the trial's main thread moves each item from there into a
one-slot result queue and takes it out again. When the trial function returns, Tune's runner
thread puts its own end-of-training marker into that same slot. If Train's last report is still
in the queue actor at that moment, the main thread then blocks for ever putting it into the full
slot, of which it is the only reader: the trial never ends and the search waits on it (seen here:
every candidate finished and stored, one Tune trial RUNNING after 10 minutes, its main thread in
``Queue.put``). Waiting until the queue actor is empty before returning narrows the window to
the main thread's own hand-off (from taking the report out of the queue actor to putting it into
the slot, milliseconds without a checkpoint); a grace period after that covers it. This narrows
the race rather than removing it: only Ray can remove it.
"""

from __future__ import annotations

import logging
import time

from ray_jobs.ray_compat import train_to_tune_queue

__all__ = ["wait_for_reports_to_reach_tune"]

log = logging.getLogger("ray_jobs")


def wait_for_reports_to_reach_tune(
    timeout_s: float = 120.0, grace_s: float = 1.0, poll_s: float = 0.05
) -> bool:
    """Block until the trial's Train-to-Tune queue is empty, then ``grace_s`` more (True); or
    until ``timeout_s`` passed (False).

    Call at the end of a Tune function trainable that ran a Ray Train trainer. Outside such a
    trial returns True at once; on a Ray without that queue raises ``RayCompatError``.
    """
    # Ray keeps the queue on its session object; no public API exposes it in 2.60.
    queue = train_to_tune_queue()
    if queue is None:
        return True
    deadline = time.monotonic() + timeout_s
    while not queue.empty():
        if time.monotonic() > deadline:
            log.warning("Train's last report had not reached Tune after %.0f s; returning anyway", timeout_s)
            return False
        time.sleep(poll_s)
    time.sleep(grace_s)
    return True
