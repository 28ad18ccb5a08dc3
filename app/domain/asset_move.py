"""Moving assets from one library to another (the native `POST /api/assets/move`).

An asset keeps its id, its original, its derived files, its faces and its key/value metadata. What
belongs to the source library stays there: the asset leaves the source library's albums (their
links end, with events; an album's explicit cover that leaves is cleared), its stack (which
dissolves when fewer than two members are left) and its people (its faces lose their person and
are clustered again among the destination's people). Links in albums of other libraries (a shared
album the caller's asset was added to) are not the source library's and are kept. The asset becomes
the destination owner's, like everything in a library. A live photo's motion part moves with it.

Files: the original keeps its key (keys are opaque names; deletion goes by the key on the row), so
the move never copies or renames the bytes that matter. Derived files (variants, sidecar, face
crops) live under a per-library prefix that deletion also goes by, so they get a second name
under the destination's prefix (hard links) before the rows switch, in the transaction that holds
the asset's blob lock; the old names go after the commit. A crash before the commit leaves extra
links nobody names, after it the old folder: waste, never a row naming a missing file.

Each asset has its own outcome (moved, already there, or failed and why); the request as a whole
fails only when the caller may not move between the two libraries at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass

import asyncpg

from app.db import engine as db
from app.domain import access, albums, asset_metadata, events, people, quotas, recognition, stacks
from app.domain.blob_locks import lock_blobs
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.people import face_event
from app.storage.blobstore import BlobStore

log = logging.getLogger(__name__)

MAX_IDS = 200
MOVED, ALREADY_THERE, FAILED = "moved", "already_in_destination", "failed"
UNAVAILABLE, CHANGED_SOURCE, DUPLICATE, QUOTA, BUSY = "unavailable", "changed_source", "duplicate", "quota", "busy"
# An external library's asset belongs with its library's folders (its owner's library): it stays.
EXTERNAL = "external_library"


@dataclass(frozen=True)
class MoveResult:
    asset_id: uuid.UUID
    outcome: str
    failure: str | None = None


async def move_assets(principal: access.Principal, store: BlobStore, job_queue, source_id: uuid.UUID,
                      destination_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> list[MoveResult]:
    """One result per distinct id, in request order. The caller owns the source library and may
    write to the destination (owner or collaborator); a credential must allow both writing and
    permanent deletion (the source loses the asset for good) and cover both libraries."""
    principal.require(access.WRITE)
    await access.owned_library(principal, source_id, access.DELETE_PERMANENTLY)
    await access.require_role(principal, destination_id, access.WRITE, NotFound("Library not found"))
    if source_id == destination_id:
        raise Invalid("destination_library_id must differ from source_library_id", "destination_library_id")
    if len(asset_ids) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} asset ids", "asset_ids")
    wanted = list(dict.fromkeys(asset_ids))
    destination = await db.fetchrow("SELECT * FROM libraries WHERE id = $1", destination_id)
    allowance = await _allowance(principal, destination)
    results: dict[uuid.UUID, MoveResult] = {}
    moving: list[asyncpg.Record] = []
    linked: list[tuple[str, str]] = []
    try:
        async with db.transaction() as conn:
            # Moves into one library are serialised: the duplicate check below must see the last one.
            await conn.execute("SELECT 1 FROM libraries WHERE id = $1 FOR NO KEY UPDATE", destination_id)
            for asset_id in wanted:
                if any(r["id"] == asset_id for r in moving):  # a motion part already moving with its still
                    results[asset_id] = MoveResult(asset_id, MOVED)
                    continue
                verdict, row = await _verdict(conn, principal, asset_id, source_id, destination_id)
                if verdict is None:
                    group = await _with_motion_part(conn, row, source_id)
                    if group is None:
                        verdict = MoveResult(asset_id, FAILED, BUSY)
                if verdict is None:
                    group = [r for r in group if not any(m["id"] == r["id"] for m in moving)]  # a part asked for first
                    size = sum(r["file_size_bytes"] or 0 for r in group)
                    verdict = await _room_and_uniqueness(conn, group, destination_id, allowance, size)
                    if verdict is None:
                        allowance = _spent(allowance, size)
                        moving.extend(group)
                results[asset_id] = verdict or MoveResult(asset_id, MOVED)
            if moving:
                linked = await asyncio.to_thread(_link_derived, store, moving, destination_id)
                await _move_rows(conn, store, moving, destination)
    except BaseException as exc:
        await asyncio.to_thread(_unlink, store, [new for _, new in linked])
        if isinstance(exc, asyncpg.exceptions.DeadlockDetectedError):
            raise Conflict("A concurrent change interrupted the move; nothing was moved: retry it unchanged") from None
        raise
    # Committed: the old names of the derived files go.
    await asyncio.to_thread(_drop_old_trees, store, moving)
    if moving and job_queue is not None:
        await recognition.enqueue_clustering(job_queue, destination_id)
    return [results[a] for a in wanted]


# --- deciding, per asset ----------------------------------------------------------------------


async def _verdict(conn, principal: access.Principal, asset_id: uuid.UUID, source_id: uuid.UUID,
                   destination_id: uuid.UUID) -> tuple[MoveResult | None, asyncpg.Record | None]:
    """Why this asset is not moved, or (None, its row) when it may be: the row is then locked, with
    its files, for this transaction."""
    row = await _hold(conn, asset_id)
    if row is None:  # locked elsewhere, or missing
        row = await conn.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)
        if row is None:
            return MoveResult(asset_id, FAILED, UNAVAILABLE), None
        if row["library_id"] == source_id:
            return MoveResult(asset_id, FAILED, BUSY), None
    if row["library_id"] == destination_id:
        return MoveResult(asset_id, ALREADY_THERE), None
    if row["library_id"] != source_id:
        # Somewhere else the caller can see: it was moved away meanwhile; anywhere else, unknown.
        seen = await access.library_role(principal, row["library_id"]) is not None
        return MoveResult(asset_id, FAILED, CHANGED_SOURCE if seen else UNAVAILABLE), None
    if row["trashed_at"] is not None or (row["visibility"] == "locked" and not principal.elevated):
        return MoveResult(asset_id, FAILED, UNAVAILABLE), None
    if row["external_library_id"] is not None:
        return MoveResult(asset_id, FAILED, EXTERNAL), None
    if not await _files_free(conn, asset_id):
        return MoveResult(asset_id, FAILED, BUSY), None
    return None, row


async def _hold(conn, asset_id: uuid.UUID) -> asyncpg.Record | None:
    """The asset's row, locked for this transaction, unless another transaction holds it."""
    return await conn.fetchrow("SELECT * FROM assets WHERE id = $1 FOR UPDATE SKIP LOCKED", asset_id)


async def _files_free(conn, asset_id: uuid.UUID) -> bool:
    """No file operation holds the asset's blob lock (taken here for this transaction), and no job
    is about to rewrite its files under the old library's prefix."""
    if not await lock_blobs(conn, asset_id, wait=False):
        return False
    return not await conn.fetchval(
        "SELECT 1 FROM tasks WHERE asset_id = $1 AND status IN ('pending', 'started') LIMIT 1", asset_id)


async def _with_motion_part(conn, row: asyncpg.Record, source_id: uuid.UUID) -> list[asyncpg.Record] | None:
    """The asset, and its live photo's motion part when that is in the same library (it has no life
    of its own: the app shows it only through the still). None when the part is busy: the two move
    together or not at all."""
    motion_id = row["live_photo_video_id"]
    if motion_id is None:
        return [row]
    motion = await _hold(conn, motion_id)
    if motion is None:
        elsewhere = await conn.fetchval("SELECT library_id FROM assets WHERE id = $1", motion_id)
        return None if elsewhere == source_id else [row]
    if motion["library_id"] != source_id or motion["external_library_id"] is not None:
        return [row]
    return [row, motion] if await _files_free(conn, motion_id) else None


async def _room_and_uniqueness(conn, group: list[asyncpg.Record], destination_id: uuid.UUID,
                               allowance: quotas.Allowance, size: int) -> MoveResult | None:
    asset_id = group[0]["id"]
    taken = await conn.fetchval(
        "SELECT 1 FROM assets WHERE library_id = $1 AND checksum_sha256 = ANY($2::bytea[])"
        " AND external_library_id IS NULL LIMIT 1",
        destination_id, [r["checksum_sha256"] for r in group])
    if taken:
        return MoveResult(asset_id, FAILED, DUPLICATE)
    if (allowance.user_left is not None and size > allowance.user_left) or (
            allowance.library_left is not None and size > allowance.library_left):
        return MoveResult(asset_id, FAILED, QUOTA)
    return None


async def _allowance(principal: access.Principal, destination: asyncpg.Record) -> quotas.Allowance:
    """Room in the destination. Moving between one owner's libraries spends none of the owner's
    storage, so only the destination library's own cap counts then."""
    allowance = await quotas.upload_allowance(principal, destination["id"])
    if destination["owner_id"] == principal.user_id:
        return quotas.Allowance(library_left=allowance.library_left)
    return allowance


def _spent(allowance: quotas.Allowance, size: int) -> quotas.Allowance:
    return quotas.Allowance(
        user_left=None if allowance.user_left is None else allowance.user_left - size,
        library_left=None if allowance.library_left is None else allowance.library_left - size)


# --- the change ---------------------------------------------------------------------------------


async def _move_rows(conn, store: BlobStore, rows: list[asyncpg.Record], destination: asyncpg.Record) -> None:
    ids_ = [r["id"] for r in rows]
    source_id = rows[0]["library_id"]
    # Albums of the source library: the links end, an explicit cover leaving is cleared.
    links = await conn.fetch(
        "DELETE FROM album_assets aa USING albums al WHERE al.id = aa.album_id AND aa.asset_id = ANY($1::uuid[])"
        " AND al.library_id = $2 RETURNING aa.id, aa.album_id, aa.asset_id, al.owner_id",
        ids_, source_id)
    for link in links:
        await albums.record_link_removals(conn, source_id, link["owner_id"],
                                          [(link["id"], link["album_id"], link["asset_id"])])
    covers = await conn.fetch(
        "UPDATE albums SET cover_asset_id = NULL, updated_at = now()"
        " WHERE cover_asset_id = ANY($1::uuid[]) AND library_id = $2 RETURNING *", ids_, source_id)
    for album in covers:
        await events.record(conn, entity_type="album", entity_id=album["id"], event_type="album_updated",
                            library_id=album["library_id"], owner_id=album["owner_id"],
                            payload={"album_cover_asset_id": None})
    # The stack stays behind (dissolving if too small).
    stack_ids = sorted({r["stack_id"] for r in rows if r["stack_id"] is not None})
    await stacks.clear_covers(conn, ids_)
    # Faces come along without their people, to be clustered among the destination's.
    faces = await conn.fetch("SELECT * FROM faces WHERE asset_id = ANY($1::uuid[]) ORDER BY id", ids_)
    people_left = sorted({f["person_id"] for f in faces if f["person_id"] is not None})
    face_ids = [f["id"] for f in faces]
    await conn.execute("UPDATE people SET thumbnail_face_id = NULL, updated_at = now()"
                       " WHERE thumbnail_face_id = ANY($1::uuid[])", face_ids)
    for face in faces:
        await face_event(conn, face, "face_deleted", {
            "previous_person_id": None if face["person_id"] is None else str(face["person_id"])})
    moved_faces = await conn.fetch(
        "UPDATE faces SET library_id = $2, owner_id = $3, person_id = NULL, assigned_by = 'none',"
        " rejected_person_ids = '{}', cluster_state = 'pending', updated_at = now()"
        " WHERE id = ANY($1::uuid[]) RETURNING *",
        face_ids, destination["id"], destination["owner_id"])
    for face in moved_faces:
        await face_event(conn, face, "face_created")
    await conn.execute(
        "UPDATE assets SET library_id = $2, owner_id = $3, stack_id = NULL, updated_at = now()"
        " WHERE id = ANY($1::uuid[])", ids_, destination["id"], destination["owner_id"])
    # The embeddings follow their assets. A new seq, as a re-embedding gets: the destination's
    # index adds rows above its watermark, and the source's counts this one as gone.
    await conn.execute("UPDATE smart_search SET library_id = $2, seq = nextval('smart_search_seq_seq')"
                       " WHERE asset_id = ANY($1::uuid[])", ids_, destination["id"])
    for row in rows:
        old, new = store.derived_prefix(source_id, row["id"]), store.derived_prefix(destination["id"], row["id"])
        # Every row naming a file under the old derived folder (which goes after commit): the asset's
        # derived files and the renderings of its version chain.
        for table in ("asset_files", "asset_versions"):
            await conn.execute(
                f"UPDATE {table} SET storage_key = $3 || substr(storage_key, length($2) + 1)"
                " WHERE asset_id = $1 AND starts_with(storage_key, $2 || '/')", row["id"], old, new)
    await stacks.dissolve_if_too_small(conn, stack_ids)
    await people.refresh_people(conn, people_left)
    # Each library's readers: gone from the source, new in the destination (with its metadata).
    await events.record_many(conn, entity_type=events.ASSET, event_type="asset_deleted",
                             rows=[(r["id"], source_id, r["owner_id"]) for r in rows])
    arrived = [(r["id"], destination["id"], destination["owner_id"]) for r in rows]
    await events.record_many(conn, entity_type=events.ASSET, event_type="asset_created", rows=arrived)
    # Its EXIF too: a reader of the destination has never seen it.
    await events.record_many(conn, entity_type="metadata", event_type="metadata_updated", rows=arrived)
    await asset_metadata.announce(conn, ids_, destination["id"], destination["owner_id"])


# --- derived files ------------------------------------------------------------------------------


def _link_derived(store: BlobStore, rows: list[asyncpg.Record], destination_id: uuid.UUID) -> list[tuple[str, str]]:
    """A second name under the destination's prefix for every derived file; (old, new) keys made.
    A name left there by an earlier, interrupted move is replaced."""
    made: list[tuple[str, str]] = []
    for row in rows:
        old = store.derived_prefix(row["library_id"], row["id"])
        new = store.derived_prefix(destination_id, row["id"])
        base = store.path(old)
        if not base.is_dir():
            continue
        for dirpath, _, files in os.walk(base):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), base).replace(os.sep, "/")
                target = store.path(f"{new}/{rel}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                os.link(os.path.join(dirpath, name), target)
                made.append((f"{old}/{rel}", f"{new}/{rel}"))
    return made


def _unlink(store: BlobStore, keys: list[str]) -> None:
    for key in keys:
        try:
            store.delete(key)
        except OSError:
            log.exception("could not remove %s after a failed move", key)


def _drop_old_trees(store: BlobStore, rows: list[asyncpg.Record]) -> None:
    for row in rows:
        try:
            store.delete_tree(store.derived_prefix(row["library_id"], row["id"]))
        except OSError:
            log.exception("could not remove the old derived files of moved asset %s", row["id"])
