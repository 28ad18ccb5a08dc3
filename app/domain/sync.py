"""What changed since a client's checkpoint, read from the change log, for clients that
keep a local copy of a library (the Immich mobile app's sync stream).

The change log is the one source of truth: for each entity kind, the entities with an
event after the checkpoint are looked up in their current state. Those that exist are
upserts, those gone are deletes; each carries the feed cursor of its newest event, so
a client that acknowledges a cursor has everything up to it. A whole stream reads one
repeatable-read snapshot and stops at the feed's horizon taken at its start (events of
transactions older than every running one), so a late commit is never skipped and
writes made while streaming go to the next stream. Rows are read through server-side
cursors in batches, so memory stays flat however big the library is.
"""

from __future__ import annotations

import json
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

import asyncpg

from app.db import engine as db
from app.domain.albums import _ALBUM_VIEW

BATCH = 1000

# The current state of one entity, given its id as c.entity_id; None-able columns
# must include `id`, which is null when the entity is gone.
_STATE = {
    "asset": "SELECT a.* FROM assets a WHERE a.id = c.entity_id AND a.library_id = $1",
    "exif": "SELECT a.id, a AS asset, x AS exif FROM assets a LEFT JOIN asset_exif x ON x.asset_id = a.id"
            " WHERE a.id = c.entity_id AND a.library_id = $1",
    "album": _ALBUM_VIEW + " WHERE al.id = c.entity_id AND al.library_id = $1",
    "album_asset": "SELECT aa.id, aa.album_id, aa.asset_id FROM album_assets aa"
                   " WHERE aa.id = c.entity_id AND aa.library_id = $1",
    "stack": "SELECT s.*, coalesce(s.primary_asset_id, (SELECT m.id FROM assets m WHERE m.stack_id = s.id"
             " ORDER BY m.local_datetime DESC, m.id LIMIT 1)) AS effective_primary_id"
             " FROM stacks s WHERE s.id = c.entity_id AND s.library_id = $1",
    "person": "SELECT p.* FROM people p WHERE p.id = c.entity_id AND p.library_id = $1",
    "face": "SELECT f.* FROM faces f WHERE f.id = c.entity_id AND f.library_id = $1",
}
# Which change-log entity types move each kind.
_SOURCES = {
    "asset": ["asset"],
    "exif": ["metadata"],
    "album": ["album"],
    "album_asset": ["album_asset"],
    "stack": ["stack"],
    "person": ["person"],
    "face": ["face"],
}
KINDS = tuple(_STATE)


@dataclass(frozen=True)
class Change:
    cursor: tuple[int, int]
    entity_id: uuid.UUID
    owner_id: uuid.UUID | None
    payload: dict[str, Any] | None
    row: asyncpg.Record | None  # current state; None for a delete


class Snapshot:
    """One consistent view of the database for a whole stream."""

    def __init__(self, conn: asyncpg.Connection, horizon: int):
        self.conn = conn
        self.horizon = horizon

    def _sql(self, kind: str, deletes: bool) -> str:
        join = "LEFT JOIN" if deletes else "JOIN"
        where = "WHERE s.id IS NULL" if deletes else ""
        return f"""
            WITH changed AS (
                SELECT DISTINCT ON (e.entity_id) e.entity_id, e.txid, e.id, e.owner_id, e.payload
                FROM events e
                WHERE e.library_id = $1 AND e.entity_type = ANY($2::text[])
                  AND (e.txid, e.id) > ($3, $4) AND e.txid < $5
                ORDER BY e.entity_id, e.txid DESC, e.id DESC
            )
            SELECT c.txid AS ev_txid, c.id AS ev_id, c.entity_id AS ev_entity, c.owner_id AS ev_owner,
                   c.payload AS ev_payload, s.*
            FROM changed c {join} LATERAL ({_STATE[kind]}) s ON true
            {where}
            ORDER BY c.txid, c.id
        """

    async def changes(self, kind: str, library_id: uuid.UUID, after: tuple[int, int] | None,
                      *, deletes: bool = False) -> AsyncIterator[Change]:
        """Entities of `kind` changed after the cursor: live ones (upserts) or gone ones (deletes)."""
        start = after or (0, 0)
        cursor = self.conn.cursor(self._sql(kind, deletes), library_id, _SOURCES[kind], start[0], start[1],
                                  self.horizon, prefetch=BATCH)
        async for r in cursor:
            payload = r["ev_payload"]
            yield Change(
                cursor=(r["ev_txid"], r["ev_id"]),
                entity_id=r["ev_entity"],
                owner_id=r["ev_owner"],
                payload=json.loads(payload) if isinstance(payload, str) else payload,
                row=None if deletes else r,
            )


@asynccontextmanager
async def snapshot() -> AsyncIterator[Snapshot]:
    async with db.engine().pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            horizon = await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            yield Snapshot(conn, horizon)


# --- per-session checkpoints ---------------------------------------------------------------


async def checkpoints(session_id: uuid.UUID) -> dict[str, str]:
    rows = await db.fetch("SELECT type, ack FROM sync_checkpoints WHERE session_id = $1 ORDER BY type", session_id)
    return {r["type"]: r["ack"] for r in rows}


async def save_checkpoints(session_id: uuid.UUID, acks: dict[str, str]) -> None:
    if not acks:
        return
    async with db.transaction() as conn:
        await conn.executemany(
            """
            INSERT INTO sync_checkpoints (session_id, type, ack) VALUES ($1, $2, $3)
            ON CONFLICT (session_id, type) DO UPDATE SET ack = EXCLUDED.ack, updated_at = now()
            """,
            [(session_id, t, a) for t, a in acks.items()],
        )


async def delete_checkpoints(session_id: uuid.UUID, types: list[str] | None) -> None:
    if types is None:
        await db.execute("DELETE FROM sync_checkpoints WHERE session_id = $1", session_id)
    else:
        await db.execute("DELETE FROM sync_checkpoints WHERE session_id = $1 AND type = ANY($2::text[])",
                         session_id, types)


async def reset(session_id: uuid.UUID) -> None:
    """Start the session's sync over: no checkpoints, no pending reset."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM sync_checkpoints WHERE session_id = $1", session_id)
        await conn.execute("UPDATE sessions SET is_pending_sync_reset = false WHERE id = $1", session_id)


async def pending_reset(session_id: uuid.UUID) -> bool:
    return bool(await db.fetchval("SELECT is_pending_sync_reset FROM sessions WHERE id = $1", session_id))
