"""Placement groups that outlived the job that made them, removed before a job joins a cluster.

A placement group that is not detached shares its job's fate: Ray removes it when the job ends.
Seen on Ray 2.60: a driver SIGKILLed while a Train run was starting its worker group left that
run's group (one bundle of ``{CPU: 1}``) in state CREATED after its job had SUCCEEDED. Nothing
owns it any more, and it holds its resources for the cluster's lifetime: the next job on a
2-core node waited forever for a 2-CPU warm-up, and a ``--resume`` after a lost driver would run
short of the GPUs such a group holds. So a job that joins a cluster first removes every group
that Ray should already have removed: not detached, still holding or waiting for resources, made
by a job that has ended. Detached groups and groups of running jobs are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["leaked_placement_groups", "remove_leaked_placement_groups"]

log = logging.getLogger("ray_jobs")

ENDED_JOB = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
LIVE_GROUP = frozenset({"CREATED", "PENDING", "RESCHEDULING"})


def _state(value: Any) -> str:
    return str(getattr(value, "value", value)).upper()


def leaked_placement_groups(
    groups: Iterable[Mapping[str, Any]], jobs: Iterable[Mapping[str, Any]]
) -> list[str]:
    """Ids of the groups that are not detached, still live, and whose creator job has ended.

    ``groups``: ``placement_group_id``, ``creator_job_id``, ``state``, ``is_detached`` (as Ray's
    state API lists them); ``jobs``: ``job_id`` and ``status``. A group whose job is not listed
    is kept: only a job known to have ended makes its groups leaked.
    """
    ended = {j["job_id"] for j in jobs if j.get("job_id") and _state(j.get("status")) in ENDED_JOB}
    return [
        g["placement_group_id"]
        for g in groups
        if not g.get("is_detached")
        and _state(g.get("state")) in LIVE_GROUP
        and g.get("creator_job_id") in ended
    ]


def remove_leaked_placement_groups() -> list[str]:
    """Find leaked groups through Ray's state API and remove them; returns their ids.

    The state API needs the cluster's dashboard; where it cannot answer, nothing is removed and
    the reason is logged (the job goes on: a leak costs resources, not correctness).
    """
    import ray
    from ray.util.placement_group import PlacementGroup
    from ray.util.state import list_jobs, list_placement_groups

    try:
        groups = [vars(g) for g in list_placement_groups(detail=True, raise_on_missing_output=False)]
        jobs = [{"job_id": j.job_id, "status": j.status} for j in list_jobs(raise_on_missing_output=False)]
    except Exception as e:  # noqa: BLE001 - any state-API failure means: cannot tell, touch nothing
        log.warning("could not list the cluster's placement groups, none removed: %s", e)
        return []
    leaked = leaked_placement_groups(groups, jobs)
    for pg_id in leaked:
        log.warning("removing placement group %s: its job has ended, Ray left it holding resources", pg_id)
        ray.util.remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_id))))
    return leaked
