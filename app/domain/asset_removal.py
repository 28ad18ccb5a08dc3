"""Removing asset rows for good, as a permanent delete does: album links end with their events,
covers pointing at the assets are cleared, people whose faces go are refreshed, stacks left too small
dissolve, and each asset's deletion is recorded. Files are the caller's business (derived files by
key; an external original is never touched).

Its own module, below assets and processing: the external first step (external_content), which
processing runs, removes the row a rename replaces this way too."""

from __future__ import annotations

import asyncpg

from app.domain import albums, events, faces, people, stacks


async def hard_delete_rows(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> None:
    asset_ids = [r["id"] for r in rows]
    links = await conn.fetch(
        "SELECT aa.id, aa.album_id, aa.asset_id, aa.library_id, al.owner_id FROM album_assets aa"
        " JOIN albums al ON al.id = aa.album_id WHERE aa.asset_id = ANY($1::uuid[])",
        asset_ids,
    )
    stack_ids = sorted({r["stack_id"] for r in rows if r["stack_id"] is not None})
    # Covers pointing at these assets clear with events (the foreign keys would clear them silently).
    await stacks.clear_covers(conn, asset_ids)
    await albums.clear_covers(conn, asset_ids)
    touched_people = await faces.people_of(conn, asset_ids)
    await conn.execute("DELETE FROM assets WHERE id = ANY($1::uuid[])", asset_ids)
    await people.refresh_people(conn, touched_people, announce_thumbnail=False)
    for link in links:  # a permanent delete also ends its album memberships, each with an event
        await albums.record_link_removals(conn, link["library_id"], link["owner_id"],
                                          [(link["id"], link["album_id"], link["asset_id"])])
    await stacks.dissolve_if_too_small(conn, stack_ids)
    await events.record_many(
        conn,
        entity_type=events.ASSET,
        event_type="asset_deleted",
        rows=[(r["id"], r["library_id"], r["owner_id"]) for r in rows],
    )
