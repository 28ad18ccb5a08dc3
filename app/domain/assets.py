"""Asset reads and changes, always inside the caller's access scope."""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType

from app.db import engine as db
from app.domain import access, effective, events, faces, people, processing
from app.domain.asset_removal import hard_delete_rows  # noqa: F401 (callers use assets.hard_delete_rows)
from app.domain.datetimes import from_instant, split_wall_clock
from app.domain.asset_filters import LOCKED, AssetFilter, Sql, check_references, where
from app.domain.errors import Invalid, NotFound
from app.storage.blobstore import BlobStore

log = logging.getLogger(__name__)

MAX_IDS = 200
MAX_EXIST_ITEMS = 5000
_EMPTY_TRASH_BATCH = 500


def _distinct(asset_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(asset_ids) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} ids per request", "asset_ids")
    return list(dict.fromkeys(asset_ids))


# --- listing -----------------------------------------------------------------


# How a walk stays stable. The list is ordered by capture time (trash time for the trash), and
# jobs rewrite those keys while a client pages: the metadata step replaces a fresh upload's
# guessed time with the file's, a user edits a date, an asset is trashed and restored. Reading
# the anchor's current key (as this did) repeats or skips assets when any key moves mid-walk,
# and an immutable key (upload order) would change the order users see. So the wire cursor stays
# the last asset's id, and the server remembers, per list and anchor, the database snapshot of
# the walk's first page. Every key change leaves its old value in asset_key_history (a trigger,
# so no writer can forget); a later page sorts each asset by the key it had in that snapshot
# (the oldest value replaced by a transaction the snapshot did not see, else the current one).
# Keys as of a fixed snapshot never change, so the pages of one walk partition one order: no
# repeat, no skip. Membership is read now: an asset trashed or edited out of the filter
# mid-walk is left out of later pages; one added mid-walk shows up if its old key is still ahead.
# Walks older than a day (from their first page) and history older than two are pruned by a cron
# job (prune_walks); a cursor with no remembered walk starts a new one at the anchor's current key.
_WALK_TTL = "1 day"
_HISTORY_TTL = "2 days"  # longer than a walk, so no walk loses the history it reads


def _view_digest(f: AssetFilter, order: str) -> str:
    """Names the list a walk pages through (filter and order): walks of different lists sharing an anchor stay apart."""
    return hashlib.sha256(repr((f, order)).encode()).hexdigest()[:32]


_MOVED = """
    SELECT DISTINCT ON (h.asset_id) h.asset_id, h.old_local_datetime, h.old_trashed_at
    FROM asset_key_history h
    WHERE h.library_id = {lib} AND h.xid >= pg_snapshot_xmin({snap}::text::pg_snapshot)
      AND NOT pg_visible_in_snapshot(h.xid, {snap}::text::pg_snapshot)
    ORDER BY h.asset_id, h.seq
"""


async def list_assets(
    f: AssetFilter, *, order: str = "desc", limit: int = 20, starting_after: uuid.UUID | None = None
) -> tuple[list[asyncpg.Record], bool]:
    """One cursor page, by capture time (trash time for the trash), id as tie-breaker, stable for a walk (see above)."""
    await check_references(f)
    column = "trashed_at" if f.state == "trashed" else "local_datetime"
    direction = "DESC" if order == "desc" else "ASC"
    cmp = "<" if order == "desc" else ">"
    view = _view_digest(f, order)
    snapshot = started = None
    if starting_after is not None:
        walk = await db.fetchrow(
            "SELECT snapshot::text, started_at FROM asset_list_walks"
            " WHERE library_id = $1 AND view = $2 AND anchor_id = $3"
            f" AND started_at > now() - interval '{_WALK_TTL}'",
            f.library_id, view, starting_after,
        )
        if walk is not None:
            snapshot, started = walk["snapshot"], walk["started_at"]
    sql = Sql()
    clause = where(f, sql)
    if snapshot is None:
        # A new walk (or a cursor whose walk is forgotten): current keys, and this page's snapshot.
        anchor_clause = ""
        if starting_after is not None:
            anchor = await db.fetchrow(
                f"SELECT {column} AS k, id FROM assets WHERE id = $1 AND library_id = $2", starting_after, f.library_id
            )
            if anchor is None or anchor["k"] is None:
                raise NotFound("starting_after_id names no asset in this list")
            anchor_clause = f" AND (a.{column}, a.id) {cmp} ({sql.arg(anchor['k'])}, {sql.arg(anchor['id'])})"
        rows = await db.fetch(
            f"SELECT a.*, pg_current_snapshot()::text AS walk_snapshot FROM assets a WHERE {clause}{anchor_clause}"
            f" ORDER BY a.{column} {direction}, a.id {direction} LIMIT {sql.arg(limit + 1)}",
            *sql.args,
        )
        snapshot = rows[0]["walk_snapshot"] if rows else None
    else:
        rows = await _page_as_of(f, sql, clause, column, direction, cmp, snapshot, starting_after, limit)
    page = rows[:limit]
    if page and snapshot is not None:
        # started_at stays the first page's time, so a walk expires before the history it reads.
        await db.execute(
            "INSERT INTO asset_list_walks (library_id, view, anchor_id, snapshot, started_at)"
            " VALUES ($1, $2, $3, $4::text::pg_snapshot, coalesce($5, now()))"
            " ON CONFLICT (library_id, view, anchor_id) DO UPDATE SET snapshot = EXCLUDED.snapshot,"
            " started_at = EXCLUDED.started_at",
            f.library_id, view, page[-1]["id"], snapshot, started,
        )
    return page, len(rows) > limit


async def _page_as_of(
    f: AssetFilter, sql: Sql, clause: str, column: str, direction: str, cmp: str,
    snapshot: Any, starting_after: uuid.UUID, limit: int,
) -> list[asyncpg.Record]:
    """The page after the anchor with every asset ordered by its key in the walk's snapshot."""
    old = f"m.old_{column}"
    # Keys as of a snapshot do not change, so the anchor can be read in its own statement.
    anchor = await db.fetchrow(
        f"WITH moved AS ({_MOVED.format(lib='$1 AND h.asset_id = $3', snap='$2')})"
        f" SELECT coalesce({old}, a.{column}) AS k, a.id"
        f" FROM assets a LEFT JOIN moved m ON m.asset_id = a.id WHERE a.id = $3 AND a.library_id = $1",
        f.library_id, snapshot, starting_after,
    )
    lib, snap = sql.arg(f.library_id), sql.arg(snapshot)
    moved = _MOVED.format(lib=lib, snap=snap)
    if anchor is None or anchor["k"] is None:
        raise NotFound("starting_after_id names no asset in this list")
    k, anchor_id, n = sql.arg(anchor["k"]), sql.arg(anchor["id"]), sql.arg(limit + 1)
    # Unchanged assets come from the timeline (or trash) index in key order; the few changed since
    # the snapshot are added with their old keys, and the merge keeps the first limit + 1.
    return await db.fetch(
        f"""
        WITH moved AS MATERIALIZED ({moved}),
        page AS (
            (SELECT a.id, a.{column} AS k FROM assets a WHERE {clause} AND (a.{column}, a.id) {cmp} ({k}, {anchor_id})
             AND a.id NOT IN (SELECT asset_id FROM moved)
             ORDER BY a.{column} {direction}, a.id {direction} LIMIT {n})
            UNION ALL
            (SELECT a.id, coalesce({old}, a.{column}) AS k FROM moved m JOIN assets a ON a.id = m.asset_id
             WHERE {clause} AND (coalesce({old}, a.{column}), a.id) {cmp} ({k}, {anchor_id}))
            ORDER BY k {direction}, id {direction} LIMIT {n}
        )
        SELECT a.* FROM page p JOIN assets a ON a.id = p.id ORDER BY p.k {direction}, p.id {direction}
        """,
        *sql.args,
    )


async def prune_walks() -> int:
    """Drops expired walks and key history in bounded batches (SKIP LOCKED: never waits on a list); a cron job."""
    removed = 0
    while True:
        row = await db.fetchrow(
            "WITH walks AS (DELETE FROM asset_list_walks WHERE (library_id, view, anchor_id) IN"
            " (SELECT library_id, view, anchor_id FROM asset_list_walks"
            f" WHERE started_at < now() - interval '{_WALK_TTL}' LIMIT 5000 FOR UPDATE SKIP LOCKED) RETURNING 1),"
            " history AS (DELETE FROM asset_key_history WHERE seq IN (SELECT seq FROM asset_key_history"
            f" WHERE changed_at < now() - interval '{_HISTORY_TTL}' LIMIT 5000 FOR UPDATE SKIP LOCKED) RETURNING 1)"
            " SELECT (SELECT count(*) FROM walks) AS walks, (SELECT count(*) FROM history) AS history"
        )
        removed += row["walks"] + row["history"]
        if row["walks"] < 5000 and row["history"] < 5000:
            return removed


async def search_page(
    f: AssetFilter, *, page: int, limit: int, order: str = "desc"
) -> tuple[list[asyncpg.Record], bool]:
    """Filter-only search: newest capture first (or oldest), paged by number."""
    await check_references(f)
    sql = Sql()
    clause = where(f, sql)
    direction = "ASC" if order == "asc" else "DESC"
    rows = await db.fetch(
        f"SELECT a.* FROM assets a WHERE {clause} ORDER BY a.local_datetime {direction}, a.id {direction}"
        f" LIMIT {sql.arg(limit + 1)} OFFSET {sql.arg((page - 1) * limit)}",
        *sql.args,
    )
    return rows[:limit], len(rows) > limit


BUCKETS = ("day", "week", "month", "year")


async def counts(
    f: AssetFilter, *, group_by: str, order: str, limit: int, starting_after_bucket: datetime | None
) -> tuple[list[asyncpg.Record], bool]:
    """Assets per calendar bucket of the naive local time."""
    if group_by not in BUCKETS:
        raise Invalid(f"group_by must be one of {', '.join(BUCKETS)}", "group_by")
    for value, name in ((f.after, "after"), (f.before, "before"), (starting_after_bucket, "starting_after_bucket")):
        if value is not None and value.tzinfo is not None:
            raise Invalid("Buckets are of the naive local time: give bounds with no Z or offset", name)
    await check_references(f)
    sql = Sql()
    direction = "DESC" if order == "desc" else "ASC"
    cmp = "<" if order == "desc" else ">"
    if _rollup_covers(f):
        # Timeline counts come from per-day counters kept by triggers: no scan of the assets. They
        # are kept per visibility, so the same visibility rules as where() apply to them.
        f.validate()
        clauses = [f"library_id = {sql.arg(f.library_id)}"]
        if f.state != "all":
            clauses.append(f"trashed = {sql.arg(f.state == 'trashed')}")
        if f.media_type is not None:
            clauses.append(f"media_type = {sql.arg(f.media_type)}")
        if f.visibility is not None:
            clauses.append(f"visibility = {sql.arg(f.visibility)}")
        if f.visibilities is not None:
            clauses.append(f"visibility = ANY({sql.arg(list(f.visibilities))}::text[])")
        if not f.shows_locked:
            clauses.append(f"visibility <> {sql.arg(LOCKED)}")
        bucket = f"date_trunc({sql.arg(group_by)}, day::timestamp)"
        having = "sum(count) > 0"
        if starting_after_bucket is not None:
            having += f" AND {bucket} {cmp} {sql.arg(starting_after_bucket)}"
        query = (f"SELECT {bucket} AS time_bucket, sum(count)::bigint AS count FROM asset_day_counts"
                 f" WHERE {' AND '.join(clauses)} GROUP BY 1 HAVING {having}")
    else:
        clause = where(f, sql)
        bucket = f"date_trunc({sql.arg(group_by)}, a.local_datetime)"
        having = ""
        if starting_after_bucket is not None:
            having = f" HAVING {bucket} {cmp} {sql.arg(starting_after_bucket)}"
        query = f"SELECT {bucket} AS time_bucket, count(*) AS count FROM assets a WHERE {clause} GROUP BY 1{having}"
    rows = await db.fetch(f"{query} ORDER BY 1 {direction} LIMIT {sql.arg(limit + 1)}", *sql.args)
    return rows[:limit], len(rows) > limit


# What the per-day counters are kept by (and the locked rule, which where() derives from the last two).
_ROLLUP_FIELDS = frozenset({"library_id", "state", "media_type", "visibility", "visibilities", "through_share",
                            "elevated"})


def _rollup_covers(f: AssetFilter) -> bool:
    """Whether the per-day counters can answer `f`: every field they are not kept by is at its
    default (so a field added to AssetFilter later falls back to the scan until taught here)."""
    default = AssetFilter(library_id=f.library_id)
    return all(getattr(f, name) == getattr(default, name)
               for name in AssetFilter.__dataclass_fields__ if name not in _ROLLUP_FIELDS)


MAX_CELLS = 1000


async def geo_clusters(f: AssetFilter, cell_size: float) -> list[asyncpg.Record]:
    if cell_size < 0.0001:
        raise Invalid("cell_size must be at least 0.0001 degrees", "cell_size")
    if f.bbox is None:
        raise Invalid("bbox is required", "bbox")
    await check_references(f)
    sql = Sql()
    clause = where(f, sql) + " AND a.latitude IS NOT NULL"
    cell = sql.arg(cell_size)
    rows = await db.fetch(
        f"""
        SELECT avg(a.latitude) AS latitude, avg(a.longitude) AS longitude, count(*) AS count,
               (array_agg(a.id ORDER BY a.local_datetime DESC, a.id DESC))[1] AS representative
        FROM assets a WHERE {clause}
        GROUP BY floor(a.latitude / {cell}), floor(a.longitude / {cell})
        LIMIT {sql.arg(MAX_CELLS + 1)}
        """,
        *sql.args,
    )
    if len(rows) > MAX_CELLS:
        raise Invalid(f"More than {MAX_CELLS} cells: use a larger cell_size or a smaller bbox", "cell_size")
    return rows


# --- single-asset changes ---------------------------------------------------------


VISIBILITIES = ("timeline", "archive", "hidden", "locked")
MAX_OFFSET_MINUTES = 18 * 60


class AssetPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a user may change on an asset. UNSET leaves a field as it is; None clears the user's
    value, so what the file says shows through again."""

    rating: int | None | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    # Set or cleared together.
    latitude: float | None | UnsetType = UNSET
    longitude: float | None | UnsetType = UNSET
    # Aware when the offset is known; naive is a wall-clock time with no known offset.
    original_datetime: datetime | None | UnsetType = UNSET
    visibility: str | UnsetType = UNSET  # one of VISIBILITIES

    @property
    def moves(self) -> bool:
        return self.latitude is not UNSET


def check_patch(patch: AssetPatch, path: tuple[str | int, ...] = ()) -> None:
    """Refuses values no asset may hold; `path` says where the patch sits in a larger command."""
    r = patch.rating
    if r is not UNSET and r is not None and (isinstance(r, bool) or not isinstance(r, int) or r not in effective.RATINGS):
        raise Invalid("rating must be an integer from 0 to 5, or null", (*path, "rating"))
    if patch.description not in (UNSET, None) and not isinstance(patch.description, str):
        raise Invalid("description must be a string or null", (*path, "description"))
    lat, lon = patch.latitude, patch.longitude
    if (lat is UNSET) != (lon is UNSET) or (lat is None) != (lon is None):
        raise Invalid("latitude and longitude must be set or cleared together", path)
    if lat not in (UNSET, None):
        for name, v, lim in (("latitude", lat, 90), ("longitude", lon, 180)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not -lim <= v <= lim:
                raise Invalid(f"{name} must be a number in [-{lim}, {lim}]", (*path, name))
    if patch.visibility is not UNSET and patch.visibility not in VISIBILITIES:
        raise Invalid(f"visibility must be one of {', '.join(VISIBILITIES)}", (*path, "visibility"))
    when = patch.original_datetime
    if when not in (UNSET, None):
        if not isinstance(when, datetime):
            raise Invalid("original_datetime must be a datetime or null", (*path, "original_datetime"))
        offset = when.utcoffset()
        if offset is not None and abs(offset) > timedelta(minutes=MAX_OFFSET_MINUTES):
            raise Invalid("original_datetime has a UTC offset beyond ±18:00", (*path, "original_datetime"))


async def _apply_patch(conn: asyncpg.Connection, asset: asyncpg.Record, patch: AssetPatch) -> asyncpg.Record:
    sets: list[str] = []
    args: list[Any] = [asset["id"]]

    def put(column: str, value: Any) -> None:
        args.append(value)
        sets.append(f"{column} = ${len(args)}")

    if patch.rating is not UNSET:
        put("rating", patch.rating)
    if patch.visibility is not UNSET:
        put("visibility", patch.visibility)
    if patch.description is not UNSET:
        put("user_description", patch.description)
    if patch.moves:
        put("user_latitude", patch.latitude)
        put("user_longitude", patch.longitude)
        if patch.latitude is None:  # the file's coordinates show through again
            file_gps = await conn.fetchrow("SELECT latitude, longitude FROM asset_exif WHERE asset_id = $1", asset["id"])
            put("latitude", file_gps["latitude"] if file_gps else None)
            put("longitude", file_gps["longitude"] if file_gps else None)
        else:
            put("latitude", patch.latitude)
            put("longitude", patch.longitude)
    if patch.original_datetime is not UNSET:
        value = patch.original_datetime
        if value is None:
            put("user_original_datetime", None)
            put("user_original_offset_minutes", None)
            # Back to what the file says, else the upload's file time.
            exif = await conn.fetchrow(
                "SELECT original_datetime, original_offset_minutes FROM asset_exif WHERE asset_id = $1", asset["id"]
            )
            if exif is not None and exif["original_datetime"] is not None:
                wall, offset = exif["original_datetime"], exif["original_offset_minutes"]
            else:
                wall, offset = split_wall_clock(
                    from_instant(asset["file_created_at"], asset["file_created_offset_minutes"])
                )
            put("local_datetime", wall)
            put("local_offset_minutes", offset)
        else:
            wall, offset = split_wall_clock(value)
            put("user_original_datetime", wall)
            put("user_original_offset_minutes", offset)
            put("local_datetime", wall)
            put("local_offset_minutes", offset)
            put("captured_at", value if offset is not None else None)
    if not sets:
        return asset
    sets.append("updated_at = now()")
    row = await conn.fetchrow(f"UPDATE assets SET {', '.join(sets)} WHERE id = $1 RETURNING *", *args)
    for event_type, entity_type in (("asset_updated", events.ASSET), ("metadata_updated", "metadata")):
        await events.record(
            conn,
            entity_type=entity_type,
            entity_id=row["id"],
            event_type=event_type,
            library_id=row["library_id"],
            owner_id=row["owner_id"],
        )
    return row


def _moved(locked: asyncpg.Record, patch: AssetPatch) -> bool:
    """New coordinates mean new place names (and maybe a new time zone): metadata is read again."""
    return patch.moves and (locked["user_latitude"], locked["user_longitude"]) != (patch.latitude, patch.longitude)


def _require_unlocked_to_lock(principal: access.Principal, patch: AssetPatch) -> None:
    """Moving an asset into the locked folder needs a session unlocked with the PIN, as taking one
    out does (access.load_asset refuses a locked asset to any other caller)."""
    if patch.visibility == LOCKED:
        principal.require_elevated()


async def update_asset(
    principal: access.Principal, asset_id: uuid.UUID, patch: AssetPatch, queue: processing.Queue | None = None,
) -> asyncpg.Record:
    check_patch(patch)
    _require_unlocked_to_lock(principal, patch)
    asset = await access.load_asset(principal, asset_id, access.WRITE)
    async with db.transaction() as conn:
        locked = await conn.fetchrow("SELECT * FROM assets WHERE id = $1 FOR UPDATE", asset["id"])
        if locked is None:
            raise NotFound("Asset not found", kind="asset", ids=(asset_id,))
        row = await _apply_patch(conn, locked, patch)
        task_id = await processing.start_pipeline(conn, row) if _moved(locked, patch) else None
    if task_id is not None:
        await processing.enqueue_first_step(queue, row, task_id)
    return row


async def bulk_update(
    principal: access.Principal, items: list[tuple[uuid.UUID, AssetPatch]], queue: processing.Queue | None = None,
) -> None:
    """Every item or none: one invalid patch or unknown id rejects the whole batch."""
    if len(items) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} updates per request", "updates")
    principal.require(access.WRITE)
    for n, (_, patch) in enumerate(items):
        check_patch(patch, ("updates", n, "change"))
        _require_unlocked_to_lock(principal, patch)
    refresh = []
    async with db.transaction() as conn:
        for asset_id, patch in items:
            locked = await access.load_asset(
                principal, asset_id, access.WRITE, lock=True,
                missing=NotFound(f"Asset {asset_id} not found", kind="asset", ids=(asset_id,)),
            )
            row = await _apply_patch(conn, locked, patch)
            if _moved(locked, patch):
                refresh.append((row, await processing.start_pipeline(conn, row)))
    for row, task_id in refresh:
        await processing.enqueue_first_step(queue, row, task_id)


# --- trash, restore, delete ----------------------------------------------------


async def _rows_in_library(conn: asyncpg.Connection, library_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> list:
    rows = await conn.fetch(
        "SELECT * FROM assets WHERE library_id = $1 AND id = ANY($2::uuid[]) ORDER BY id FOR UPDATE",
        library_id,
        asset_ids,
    )
    if len(rows) != len(asset_ids):
        # All or nothing: one unknown (or foreign) id rejects the whole request.
        found = {r["id"] for r in rows}
        missing = next(i for i in asset_ids if i not in found)
        raise NotFound(f"Asset {missing} not found", kind="asset", ids=(missing,))
    return rows


async def set_trashed(
    principal: access.Principal, library_id: uuid.UUID | None, asset_ids: list[uuid.UUID], trashed: bool
) -> int:
    """Trashes (or restores) the assets, all of them or none; returns how many changed state."""
    decoded = _distinct(asset_ids)
    library = await access.library_for(principal, library_id, access.DELETE)
    async with db.transaction() as conn:
        rows = await _rows_in_library(conn, library, decoded)
        if trashed:
            targets = [r for r in rows if r["trashed_at"] is None]
            sql = "UPDATE assets SET trashed_at = now(), updated_at = now() WHERE id = ANY($1::uuid[])"
        else:
            targets = [r for r in rows if r["trashed_at"] is not None]
            sql = "UPDATE assets SET trashed_at = NULL, updated_at = now() WHERE id = ANY($1::uuid[])"
        if not targets:
            return 0
        await conn.execute(sql, [r["id"] for r in targets])
        # People's centroids and counts follow their faces on live assets (no events of their own).
        await people.refresh_people(conn, await faces.people_of(conn, [r["id"] for r in targets]),
                                    announce_thumbnail=False)
        await events.record_many(
            conn,
            entity_type=events.ASSET,
            event_type="asset_trashed" if trashed else "asset_restored",
            rows=[(r["id"], r["library_id"], r["owner_id"]) for r in targets],
        )
    return len(targets)


async def restore_all(principal: access.Principal, library_id: uuid.UUID | None) -> int:
    library = await access.library_for(principal, library_id, access.DELETE)
    total = 0
    while True:  # in bounded batches, each with its events
        batch = await db.fetch("SELECT id FROM assets WHERE library_id = $1 AND trashed_at IS NOT NULL LIMIT 200",
                               library)
        if not batch:
            return total
        total += await set_trashed(principal, library, [r["id"] for r in batch], False)


def remove_files(store: BlobStore, rows: list[asyncpg.Record]) -> None:
    # After commit: a crash here leaves an orphan file, never a row without its file.
    for r in rows:
        try:
            store.delete(r["storage_key"])
            store.delete_tree(store.derived_prefix(r["library_id"], r["id"]))
        except OSError:
            log.exception("could not remove files of deleted asset %s", r["id"])


async def delete_assets(
    principal: access.Principal, store: BlobStore, library_id: uuid.UUID | None, asset_ids: list[uuid.UUID]
) -> None:
    decoded = _distinct(asset_ids)
    library = await access.library_for(principal, library_id, access.DELETE_PERMANENTLY)
    async with db.transaction() as conn:
        rows = await _rows_in_library(conn, library, decoded)
        await hard_delete_rows(conn, rows)
    remove_files(store, rows)


async def delete_asset(principal: access.Principal, store: BlobStore, asset_id: uuid.UUID) -> None:
    asset = await access.load_asset(principal, asset_id, access.DELETE_PERMANENTLY)
    async with db.transaction() as conn:
        rows = await conn.fetch("SELECT * FROM assets WHERE id = $1 FOR UPDATE", asset["id"])
        if not rows:
            raise NotFound("Asset not found", kind="asset", ids=(asset_id,))
        await hard_delete_rows(conn, rows)
    remove_files(store, rows)


# What each purge deletes; built here from typed values, never taken from a caller.
_IN_LIBRARY_TRASH = "library_id = $1 AND trashed_at IS NOT NULL"
_TRASHED_BEFORE = "trashed_at < now() - $1::interval"
_IN_EXTERNAL_LIBRARY = "external_library_id = $1"


async def _purge_in_batches(store: BlobStore, condition: str, arg: object, *, skip_locked: bool) -> int:
    """Hard-delete every asset matching `condition` (one of the above), in bounded batches; returns how many.

    A user's request waits for rows another transaction holds (it must delete them all);
    background purges skip locked rows so several workers never queue behind each other.
    """
    total = 0
    lock = "FOR UPDATE SKIP LOCKED" if skip_locked else "FOR UPDATE"
    while True:
        async with db.transaction() as conn:
            rows = await conn.fetch(
                f"SELECT * FROM assets WHERE {condition} ORDER BY id LIMIT $2 {lock}", arg, _EMPTY_TRASH_BATCH
            )
            if rows:
                await hard_delete_rows(conn, rows)
        remove_files(store, rows)
        total += len(rows)
        if len(rows) < _EMPTY_TRASH_BATCH:
            return total


async def empty_trash(principal: access.Principal, store: BlobStore, library_id: uuid.UUID | None) -> int:
    library = await access.library_for(principal, library_id, access.DELETE_PERMANENTLY)
    return await _purge_in_batches(store, _IN_LIBRARY_TRASH, library, skip_locked=False)


async def purge_external_library(store: BlobStore, external_library_id: uuid.UUID) -> int:
    """Every asset of an external library, as a permanent delete removes them (its files in place are
    never touched: their storage keys name no stored file): the background half of a library delete."""
    return await _purge_in_batches(store, _IN_EXTERNAL_LIBRARY, external_library_id, skip_locked=True)


async def purge_trashed_before(store: BlobStore, age: timedelta) -> int:
    """Every asset trashed longer ago than `age`, in all libraries: a background job."""
    return await _purge_in_batches(store, _TRASHED_BEFORE, age, skip_locked=True)


# --- existence -------------------------------------------------------------------


async def existing_assets(
    principal: access.Principal,
    library_id: uuid.UUID | None,
    *,
    sha256s: list[bytes] | None = None,
    sha1s: list[bytes] | None = None,
    device_asset_ids: list[str] | None = None,
    device_id: str | None = None,
) -> list[asyncpg.Record]:
    """The library's assets with any of the given checksums, or a device's asset ids (exactly one kind)."""
    if sum(x is not None for x in (sha256s, sha1s, device_asset_ids)) != 1:
        raise Invalid("Give exactly one kind of key: SHA-256 checksums, SHA-1 checksums, or device asset ids")
    if device_asset_ids is not None and not device_id:
        raise Invalid("A device id is required with device asset ids", "device_id")
    items = sha256s or sha1s or device_asset_ids or []
    if len(items) > MAX_EXIST_ITEMS:
        raise Invalid(f"At most {MAX_EXIST_ITEMS} items per request")
    library = await access.library_for(principal, library_id, access.READ)
    if sha256s is not None:
        return await db.fetch(
            "SELECT * FROM assets WHERE library_id = $1 AND checksum_sha256 = ANY($2::bytea[])"
            " AND external_library_id IS NULL", library, sha256s
        )
    if sha1s is not None:
        return await db.fetch(
            "SELECT * FROM assets WHERE library_id = $1 AND checksum_sha1 = ANY($2::bytea[])"
            " AND external_library_id IS NULL", library, sha1s
        )
    return await db.fetch(
        "SELECT * FROM assets WHERE library_id = $1 AND device_id = $2 AND device_asset_id = ANY($3::text[])"
        " AND external_library_id IS NULL",
        library,
        device_id,
        device_asset_ids,
    )


async def statistics(
    principal: access.Principal, library: uuid.UUID, *, favorite: bool | None = None, trashed: bool | None = None,
    visibility: str | None = None,
) -> asyncpg.Record:
    principal.require(access.READ)
    if visibility == LOCKED:
        principal.require_elevated()
    return await db.fetchrow(
        """
        SELECT count(*) FILTER (WHERE media_type = 'image') AS images,
               count(*) FILTER (WHERE media_type = 'video') AS videos, count(*) AS total
        FROM assets WHERE library_id = $1
          AND ($2::bool IS NULL OR (trashed_at IS NOT NULL) = $2)
          AND ($3::bool IS NULL OR (coalesce(effective_rating, $5) = $6) = $3)
          AND ($4::text IS NULL OR visibility = $4)
          AND ($7 OR visibility <> 'locked')
        """,
        library, trashed if trashed is not None else False, favorite, visibility, effective.UNRATED,
        effective.FAVORITE_RATING, principal.elevated,
    )


# --- reading with details ----------------------------------------------------------


# Variant names of the native API, and the stored file each one is served from.
IMAGE_VARIANTS = {"thumbnail": "thumbnail", "preview": "preview", "fullsize": "fullsize"}
VIDEO_VARIANTS = {"thumbnail_image": "thumbnail", "preview_image": "preview"}
BROWSER_IMAGES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif"}


async def media_file(asset_id: uuid.UUID, variant: str) -> tuple[asyncpg.Record, asyncpg.Record | None] | None:
    """(asset, derived file or None for the original bytes) behind a media URL, or None if absent."""
    asset = await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)
    if asset is None:
        return None
    if variant == "original":
        return asset, None
    table = VIDEO_VARIANTS if asset["media_type"] == "video" else IMAGE_VARIANTS
    kind = table.get(variant)
    if kind is None:
        return None
    derived = await db.fetchrow("SELECT * FROM asset_files WHERE asset_id = $1 AND kind = $2", asset_id, kind)
    # (A current derived version is always a JPEG or PNG.)
    shown_mime = asset["mime_type"] if asset["current_version_id"] is None else "image/jpeg"
    if derived is None and variant == "fullsize" and shown_mime in BROWSER_IMAGES:
        return asset, None  # a browser shows this original as it is
    return (asset, derived) if derived is not None else None


async def all_pages(f: AssetFilter, order: str = "desc", page_size: int = 200) -> list[asyncpg.Record]:
    """Every asset matching a filter (for clients that want one array), read page by page."""
    rows: list[asyncpg.Record] = []
    cursor = None
    while True:
        page, more = await list_assets(f, order=order, limit=page_size, starting_after=cursor)
        rows += page
        if not more:
            return rows
        cursor = page[-1]["id"]


async def markers(f: AssetFilter) -> list[asyncpg.Record]:
    """Geotagged assets with their place names, for a map."""
    await check_references(f)
    sql = Sql()
    clause = where(f, sql)
    return await db.fetch(
        f"SELECT a.id, a.latitude, a.longitude, e.city, e.state, e.country FROM assets a"
        f" LEFT JOIN asset_exif e ON e.asset_id = a.id WHERE {clause} AND a.latitude IS NOT NULL"
        f" ORDER BY a.local_datetime DESC, a.id DESC",
        *sql.args,
    )


_SUGGESTION_COLUMNS = {"country": "country", "state": "state", "city": "city", "camera-make": "make",
                       "camera-model": "model", "camera-lens-model": "lens_model"}


async def suggestions(library: uuid.UUID, kind: str, narrow: dict[str, str], include_null: bool) -> list[str | None]:
    """Distinct values of one file-metadata field among the library's live assets, narrowed by others."""
    column = _SUGGESTION_COLUMNS.get(kind)
    if column is None:
        raise Invalid(f"type must be one of {', '.join(_SUGGESTION_COLUMNS)}", "kind")
    args: list[Any] = [library]
    clauses = ["a.library_id = $1", "a.trashed_at IS NULL"]
    for name, value in sorted(narrow.items()):
        if name not in _SUGGESTION_COLUMNS.values():
            continue
        args.append(value)
        clauses.append(f"e.{name} = ${len(args)}")
    rows = await db.fetch(
        f"SELECT DISTINCT e.{column} AS value FROM asset_exif e JOIN assets a ON a.id = e.asset_id"
        f" WHERE {' AND '.join(clauses)} ORDER BY 1 NULLS LAST LIMIT 1000",
        *args,
    )
    return [r["value"] for r in rows if r["value"] is not None or include_null]


async def one_per_city(library: uuid.UUID, limit: int = 200) -> list[asyncpg.Record]:
    """The newest live timeline asset of each city the library has photos from."""
    return await db.fetch(
        """
        SELECT DISTINCT ON (e.city) a.* FROM assets a JOIN asset_exif e ON e.asset_id = a.id
        WHERE a.library_id = $1 AND a.trashed_at IS NULL AND a.visibility = 'timeline' AND e.city IS NOT NULL
        ORDER BY e.city, a.local_datetime DESC, a.id DESC LIMIT $2
        """,
        library,
        limit,
    )
