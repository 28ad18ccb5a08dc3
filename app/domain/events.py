"""The change log. Every mutation calls record() inside its own transaction."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

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


async def record_many(
    conn: asyncpg.Connection,
    *,
    entity_type: str,
    event_type: str,
    rows: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]],
) -> None:
    """rows: (entity_id, library_id, owner_id) for one event type, in one round trip."""
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO events (entity_id, library_id, owner_id, entity_type, event_type)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(e, lib, owner, entity_type, event_type) for e, lib, owner in rows],
    )
