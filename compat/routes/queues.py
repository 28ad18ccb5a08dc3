"""Immich's Queues tag: each queue's counts and pause state, its jobs, and emptying it (admin only)."""

from __future__ import annotations

from litestar import delete, get, put
from litestar.params import QueryParameter

from app.api.state import Shared
from app.domain import access, job_queues
from compat import dtos
from compat.auth import ImmichAuth


def statistics(status: job_queues.QueueStatus) -> dtos.QueueStatisticsDto:
    s = status.statistics
    return dtos.QueueStatisticsDto(active=s.active, completed=s.completed, delayed=s.delayed, failed=s.failed,
                                   paused=s.paused, waiting=s.waiting)


def queue_response(status: job_queues.QueueStatus) -> dtos.QueueResponseDto:
    return dtos.QueueResponseDto(isPaused=status.is_paused, name=status.name, statistics=statistics(status))


@get("/api/queues", action=access.READ, admin=True)
async def list_queues(auth: ImmichAuth, shared: Shared) -> list[dtos.QueueResponseDto]:
    return [queue_response(s) for s in await job_queues.list_queues(auth.principal, shared.queue)]


@get("/api/queues/{name:str}", action=access.READ, admin=True)
async def get_queue(auth: ImmichAuth, shared: Shared, name: dtos.QueueName) -> dtos.QueueResponseDto:
    return queue_response(await job_queues.get_queue(auth.principal, name, shared.queue))


@put("/api/queues/{name:str}", action=access.WRITE, admin=True)
async def update_queue(auth: ImmichAuth, shared: Shared, name: dtos.QueueName,
                       data: dtos.QueueUpdateDto) -> dtos.QueueResponseDto:
    is_paused = data.isPaused if isinstance(data.isPaused, bool) else None
    return queue_response(await job_queues.update(auth.principal, name, is_paused, shared.queue))


@get("/api/queues/{name:str}/jobs", action=access.READ, admin=True)
async def list_queue_jobs(auth: ImmichAuth, shared: Shared, name: dtos.QueueName,
                          status: list[dtos.QueueJobStatus] | None = QueryParameter(default=None),
                          ) -> list[dtos.QueueJobResponseDto]:
    jobs = await job_queues.list_jobs(auth.principal, name, list(status or []), shared.queue)
    return [dtos.QueueJobResponseDto(id=j.id, name=j.name, data=j.data, timestamp=j.timestamp) for j in jobs]


@delete("/api/queues/{name:str}/jobs", status_code=204, action=access.DELETE, admin=True)
async def empty_queue(auth: ImmichAuth, shared: Shared, name: dtos.QueueName, data: dtos.QueueDeleteDto) -> None:
    await job_queues.empty(auth.principal, name, shared.queue, failed=data.failed is True)


ROUTES = [list_queues, get_queue, update_queue, list_queue_jobs, empty_queue]
