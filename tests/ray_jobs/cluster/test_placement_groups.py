"""Which placement groups a joining job removes: only those Ray should already have removed."""

from __future__ import annotations

from ray_jobs.cluster import leaked_placement_groups

JOBS = [
    {"job_id": "01000000", "status": "SUCCEEDED"},  # a driver that was SIGKILLed, then marked ended
    {"job_id": "02000000", "status": "RUNNING"},
    {"job_id": "03000000", "status": "FAILED"},
    {"job_id": "04000000", "status": "STOPPED"},
]


def _group(pg_id: str, job: str, state: str = "CREATED", detached: bool = False) -> dict:
    return {"placement_group_id": pg_id, "creator_job_id": job, "state": state, "is_detached": detached}


def test_live_groups_of_ended_jobs_are_leaked() -> None:
    groups = [
        _group("a", "01000000"),
        _group("b", "03000000", "PENDING"),
        _group("c", "04000000", "RESCHEDULING"),
    ]
    assert leaked_placement_groups(groups, JOBS) == ["a", "b", "c"]


def test_running_jobs_detached_removed_and_unknown_are_kept() -> None:
    groups = [
        _group("running", "02000000"),
        _group("detached", "01000000", detached=True),  # detached: outliving its job is the point
        _group("removed", "01000000", "REMOVED"),
        _group("unknown job", "09000000"),  # a job not listed is not known to have ended
        _group("no job", None),
    ]
    assert leaked_placement_groups(groups, JOBS) == []


def test_enum_states_as_ray_returns_them() -> None:
    from ray.job_submission import JobStatus

    jobs = [
        {"job_id": "01000000", "status": JobStatus.SUCCEEDED},
        {"job_id": "02000000", "status": JobStatus.RUNNING},
    ]
    groups = [_group("a", "01000000"), _group("b", "02000000")]
    assert leaked_placement_groups(groups, jobs) == ["a"]
