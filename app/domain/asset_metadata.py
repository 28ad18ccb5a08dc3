"""Key/value metadata of an asset (Immich's asset metadata): one JSON object per key.

Each (asset, key) is one entity of the change log (`asset_metadata`), so a client's copy is kept by
the sync stream: its event id is derived from the pair (entity_id), which makes the newest event of
a pair the one that counts, and its payload names the pair, so a delete can be told apart from an
upsert by looking the pair up (app.domain.sync).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
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


async def _events(conn, pairs: list[tuple[uuid.UUID, str]], event_type: str,
                  place: Callable[[uuid.UUID], tuple[uuid.UUID, uuid.UUID]]) -> None:
    """One event per (asset, key) pair, in one round trip; `place` gives an asset's library and owner."""
    await events.record_many(
        conn, entity_type=ENTITY, event_type=event_type,
        rows=[(entity_id(a, key), *place(a)) for a, key in pairs],
        payloads=[{"asset_id": str(a), "key": key} for a, key in pairs],
    )


def _place_of(assets: dict[uuid.UUID, asyncpg.Record]) -> Callable[[uuid.UUID], tuple[uuid.UUID, uuid.UUID]]:
    return lambda a: (assets[a]["library_id"], assets[a]["owner_id"])


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
    return await access.load_assets(principal, list(dict.fromkeys(asset_ids)), access.WRITE)


async def _upsert(principal: access.Principal, items: list[tuple[uuid.UUID, str, dict[str, Any]]]) -> list[Entry]:
    """The pairs are distinct (_check_items), so one statement writes them all."""
    assets = await _writable_assets(principal, [i[0] for i in items])
    async with db.transaction() as conn:
        rows = await conn.fetch(
            "INSERT INTO asset_metadata (asset_id, key, value)"
            " SELECT i.asset_id, i.key, i.value::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[]) AS i(asset_id, key, value)"
            " ON CONFLICT (asset_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
            " RETURNING *",
            [a for a, _, _ in items], [k for _, k, _ in items], [json.dumps(v) for _, _, v in items],
        )
        await _events(conn, [(a, k) for a, k, _ in items], "asset_metadata_updated", _place_of(assets))
    written = {(r["asset_id"], r["key"]): _entry(r) for r in rows}
    return [written[(a, k)] for a, k, _ in items]


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
    pairs = list(dict.fromkeys(items))
    async with db.transaction() as conn:
        gone = {(r["asset_id"], r["key"]) for r in await conn.fetch(
            "DELETE FROM asset_metadata m USING unnest($1::uuid[], $2::text[]) AS d(asset_id, key)"
            " WHERE m.asset_id = d.asset_id AND m.key = d.key RETURNING m.asset_id, m.key",
            [a for a, _ in pairs], [k for _, k in pairs])}
        await _events(conn, [p for p in pairs if p in gone], "asset_metadata_deleted", _place_of(assets))


async def delete_entry(principal: access.Principal, asset_id: uuid.UUID, key: str) -> None:
    await delete_many(principal, [(asset_id, key)])


async def announce(conn: asyncpg.Connection, asset_ids: list[uuid.UUID], library_id: uuid.UUID,
                   owner_id: uuid.UUID) -> None:
    """Every pair of these assets as new to `library_id`'s readers (the assets just arrived there)."""
    pairs = await conn.fetch("SELECT asset_id, key FROM asset_metadata WHERE asset_id = ANY($1::uuid[])"
                             " ORDER BY asset_id, key", asset_ids)
    await _events(conn, [(p["asset_id"], p["key"]) for p in pairs], "asset_metadata_updated",
                  lambda _asset: (library_id, owner_id))
