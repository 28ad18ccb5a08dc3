"""Background task records: what ran for which asset, and how it ended."""

from __future__ import annotations

import uuid

import asyncpg

from app.db import engine as db
from app.domain import access, ids
from app.domain.errors import Invalid, NotFound

METADATA = {"image": "metadata_extract", "video": "video_metadata_extract"}
VARIANTS = {"image": "thumbnail_generation", "video": "video_thumbnail_extract"}
STATUSES = ("pending", "started", "success", "failure")


def job_id(task_type: str, asset_id: uuid.UUID) -> str:
    # One queued job per step and asset: enqueueing it twice is a no-op.
    return f"{task_type}:{asset_id}"


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


async def start(task_id: uuid.UUID, attempt: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        "UPDATE tasks SET status = 'started', started_at = now(), retry_count = $2 WHERE id = $1 RETURNING *",
        task_id,
        max(attempt - 1, 0),
    )


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
    await db.execute("UPDATE tasks SET error_message = $2 WHERE id = $1", task_id, error)


async def stalled(older_than_s: int, limit: int = 500) -> list[asyncpg.Record]:
    """Pending tasks whose job may never have reached the queue (e.g. Redis was down)."""
    return await db.fetch(
        "SELECT * FROM tasks WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1)"
        " ORDER BY created_at LIMIT $2",
        older_than_s,
        limit,
    )


# --- reads for the API --------------------------------------------------------------


async def list_tasks(
    principal: access.Principal, library_id: str | None, status: str | None, task_type: str | None, limit: int
) -> list[asyncpg.Record]:
    principal.require(access.READ)
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", loc=("query", "status"))
    libraries = [await access.library_for(principal, library_id, access.READ)] if library_id else (
        await access.live_library_ids(principal)
    )
    return await db.fetch(
        """
        SELECT * FROM tasks WHERE owner_id = $1 AND library_id = ANY($2::uuid[])
          AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR task_type = $4)
        ORDER BY created_at DESC, id DESC LIMIT $5
        """,
        principal.user_id,
        libraries,
        status,
        task_type,
        limit,
    )


async def get_task(principal: access.Principal, task_id: str) -> asyncpg.Record:
    principal.require(access.READ)
    decoded = ids.try_decode(ids.TASK, task_id)
    row = None
    if decoded is not None:
        row = await db.fetchrow("SELECT * FROM tasks WHERE id = $1 AND owner_id = $2", decoded, principal.user_id)
    else:  # the legacy alternate id (our queue's job id)
        row = await db.fetchrow(
            "SELECT * FROM tasks WHERE job_id = $1 AND owner_id = $2 ORDER BY created_at DESC LIMIT 1",
            task_id,
            principal.user_id,
        )
    if row is None or (row["library_id"] is not None and not principal.in_scope(row["library_id"])):
        raise NotFound("Task not found")
    return row


async def tasks_for_asset(principal: access.Principal, asset_id: uuid.UUID) -> list[asyncpg.Record]:
    asset = await access.load_asset(principal, asset_id, access.READ)
    return await db.fetch("SELECT * FROM tasks WHERE asset_id = $1 ORDER BY created_at DESC, id DESC", asset["id"])
