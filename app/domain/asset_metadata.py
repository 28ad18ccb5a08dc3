"""Key/value metadata of an asset (Immich's asset metadata): one JSON object per key.

Each (asset, key) is one entity of the change log (`asset_metadata`), so a client's copy is kept by
the sync stream: its event id is derived from the pair (entity_id), which makes the newest event of
a pair the one that counts, and its payload names the pair, so a delete can be told apart from an
upsert by looking the pair up (app.domain.sync).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from app.db import engine as db
from app.domain import access, events
from app.domain.errors import Invalid, NotFound

ENTITY = "asset_metadata"
MAX_ITEMS = 1000
# Fixed: the entity id of a pair must be the same in every process and release.
_NAMESPACE = uuid.UUID("6f1b2b6e-3c55-4f0e-9d2a-4a3f1c7b9e21")


class Entry(NamedTuple):
    asset_id: uuid.UUID
    key: str
    value: dict[str, Any]
    updated_at: datetime


def entity_id(asset_id: uuid.UUID, key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{asset_id}/{key}")


def _entry(row: asyncpg.Record) -> Entry:
    return Entry(row["asset_id"], row["key"], json.loads(row["value"]), row["updated_at"])


async def _event(conn, asset: asyncpg.Record, key: str, event_type: str) -> None:
    await events.record(conn, entity_type=ENTITY, entity_id=entity_id(asset["id"], key), event_type=event_type,
                        library_id=asset["library_id"], owner_id=asset["owner_id"],
                        payload={"asset_id": str(asset["id"]), "key": key})


async def list_entries(principal: access.Principal, asset_id: uuid.UUID) -> list[Entry]:
    asset = await access.load_asset(principal, asset_id, access.READ)
    rows = await db.fetch("SELECT * FROM asset_metadata WHERE asset_id = $1 ORDER BY key", asset["id"])
    return [_entry(r) for r in rows]


async def get_entry(principal: access.Principal, asset_id: uuid.UUID, key: str) -> Entry:
    asset = await access.load_asset(principal, asset_id, access.READ)
    row = await db.fetchrow("SELECT * FROM asset_metadata WHERE asset_id = $1 AND key = $2", asset["id"], key)
    if row is None:
        raise NotFound(f'Metadata with key "{key}" not found for asset with id "{asset_id}"')
    return _entry(row)


def _check_items(items: list[tuple[uuid.UUID, str, Any]], label) -> None:
    if len(items) > MAX_ITEMS:
        raise Invalid(f"At most {MAX_ITEMS} items", "items")
    seen: set[tuple[uuid.UUID, str]] = set()
    for asset_id, key, *_ in items:
        if (asset_id, key) in seen:
            raise Invalid(f'Duplicate items are not allowed: "{label(asset_id, key)}"', "items")
        seen.add((asset_id, key))


async def _writable_assets(principal: access.Principal, asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, asyncpg.Record]:
    return {a: await access.load_asset(principal, a, access.WRITE) for a in dict.fromkeys(asset_ids)}


async def _upsert(principal: access.Principal, items: list[tuple[uuid.UUID, str, dict[str, Any]]]) -> list[Entry]:
    assets = await _writable_assets(principal, [i[0] for i in items])
    out = []
    async with db.transaction() as conn:
        for asset_id, key, value in items:
            row = await conn.fetchrow(
                "INSERT INTO asset_metadata (asset_id, key, value) VALUES ($1, $2, $3::jsonb)"
                " ON CONFLICT (asset_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
                " RETURNING *",
                asset_id, key, json.dumps(value),
            )
            await _event(conn, assets[asset_id], key, "asset_metadata_updated")
            out.append(_entry(row))
    return out


async def set_entries(principal: access.Principal, asset_id: uuid.UUID,
                      items: list[tuple[str, dict[str, Any]]]) -> list[Entry]:
    """Upserts keys of one asset; answers the asset's entries written, in request order."""
    _check_items([(asset_id, key) for key, _ in items], lambda _a, key: key)
    return await _upsert(principal, [(asset_id, key, value) for key, value in items])


async def set_many(principal: access.Principal, items: list[tuple[uuid.UUID, str, dict[str, Any]]]) -> list[Entry]:
    """Upserts (asset, key) pairs across assets; every asset must be writable or nothing is written."""
    _check_items(items, lambda a, key: f"({a}, {key})")
    return await _upsert(principal, items)


async def delete_many(principal: access.Principal, items: list[tuple[uuid.UUID, str]]) -> None:
    """Removes the pairs that exist; a missing key is no error (as Immich)."""
    if len(items) > MAX_ITEMS:
        raise Invalid(f"At most {MAX_ITEMS} items", "items")
    assets = await _writable_assets(principal, [a for a, _ in items])
    async with db.transaction() as conn:
        for asset_id, key in dict.fromkeys(items):
            gone = await conn.fetchval("DELETE FROM asset_metadata WHERE asset_id = $1 AND key = $2 RETURNING key",
                                       asset_id, key)
            if gone is not None:
                await _event(conn, assets[asset_id], key, "asset_metadata_deleted")


async def delete_entry(principal: access.Principal, asset_id: uuid.UUID, key: str) -> None:
    await delete_many(principal, [(asset_id, key)])


async def announce(conn: asyncpg.Connection, asset_ids: list[uuid.UUID], library_id: uuid.UUID,
                   owner_id: uuid.UUID) -> None:
    """Every pair of these assets as new to `library_id`'s readers (the assets just arrived there)."""
    for pair in await conn.fetch("SELECT asset_id, key FROM asset_metadata WHERE asset_id = ANY($1::uuid[])"
                                 " ORDER BY asset_id, key", asset_ids):
        await events.record(conn, entity_type=ENTITY, entity_id=entity_id(pair["asset_id"], pair["key"]),
                            event_type="asset_metadata_updated", library_id=library_id, owner_id=owner_id,
                            payload={"asset_id": str(pair["asset_id"]), "key": pair["key"]})
