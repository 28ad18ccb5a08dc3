"""Background task records: what ran for which asset, and how it ended."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import NamedTuple

import asyncpg

from app.db import engine as db
from app.domain import access
from app.domain.errors import Invalid, NotFound

METADATA = {"image": "metadata_extract", "video": "video_metadata_extract"}
VARIANTS = {"image": "thumbnail_generation", "video": "video_thumbnail_extract"}
STATUSES = ("pending", "started", "success", "failure")

# Who runs the current step: its worker process and the arq job running it (see claimant; set by
# app/jobs/worker.py); None for steps run directly in a process without heartbeats (the reprocess
# command, tests).
WORKER: ContextVar[str | None] = ContextVar("task_worker", default=None)
# A worker refreshes workers.seen_at every few seconds; one not seen for this long is gone.
WORKER_DEAD_AFTER_S = 30
# A task started in a process without a worker identity is presumed interrupted after
# this long (the longest a job may run).
UNOWNED_STALE_AFTER_S = 3600
# Starts of one task (retries and restarts after crashes) before it ends as failed.
MAX_ATTEMPTS = 5

_WORKER_GONE = """NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = split_part(t.worker_id, '/', 1)
                  AND w.seen_at > now() - make_interval(secs => {dead}))""".format(dead=WORKER_DEAD_AFTER_S)
# A started task nobody is running any more: its worker stopped heartbeating, or, with no
# worker identity, it started longer ago than any job may run.
_INTERRUPTED = f"""t.status = 'started' AND (
    (t.worker_id IS NOT NULL AND {_WORKER_GONE})
    OR (t.worker_id IS NULL AND t.started_at < now() - make_interval(secs => {UNOWNED_STALE_AFTER_S})))"""


def claimant(worker_id: str | None, arq_job_id: str | None) -> str | None:
    """The identity a claim records: the worker process (whose heartbeat says whether it still
    runs), then the arq job. One worker runs several jobs at once, and a step may be run inline
    by the job of the step before it (app/jobs/worker.py) while a job the sweep queued for it
    arrives in the same process: only the job holding a claim may take it again (its arq retry)."""
    if worker_id is None:
        return None
    return f"{worker_id}/{arq_job_id}" if arq_job_id else worker_id


def job_id(task_type: str, asset_id: uuid.UUID) -> str:
    # One queued job per step and asset: enqueueing it twice is a no-op.
    return f"{task_type}:{asset_id}"


class Skip(NamedTuple):
    """Why a step will not run for an asset: its task's result and outcome."""

    result: str
    outcome: str


async def create(conn: asyncpg.Connection, asset: asyncpg.Record, task_type: str) -> uuid.UUID:
    return await conn.fetchval(
        "INSERT INTO tasks (owner_id, library_id, asset_id, task_type, job_id) VALUES ($1, $2, $3, $4, $5)"
        " RETURNING id",
        asset["owner_id"],
        asset["library_id"],
        asset["id"],
        task_type,
        job_id(task_type, asset["id"]),
    )


async def create_unless_skipped(conn: asyncpg.Connection, asset: asyncpg.Record, task_type: str,
                                skip: Skip | None) -> uuid.UUID | None:
    """A step's pending task, whose job the caller enqueues after the commit; None when the step is
    known not to run (skip: its feature off, its model missing). Then its task is recorded as it
    would end if run, without a job to start it, claim it and end it."""
    if skip is None:
        return await create(conn, asset, task_type)
    await conn.execute(
        "INSERT INTO tasks (owner_id, library_id, asset_id, task_type, job_id, status, started_at, completed_at,"
        " result, outcome) VALUES ($1, $2, $3, $4, $5, 'success', now(), now(), $6, $7)",
        asset["owner_id"], asset["library_id"], asset["id"], task_type, job_id(task_type, asset["id"]),
        skip.result, skip.outcome,
    )
    return None


async def start(task_id: uuid.UUID, attempt: int) -> asyncpg.Record | None:
    """Claim the task for this worker; None when it must not run here.

    A task runs when it is pending, when this claimant (worker and job) already holds it (an
    arq retry), or when the worker that started it is gone (a crash). It does not run when it
    has ended, or while a live worker's other job holds it, however slow: so a re-delivered
    job, or one the sweep queued for a step another job runs inline, never runs it twice at once. The claim commits before the work starts, so the attempt counts
    even if the work kills the process; after MAX_ATTEMPTS starts the task ends as failed.
    """
    claimable = f"""(t.status = 'pending' OR (t.status = 'started' AND t.worker_id = $2) OR ({_INTERRUPTED}))"""
    row = await db.fetchrow(
        f"""
        UPDATE tasks t SET status = 'started', started_at = now(), retry_count = $3, worker_id = $2,
               attempts = t.attempts + 1
        WHERE t.id = $1 AND t.attempts < $4 AND {claimable}
        RETURNING *
        """,
        task_id,
        WORKER.get(),
        max(attempt - 1, 0),
        MAX_ATTEMPTS,
    )
    if row is None:
        await db.execute(
            f"""
            UPDATE tasks t SET status = 'failure', completed_at = now(), worker_id = NULL,
                   error_message = 'gave up after ' || t.attempts || ' starts: '
                                   || coalesce(t.error_message, 'each was interrupted')
            WHERE t.id = $1 AND t.attempts >= $3 AND {claimable}
            """,
            task_id,
            WORKER.get(),
            MAX_ATTEMPTS,
        )
    return row


async def hand_back(task_id: uuid.UUID) -> None:
    """The job was cancelled (shutdown, or arq's job timeout): pending again, for the sweep."""
    await db.execute("UPDATE tasks SET status = 'pending', worker_id = NULL"
                     " WHERE id = $1 AND status = 'started' AND worker_id IS NOT DISTINCT FROM $2",
                     task_id, WORKER.get())


async def finish(task_id: uuid.UUID, *, ok: bool, result: str | None = None, error: str | None = None,
                 outcome: str | None = None) -> None:
    await db.execute(
        """
        UPDATE tasks SET status = $2, result = $3, outcome = $5, completed_at = now(),
               error_message = coalesce($4, error_message)
        WHERE id = $1
        """,
        task_id,
        "success" if ok else "failure",
        result,
        error,
        outcome,
    )


async def note_retry(task_id: uuid.UUID, error: str) -> None:
    # Back to pending: arq may deliver the retry to another worker, which must be able to claim it.
    await db.execute("UPDATE tasks SET error_message = $2, status = 'pending', worker_id = NULL"
                     " WHERE id = $1 AND status = 'started'", task_id, error)


async def reclaim_interrupted(limit: int = 500) -> list[asyncpg.Record]:
    """Started tasks whose worker is gone: back to pending (returned, to be enqueued again), or,
    after MAX_ATTEMPTS starts, ended as failed, so a task that kills its worker cannot loop."""
    return await db.fetch(
        f"""
        WITH gone AS (SELECT t.id FROM tasks t WHERE {_INTERRUPTED} ORDER BY t.started_at LIMIT $2)
        UPDATE tasks t SET worker_id = NULL,
               status = CASE WHEN t.attempts >= $1 THEN 'failure' ELSE 'pending' END,
               completed_at = CASE WHEN t.attempts >= $1 THEN now() END,
               error_message = CASE WHEN t.attempts >= $1
                   THEN 'stopped: its worker died while running it, ' || t.attempts || ' times'
                   ELSE t.error_message END
        FROM gone WHERE t.id = gone.id AND {_INTERRUPTED}
        RETURNING t.*
        """,
        MAX_ATTEMPTS,
        limit,
    )


async def stalled(older_than_s: int, orphaned_after_s: int, limit: int = 500,
                  exclude_types: list[str] | None = None) -> list[asyncpg.Record]:
    """Pending tasks whose job may never have reached the queue (e.g. Redis was down), with
    `orphaned`: pending for orphaned_after_s while no live worker runs the same step of the
    same asset (whose job would hold the job id), so a mark arq left on the job id is stale.
    exclude_types: steps whose queue is paused (their tasks wait for resume, not the sweep)."""
    return await db.fetch(
        f"""
        SELECT p.*, p.created_at < now() - make_interval(secs => $2) AND NOT EXISTS (
                   SELECT 1 FROM tasks t WHERE t.task_type = p.task_type AND t.asset_id = p.asset_id
                   AND t.status = 'started' AND NOT ({_INTERRUPTED})) AS orphaned
        FROM tasks p WHERE p.status = 'pending' AND p.created_at < now() - make_interval(secs => $1)
          AND NOT p.task_type = ANY($4::text[])
        ORDER BY p.created_at LIMIT $3
        """,
        older_than_s,
        orphaned_after_s,
        limit,
        exclude_types or [],
    )


async def beat(worker_id: str, hostname: str, pid: int) -> None:
    """A worker's heartbeat (also its registration: the row comes back if it was swept)."""
    await db.execute(
        "INSERT INTO workers (id, hostname, pid) VALUES ($1, $2, $3)"
        " ON CONFLICT (id) DO UPDATE SET seen_at = now()",
        worker_id, hostname, pid,
    )


async def retire(worker_id: str) -> None:
    """A clean stop: the worker's started tasks (cancelled jobs) are taken over at once."""
    await db.execute("DELETE FROM workers WHERE id = $1", worker_id)


async def forget_old_workers() -> None:
    await db.execute("DELETE FROM workers WHERE seen_at < now() - interval '1 day'")


# --- reads for the API --------------------------------------------------------------


async def still_processing(asset_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Those of the assets with a pipeline task not ended yet (pending, or started)."""
    if not asset_ids:
        return set()
    rows = await db.fetch("SELECT DISTINCT asset_id FROM tasks WHERE asset_id = ANY($1::uuid[])"
                          " AND status IN ('pending', 'started')", asset_ids)
    return {r["asset_id"] for r in rows}


async def list_tasks(
    principal: access.Principal, library_id: uuid.UUID | None, status: str | None, task_type: str | None, limit: int
) -> list[asyncpg.Record]:
    principal.require(access.READ)
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", "status")
    libraries = [await access.library_for(principal, library_id, access.READ)] if library_id is not None else (
        await access.live_library_ids(principal)
    )
    # A library's tasks are its owner's (they follow the asset's owner): naming the owner keeps the
    # (owner_id, created_at) index in use, for a member's shared library as for one's own.
    return await db.fetch(
        """
        SELECT * FROM tasks
        WHERE owner_id IN (SELECT owner_id FROM libraries WHERE id = ANY($1::uuid[])) AND library_id = ANY($1::uuid[])
          AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR task_type = $3)
        ORDER BY created_at DESC, id DESC LIMIT $4
        """,
        libraries,
        status,
        task_type,
        limit,
    )


async def _visible(principal: access.Principal, row: asyncpg.Record | None) -> asyncpg.Record:
    """The caller's own tasks as before (its credential's scope permitting); a shared library's tasks
    (their owner is the library's owner) by whoever may read that library."""
    missing = NotFound("Task not found")
    if row is None:
        raise missing
    library = row["library_id"]
    if row["owner_id"] == principal.user_id:
        if library is not None and not principal.in_scope(library):
            raise missing
    elif library is None:
        raise missing
    else:
        await access.require_role(principal, library, access.READ, missing)
    return row


async def get_task(principal: access.Principal, task_id: uuid.UUID) -> asyncpg.Record:
    principal.require(access.READ)
    return await _visible(principal, await db.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id))


async def task_by_job_id(principal: access.Principal, job_id: str) -> asyncpg.Record:
    """The newest task queued under a job id (an older way to name a task) that the caller may see."""
    principal.require(access.READ)
    rows = await db.fetch(
        f"SELECT t.* FROM tasks t WHERE t.job_id = $1"
        f" AND (t.owner_id = $2 OR {access.caller_role_sql('t.library_id', '$2')} IS NOT NULL)"
        " ORDER BY t.created_at DESC LIMIT 1",
        job_id,
        principal.user_id,
    )
    return await _visible(principal, rows[0] if rows else None)


async def tasks_for_asset(principal: access.Principal, asset_id: uuid.UUID) -> list[asyncpg.Record]:
    asset = await access.load_asset(principal, asset_id, access.READ)
    return await db.fetch("SELECT * FROM tasks WHERE asset_id = $1 ORDER BY created_at DESC, id DESC", asset["id"])
