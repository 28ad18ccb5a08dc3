"""Event payloads store bare UUIDs; the migration rewrites payloads written with native ids."""

from __future__ import annotations

import importlib
import json
import uuid

from app.api import ids
from tests.conftest import run


def test_migration_rewrites_native_ids_to_bare_uuids(account):
    migration = importlib.import_module("migrations.photos_2026_11_29t14_00_00_000000")
    album, asset, person, stack = (uuid.uuid4() for _ in range(4))
    old = {"album_id": ids.encode(ids.ALBUM, album), "asset_id": ids.encode(ids.ASSET, asset),
           "previous_person_id": ids.encode(ids.PERSON, person), "person_id": None,
           "stack_id": ids.encode(ids.STACK, stack), "other": "asset_kept-as-is"}

    async def check():
        from app.db import engine as db

        async with db.engine().transaction() as tx:
            conn = tx.connection
            library = await conn.fetchval("SELECT id FROM libraries WHERE owner_id = $1", account.user_id)
            event_id = await conn.fetchval(
                "INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type, payload)"
                " VALUES ($1, $2, 'album_asset', $3, 'album_asset_removed', $4::jsonb) RETURNING id",
                library, account.user_id, uuid.uuid4(), json.dumps(old))
            await migration._rewrite(conn)
            stored = json.loads(await conn.fetchval("SELECT payload::text FROM events WHERE id = $1", event_id))
            await conn.execute("DELETE FROM events WHERE id = $1", event_id)
            return stored

    assert run(check()) == {"album_id": str(album), "asset_id": str(asset), "previous_person_id": str(person),
                            "person_id": None, "stack_id": str(stack), "other": "asset_kept-as-is"}
