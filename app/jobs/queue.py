"""Enqueueing jobs on arq with deterministic job ids, and reading or trimming arq's queue."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name, in_progress_key_prefix, job_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    # arq's score: when the job may run (ms since the epoch): its enqueue time, or a retry's deferral
    run_at_ms: int
    running: bool

    @property
    def delayed(self) -> bool:
        return not self.running and self.run_at_ms > time.time() * 1000


# KEYS: the queue, then each job's key; ARGV: score, expiry (ms), then job id and serialized job per job.
_ENQUEUE_MANY = """
local added = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[2 * i], 'NX', 'PX', ARGV[2]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2 * i - 1])
    added = added + 1
  end
end
return added
"""


class JobQueue:
    def __init__(self, pool: ArqRedis):
        self.pool = pool
        self._enqueue_script = pool.register_script(_ENQUEUE_MANY)

    @classmethod
    async def connect(cls, redis_url: str) -> "JobQueue":
        return cls(await create_pool(RedisSettings.from_dsn(redis_url)))

    async def enqueue(self, function: str, task_id: uuid.UUID, job_id: str, defer_s: float = 0) -> None:
        job = await self.pool.enqueue_job(function, str(task_id), _job_id=job_id, _defer_by=defer_s or None)
        if job is None:
            # The same step for the same asset is already queued or running; the
            # stalled-task sweep picks this task up once that one is done.
            log.info("job %s already queued; task %s waits for the sweep", job_id, task_id)

    async def enqueue_many(self, jobs: list[tuple[str, uuid.UUID, str]], batch: int = 1000) -> int:
        """Enqueue (function, task_id, job_id) jobs, a batch per round trip (an administrator's start
        can name every asset). Each job is added as arq's enqueue_job adds it (the job's key, then its
        place in the queue), atomically in one script, and skipped when its job id is already queued
        or running, as there; answers how many were added."""
        added = 0
        for start in range(0, len(jobs), batch):
            chunk = jobs[start:start + batch]
            now = timestamp_ms()
            keys = [job_key_prefix + job_id for _, _, job_id in chunk]
            values = [item for function, task_id, job_id in chunk for item in (
                job_id, serialize_job(function, (str(task_id),), {}, None, now, serializer=self.pool.job_serializer))]
            added += await self._enqueue_script(keys=[default_queue_name, *keys],
                                                args=[now, self.pool.expires_extra_ms, *values])
        return added

    async def enqueue_plain(self, function: str, *args: str, job_id: str) -> bool:
        """A job keyed by job_id alone: while one is queued or running, another is not added."""
        return await self.pool.enqueue_job(function, *args, _job_id=job_id) is not None

    async def release(self, job_id: str) -> None:
        """Forget that a job is running. arq marks a started job with a key that lives for the
        whole job timeout (an hour), so a job whose worker was killed would wait that long;
        call this only once the database says that worker is gone."""
        await self.pool.delete(in_progress_key_prefix + job_id)

    async def snapshot(self) -> list[QueuedJob]:
        """Every job in arq's queue and whether a worker runs it now: two Redis calls in all."""
        entries = await self.pool.zrange(default_queue_name, 0, -1, withscores=True)
        ids = [member.decode() if isinstance(member, bytes) else member for member, _ in entries]
        marks = await self.pool.mget([in_progress_key_prefix + i for i in ids]) if ids else []
        return [QueuedJob(i, int(score), mark is not None) for i, (_, score), mark in zip(ids, entries, marks)]

    async def remove(self, job_ids: list[str]) -> int:
        """Take jobs out of the queue (and their payloads). A worker that took one a moment ago
        still runs it, so callers end the job's task first, which makes that run a no-op."""
        if not job_ids:
            return 0
        async with self.pool.pipeline(transaction=True) as pipe:
            pipe.zrem(default_queue_name, *job_ids)
            pipe.delete(*(job_key_prefix + i for i in job_ids))
            removed, _ = await pipe.execute()
        return removed

    async def close(self) -> None:
        await self.pool.aclose()
