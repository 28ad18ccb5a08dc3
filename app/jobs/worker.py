"""The arq worker: job functions and how to build a worker for this process."""

from __future__ import annotations

import logging
from datetime import timedelta

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker

from app.api.state import Shared
from app.domain import maintenance

log = logging.getLogger(__name__)

TRASH_RETENTION = timedelta(days=90)


async def purge_expired_trash(ctx: dict) -> int:
    """Hard-delete assets that have sat in the trash longer than the retention window."""
    shared: Shared = ctx["shared"]
    removed = await maintenance.purge_trash_older_than(shared.store, TRASH_RETENTION)
    if removed:
        log.info("purged %d assets past the trash retention window", removed)
    return removed


FUNCTIONS = [purge_expired_trash]
CRON_JOBS = [cron(purge_expired_trash, minute=17, unique=True, run_at_startup=True)]


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def build_worker(shared: Shared, redis_url: str) -> Worker:
    return Worker(
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS,
        redis_settings=redis_settings(redis_url),
        ctx={"shared": shared},
        handle_signals=False,
        max_jobs=shared.settings.worker_concurrency,
        job_timeout=3600,
    )

