"""Albums and their asset links. Every change writes its change event in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType
from piccolo.querystring import QueryString

from app.db import engine as db
from app.db.tables import Album
from app.domain import access, asset_views, events
from app.domain.asset_filters import AssetFilter
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound

DEFAULT_NAME = "New Album"
MAX_IDS = 200
NOW = QueryString("now()")  # Postgres's transaction time, like the raw-SQL writes here, not Python's clock
# The change log's entity type of a link removed with its whole album (delete_album); not in the
# native feed (events.FEED_ENTITY_TYPES), where album_deleted implies its links are gone.
DELETED_ALBUM_LINK = "deleted_album_link"
COVER_NOT_IN_ALBUM = "album_cover_asset_id must be a live asset in this album"

# Album rows with what the API shows about them: counts, dates and the cover in effect. Locked
# assets (the PIN-protected folder) count for none of them: an album never gives them away.
ALBUM_VIEW = """
SELECT al.*, s.asset_count, s.start_date, s.end_date,
       coalesce(
           (SELECT al.cover_asset_id WHERE EXISTS (
               SELECT 1 FROM album_assets m JOIN assets c ON c.id = m.asset_id
               WHERE m.album_id = al.id AND m.asset_id = al.cover_asset_id AND c.trashed_at IS NULL
                 AND c.visibility <> 'locked')),
           s.newest_asset_id) AS effective_cover_id
FROM albums al
CROSS JOIN LATERAL (
    SELECT count(*) AS asset_count, min(a.local_datetime) AS start_date, max(a.local_datetime) AS end_date,
           (array_agg(a.id ORDER BY a.local_datetime DESC, a.id DESC))[1] AS newest_asset_id
    FROM album_assets aa JOIN assets a ON a.id = aa.asset_id
    WHERE aa.album_id = al.id AND a.trashed_at IS NULL AND a.visibility <> 'locked'
) s
"""


class AlbumPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A change to an album: a field left UNSET stays as it is; a None cover returns to the default."""

    name: str | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    album_cover_asset_id: uuid.UUID | None | UnsetType = UNSET
    is_activity_enabled: bool | UnsetType = UNSET  # whether it takes comments and likes (activities.py)


@dataclass
class AddedAssets:
    """What became of each asset asked to join an album, in the order asked."""

    added: list[uuid.UUID] = field(default_factory=list)
    duplicate: list[uuid.UUID] = field(default_factory=list)
    not_found: list[uuid.UUID] = field(default_factory=list)


def _clean_name(name: str) -> str:
    clean = name.strip()
    if not clean:
        raise Invalid("name must not be blank", "name")
    return clean


async def _lock(conn, album_id: uuid.UUID) -> asyncpg.Record:
    """Hold the album for this transaction; it may have been deleted since it was read."""
    row = await conn.fetchrow("SELECT * FROM albums WHERE id = $1 FOR UPDATE", album_id)
    if row is None:
        raise NotFound("Album not found", kind="album", ids=(album_id,))
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


async def get_album(principal: access.Principal, album_id: uuid.UUID, action: str = access.READ, *,
                    linking_assets: bool = False) -> asyncpg.Record:
    """An album (a row of ALBUM_VIEW) the caller may act on: by its role in the album's library, or,
    without one, as an album user (caller_role is then NULL; `linking_assets` says a WRITE only adds
    or removes the caller's own assets)."""
    missing = NotFound("Album not found", kind="album", ids=(album_id,))
    try:
        return await access.load_reachable(principal, action, ALBUM_VIEW, album_id, missing)
    except NotFound as exc:
        if exc is not missing:
            raise
    await access.require_album_user(principal, album_id, action, missing, linking_assets=linking_assets)
    row = await db.fetchrow(f"SELECT v.*, NULL::text AS caller_role FROM ({ALBUM_VIEW}) v WHERE v.id = $1", album_id)
    if row is None:
        raise missing
    return row


async def contents_filter(principal: access.Principal, album_id: uuid.UUID, **narrowing) -> AssetFilter:
    """The filter of an album's contents as the caller may read them: in the album's library (another's,
    when the album is shared with the caller), and without its owner's locked assets unless the caller
    owns that library. `narrowing` adds the other AssetFilter fields; the albums its also_in_albums
    names must be readable by the caller too."""
    album = await get_album(principal, album_id)
    for other in narrowing.get("also_in_albums") or ():
        await get_album(principal, other)
    return AssetFilter(library_id=album["library_id"], album_id=album["id"],
                       through_share=album["caller_role"] != access.OWNER, elevated=principal.elevated, **narrowing)


async def shared_albums(principal: access.Principal, asset_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    """Albums other people share with the caller (album_users), in live libraries, newest first;
    with `asset_id`, only those holding that asset."""
    if principal.library_scope is not None:  # a credential limited to some libraries reaches no share
        return []
    return await db.fetch(
        ALBUM_VIEW + " JOIN album_users au ON au.album_id = al.id AND au.user_id = $1"
        " JOIN libraries l ON l.id = al.library_id AND l.trashed_at IS NULL"
        " JOIN users album_owner ON album_owner.id = al.owner_id AND album_owner.deleted_at IS NULL"
        " WHERE ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM album_assets aa WHERE aa.album_id = al.id"
        " AND aa.asset_id = $2)) ORDER BY al.created_at DESC, al.id DESC",
        principal.user_id, asset_id,
    )


async def covers(rows: list[asyncpg.Record]) -> dict[uuid.UUID, asset_views.AssetView]:
    """The cover in effect of each album (rows of ALBUM_VIEW), by album id: one batch for a whole page,
    so a list costs the same few queries however many albums it shows."""
    cover_ids = list({r["effective_cover_id"] for r in rows if r["effective_cover_id"] is not None})
    if not cover_ids:
        return {}
    views = {v.row["id"]: v for v in await asset_views.views(await asset_views.rows_by_id(cover_ids))}
    return {r["id"]: views[r["effective_cover_id"]] for r in rows if r["effective_cover_id"] in views}


async def list_albums(
    principal: access.Principal,
    library_id: uuid.UUID | None,
    *,
    name: str | None = None,
    asset_id: uuid.UUID | None = None,
    album_ids: list[uuid.UUID] | None = None,
    limit: int,
    starting_after: uuid.UUID | None = None,
) -> tuple[list[asyncpg.Record], bool]:
    """A page of the library's albums, newest first; `starting_after` is the last album of the page before."""
    library = await access.library_for(principal, library_id, access.READ)
    args: list[Any] = [library]
    clauses = ["al.library_id = $1"]
    if name and name.strip():
        needle = name.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args.append(f"%{needle}%")
        clauses.append(f"al.name ILIKE ${len(args)}")
    if asset_id is not None:
        args.append(asset_id)
        clauses.append(f"EXISTS (SELECT 1 FROM album_assets aa WHERE aa.album_id = al.id AND aa.asset_id = ${len(args)})")
    if album_ids is not None:
        args.append(album_ids)
        clauses.append(f"al.id = ANY(${len(args)}::uuid[])")
    if starting_after is not None:
        cursor = await db.fetchrow(
            "SELECT created_at, id FROM albums WHERE id = $1 AND library_id = $2", starting_after, library
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


async def _lock_library_names(conn, library_id: uuid.UUID) -> None:
    """Serialise the album namers of one library, so a name checked free stays free until commit.
    NO KEY UPDATE: it does not block the foreign-key checks (KEY SHARE) of every insert that names
    the library. FOR UPDATE deadlocked with a media step that holds its asset row and inserts its
    next task in the same transaction."""
    await conn.execute("SELECT 1 FROM libraries WHERE id = $1 FOR NO KEY UPDATE", library_id)


async def _same_name(conn, library_id: uuid.UUID, name: str, *, other_than: uuid.UUID | None = None):
    """The library's oldest album with this name (trimmed, case-insensitive). Albums made through
    the Immich API may share a name; the native API's lookups take the first."""
    return await conn.fetchrow(
        "SELECT * FROM albums WHERE library_id = $1 AND lower(btrim(name)) = lower(btrim($2))"
        " AND id IS DISTINCT FROM $3 ORDER BY created_at, id LIMIT 1",
        library_id, name, other_than,
    )


async def _insert_album(conn, library_id: uuid.UUID, name: str, description: str | None) -> asyncpg.Record:
    # A member's album is still the library owner's, like everything in the library.
    row = await conn.fetchrow(
        "INSERT INTO albums (library_id, owner_id, name, description)"
        " SELECT id, owner_id, $2, $3 FROM libraries WHERE id = $1 RETURNING *",
        library_id, name, description,
    )
    await _event(conn, row, "album_created")
    return row


async def create_album(
    principal: access.Principal, library_id: uuid.UUID | None, name: str | None, description: str | None
) -> tuple[asyncpg.Record, bool]:
    """Find-or-create by trimmed, case-insensitive name within the library (the native API's rule:
    names are non-blank and unique per library)."""
    library = await access.library_for(principal, library_id, access.WRITE)
    clean = DEFAULT_NAME if name is None else _clean_name(name)
    async with db.transaction() as conn:
        await _lock_library_names(conn, library)
        existing = await _same_name(conn, library, clean)
        if existing is not None:
            if description is not None and description != existing["description"]:
                raise Conflict(f"An album named '{existing['name']}' exists with a different description")
            album_id, created = existing["id"], False
        else:
            album_id, created = (await _insert_album(conn, library, clean, description))["id"], True
    return await get_album(principal, album_id), created


async def create_new_album(
    principal: access.Principal, library_id: uuid.UUID | None, name: str, description: str | None
) -> asyncpg.Record:
    """Always a new album, named exactly as given: Immich's rule, where a blank name is allowed (its
    web app creates the album unnamed, then the user types a name) and names may repeat."""
    library = await access.library_for(principal, library_id, access.WRITE)
    async with db.transaction() as conn:
        row = await _insert_album(conn, library, name, description)
    return await get_album(principal, row["id"])


async def update_album(principal: access.Principal, album_id: uuid.UUID, patch: AlbumPatch, *,
                       any_name: bool = False) -> asyncpg.Record:
    """Apply the patch. A new name is trimmed, non-blank and unique in the library (native rule),
    or with `any_name` kept exactly as given, blank or repeated (Immich's rule)."""
    album = await get_album(principal, album_id, access.WRITE)
    values: dict[Any, Any] = {}
    if patch.name is not UNSET:
        values[Album.name] = patch.name if any_name else _clean_name(patch.name)
    if patch.description is not UNSET:
        values[Album.description] = patch.description
    if patch.album_cover_asset_id is not UNSET:
        cover = patch.album_cover_asset_id
        if cover is not None and not await db.fetchval(
            "SELECT 1 FROM album_assets aa JOIN assets a ON a.id = aa.asset_id"
            " WHERE aa.album_id = $1 AND aa.asset_id = $2 AND a.trashed_at IS NULL",
            album["id"], cover,
        ):
            raise Invalid(COVER_NOT_IN_ALBUM, "album_cover_asset_id")
        values[Album.cover_asset_id] = cover
    if patch.is_activity_enabled is not UNSET:
        values[Album.is_activity_enabled] = patch.is_activity_enabled
    if values:
        async with db.transaction() as conn:
            # Keeping its own name (albums made through Immich may share it) is not a clash.
            renamed = Album.name in values and values[Album.name].casefold() != album["name"].strip().casefold()
            if renamed and not any_name:
                await _lock_library_names(conn, album["library_id"])
                if await _same_name(conn, album["library_id"], values[Album.name], other_than=album["id"]):
                    raise Conflict("Another album in this library already has that name")
            await _lock(conn, album["id"])
            [row] = await Album.update({**values, Album.updated_at: NOW}).where(
                Album.id == album["id"]).returning(*Album.all_columns())
            cover = row["cover_asset_id"]
            await _event(conn, row, "album_updated",
                         {"album_cover_asset_id": None if cover is None else str(cover)})
    return await get_album(principal, album["id"])


async def delete_album(principal: access.Principal, album_id: uuid.UUID) -> None:
    album = await get_album(principal, album_id, access.DELETE)
    async with db.transaction() as conn:
        await _lock(conn, album["id"])
        # album_deleted implies its links are gone: the native feed has no album_asset_removed for
        # them. Its links still go first, each with an event of DELETED_ALBUM_LINK (a type the
        # native feed leaves out), in one statement however big the album: a client that saw the
        # album's photos only through it learns from them what to drop once the links are gone
        # (sync.dropped_album_assets). Live listeners hear album_deleted only.
        await conn.execute(
            "WITH gone AS (DELETE FROM album_assets WHERE album_id = $1 RETURNING id, asset_id)"
            " INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type, payload)"
            " SELECT $2, $3, $5, gone.id, 'album_asset_removed',"
            "        jsonb_build_object('album_id', $4::text, 'asset_id', gone.asset_id::text)"
            " FROM gone ORDER BY gone.id",
            album["id"], album["library_id"], album["owner_id"], str(album["id"]), DELETED_ALBUM_LINK,
        )
        await Album.delete().where(Album.id == album["id"])
        await _event(conn, album, "album_deleted")


async def delete_all_in_library(conn, library_id: uuid.UUID) -> None:
    """Delete every album of a library being purged, recorded as delete_album records one (its
    links' DELETED_ALBUM_LINK events, then album_deleted), one statement per kind however many
    albums: the albums would otherwise go by cascade without a trace, and their users' clients
    could not tell which photos to drop."""
    await conn.execute(
        "WITH gone AS (DELETE FROM album_assets aa USING albums al"
        "              WHERE al.id = aa.album_id AND al.library_id = $1"
        "              RETURNING aa.id, aa.album_id, aa.asset_id, al.owner_id)"
        " INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type, payload)"
        " SELECT $1, gone.owner_id, $2, gone.id, 'album_asset_removed',"
        "        jsonb_build_object('album_id', gone.album_id::text, 'asset_id', gone.asset_id::text)"
        " FROM gone ORDER BY gone.id",
        library_id, DELETED_ALBUM_LINK,
    )
    await conn.execute(
        "WITH gone AS (DELETE FROM albums WHERE library_id = $1 RETURNING id, owner_id)"
        " INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type)"
        " SELECT $1, gone.owner_id, 'album', gone.id, 'album_deleted' FROM gone ORDER BY gone.id",
        library_id,
    )


def _distinct(asset_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(asset_ids) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} asset ids", "asset_ids")
    return list(dict.fromkeys(asset_ids))


async def add_assets(principal: access.Principal, album_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> AddedAssets:
    """Link live assets of the album's library; each id asked for once lands in one list of the result.
    An album editor (no role in the album's library) adds live assets of libraries it has a role in."""
    album = await get_album(principal, album_id, access.WRITE, linking_assets=True)
    wanted = _distinct(asset_ids)
    async with db.transaction() as conn:
        return await _link(conn, principal, album, wanted)


async def add_assets_to_albums(principal: access.Principal, album_ids: list[uuid.UUID],
                               asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, AddedAssets]:
    """Link the assets to each album the caller may add to (albums it may not, or that do not exist,
    are left out of the result), under the rules of add_assets, in one transaction."""
    principal.require(access.WRITE)
    wanted = _distinct(asset_ids)
    if len(album_ids) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} album ids", "album_ids")
    allowed = []
    for album_id in sorted(set(album_ids)):  # one lock order, whoever calls
        try:
            allowed.append(await get_album(principal, album_id, access.WRITE, linking_assets=True))
        except (NotFound, Forbidden):
            continue
    async with db.transaction() as conn:
        return {album["id"]: await _link(conn, principal, album, wanted) for album in allowed}


async def _link(conn, principal: access.Principal, album: asyncpg.Record, wanted: list[uuid.UUID]) -> AddedAssets:
    """Link those of `wanted` (distinct ids) the caller may put in the album, in one statement."""
    await _lock(conn, album["id"])
    if album["caller_role"] is not None:
        valid_sql, args = "a.library_id = $2", [album["library_id"]]
    else:  # an editor shares what it may see in its own libraries, never the owner's other assets
        # (those already in the album count as there, so they come back as duplicates)
        valid_sql = (f"({access.caller_role_sql('a.library_id', '$2')} IS NOT NULL"
                     " OR a.id IN (SELECT asset_id FROM album_assets WHERE album_id = $3))")
        args = [principal.user_id, album["id"]]
    valid = {r["id"] for r in await conn.fetch(
        f"SELECT a.id FROM assets a WHERE a.id = ANY($1::uuid[]) AND a.trashed_at IS NULL AND {valid_sql}",
        wanted, *args,
    )}
    candidates = [a for a in wanted if a in valid]
    links = {r["asset_id"]: r["id"] for r in await conn.fetch(
        "INSERT INTO album_assets (album_id, asset_id, library_id)"
        " SELECT $1, u.asset_id, $3 FROM unnest($2::uuid[]) WITH ORDINALITY AS u(asset_id, n) ORDER BY u.n"
        " ON CONFLICT (album_id, asset_id) DO NOTHING RETURNING id, asset_id",
        album["id"], candidates, album["library_id"],
    )} if candidates else {}
    result = AddedAssets()
    for asset_id in wanted:
        if asset_id not in valid:
            result.not_found.append(asset_id)
        elif asset_id in links:
            result.added.append(asset_id)
        else:
            result.duplicate.append(asset_id)
    await events.record_many(
        conn, entity_type="album_asset", event_type="album_asset_added",
        rows=[(links[a], album["library_id"], album["owner_id"]) for a in result.added],
        payloads=[{"album_id": str(album["id"]), "asset_id": str(a)} for a in result.added],
    )
    if result.added:
        await conn.execute("UPDATE albums SET updated_at = now() WHERE id = $1", album["id"])
    return result


async def remove_assets(
    principal: access.Principal, album_id: uuid.UUID, asset_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """Unlink the assets; returns those that were in the album. An album editor unlinks only assets
    of libraries it has a role in (those it could have added)."""
    album = await get_album(principal, album_id, access.WRITE, linking_assets=True)
    wanted = _distinct(asset_ids)
    if album["caller_role"] is None:
        wanted = [r["id"] for r in await db.fetch(
            f"SELECT a.id FROM assets a WHERE a.id = ANY($1::uuid[]) AND {access.caller_role_sql('a.library_id', '$2')}"
            " IS NOT NULL", wanted, principal.user_id)]
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
    principal: access.Principal, library_id: uuid.UUID | None, *, album_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None, link_ids: list[uuid.UUID] | None = None, limit: int,
    starting_after: uuid.UUID | None = None,
) -> tuple[list[asyncpg.Record], bool]:
    """A page of the library's album-asset links to live assets, newest first."""
    library = await access.library_for(principal, library_id, access.READ)
    args: list[Any] = [library]
    clauses = ["aa.library_id = $1", "a.trashed_at IS NULL"]
    if album_id is not None:
        args.append(album_id)
        clauses.append(f"aa.album_id = ${len(args)}")
    if asset_id is not None:
        args.append(asset_id)
        clauses.append(f"aa.asset_id = ${len(args)}")
    if link_ids is not None:
        args.append(link_ids)
        clauses.append(f"aa.id = ANY(${len(args)}::uuid[])")
    if starting_after is not None:
        cursor = await db.fetchrow("SELECT created_at, id FROM album_assets WHERE id = $1 AND library_id = $2",
                                   starting_after, library)
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
    return await access.load_reachable(
        principal, access.READ,
        "SELECT aa.* FROM album_assets aa JOIN assets a ON a.id = aa.asset_id WHERE a.trashed_at IS NULL",
        link_id, NotFound("Album asset not found", kind="album_asset", ids=(link_id,)),
    )
