"""Immich's Jobs tag (the 2.x names of the queue routes, deprecated in 3.x but still used by its web
client): every queue's counts, a command on one queue, and the manual jobs (admin only)."""

from __future__ import annotations

from litestar import get, post, put

from app.api.state import Shared
from app.domain import access, job_queues
from compat import dtos
from compat.auth import ImmichAuth
from compat.routes.queues import statistics


def legacy(status: job_queues.QueueStatus) -> dtos.QueueResponseLegacyDto:
    return dtos.QueueResponseLegacyDto(
        jobCounts=statistics(status),
        queueStatus=dtos.QueueStatusLegacyDto(isActive=status.statistics.active > 0, isPaused=status.is_paused),
    )


@get("/api/jobs", action=access.READ, admin=True)
async def list_jobs(auth: ImmichAuth, shared: Shared) -> dtos.QueuesResponseLegacyDto:
    statuses = await job_queues.list_queues(auth.principal, shared.queue)
    return dtos.QueuesResponseLegacyDto(**{s.name: legacy(s) for s in statuses})


@post("/api/jobs", status_code=204, action=access.WRITE, admin=True)
async def create_job(auth: ImmichAuth, shared: Shared, data: dtos.JobCreateDto) -> None:
    await job_queues.create_manual_job(auth.principal, data.name, shared.queue)


@put("/api/jobs/{name:str}", action=access.WRITE, admin=True)
async def run_queue_command(auth: ImmichAuth, shared: Shared, name: dtos.QueueName,
                            data: dtos.QueueCommandDto) -> dtos.QueueResponseLegacyDto:
    status = await job_queues.command(auth.principal, name, data.command, data.force is True, shared.queue)
    return legacy(status)


ROUTES = [list_jobs, create_job, run_queue_command]
