"""The change log. Every mutation calls record() inside its own transaction."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import asyncpg

from app.db import engine as db

ASSET = "asset"
LIBRARY = "library"


async def record(
    conn: asyncpg.Connection,
    *,
    entity_type: str,
    entity_id: uuid.UUID,
    event_type: str,
    library_id: uuid.UUID | None,
    owner_id: uuid.UUID | None,
    payload: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type, payload)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        library_id,
        owner_id,
        entity_type,
        entity_id,
        event_type,
        None if payload is None else json.dumps(payload),
    )
    db.note_change(_notice(entity_type, entity_id, event_type, library_id, owner_id, payload))


async def record_many(
    conn: asyncpg.Connection,
    *,
    entity_type: str,
    event_type: str,
    rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]],
    payloads: list[dict[str, Any] | None] | None = None,
) -> None:
    """rows: (entity_id, library_id, owner_id) for one event type, in one round trip; `payloads`,
    when given, one per row."""
    if not rows:
        return
    payloads = payloads or [None] * len(rows)
    # One statement over arrays: a scan of a large folder tree records tens of thousands at once.
    await conn.execute(
        "INSERT INTO events (entity_id, library_id, owner_id, entity_type, event_type, payload)"
        " SELECT u.e, u.lib, u.owner, $4, $5, u.payload::jsonb"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $6::text[]) AS u(e, lib, owner, payload)",
        [e for e, _, _ in rows], [lib for _, lib, _ in rows], [owner for _, _, owner in rows],
        entity_type, event_type, [None if p is None else json.dumps(p) for p in payloads],
    )
    for (e, lib, owner), p in zip(rows, payloads, strict=True):
        db.note_change(_notice(entity_type, e, event_type, lib, owner, p))


def _notice(entity_type, entity_id, event_type, library_id, owner_id, payload) -> dict[str, Any]:
    """What live listeners hear of an event once its transaction commits."""
    return {"entity_type": entity_type, "entity_id": str(entity_id), "event_type": event_type,
            "library_id": None if library_id is None else str(library_id),
            "owner_id": None if owner_id is None else str(owner_id), "payload": payload}


# --- reading the feed ------------------------------------------------------------------

FEED_ENTITY_TYPES = ("asset", "album", "person", "face", "album_asset", "metadata", "stack")

# Hex parts of at most 15 digits: always below 2^63, so they fit a bigint.
_CURSOR = re.compile(r"[0-9a-f]{1,15}\.[0-9a-f]{1,15}")
_HORIZON = re.compile(r"h[0-9a-f]{1,15}")


def encode_cursor(txid: int, event_id: int) -> str:
    return f"{txid:x}.{event_id:x}"


def decode_cursor(value: str) -> tuple[int, int]:
    from app.domain.errors import BadRequest

    if not _CURSOR.fullmatch(value):
        raise BadRequest("after_cursor is malformed: start again without a cursor")
    txid, event_id = value.split(".")
    return int(txid, 16), int(event_id, 16)


def encode_horizon(txid: int) -> str:
    return f"h{txid:x}"


def decode_horizon(value: str) -> int:
    from app.domain.errors import BadRequest

    if not _HORIZON.fullmatch(value):
        raise BadRequest("as_of is malformed")
    return int(value[1:], 16)


async def read_feed(
    conn: asyncpg.Connection,
    *,
    library_id: uuid.UUID,
    after: tuple[int, int] | None,
    horizon: int | None,
    entity_types: list[str] | None,
    created_at_gte: Any,
    limit: int,
    created_at_lt: Any = None,
) -> tuple[list[asyncpg.Record], bool, int]:
    """Events after a cursor, in (txid, id) order, from finished transactions only.

    created_at_gte / created_at_lt keep events recorded at or after / before those instants.

    Only events whose writing transaction id is below the oldest transaction still
    running are returned: anything a late commit adds later sorts after every cursor
    handed out before it, so a reader never skips or repeats an event.
    """
    from app.domain.errors import BadRequest

    state = await conn.fetchrow(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,"
        " pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax,"
        " (SELECT coalesce(max(id), 0) FROM events) AS max_id"
    )
    bound = state["xmin"]
    if horizon is not None:
        if horizon > state["xmax"]:
            raise BadRequest("as_of is ahead of the database: resync without a cursor")
        bound = min(bound, horizon)
    if after is not None and (after[0] >= state["xmax"] or after[1] > state["max_id"]):
        raise BadRequest("after_cursor is ahead of the database: resync without a cursor")
    # Only the native feed's entity types: the change log also carries what only Immich clients or
    # live listeners read (the library's own changes, activities, partnerships, shared links).
    args: list[Any] = [library_id, bound, list(FEED_ENTITY_TYPES if entity_types is None else entity_types)]
    clauses = ["library_id = $1", "txid < $2", "entity_type = ANY($3::text[])"]
    if after is not None:
        args += [after[0], after[1]]
        clauses.append(f"(txid, id) > (${len(args) - 1}, ${len(args)})")
    if created_at_gte is not None:
        args.append(created_at_gte)
        clauses.append(f"created_at >= ${len(args)}")
    if created_at_lt is not None:
        args.append(created_at_lt)
        clauses.append(f"created_at < ${len(args)}")
    args.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT * FROM events WHERE {' AND '.join(clauses)} ORDER BY txid, id LIMIT ${len(args)}", *args
    )
    return rows[:limit], len(rows) > limit, bound
