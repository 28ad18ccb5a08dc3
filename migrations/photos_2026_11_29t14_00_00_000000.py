"""Event payloads name objects by bare UUID, as the domain does; each API encodes them its own way."""

import json
import uuid

import asyncpg
import shortuuid

from app.db.migrate import python_migration

ID = "2026-11-29T14:00:00:000000"
VERSION = "1.39.0"
DESCRIPTION = "event payloads hold bare UUIDs"

# The payload keys that held native ids, and the prefix each was written with.
_PREFIXES = {
    "album_id": "album_",
    "asset_id": "asset_",
    "album_cover_asset_id": "asset_",
    "person_id": "person_",
    "previous_person_id": "person_",
    "stack_id": "asset_stack_",
}
_BATCH = 5000


def _bare(key: str, value):
    prefix = _PREFIXES.get(key)
    if prefix is None or not isinstance(value, str) or not value.startswith(prefix):
        return value
    return str(shortuuid.decode(value[len(prefix):]))


async def _rewrite(conn: asyncpg.Connection) -> None:
    changed: list[tuple[int, str]] = []
    async for row in conn.cursor("SELECT id, payload::text AS payload FROM events WHERE payload IS NOT NULL"):
        payload = json.loads(row["payload"])
        rewritten = {key: _bare(key, value) for key, value in payload.items()}
        if rewritten != payload:
            changed.append((row["id"], json.dumps(rewritten)))
        if len(changed) >= _BATCH:
            await conn.executemany("UPDATE events SET payload = $2::jsonb WHERE id = $1", changed)
            changed.clear()
    if changed:
        await conn.executemany("UPDATE events SET payload = $2::jsonb WHERE id = $1", changed)


forwards = python_migration(ID, DESCRIPTION, _rewrite)
