"""Enqueueing jobs on arq with deterministic job ids."""

from __future__ import annotations

import logging
import uuid

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix

log = logging.getLogger(__name__)


class JobQueue:
    def __init__(self, pool: ArqRedis):
        self.pool = pool

    @classmethod
    async def connect(cls, redis_url: str) -> "JobQueue":
        return cls(await create_pool(RedisSettings.from_dsn(redis_url)))

    async def enqueue(self, function: str, task_id: uuid.UUID, job_id: str) -> None:
        job = await self.pool.enqueue_job(function, str(task_id), _job_id=job_id)
        if job is None:
            # The same step for the same asset is already queued or running; the
            # stalled-task sweep picks this task up once that one is done.
            log.info("job %s already queued; task %s waits for the sweep", job_id, task_id)

    async def enqueue_plain(self, function: str, *args: str, job_id: str) -> bool:
        """A job keyed by job_id alone: while one is queued or running, another is not added."""
        return await self.pool.enqueue_job(function, *args, _job_id=job_id) is not None

    async def release(self, job_id: str) -> None:
        """Forget that a job is running. arq marks a started job with a key that lives for the
        whole job timeout (an hour), so a job whose worker was killed would wait that long;
        call this only once the database says that worker is gone."""
        await self.pool.delete(in_progress_key_prefix + job_id)

    async def close(self) -> None:
        await self.pool.aclose()
