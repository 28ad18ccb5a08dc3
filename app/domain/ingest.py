"""Turning a received file into an asset: validate, dedupe, store, record."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.db import engine as db
from app.domain import access, effective, events, media_types, processing
from app.domain.blob_locks import lock_blobs
from app.domain.datetimes import as_utc_instant, split_wall_clock
from app.domain.errors import InsufficientStorage, Invalid
from app.storage.blobstore import BlobStore, StagedFile

log = logging.getLogger(__name__)

MAX_FILE_NAME = 1024


@dataclass
class Upload:
    staged: StagedFile
    filename: str
    device_asset_id: str
    device_id: str
    file_created_at: datetime
    file_modified_at: datetime
    library_id: uuid.UUID | None  # None: the caller's only library
    sidecar: StagedFile | None = None  # an XMP sidecar sent with the file
    is_favorite: bool = False
    visibility: str = "timeline"  # timeline | archive | hidden | locked
    live_photo_video_id: uuid.UUID | None = None  # the motion part of a live photo


async def _check_storage_caps(library_id: uuid.UUID, size: int) -> None:
    # The usage sums scan the owner's assets, so they run only when a cap is set.
    row = await db.fetchrow(
        """
        SELECT u.storage_limit_bytes AS user_limit, l.storage_limit_bytes AS library_limit,
               CASE WHEN u.storage_limit_bytes IS NOT NULL THEN
                   (SELECT coalesce(sum(file_size_bytes), 0)::bigint FROM assets WHERE owner_id = u.id) END AS user_used,
               CASE WHEN l.storage_limit_bytes IS NOT NULL THEN
                   (SELECT coalesce(sum(file_size_bytes), 0)::bigint FROM assets WHERE library_id = l.id) END AS library_used
        FROM libraries l JOIN users u ON u.id = l.owner_id WHERE l.id = $1
        """,
        library_id,
    )
    if row["user_limit"] is not None and row["user_used"] + size > row["user_limit"]:
        raise InsufficientStorage("User storage limit exceeded")
    if row["library_limit"] is not None and row["library_used"] + size > row["library_limit"]:
        raise InsufficientStorage("Library storage limit exceeded")


async def _existing(library_id: uuid.UUID, sha256: bytes) -> asyncpg.Record | None:
    # An upload duplicates uploads only: the same photo in an external library's folders is not one.
    return await db.fetchrow("SELECT * FROM assets WHERE library_id = $1 AND checksum_sha256 = $2"
                             " AND external_library_id IS NULL", library_id, sha256)


MAX_SIDECAR_BYTES = 4 << 20
VISIBILITIES = ("timeline", "archive", "hidden", "locked")


async def ingest(
    principal: access.Principal, store: BlobStore, upload: Upload, queue: processing.Queue | None = None
) -> tuple[asyncpg.Record, bool]:
    """Store an upload. Returns (asset row, created); a duplicate returns the existing asset.

    The staged file is consumed: moved into the store, or removed. A failure
    leaves neither a file nor a row behind.
    """
    staged = upload.staged
    committed_keys: list[str] = []
    try:
        if staged.size == 0:
            raise Invalid("File is empty", "asset_data")
        if upload.sidecar is not None and upload.sidecar.size > MAX_SIDECAR_BYTES:
            raise Invalid("The XMP sidecar is larger than 4 MiB", "sidecar_data")
        if len(upload.filename) > MAX_FILE_NAME:
            raise Invalid("File name is longer than 1024 characters", "asset_data")
        kind = media_types.classify(upload.filename, staged.head)
        if upload.visibility not in VISIBILITIES:
            raise Invalid(f"visibility must be one of {', '.join(VISIBILITIES)}", "visibility")
        library_id = await access.library_for(principal, upload.library_id, access.WRITE)
        if upload.live_photo_video_id is not None and not await db.fetchval(
            "SELECT 1 FROM assets WHERE id = $1 AND library_id = $2 AND media_type = 'video'",
            upload.live_photo_video_id, library_id,
        ):
            raise Invalid("livePhotoVideoId names no video in this library", "live_photo_video_id")
        # Caps first, even for a duplicate (as the reference service does).
        await _check_storage_caps(library_id, staged.size)

        existing = await _existing(library_id, staged.sha256)
        if existing is not None:
            return existing, False

        asset_id = uuid.uuid4()
        key = store.original_key(library_id, asset_id, kind.extension)
        sidecar_key = None
        wall, offset = split_wall_clock(upload.file_created_at)
        async with db.transaction() as conn:
            # The files move into place while this transaction holds the asset's blob lock,
            # and the lock goes with the commit (or rollback, or this process's death): see
            # reconcile_orphans for why a file without its row can then always be cleaned up.
            await lock_blobs(conn, asset_id, wait=True)
            await asyncio.to_thread(store.commit, staged, key)
            committed_keys.append(key)
            if upload.sidecar is not None and upload.sidecar.size:
                sidecar_key = f"{store.derived_prefix(library_id, asset_id)}/sidecar.xmp"
                await asyncio.to_thread(store.commit, upload.sidecar, sidecar_key)
                committed_keys.append(sidecar_key)
            # The asset is the library owner's whoever uploads it: a member spends the owner's storage
            # (the caps checked above), and leaving or losing an account never takes it away.
            row = await conn.fetchrow(
                """
                INSERT INTO assets (
                    id, library_id, owner_id, media_type, mime_type, original_file_name, storage_key,
                    file_size_bytes, checksum_sha256, checksum_sha1, device_asset_id, device_id,
                    file_created_at, file_created_offset_minutes, file_modified_at,
                    local_datetime, local_offset_minutes, captured_at, rating, visibility, live_photo_video_id)
                VALUES ($1, $2, (SELECT owner_id FROM libraries WHERE id = $2), $3, $4, $5, $6, $7, $8, $9, $10,
                        $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
                ON CONFLICT (library_id, checksum_sha256) WHERE external_library_id IS NULL DO NOTHING
                RETURNING *
                """,
                asset_id,
                library_id,
                kind.media_type,
                kind.mime_type,
                upload.filename,
                key,
                staged.size,
                staged.sha256,
                staged.sha1,
                upload.device_asset_id,
                upload.device_id,
                as_utc_instant(upload.file_created_at),
                offset,
                as_utc_instant(upload.file_modified_at),
                wall,
                offset,
                upload.file_created_at if offset is not None else None,
                effective.rating_for_favorite(upload.is_favorite),
                upload.visibility,
                upload.live_photo_video_id,
            )
            if row is not None:
                await events.record(
                    conn,
                    entity_type=events.ASSET,
                    entity_id=asset_id,
                    event_type="asset_created",
                    library_id=library_id,
                    owner_id=row["owner_id"],
                )
                if sidecar_key is not None:
                    await conn.execute(
                        "INSERT INTO asset_files (asset_id, kind, storage_key, mime_type, size_bytes)"
                        " VALUES ($1, 'sidecar', $2, 'application/xml', $3)",
                        asset_id,
                        sidecar_key,
                        upload.sidecar.size,
                    )
                first_task = await processing.start_pipeline(conn, row)
        if row is None:
            # A concurrent upload of the same bytes won the race: answer with its asset.
            for k in committed_keys:
                store.delete(k)
            committed_keys.clear()
            existing = await _existing(library_id, staged.sha256)
            return existing, False
        committed_keys.clear()
        await processing.enqueue_first_step(queue, row, first_task)
        return row, True
    except BaseException:
        if committed_keys:
            # Not deleted blindly: an error while committing (a lost connection) leaves it
            # unknown whether the row exists, and deleting the file of a committed row would
            # lose the upload. Decided under the blob lock, or left to the start-up reconciliation.
            await _discard_unless_committed(store, asset_id, committed_keys)
        raise
    finally:
        staged.discard()  # no-op once the file was moved into the store
        if upload.sidecar is not None:
            upload.sidecar.discard()


async def _discard_unless_committed(store: BlobStore, asset_id: uuid.UUID, keys: list[str]) -> None:
    try:
        async with db.transaction() as conn:
            await lock_blobs(conn, asset_id, wait=True)
            if await conn.fetchval("SELECT 1 FROM assets WHERE id = $1", asset_id):
                return
            for key in keys:
                store.delete(key)
    except Exception:
        log.warning("upload of asset %s failed; its files are left for the start-up reconciliation", asset_id)


async def reconcile_orphans(store: BlobStore, batch: int = 1000) -> int:
    """Remove originals, and derived folders (sidecars, variants), whose asset has no row.

    Such files are left by a crash between the rename into place and the commit of the
    upload's transaction, or between a purge's commit and its file deletion. Why this design
    rather than committing first and renaming after: a crash after such a commit would leave
    a row whose file is missing, an asset that answers 404 for its bytes and that a client's
    retry sees as a duplicate, a loss; an extra file is only waste, and this removes it.

    Why it is safe with other live processes sharing DATA_DIR and the database: an upload
    renames its files only while its transaction holds the asset's advisory lock, and keeps
    the lock until it commits or rolls back (Postgres releases it if the process dies). This
    function looks at a file only once it exists, so its rename has already happened; it then
    takes the same lock without waiting: if held, an upload is in flight and the file is left
    alone; if taken, that upload has ended, its commit (if any) is visible to the next statement
    (read committed), and the row check is final. A file whose row exists is never touched.
    """
    from app.domain import storage_moves

    # First: moves a crash interrupted end with one file, so the scan below sees no half-move.
    removed = await storage_moves.recover(store)
    candidates = await asyncio.to_thread(store.asset_blobs)
    for start in range(0, len(candidates), batch):
        chunk = candidates[start:start + batch]
        known = {r["id"] for r in await db.fetch(
            "SELECT id FROM assets WHERE id = ANY($1::uuid[])", list({c[0] for c in chunk}))}
        for asset_id, key, is_original in chunk:
            if asset_id in known:
                continue
            async with db.transaction() as conn:
                if not await lock_blobs(conn, asset_id, wait=False):
                    continue  # an upload of this asset is in flight
                if await conn.fetchval("SELECT 1 FROM assets WHERE id = $1", asset_id):
                    continue  # it committed after the first look
                if is_original:
                    await asyncio.to_thread(store.delete, key)
                else:
                    await asyncio.to_thread(store.delete_tree, key)
                removed += 1
                log.info("removed %s: no asset %s", key, asset_id)
    if removed:
        log.info("removed %d files and folders left without an asset", removed)
    return removed
