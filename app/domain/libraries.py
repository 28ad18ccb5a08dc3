"""Libraries: the top-level container of a user's assets."""

from __future__ import annotations

import uuid

import asyncpg

from app.db import engine as db
from app.domain import events
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound
from app.domain.principal import WRITE, Principal

DEFAULT_LIBRARY_NAME = "Default Library"


async def insert_library(
    conn: asyncpg.Connection, owner_id: uuid.UUID, name: str, description: str | None = None
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO libraries (owner_id, name, description) VALUES ($1, $2, $3) RETURNING *",
        owner_id,
        name,
        description,
    )
    await events.record(
        conn,
        entity_type=events.LIBRARY,
        entity_id=row["id"],
        event_type="library_created",
        library_id=row["id"],
        owner_id=owner_id,
    )
    return row


async def create_default_library(owner_id: uuid.UUID) -> uuid.UUID:
    async with db.transaction() as conn:
        # Lock the user row so two first uploads can't both create a default library.
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", owner_id)
        existing = await conn.fetchval(
            "SELECT id FROM libraries WHERE owner_id = $1 AND trashed_at IS NULL ORDER BY created_at LIMIT 1",
            owner_id,
        )
        if existing is not None:
            return existing
        name = DEFAULT_LIBRARY_NAME
        taken = await conn.fetchval(
            "SELECT count(*) FROM libraries WHERE owner_id = $1 AND lower(btrim(name)) LIKE lower($2) || '%'",
            owner_id,
            name,
        )
        if taken:
            name = f"{name} {taken + 1}"
        row = await insert_library(conn, owner_id, name)
        await conn.execute(
            "UPDATE users SET default_library_id = $2 WHERE id = $1 AND default_library_id IS NULL",
            owner_id,
            row["id"],
        )
        return row["id"]


async def list_libraries(principal: Principal, state: str) -> list[asyncpg.Record]:
    """The libraries the caller owns or has joined, each with the caller's `role` and its owner's name.

    A member sees only live libraries: trashing a library takes it from its members at once, and
    only its owner sees it in the trash (state=trashed|all).
    """
    where = {
        "live": "l.trashed_at IS NULL",
        "trashed": "l.trashed_at IS NOT NULL AND la.role = 'owner'",
        "all": "(l.trashed_at IS NULL OR la.role = 'owner')",
    }[state]
    order = "l.trashed_at DESC, l.id" if state == "trashed" else "l.created_at, l.id"
    rows = await db.fetch(
        f"""
        SELECT l.*, la.role, u.name AS owner_name,
               (SELECT count(*) FROM assets a WHERE a.library_id = l.id AND a.trashed_at IS NULL) AS asset_count,
               (SELECT coalesce(sum(a.file_size_bytes), 0)::bigint FROM assets a WHERE a.library_id = l.id) AS storage_used_bytes
        FROM library_access la JOIN libraries l ON l.id = la.library_id JOIN users u ON u.id = l.owner_id
        WHERE la.user_id = $1 AND {where}
        ORDER BY {order}
        """,
        principal.user_id,
    )
    return [r for r in rows if principal.in_scope(r["id"])]


async def get_library(principal: Principal, library_id: uuid.UUID) -> asyncpg.Record:
    """One library as list_libraries shows it: its owner sees it in the trash too, a member only while live."""
    for row in await list_libraries(principal, "all"):
        if row["id"] == library_id:
            return row
    raise NotFound("Library not found")


async def create_library(
    principal: Principal, name: str, description: str | None
) -> tuple[uuid.UUID, bool]:
    """Find-or-create by trimmed, case-insensitive name. Returns (id, created)."""
    principal.require(WRITE)
    if principal.library_scope is not None:
        # A key limited to some libraries must not widen its own reach.
        raise Forbidden("A credential limited to selected libraries cannot create libraries")
    owner_id = principal.user_id
    clean = name.strip()
    if not clean:
        raise Invalid("name must not be blank", "name")
    async with db.transaction() as conn:
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", owner_id)
        existing = await conn.fetchrow(
            "SELECT * FROM libraries WHERE owner_id = $1 AND lower(btrim(name)) = lower($2)",
            owner_id,
            clean,
        )
        if existing is not None:
            if existing["trashed_at"] is not None:
                raise Conflict(f"A trashed library is still named '{existing['name']}'")
            if description is not None and description != existing["description"]:
                raise Conflict(f"A library named '{existing['name']}' exists with a different description")
            return existing["id"], False
        row = await insert_library(conn, owner_id, clean, description)
        return row["id"], True
