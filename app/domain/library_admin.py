"""What only a library's owner does to the library itself: rename, trash, restore, and purge.

Members reach a library's content by their role (app.domain.access); running the library is the
owner's alone, so every operation here starts from access.owned_library (404 without access, 403
for a member).
"""

from __future__ import annotations

import uuid

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType

from app.db import engine as db
from app.domain import access, albums, assets, events
from app.domain.errors import Conflict, Invalid
from app.storage.blobstore import BlobStore

PURGE_BATCH = 200


class LibraryPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A change to a library: a field left UNSET stays as it is."""

    name: str | UnsetType = UNSET
    description: str | None | UnsetType = UNSET


async def _record(conn: asyncpg.Connection, library: asyncpg.Record, event_type: str) -> None:
    await events.record(conn, entity_type=events.LIBRARY, entity_id=library["id"], event_type=event_type,
                        library_id=library["id"], owner_id=library["owner_id"])


async def update_library(principal: access.Principal, library_id: uuid.UUID, patch: LibraryPatch) -> None:
    library = await access.owned_library(principal, library_id, access.WRITE, include_trashed=True)
    values: dict[str, object] = {}
    if patch.name is not UNSET:
        clean = patch.name.strip()
        if not clean:
            raise Invalid("name must not be blank", "name")
        values["name"] = clean
    if patch.description is not UNSET:
        values["description"] = patch.description
    if not values:
        return
    async with db.transaction() as conn:
        # The owner's row serialises renames with creates, which check names the same way.
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", library["owner_id"])
        if "name" in values:
            taken = await conn.fetchval(
                "SELECT name FROM libraries WHERE owner_id = $1 AND id <> $2 AND lower(btrim(name)) = lower($3)",
                library["owner_id"], library_id, values["name"],
            )
            if taken is not None:
                raise Conflict(f"Another library (live or trashed) is already named '{taken}'")
        columns = list(values)
        assignments = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
        await conn.execute(f"UPDATE libraries SET {assignments}, updated_at = now() WHERE id = $1",
                           library_id, *(values[c] for c in columns))
        await _record(conn, library, "library_updated")


async def trash_library(principal: access.Principal, library_id: uuid.UUID) -> None:
    """Trash a library (its members lose it at once); a second call does nothing. The owner keeps one live library."""
    library = await access.owned_library(principal, library_id, access.DELETE, include_trashed=True)
    async with db.transaction() as conn:
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", library["owner_id"])
        row = await conn.fetchrow("SELECT * FROM libraries WHERE id = $1 FOR UPDATE", library_id)
        if row is None or row["trashed_at"] is not None:
            return
        others = await conn.fetchval(
            "SELECT count(*) FROM libraries WHERE owner_id = $1 AND id <> $2 AND trashed_at IS NULL",
            library["owner_id"], library_id,
        )
        if not others:
            raise Conflict("This is your last live library: create another library before trashing it")
        await conn.execute("UPDATE libraries SET trashed_at = now(), updated_at = now() WHERE id = $1", library_id)
        await _record(conn, library, "library_trashed")


async def restore_library(principal: access.Principal, library_id: uuid.UUID) -> None:
    library = await access.owned_library(principal, library_id, access.DELETE, include_trashed=True)
    async with db.transaction() as conn:
        restored = await conn.fetchval(
            "UPDATE libraries SET trashed_at = NULL, updated_at = now() WHERE id = $1 AND trashed_at IS NOT NULL"
            " RETURNING id",
            library_id,
        )
        if restored is not None:
            await _record(conn, library, "library_restored")


async def delete_library(principal: access.Principal, store: BlobStore, library_id: uuid.UUID) -> None:
    """Purge a trashed library now: its assets (rows and files) in bounded batches, then the library.

    There is no background drain of trashed libraries here, so the purge the SDK calls "expedited"
    runs in the request; a restore that races it keeps whatever assets are not yet gone. Its albums
    go first, each recorded as an album deletion (albums.delete_all_in_library), while their links
    still name the photos their users' clients must drop.
    """
    library = await access.owned_library(principal, library_id, access.DELETE_PERMANENTLY, include_trashed=True)
    if library["trashed_at"] is None:
        raise Conflict("Only a trashed library can be deleted: trash it first")
    while True:
        async with db.transaction() as conn:
            # NO KEY UPDATE: it holds off a restore, yet lets a worker still writing rows that reference
            # the library (faces, files) check its key, which FOR UPDATE would block into a deadlock.
            if await conn.fetchval("SELECT trashed_at FROM libraries WHERE id = $1 FOR NO KEY UPDATE",
                                   library_id) is None:
                return  # restored meanwhile: stop, keeping what is left
            rows = await purge_batch(conn, library_id)
        assets.remove_files(store, rows)
        if not rows:
            return


async def purge_batch(conn: asyncpg.Connection, library_id: uuid.UUID) -> list[asyncpg.Record]:
    """One step of purging a library, in the caller's transaction: its albums, then a batch of its
    assets (returned, so the caller removes their files once committed); when none are left, the
    library itself. An empty answer means the library is gone."""
    await albums.delete_all_in_library(conn, library_id)  # nothing after the first batch
    rows = await conn.fetch("SELECT * FROM assets WHERE library_id = $1 ORDER BY id LIMIT $2 FOR UPDATE",
                            library_id, PURGE_BATCH)
    if rows:
        await assets.hard_delete_rows(conn, rows)
    else:
        # Its members and invitations go with it (ON DELETE CASCADE); its events stay.
        await conn.execute("DELETE FROM libraries WHERE id = $1", library_id)
    return rows
