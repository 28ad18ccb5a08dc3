"""Albums and their asset links. Every change writes its change event in the same transaction."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from app.db import engine as db
from app.domain import access, events, ids
from app.domain.errors import Conflict, Invalid, NotFound

DEFAULT_NAME = "New Album"
MAX_IDS = 200

# Album rows with what the API shows about them: counts, dates and the cover in effect.
ALBUM_VIEW = """
SELECT al.*, s.asset_count, s.start_date, s.end_date,
       coalesce(
           (SELECT al.cover_asset_id WHERE EXISTS (
               SELECT 1 FROM album_assets m JOIN assets c ON c.id = m.asset_id
               WHERE m.album_id = al.id AND m.asset_id = al.cover_asset_id AND c.trashed_at IS NULL)),
           s.newest_asset_id) AS effective_cover_id
FROM albums al
CROSS JOIN LATERAL (
    SELECT count(*) AS asset_count, min(a.local_datetime) AS start_date, max(a.local_datetime) AS end_date,
           (array_agg(a.id ORDER BY a.local_datetime DESC, a.id DESC))[1] AS newest_asset_id
    FROM album_assets aa JOIN assets a ON a.id = aa.asset_id
    WHERE aa.album_id = al.id AND a.trashed_at IS NULL
) s
"""


def _clean_name(name: str, loc: str = "name") -> str:
    clean = name.strip()
    if not clean:
        raise Invalid("name must not be blank", loc=("body", loc))
    return clean


async def _lock(conn, album_id: uuid.UUID) -> asyncpg.Record:
    """Hold the album for this transaction; it may have been deleted since it was read."""
    row = await conn.fetchrow("SELECT * FROM albums WHERE id = $1 FOR UPDATE", album_id)
    if row is None:
        raise NotFound("Album not found")
    return row


async def clear_covers(conn, asset_ids: list[uuid.UUID]) -> None:
    """Albums whose explicit cover is leaving lose it (the server-chosen default takes over)."""
    rows = await conn.fetch(
        "UPDATE albums SET cover_asset_id = NULL, updated_at = now() WHERE cover_asset_id = ANY($1::uuid[])"
        " RETURNING *",
        asset_ids,
    )
    for row in rows:
        await _event(conn, row, "album_updated", {"album_cover_asset_id": None})


async def _event(conn, album: asyncpg.Record, event_type: str, payload: dict | None = None) -> None:
    await events.record(conn, entity_type="album", entity_id=album["id"], event_type=event_type,
                        library_id=album["library_id"], owner_id=album["owner_id"], payload=payload)


async def get_album(principal: access.Principal, album_id: uuid.UUID, action: str = access.READ) -> asyncpg.Record:
    principal.require(action)
    row = await db.fetchrow(
        ALBUM_VIEW + " JOIN libraries l ON l.id = al.library_id"
        " WHERE al.id = $1 AND l.owner_id = $2 AND l.trashed_at IS NULL",
        album_id,
        principal.user_id,
    )
    if row is None or not principal.in_scope(row["library_id"]):
        raise NotFound("Album not found")
    return row


async def list_albums(
    principal: access.Principal,
    library_id: str | None,
    *,
    name: str | None,
    asset_id: str | None,
    album_ids: list[str] | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[asyncpg.Record], bool]:
    library = await access.library_for(principal, library_id, access.READ)
    args: list[Any] = [library]
    clauses = ["al.library_id = $1"]
    if name and name.strip():
        needle = name.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args.append(f"%{needle}%")
        clauses.append(f"al.name ILIKE ${len(args)}")
    if asset_id:
        args.append(ids.decode_filter(ids.ASSET, asset_id, "asset_id"))
        clauses.append(f"EXISTS (SELECT 1 FROM album_assets aa WHERE aa.album_id = al.id AND aa.asset_id = ${len(args)})")
    if album_ids is not None:
        if len(album_ids) > MAX_IDS:
            raise Invalid(f"At most {MAX_IDS} ids", loc=("query", "ids"))
        args.append([ids.decode_filter(ids.ALBUM, i, "ids") for i in album_ids])
        clauses.append(f"al.id = ANY(${len(args)}::uuid[])")
    if starting_after:
        cursor = await db.fetchrow(
            "SELECT created_at, id FROM albums WHERE id = $1 AND library_id = $2",
            ids.decode_filter(ids.ALBUM, starting_after, "starting_after_id"),
            library,
        )
        if cursor is None:
            raise NotFound("starting_after_id names no album in this list")
        args += [cursor["created_at"], cursor["id"]]
        clauses.append(f"(al.created_at, al.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await db.fetch(
        ALBUM_VIEW + f" WHERE {' AND '.join(clauses)} ORDER BY al.created_at DESC, al.id DESC LIMIT ${len(args)}",
        *args,
    )
    return rows[:limit], len(rows) > limit


async def create_album(
    principal: access.Principal, library_id: str | None, name: str | None, description: str | None
) -> tuple[asyncpg.Record, bool]:
    """Find-or-create by trimmed, case-insensitive name within the library."""
    library = await access.library_for(principal, library_id, access.WRITE)
    clean = DEFAULT_NAME if name is None else _clean_name(name)
    async with db.transaction() as conn:
        # NO KEY UPDATE: serialises creators in this library without blocking the foreign-key checks
        # (KEY SHARE) of every insert that names the library. FOR UPDATE deadlocked with a media step
        # that holds its asset row and inserts its next task in the same transaction.
        await conn.execute("SELECT 1 FROM libraries WHERE id = $1 FOR NO KEY UPDATE", library)
        existing = await conn.fetchrow(
            "SELECT * FROM albums WHERE library_id = $1 AND lower(btrim(name)) = lower($2)", library, clean
        )
        if existing is not None:
            if description is not None and description != existing["description"]:
                raise Conflict(f"An album named '{existing['name']}' exists with a different description")
            album_id, created = existing["id"], False
        else:
            row = await conn.fetchrow(
                "INSERT INTO albums (library_id, owner_id, name, description) VALUES ($1, $2, $3, $4) RETURNING *",
                library, principal.user_id, clean, description,
            )
            await _event(conn, row, "album_created")
            album_id, created = row["id"], True
    return await get_album(principal, album_id), created


async def update_album(principal: access.Principal, album_id: uuid.UUID, change: dict[str, Any]) -> asyncpg.Record:
    unknown = set(change) - {"name", "description", "album_cover_asset_id"}
    if unknown:
        raise Invalid(f"Unknown field(s): {', '.join(sorted(unknown))}", loc=("body",))
    album = await get_album(principal, album_id, access.WRITE)
    sets: list[str] = []
    args: list[Any] = [album["id"]]
    if change.get("name") is not None:
        if not isinstance(change["name"], str):
            raise Invalid("name must be a string", loc=("body", "name"))
        args.append(_clean_name(change["name"]))
        sets.append(f"name = ${len(args)}")
    if "description" in change:
        if change["description"] is not None and not isinstance(change["description"], str):
            raise Invalid("description must be a string or null", loc=("body", "description"))
        args.append(change["description"])
        sets.append(f"description = ${len(args)}")
    if "album_cover_asset_id" in change:
        cover = change["album_cover_asset_id"]
        cover_id = None
        if cover is not None:
            cover_id = ids.try_decode(ids.ASSET, cover) if isinstance(cover, str) else None
            member = cover_id and await db.fetchval(
                "SELECT 1 FROM album_assets aa JOIN assets a ON a.id = aa.asset_id"
                " WHERE aa.album_id = $1 AND aa.asset_id = $2 AND a.trashed_at IS NULL",
                album["id"], cover_id,
            )
            if not member:
                raise Invalid("album_cover_asset_id must be a live asset in this album",
                              loc=("body", "album_cover_asset_id"))
        args.append(cover_id)
        sets.append(f"cover_asset_id = ${len(args)}")
    if sets:
        async with db.transaction() as conn:
            await _lock(conn, album["id"])
            try:
                row = await conn.fetchrow(
                    f"UPDATE albums SET {', '.join(sets)}, updated_at = now() WHERE id = $1 RETURNING *", *args
                )
            except asyncpg.UniqueViolationError:
                raise Conflict("Another album in this library already has that name") from None
            cover = row["cover_asset_id"]
            await _event(conn, row, "album_updated",
                         {"album_cover_asset_id": None if cover is None else str(cover)})
    return await get_album(principal, album["id"])


async def delete_album(principal: access.Principal, album_id: uuid.UUID) -> None:
    album = await get_album(principal, album_id, access.DELETE)
    async with db.transaction() as conn:
        await _lock(conn, album["id"])
        # album_deleted implies its links are gone: no album_asset_removed events for them.
        await conn.execute("DELETE FROM albums WHERE id = $1", album["id"])
        await _event(conn, album, "album_deleted")


def _decode_many(values: list[str]) -> list[tuple[str, uuid.UUID | None]]:
    if len(values) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} asset ids", loc=("body", "asset_ids"))
    return [(v, ids.try_decode(ids.ASSET, v)) for v in dict.fromkeys(values)]


async def add_assets(principal: access.Principal, album_id: uuid.UUID, asset_ids: list[str]) -> dict[str, list[str]]:
    album = await get_album(principal, album_id, access.WRITE)
    wanted = _decode_many(asset_ids)
    result: dict[str, list[str]] = {"added_assets": [], "duplicate_assets": [], "not_found_assets": []}
    async with db.transaction() as conn:
        await _lock(conn, album["id"])
        valid = {r["id"] for r in await conn.fetch(
            "SELECT id FROM assets WHERE library_id = $1 AND id = ANY($2::uuid[]) AND trashed_at IS NULL",
            album["library_id"], [u for _, u in wanted if u is not None],
        )}
        for raw, decoded in wanted:
            if decoded is None or decoded not in valid:
                result["not_found_assets"].append(raw)
                continue
            link = await conn.fetchrow(
                "INSERT INTO album_assets (album_id, asset_id, library_id) VALUES ($1, $2, $3)"
                " ON CONFLICT (album_id, asset_id) DO NOTHING RETURNING id",
                album["id"], decoded, album["library_id"],
            )
            if link is None:
                result["duplicate_assets"].append(raw)
                continue
            result["added_assets"].append(raw)
            await events.record(conn, entity_type="album_asset", entity_id=link["id"], event_type="album_asset_added",
                                library_id=album["library_id"], owner_id=album["owner_id"],
                                payload={"album_id": str(album["id"]), "asset_id": str(decoded)})
        if result["added_assets"]:
            await conn.execute("UPDATE albums SET updated_at = now() WHERE id = $1", album["id"])
    return result


async def remove_assets(principal: access.Principal, album_id: uuid.UUID, asset_ids: list[str]) -> list[uuid.UUID]:
    album = await get_album(principal, album_id, access.WRITE)
    wanted = [u for _, u in _decode_many(asset_ids) if u is not None]
    async with db.transaction() as conn:
        locked = await _lock(conn, album["id"])
        removed = await conn.fetch(
            "DELETE FROM album_assets WHERE album_id = $1 AND asset_id = ANY($2::uuid[]) RETURNING id, asset_id",
            album["id"], wanted,
        )
        if locked["cover_asset_id"] in {r["asset_id"] for r in removed}:
            row = await conn.fetchrow(
                "UPDATE albums SET cover_asset_id = NULL WHERE id = $1 RETURNING *", album["id"]
            )
            await _event(conn, row, "album_updated", {"album_cover_asset_id": None})
        await record_link_removals(conn, album["library_id"], album["owner_id"],
                                   [(r["id"], album["id"], r["asset_id"]) for r in removed])
        if removed:
            await conn.execute("UPDATE albums SET updated_at = now() WHERE id = $1", album["id"])
    return [r["asset_id"] for r in removed]


async def record_link_removals(conn, library_id, owner_id, links: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]) -> None:
    """album_asset_removed events carry the foreign keys, since the junction row is gone."""
    for link_id, album, asset in links:
        await events.record(conn, entity_type="album_asset", entity_id=link_id, event_type="album_asset_removed",
                            library_id=library_id, owner_id=owner_id,
                            payload={"album_id": str(album), "asset_id": str(asset)})


async def list_links(
    principal: access.Principal, library_id: str | None, *, album_id: str | None, asset_id: str | None,
    link_ids: list[str] | None, limit: int, starting_after: str | None,
) -> tuple[list[asyncpg.Record], bool]:
    library = await access.library_for(principal, library_id, access.READ)
    args: list[Any] = [library]
    clauses = ["aa.library_id = $1", "a.trashed_at IS NULL"]
    if album_id:
        args.append(ids.decode_filter(ids.ALBUM, album_id, "album_id"))
        clauses.append(f"aa.album_id = ${len(args)}")
    if asset_id:
        args.append(ids.decode_filter(ids.ASSET, asset_id, "asset_id"))
        clauses.append(f"aa.asset_id = ${len(args)}")
    if link_ids is not None:
        args.append([ids.decode_filter(ids.ALBUM_ASSET, i, "ids") for i in link_ids])
        clauses.append(f"aa.id = ANY(${len(args)}::uuid[])")
    if starting_after:
        cursor = await db.fetchrow("SELECT created_at, id FROM album_assets WHERE id = $1 AND library_id = $2",
                                   ids.decode_filter(ids.ALBUM_ASSET, starting_after, "starting_after_id"), library)
        if cursor is None:
            raise NotFound("starting_after_id names no album asset in this list")
        args += [cursor["created_at"], cursor["id"]]
        clauses.append(f"(aa.created_at, aa.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await db.fetch(
        f"SELECT aa.* FROM album_assets aa JOIN assets a ON a.id = aa.asset_id WHERE {' AND '.join(clauses)}"
        f" ORDER BY aa.created_at DESC, aa.id DESC LIMIT ${len(args)}",
        *args,
    )
    return rows[:limit], len(rows) > limit


async def get_link(principal: access.Principal, link_id: uuid.UUID) -> asyncpg.Record:
    principal.require(access.READ)
    row = await db.fetchrow(
        "SELECT aa.* FROM album_assets aa JOIN libraries l ON l.id = aa.library_id"
        " JOIN assets a ON a.id = aa.asset_id"
        " WHERE aa.id = $1 AND l.owner_id = $2 AND l.trashed_at IS NULL AND a.trashed_at IS NULL",
        link_id, principal.user_id,
    )
    if row is None or not principal.in_scope(row["library_id"]):
        raise NotFound("Album asset not found")
    return row
