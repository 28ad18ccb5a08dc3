"""What changed since a client's checkpoint, read from the change log, for clients that
keep a local copy of a library (the Immich mobile app's sync stream).

The change log is the one source of truth: for each entity kind, the entities with an
event after the checkpoint are looked up in their current state. Those that exist are
upserts, those gone are deletes; each carries the feed cursor of its newest event, so
a client that acknowledges a cursor has everything up to it. A stream stops at the
feed's horizon taken at its start (events of transactions older than every running one),
so a late commit is never skipped and writes made while streaming go to the next stream.
Rows are read in short batch queries in feed order, so memory stays flat however big the
library is and a slow client holds no database connection.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, AsyncIterator, NamedTuple

import asyncpg

from app.db import engine as db
from app.domain.albums import ALBUM_VIEW, DELETED_ALBUM_LINK

BATCH = 2000
READ_AHEAD = 2  # batches read ahead of the one being sent

# The current state of one entity, given its id as c.entity_id; None-able columns
# must include `id`, which is null when the entity is gone.
_STATE = {
    # Only what an asset line shows (and what decides its effective values): decoding is the cost.
    # Ids as text: the lines carry them as strings, and Python's UUID-to-text costs more than Postgres's.
    "asset": "SELECT a.id::text AS id, a.owner_id::text AS owner_id, a.original_file_name, a.thumbhash,"
             " a.checksum_sha1, a.taken_at, a.local_datetime, a.file_modified_at, a.created_at, a.duration_ms,"
             " a.media_type, a.trashed_at, a.visibility, a.live_photo_video_id::text AS live_photo_video_id,"
             " a.stack_id::text AS stack_id, a.width, a.height, a.effective_rating, a.current_version_id,"
             " a.external_library_id::text AS external_library_id"
             " FROM assets a WHERE a.id = c.entity_id AND a.library_id = $1",
    # Flat columns (whole-row records decode at half the speed); the asset's own are prefixed.
    # Only the exif columns an exif line shows (or that decide its effective values).
    "exif": "SELECT a.id::text AS id, a.file_size_bytes AS asset_file_size_bytes,"
            " a.effective_rating AS asset_effective_rating,"
            " a.user_description AS asset_user_description, a.user_latitude AS asset_user_latitude,"
            " a.user_longitude AS asset_user_longitude, a.user_original_datetime AS asset_user_original_datetime,"
            " a.user_original_offset_minutes AS asset_user_original_offset_minutes,"
            " x.asset_id, x.make, x.model, x.lens_model, x.f_number, x.focal_length, x.iso, x.exposure_time,"
            " x.orientation, x.original_datetime, x.original_offset_minutes, x.modified_datetime,"
            " x.modified_offset_minutes, x.timezone, x.latitude, x.longitude, x.altitude, x.city, x.state,"
            " x.country, x.description, x.projection_type, x.fps, x.raw_width, x.raw_height"
            " FROM assets a LEFT JOIN asset_exif x ON x.asset_id = a.id"
            " WHERE a.id = c.entity_id AND a.library_id = $1",
    "album": ALBUM_VIEW + " WHERE al.id = c.entity_id AND al.library_id = $1",
    "album_asset": "SELECT aa.id, aa.album_id, aa.asset_id FROM album_assets aa"
                   " WHERE aa.id = c.entity_id AND aa.library_id = $1",
    "stack": "SELECT s.*, coalesce(s.primary_asset_id, (SELECT m.id FROM assets m WHERE m.stack_id = s.id"
             " ORDER BY m.local_datetime DESC, m.id LIMIT 1)) AS effective_primary_id"
             " FROM stacks s WHERE s.id = c.entity_id AND s.library_id = $1",
    # An album user named by a removal's payload (album_sharing): gone while it is still removed.
    "album_user": "SELECT au.album_id AS id FROM album_users au JOIN albums al ON al.id = au.album_id"
                  " WHERE au.album_id = (c.payload->>'album_id')::uuid"
                  " AND au.user_id = (c.payload->>'user_id')::uuid AND al.library_id = $1",
    "person": "SELECT p.* FROM people p WHERE p.id = c.entity_id AND p.library_id = $1",
    "face": "SELECT f.* FROM faces f WHERE f.id = c.entity_id AND f.library_id = $1",
    # One Immich edit: an item of the edit list of the asset's current Immich rendering
    # (app/domain/asset_versions.py); gone once that rendering is no longer current.
    "asset_edit": "SELECT e.item->>'id' AS id, a.id::text AS asset_id, e.item->>'action' AS action,"
                  " e.item->'parameters' AS parameters, (e.seq - 1)::int AS sequence"
                  " FROM assets a JOIN asset_versions v ON v.id = a.current_version_id AND v.kind = 'external:immich'"
                  " CROSS JOIN LATERAL jsonb_array_elements(v.params->'edits') WITH ORDINALITY e(item, seq)"
                  " WHERE (e.item->>'id')::uuid = c.entity_id AND a.library_id = $1",
}
# Which change-log entity type moves each kind (one each: a scalar lets the
# (library_id, entity_type, txid, id) index deliver a batch in order without sorting).
_SOURCES = {
    "asset": "asset",
    "exif": "metadata",
    "album": "album",
    "album_asset": "album_asset",
    "album_user": "album_user",
    "stack": "stack",
    "person": "person",
    "face": "face",
    "asset_edit": "asset_edit",
}
# --- memories (Immich MemoriesV1 and MemoryToAssetsV1) ---
# A memory and its photo links are in the change log of the memory's library. A link to a locked
# asset reads as gone (see _LOCKED_HIDDEN): a client that does not hold the asset never hears of it.
_STATE["memory"] = "SELECT m.* FROM memories m WHERE m.id = c.entity_id AND m.library_id = $1"
_STATE["memory_asset"] = ("SELECT ma.id, ma.memory_id, ma.asset_id FROM memory_assets ma"
                          " JOIN memories m ON m.id = ma.memory_id JOIN assets a ON a.id = ma.asset_id"
                          " WHERE ma.id = c.entity_id AND m.library_id = $1")
_SOURCES["memory"] = "memory"
_SOURCES["memory_asset"] = "memory_asset"
# --- end memories ---

# --- asset metadata (app.domain.asset_metadata): a pair is looked up by its event's payload, so a
# pair deleted and set again is an upsert, never a delete sent after it.
_STATE["asset_metadata"] = (
    "SELECT m.asset_id::text AS id, m.key, m.value FROM asset_metadata m JOIN assets a ON a.id = m.asset_id"
    " WHERE m.asset_id = (c.payload->>'asset_id')::uuid AND m.key = c.payload->>'key' AND a.library_id = $1"
)
_SOURCES["asset_metadata"] = "asset_metadata"

KINDS = tuple(_STATE)


def _unlocked(sql: str) -> str:
    """An asset or exif state query that treats a locked asset (the PIN-protected folder) as gone:
    a client holding it drops it, and one without it never hears of it."""
    return f"{sql} AND a.visibility <> 'locked'"


_LOCKED_HIDDEN = ("asset", "exif", "memory_asset", "asset_metadata", "asset_edit")


class Change(NamedTuple):
    cursor: tuple[int, int]
    entity_id: uuid.UUID
    owner_id: uuid.UUID | None
    payload: Any  # the event's payload as stored (JSON text); see payload_of
    row: asyncpg.Record | None  # current state; None for a delete


def payload_of(change: Change) -> dict[str, Any]:
    value = change.payload
    return json.loads(value) if isinstance(value, str) else (value or {})


class Snapshot:
    """The bound of one stream: events of transactions older than every one running at its start.

    Each batch is its own short query, so a slow client holds no database connection
    between batches. Entities are read in their current state, which may be newer than
    the bound; the events that made it newer come again in the next stream, harmlessly.
    """

    def __init__(self, horizon: int, *, shows_locked: bool = False):
        self.horizon = horizon
        # The caller's session is unlocked with its PIN: its own locked assets come too.
        self.shows_locked = shows_locked

    def _sql(self, kind: str) -> str:
        # OFFSET 0 keeps the state a lookup per event: flattened into the join, the planner's first
        # (custom) plans hash the whole table for every batch of 2,000, several times slower.
        state = _STATE[kind] if self.shows_locked or kind not in _LOCKED_HIDDEN else _unlocked(_STATE[kind])
        return f"""
            WITH batch AS (
                SELECT e.entity_id, e.txid, e.id, e.owner_id, e.payload,
                       NOT EXISTS (
                           SELECT 1 FROM events l
                           WHERE l.entity_id = e.entity_id AND (l.txid, l.id) > (e.txid, e.id) AND l.txid < $5
                             AND l.library_id = $1 AND l.entity_type = $2
                       ) AS latest
                FROM events e
                WHERE e.library_id = $1 AND e.entity_type = $2
                  AND (e.txid, e.id) > ($3, $4) AND e.txid < $5
                ORDER BY e.txid, e.id
                LIMIT $6
            )
            SELECT c.txid AS ev_txid, c.id AS ev_id, c.entity_id AS ev_entity, c.owner_id AS ev_owner,
                   c.payload AS ev_payload, c.latest AS ev_latest, s.*
            FROM batch c LEFT JOIN LATERAL ({state} AND c.latest OFFSET 0) s ON true
            ORDER BY c.txid, c.id
        """

    async def changes(self, kind: str, library_id: uuid.UUID, after: tuple[int, int] | None,
                      *, deletes: bool = False) -> AsyncIterator[Change]:
        """Entities of `kind` changed after the cursor: live ones (upserts) or gone ones (deletes).

        An entity comes once, at its newest event before the bound."""
        async for batch in self.change_batches(kind, library_id, after, deletes=deletes):
            for change in batch:
                yield change

    async def change_batches(self, kind: str, library_id: uuid.UUID, after: tuple[int, int] | None,
                             *, deletes: bool = False) -> AsyncIterator[list[Change]]:
        """`changes`, a batch query's worth at a time (in feed order; a batch may be empty).

        Up to READ_AHEAD batches are read while the caller is busy with this one, so the
        database and the encoding overlap; each is its own short query, so a caller that stops
        taking batches holds no connection."""
        sql = self._sql(kind)
        source = _SOURCES[kind]
        ready: asyncio.Queue = asyncio.Queue(maxsize=READ_AHEAD)

        async def read() -> None:
            cursor = after or (0, 0)
            try:
                while True:
                    rows = await db.fetch(sql, library_id, source, cursor[0], cursor[1], self.horizon, BATCH)
                    await ready.put(rows)
                    if len(rows) < BATCH:
                        return
                    cursor = (rows[-1]["ev_txid"], rows[-1]["ev_id"])
            except Exception as error:  # raised where the batches are taken, in their order
                await ready.put(error)

        reader = asyncio.ensure_future(read())
        new = tuple.__new__
        try:
            while True:
                rows = await ready.get()
                if isinstance(rows, Exception):
                    raise rows
                # By position: the event's columns lead every row (see _sql); a stream makes 100,000s.
                yield [new(Change, ((r[0], r[1]), r[2], r[3], r[4], None if deletes else r))
                       for r in rows if r[5] and (r["id"] is None) == deletes]
                if len(rows) < BATCH:
                    return
        finally:
            reader.cancel()  # a caller that stopped early leaves nothing running


async def snapshot(*, shows_locked: bool = False) -> Snapshot:
    return Snapshot(await db.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"),
                    shows_locked=shows_locked)


# --- per-session checkpoints ---------------------------------------------------------------


async def checkpoints(session_id: uuid.UUID) -> dict[str, str]:
    rows = await db.fetch("SELECT type, ack FROM sync_checkpoints WHERE session_id = $1 ORDER BY type", session_id)
    return {r["type"]: r["ack"] for r in rows}


async def save_checkpoints(session_id: uuid.UUID, acks: dict[str, str]) -> None:
    if not acks:
        return
    async with db.transaction() as conn:
        await conn.executemany(
            """
            INSERT INTO sync_checkpoints (session_id, type, ack) VALUES ($1, $2, $3)
            ON CONFLICT (session_id, type) DO UPDATE SET ack = EXCLUDED.ack, updated_at = now()
            """,
            [(session_id, t, a) for t, a in acks.items()],
        )


async def delete_checkpoints(session_id: uuid.UUID, types: list[str] | None) -> None:
    if types is None:
        await db.execute("DELETE FROM sync_checkpoints WHERE session_id = $1", session_id)
    else:
        await db.execute("DELETE FROM sync_checkpoints WHERE session_id = $1 AND type = ANY($2::text[])",
                         session_id, types)


async def reset(session_id: uuid.UUID) -> None:
    """Start the session's sync over: no checkpoints, no pending reset."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM sync_checkpoints WHERE session_id = $1", session_id)
        await conn.execute("UPDATE sessions SET is_pending_sync_reset = false WHERE id = $1", session_id)


async def pending_reset(session_id: uuid.UUID) -> bool:
    return bool(await db.fetchval("SELECT is_pending_sync_reset FROM sessions WHERE id = $1", session_id))


# --- shared data: partners' libraries and albums shared with the caller ---------------------
# One cursor per type walks several libraries' events in one ordered query (the change log's
# cursor is global). What a client newly gained access to (a new partner, a newly shared album)
# has events older than its checkpoint: those come from the current state instead (backfill),
# read in id order in batches, so memory stays flat here too.

_SHARED_STATE = {kind: sql.replace("library_id = $1", "library_id = ANY($1::uuid[])") for kind, sql in _STATE.items()}
# The asset of an album link (an album asset seen through the link's events), and its exif;
# $8 is the caller's own library, whose assets come as its own (AssetsV2), never as album assets.
_SHARED_STATE["link_asset"] = (
    _STATE["asset"].replace(" FROM assets a WHERE a.id = c.entity_id AND a.library_id = $1",
                            " FROM album_assets aa JOIN assets a ON a.id = aa.asset_id"
                            " WHERE aa.id = c.entity_id AND aa.library_id = ANY($1::uuid[])"
                            " AND a.library_id IS DISTINCT FROM $8"))
_SHARED_STATE["link_exif"] = (
    _STATE["exif"].replace(" FROM assets a LEFT JOIN asset_exif x ON x.asset_id = a.id"
                           " WHERE a.id = c.entity_id AND a.library_id = $1",
                           " FROM album_assets aa JOIN assets a ON a.id = aa.asset_id"
                           " LEFT JOIN asset_exif x ON x.asset_id = a.id"
                           " WHERE aa.id = c.entity_id AND aa.library_id = ANY($1::uuid[])"
                           " AND a.library_id IS DISTINCT FROM $8"))
# No share reaches a locked asset, whoever the caller is.
for _kind in (*_LOCKED_HIDDEN, "link_asset", "link_exif"):
    _SHARED_STATE[_kind] = _unlocked(_SHARED_STATE[_kind])
_SHARED_SOURCES = {**_SOURCES, "link_asset": "album_asset", "link_exif": "album_asset"}

# Which events of the walked libraries count ($7: album ids, $8: the caller's own library).
EVERY_EVENT = ""
OF_ALBUMS = " AND e.entity_id = ANY($7::uuid[])"  # album events of these albums
# link (and album user) events of these albums, which name their album in the payload
LINKS_OF_ALBUMS = " AND (e.payload->>'album_id')::uuid = ANY($7::uuid[])"
LINKED_IN_ALBUMS = (" AND e.entity_id IN (SELECT aa.asset_id FROM album_assets aa"
                    " WHERE aa.album_id = ANY($7::uuid[]))")  # events of assets linked into these albums


def _shared_sql(kind: str, where: str, single: bool) -> str:
    # One library (the usual single partner) as a scalar: the index then delivers each batch in
    # feed order, where an array of several needs a sort of what is left past the cursor.
    libraries = "= ($1::uuid[])[1]" if single else "= ANY($1::uuid[])"
    return f"""
        WITH batch AS (
            SELECT e.entity_id, e.txid, e.id, e.owner_id, e.payload,
                   NOT EXISTS (
                       SELECT 1 FROM events l
                       WHERE l.entity_id = e.entity_id AND (l.txid, l.id) > (e.txid, e.id) AND l.txid < $5
                         AND l.library_id {libraries} AND l.entity_type = $2
                   ) AS latest
            FROM events e
            WHERE e.library_id {libraries} AND e.entity_type = $2
              AND (e.txid, e.id) > ($3, $4) AND e.txid < $5{where}
              -- every query takes the same arguments, whichever of $7 and $8 its filters use
              AND $7::uuid[] IS NOT NULL AND $8::uuid IS NOT DISTINCT FROM $8
            ORDER BY e.txid, e.id
            LIMIT $6
        )
        SELECT c.txid AS ev_txid, c.id AS ev_id, c.entity_id AS ev_entity, c.owner_id AS ev_owner,
               c.payload AS ev_payload, c.latest AS ev_latest, s.*
        FROM batch c LEFT JOIN LATERAL ({_SHARED_STATE[kind]} AND c.latest OFFSET 0) s ON true
        ORDER BY c.txid, c.id
    """


async def shared_changes(snap: Snapshot, kind: str, library_ids: list[uuid.UUID], after: tuple[int, int] | None,
                          *, where: str = EVERY_EVENT, album_ids: list[uuid.UUID] | None = None,
                          own_library: uuid.UUID | None = None, deletes: bool = False,
                          scanned: list[int] | None = None) -> AsyncIterator[Change]:
    """Snapshot.changes over several libraries at once, in feed order, keeping only the events
    `where` admits. Nothing is read when there is no library to walk. Batches are read one after
    the other: shared data is small next to the caller's own library. `scanned` (a one-item list)
    counts the events read, yielded or not: a reader that moves its cursor past events it did
    not keep needs to know there were some."""
    if not library_ids:
        return
    sql = _shared_sql(kind, where, len(library_ids) == 1)
    source = _SHARED_SOURCES[kind]
    cursor = after or (0, 0)
    while True:
        rows = await db.fetch(sql, library_ids, source, cursor[0], cursor[1], snap.horizon, BATCH,
                              album_ids or [], own_library)
        if scanned is not None:
            scanned[0] += len(rows)
        if not rows:
            return
        cursor = (rows[-1]["ev_txid"], rows[-1]["ev_id"])
        for r in rows:
            if not r["ev_latest"] or (r["id"] is None) != deletes:
                continue
            yield Change((r["ev_txid"], r["ev_id"]), r["ev_entity"], r["ev_owner"], r["ev_payload"],
                         None if deletes else r)
        if len(rows) < BATCH:
            return


async def partner_changes(snap: Snapshot, user_id: uuid.UUID, after: tuple[int, int] | None,
                          *, deletes: bool = False) -> AsyncIterator[Change]:
    """Partnerships the user shares or receives, changed after the cursor: live ones with their
    current row, ended ones (deletes) with the payload of their last event naming both users."""
    cursor = after or (0, 0)
    me = str(user_id)
    while True:
        rows = await db.fetch(
            """
            WITH batch AS (
                SELECT e.entity_id, e.txid, e.id, e.owner_id, e.payload,
                       NOT EXISTS (SELECT 1 FROM events l WHERE l.entity_id = e.entity_id
                                   AND (l.txid, l.id) > (e.txid, e.id) AND l.txid < $4
                                   AND l.library_id IS NULL AND l.entity_type = 'partner') AS latest
                FROM events e
                WHERE e.library_id IS NULL AND e.entity_type = 'partner'
                  AND (e.txid, e.id) > ($2, $3) AND e.txid < $4
                  AND (e.payload->>'shared_by_id' = $1 OR e.payload->>'shared_with_id' = $1)
                ORDER BY e.txid, e.id
                LIMIT $5
            )
            SELECT c.txid AS ev_txid, c.id AS ev_id, c.entity_id AS ev_entity, c.owner_id AS ev_owner,
                   c.payload AS ev_payload, c.latest AS ev_latest, p.*, (p.shared_by_id IS NOT NULL) AS live
            FROM batch c LEFT JOIN partners p ON c.latest
              AND p.shared_by_id = (c.payload->>'shared_by_id')::uuid
              AND p.shared_with_id = (c.payload->>'shared_with_id')::uuid
            ORDER BY c.txid, c.id
            """,
            me, cursor[0], cursor[1], snap.horizon, BATCH,
        )
        if not rows:
            return
        cursor = (rows[-1]["ev_txid"], rows[-1]["ev_id"])
        for r in rows:
            if r["ev_latest"] and r["live"] != deletes:
                yield Change((r["ev_txid"], r["ev_id"]), r["ev_entity"], r["ev_owner"], r["ev_payload"],
                             None if deletes else r)
        if len(rows) < BATCH:
            return


# The current state, for backfills and for what a client must drop when a share ends: rows read
# in id order, a batch at a time ($1: the ids of the libraries or albums, $2: the last id seen).
_CURRENT = {
    "asset": _STATE["asset"].replace("a.id = c.entity_id AND a.library_id = $1", "a.library_id = ANY($1::uuid[])"),
    "exif": _STATE["exif"].replace("a.id = c.entity_id AND a.library_id = $1", "a.library_id = ANY($1::uuid[])"),
    "stack": _STATE["stack"].replace("s.id = c.entity_id AND s.library_id = $1", "s.library_id = ANY($1::uuid[])"),
    "album": ALBUM_VIEW + " WHERE al.id = ANY($1::uuid[])",
    "album_asset": "SELECT aa.id, aa.album_id, aa.asset_id FROM album_assets aa WHERE aa.album_id = ANY($1::uuid[])",
    # Assets linked into the albums, but for those of the library in $3 (the caller's own).
    "album_asset_asset": _STATE["asset"].replace(
        " WHERE a.id = c.entity_id AND a.library_id = $1",
        " WHERE a.id IN (SELECT aa.asset_id FROM album_assets aa WHERE aa.album_id = ANY($1::uuid[]))"
        " AND a.library_id IS DISTINCT FROM $3"),
    "album_asset_exif": _STATE["exif"].replace(
        " WHERE a.id = c.entity_id AND a.library_id = $1",
        " WHERE a.id IN (SELECT aa.asset_id FROM album_assets aa WHERE aa.album_id = ANY($1::uuid[]))"
        " AND a.library_id IS DISTINCT FROM $3"),
}
for _kind in ("asset", "exif", "album_asset_asset", "album_asset_exif"):  # backfills of shares only
    _CURRENT[_kind] = _unlocked(_CURRENT[_kind])
_CURRENT_KEY = {"asset": "a.id", "exif": "a.id", "stack": "s.id", "album": "al.id", "album_asset": "aa.id",
                "album_asset_asset": "a.id", "album_asset_exif": "a.id"}


# Kinds read per library: one library at a time, so (library_id, id) indexes deliver each page in
# order (with several libraries in one array the planner walks the primary key past every other
# library's rows instead).
_BY_LIBRARY = ("asset", "exif", "stack")


async def current(kind: str, ids: list[uuid.UUID], *, exclude_library: uuid.UUID | None = None
                  ) -> AsyncIterator[asyncpg.Record]:
    """Every row of `kind` in these libraries (asset, exif, stack: library by library, each in id
    order) or albums (album, album_asset, album_asset_asset, album_asset_exif: in id order), a
    batch at a time."""
    if not ids:
        return
    key = _CURRENT_KEY[kind]
    extra = [exclude_library] if kind.startswith("album_asset_") else []
    if kind in _BY_LIBRARY:
        sql = f"{_CURRENT[kind].replace('= ANY($1::uuid[])', '= $1')} AND {key} > $2 ORDER BY {key} LIMIT {BATCH}"
        groups: list[Any] = sorted(set(ids))
    else:
        sql = f"{_CURRENT[kind]} AND {key} > $2 ORDER BY {key} LIMIT {BATCH}"
        groups = [ids]
    for group in groups:
        last = uuid.UUID(int=0)
        while True:
            rows = await db.fetch(sql, group, last, *extra)
            for r in rows:
                yield r
            if len(rows) < BATCH:
                break
            last = uuid.UUID(str(rows[-1]["id"]))


# The assets a lost album held: its links now, or, for an album deleted whole, the links its
# deletion removed (recorded in the deletion's transaction, so found by its album_deleted event).
_LOST_ALBUM_ASSETS = f"""
    SELECT aa.asset_id FROM album_assets aa WHERE aa.album_id = ANY($1::uuid[])
    UNION
    SELECT (r.payload->>'asset_id')::uuid FROM events d
    JOIN events r ON r.library_id = d.library_id AND r.entity_type = '{DELETED_ALBUM_LINK}' AND r.txid = d.txid
     AND r.payload->>'album_id' = d.entity_id::text
    WHERE d.entity_id = ANY($1::uuid[]) AND d.entity_type = 'album' AND d.event_type = 'album_deleted'
"""


# Whether the asset `a` (LEFT JOINed: NULL when gone for good), `lost.asset_id`, is out of the
# client's sight: not in one of the libraries in $2, nor linked into one of the albums in $3.
_SEEN_NO_OTHER_WAY = (
    "(a.id IS NULL OR NOT a.library_id = ANY($2::uuid[]))"
    " AND NOT EXISTS (SELECT 1 FROM album_assets o WHERE o.asset_id = lost.asset_id AND o.album_id = ANY($3::uuid[]))"
)


async def dropped_album_assets(album_ids: list[uuid.UUID], *, keep_libraries: list[uuid.UUID],
                               keep_albums: list[uuid.UUID]) -> AsyncIterator[uuid.UUID]:
    """The assets of albums a client lost (its share ended, or the album was deleted) that it sees
    no other way: not in one of `keep_libraries` (its own, its partners') nor linked into an album
    it still has. An asset gone for good (its library purged) is dropped too."""
    if not album_ids:
        return
    last = uuid.UUID(int=0)
    while True:
        rows = await db.fetch(
            f"SELECT DISTINCT lost.asset_id FROM ({_LOST_ALBUM_ASSETS}) lost"
            f" LEFT JOIN assets a ON a.id = lost.asset_id WHERE lost.asset_id > $4 AND {_SEEN_NO_OTHER_WAY}"
            f" ORDER BY lost.asset_id LIMIT {BATCH}",
            album_ids, keep_libraries, keep_albums, last,
        )
        for r in rows:
            yield r["asset_id"]
        if len(rows) < BATCH:
            return
        last = rows[-1]["asset_id"]


async def dropped_library_assets(library_ids: list[uuid.UUID], *, keep_albums: list[uuid.UUID]
                                 ) -> AsyncIterator[uuid.UUID]:
    """The assets of libraries a client lost (a partner who stopped sharing) that it sees no other
    way: not linked into an album it still has. Library by library, each in id order."""
    for library_id in sorted(set(library_ids)):
        last = uuid.UUID(int=0)
        while True:
            rows = await db.fetch(
                "SELECT a.id FROM assets a WHERE a.library_id = $1 AND a.id > $3 AND NOT EXISTS"
                " (SELECT 1 FROM album_assets o WHERE o.asset_id = a.id AND o.album_id = ANY($2::uuid[]))"
                f" ORDER BY a.id LIMIT {BATCH}",
                library_id, keep_albums, last,
            )
            for r in rows:
                yield r["id"]
            if len(rows) < BATCH:
                break
            last = rows[-1]["id"]


async def libraries_of_linked_assets(album_ids: list[uuid.UUID], own_library: uuid.UUID) -> list[uuid.UUID]:
    """The libraries (other than the caller's own) of the assets linked into these albums."""
    if not album_ids:
        return []
    rows = await db.fetch(
        "SELECT DISTINCT a.library_id FROM album_assets aa JOIN assets a ON a.id = aa.asset_id"
        " WHERE aa.album_id = ANY($1::uuid[]) AND a.library_id <> $2",
        album_ids, own_library,
    )
    return [r["library_id"] for r in rows]


async def albums_with_foreign_assets(own_library: uuid.UUID) -> list[uuid.UUID]:
    """The caller's own albums holding assets of other libraries (an album editor's additions):
    those assets reach the caller only as album assets."""
    rows = await db.fetch(
        "SELECT DISTINCT aa.album_id FROM album_assets aa JOIN assets a ON a.id = aa.asset_id"
        " WHERE aa.library_id = $1 AND a.library_id <> $1",
        own_library,
    )
    return [r["album_id"] for r in rows]


async def album_library_ids(album_ids: list[uuid.UUID], *, deleted_too: bool = False) -> list[uuid.UUID]:
    """The libraries of these albums; `deleted_too`: of deleted ones too, as their events name them."""
    if not album_ids:
        return []
    rows = await db.fetch(
        "SELECT library_id FROM albums WHERE id = ANY($1::uuid[])"
        " UNION SELECT library_id FROM events WHERE $2 AND entity_id = ANY($1::uuid[]) AND entity_type = 'album'"
        " AND event_type = 'album_deleted' AND library_id IS NOT NULL",
        album_ids, deleted_too,
    )
    return sorted(r["library_id"] for r in rows)


async def removed_album_assets(snap: Snapshot, library_ids: list[uuid.UUID], album_ids: list[uuid.UUID],
                               after: tuple[int, int], *, own_library: uuid.UUID, keep_libraries: list[uuid.UUID],
                               keep_albums: list[uuid.UUID], scanned: list[int] | None = None
                               ) -> AsyncIterator[tuple[tuple[int, int], uuid.UUID]]:
    """The assets removed from albums since the cursor that the client now sees no other way, each
    with its removal's cursor: removals (`album_asset_removed`) from the albums in `album_ids` and
    from the client's own library's albums (an album editor's photo taken out), read from the change
    log in feed order, a batch a query; the keep rules are dropped_album_assets'. `scanned` counts
    the removals read, kept or not."""
    if not library_ids:
        return
    cursor = after
    while True:
        rows = await db.fetch(
            f"""
            WITH lost AS (
                SELECT e.txid, e.id, (e.payload->>'asset_id')::uuid AS asset_id FROM events e
                WHERE e.library_id = ANY($1::uuid[]) AND e.entity_type = 'album_asset'
                  AND (e.txid, e.id) > ($4, $5) AND e.txid < $6 AND e.event_type = 'album_asset_removed'
                  AND (e.library_id = $7 OR (e.payload->>'album_id')::uuid = ANY($8::uuid[]))
                ORDER BY e.txid, e.id
                LIMIT {BATCH}
            )
            SELECT lost.txid, lost.id, lost.asset_id, {_SEEN_NO_OTHER_WAY} AS dropped
            FROM lost LEFT JOIN assets a ON a.id = lost.asset_id
            ORDER BY lost.txid, lost.id
            """,
            library_ids, keep_libraries, keep_albums, cursor[0], cursor[1], snap.horizon, own_library, album_ids,
        )
        if scanned is not None:
            scanned[0] += len(rows)
        if not rows:
            return
        cursor = (rows[-1]["txid"], rows[-1]["id"])
        for r in rows:
            if r["dropped"]:
                yield (r["txid"], r["id"]), r["asset_id"]
        if len(rows) < BATCH:
            return
