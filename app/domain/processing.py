"""The per-asset media pipeline: metadata, then variants. Each step is idempotent.

Job bodies live here so the arq worker, the reprocess command and tests run the
same code. Media work runs in threads; database writes and change events share a
transaction per step.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import asyncpg

from app import realtime
from app.db import engine as db
from app.domain import events, external_content, originals, system_config, tags, tasks
from app.domain.datetimes import join_wall_clock
from app.media import memory, vips_cache
from app.media.extract import Extracted, extract
from app.media.images import DEFAULT_VARIANTS, Encoding, UndecodableImage, VariantOptions, render_frame, render_image
from app.media.video import NoVideoStream, poster_frame
from app.storage.blobstore import BlobStore

log = logging.getLogger(__name__)

METADATA_JOB = "extract_metadata"
VARIANTS_JOB = "generate_variants"
# The payload key of the asset_updated event by which a new rendering (app/domain/asset_versions.py)
# names the variants task it starts; that task's end is announced as an edit ready.
RENDERING_TASK = "rendering_task"
_EXT = {"image/jpeg": ".jpeg", "image/webp": ".webp"}


class Queue(Protocol):
    async def enqueue(self, function: str, task_id: uuid.UUID, job_id: str) -> None: ...


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the machine or a service hiccuped. Not: the file itself is the problem."""
    import av

    if isinstance(exc, (UndecodableImage, NoVideoStream, FileNotFoundError, av.error.FFmpegError)):
        return False
    return isinstance(exc, (OSError, ConnectionError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError))


async def start_pipeline(conn: asyncpg.Connection, asset: asyncpg.Record) -> uuid.UUID:
    """Inside the upload's transaction: the first task row (its job is enqueued after commit)."""
    return await tasks.create(conn, asset, tasks.METADATA[asset["media_type"]])


async def enqueue_first_step(queue: Queue | None, asset: asyncpg.Record, task_id: uuid.UUID) -> None:
    if queue is None:
        return
    task_type = tasks.METADATA[asset["media_type"]]
    try:
        await queue.enqueue(METADATA_JOB, task_id, tasks.job_id(task_type, asset["id"]))
    except Exception:  # the stalled-task sweep enqueues it later
        log.exception("could not enqueue %s for asset %s", task_type, asset["id"])


class Subject(NamedTuple):
    """What a step reads of its asset before it starts, in one round trip."""

    asset: asyncpg.Record  # the asset's row (a.*)
    sidecar_key: str | None  # the stored XMP sidecar, if any
    read_at: datetime  # the database's clock before any file is read
    first_pass: bool  # no task of the following step yet: the step chains on (else it is a rerun)
    owner_detects_faces: bool  # the owner's face detection preference


def _successors() -> dict[str, str]:
    """Each step's following one on an asset's first pass through the pipeline."""
    from app.domain import recognition

    return {**{tasks.METADATA[kind]: tasks.VARIANTS[kind] for kind in tasks.METADATA},
            **{t: recognition.DETECTION_TASK for t in tasks.VARIANTS.values()}}


async def step_subject(task_id: uuid.UUID) -> Subject | None:
    """The task's asset and what its step needs to know first; None when either is gone. A step
    whose successor already has a task for the asset is a rerun (an administrator started its
    queue): it runs alone, as in Immich, instead of redoing the steps after it. Decided from the
    rows, so a rerun the sweep re-enqueues after a crash stays alone."""
    row = await db.fetchrow(
        """
        SELECT a.*, clock_timestamp() AS subject_read_at,
               (SELECT s.storage_key FROM asset_files s WHERE s.asset_id = a.id AND s.kind = 'sidecar')
                   AS subject_sidecar_key,
               NOT EXISTS (SELECT 1 FROM tasks n WHERE n.asset_id = a.id AND n.task_type = ($2::jsonb ->> t.task_type))
                   AS subject_first_pass,
               coalesce((SELECT u.face_detection_preference FROM users u WHERE u.id = a.owner_id), true)
                   AS subject_detects_faces
        FROM tasks t JOIN assets a ON a.id = t.asset_id WHERE t.id = $1
        """,
        task_id, json.dumps(_successors()),
    )
    if row is None:
        return None
    return Subject(row, row["subject_sidecar_key"], row["subject_read_at"], row["subject_first_pass"],
                   row["subject_detects_faces"])


async def _save_metadata(asset: asyncpg.Record, ex: Extracted, read_at: datetime) -> None:
    m = ex.meta
    original, digitized, modified = m.original, m.digitized, m.modified
    place = ex.place
    async with db.transaction() as conn:
        await conn.execute(
            """
            INSERT INTO asset_exif (
                asset_id, make, model, lens_model, f_number, focal_length, iso, exposure_time, exposure_bias,
                orientation, original_datetime, original_offset_minutes, digitized_datetime,
                digitized_offset_minutes, modified_datetime, modified_offset_minutes, timezone, latitude,
                longitude, altitude, city, state, country, country_code, description, projection_type,
                fps, live_photo_cid, auto_stack_id, raw_width, raw_height, video_codec, date_source)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                    $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)
            ON CONFLICT (asset_id) DO UPDATE SET
                make = EXCLUDED.make, model = EXCLUDED.model, lens_model = EXCLUDED.lens_model,
                f_number = EXCLUDED.f_number, focal_length = EXCLUDED.focal_length, iso = EXCLUDED.iso,
                exposure_time = EXCLUDED.exposure_time, exposure_bias = EXCLUDED.exposure_bias,
                orientation = EXCLUDED.orientation, original_datetime = EXCLUDED.original_datetime,
                original_offset_minutes = EXCLUDED.original_offset_minutes,
                digitized_datetime = EXCLUDED.digitized_datetime,
                digitized_offset_minutes = EXCLUDED.digitized_offset_minutes,
                modified_datetime = EXCLUDED.modified_datetime,
                modified_offset_minutes = EXCLUDED.modified_offset_minutes, timezone = EXCLUDED.timezone,
                latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude, altitude = EXCLUDED.altitude,
                city = EXCLUDED.city, state = EXCLUDED.state, country = EXCLUDED.country,
                country_code = EXCLUDED.country_code, description = EXCLUDED.description,
                projection_type = EXCLUDED.projection_type, fps = EXCLUDED.fps,
                live_photo_cid = EXCLUDED.live_photo_cid, auto_stack_id = EXCLUDED.auto_stack_id,
                raw_width = EXCLUDED.raw_width, raw_height = EXCLUDED.raw_height,
                video_codec = EXCLUDED.video_codec, date_source = EXCLUDED.date_source, updated_at = now()
            """,
            asset["id"], m.make, m.model, m.lens_model, m.f_number, m.focal_length, m.iso, m.exposure_time,
            m.exposure_bias, m.orientation,
            original.wall if original else None, ex.local_offset if original else None,
            digitized.wall if digitized else None, digitized.offset_minutes if digitized else None,
            modified.wall if modified else None, modified.offset_minutes if modified else None,
            ex.timezone, m.latitude, m.longitude, m.altitude,
            place.city if place else None, place.state if place else None,
            place.country if place else None, place.country_code if place else None,
            m.description, m.projection_type, m.fps, m.live_photo_cid, m.auto_stack_id,
            m.raw_width, m.raw_height, m.video_codec, original.source if original else None,
        )
        await tags.replace_from_file(conn, asset, m.tags or [], read_at)
        # The file's rating is kept on the asset only (file_rating), where the effective rating reads it.
        sets = [
            # The shown size is the current rendering's: an edited asset keeps its version's.
            "width = CASE WHEN current_version_id IS NULL THEN $2 ELSE width END",
            "height = CASE WHEN current_version_id IS NULL THEN $3 ELSE height END", "duration_ms = $4", "file_rating = $5", "updated_at = now()",
            # Searchable coordinates: the user's when set, else the file's.
            "latitude = coalesce(user_latitude, $6)", "longitude = coalesce(user_longitude, $7)",
        ]
        args: list[Any] = [asset["id"], ex.display_width, ex.display_height, m.duration_ms, m.rating,
                           m.latitude, m.longitude]
        # The file's capture time replaces the upload's file time, unless the user set one
        # (checked in SQL: the user may have set it while this job was reading the file).
        if ex.local_wall is not None:
            sets += [
                "local_datetime = CASE WHEN user_original_datetime IS NULL THEN $8 ELSE local_datetime END",
                "local_offset_minutes = CASE WHEN user_original_datetime IS NULL THEN $9 ELSE local_offset_minutes END",
                "captured_at = CASE WHEN user_original_datetime IS NULL THEN $10 ELSE captured_at END",
            ]
            captured = join_wall_clock(ex.local_wall, ex.local_offset) if ex.local_offset is not None else None
            args += [ex.local_wall, ex.local_offset, captured]
        await conn.execute(f"UPDATE assets SET {', '.join(sets)} WHERE id = $1", *args)
        for entity_type, event_type in ((events.ASSET, "asset_updated"), ("metadata", "metadata_updated")):
            await events.record(conn, entity_type=entity_type, entity_id=asset["id"], event_type=event_type,
                                library_id=asset["library_id"], owner_id=asset["owner_id"])


async def run_metadata(
    store: BlobStore, task_id: uuid.UUID, queue: Queue | None, attempt: int = 1, chain: bool | None = None
) -> str:
    """chain: whether the next step follows; by default, on the asset's first pass (step_subject)."""
    subject = await step_subject(task_id)
    if subject is None:
        return "asset no longer exists"
    asset, read_at = subject.asset, subject.read_at
    chain = subject.first_pass if chain is None else chain
    if await tasks.start(task_id, attempt) is None:
        return "not run: the task has ended, or a live worker runs it"
    if originals.is_external(asset) and asset["checksum_source"] == "path":
        # A file of an external library not read yet (new or changed): its content decides first.
        settled = await external_content.settle(asset)
        if settled.failed:
            await _fail(asset, task_id, settled.message)
            return "failed"
        if settled.asset is None:
            await tasks.finish(task_id, ok=True, result=settled.message)
            return settled.message
        asset = settled.asset
        # New or changed content: every step after this one runs again, even on a rerun, and none
        # may decode the file's former content from libvips' cache.
        chain = True
        vips_cache.forget_loaded_files()
    sidecar = None
    sidecar_file = _sidecar_to_read(store, asset, subject.sidecar_key)
    if sidecar_file is not None:
        try:
            sidecar = await asyncio.to_thread(sidecar_file.read_bytes)
        except OSError:  # an external sidecar that vanished meanwhile: read without it
            sidecar = None
    override = None
    if asset["user_latitude"] is not None:
        override = (asset["user_latitude"], asset["user_longitude"])
    failure = None
    try:
        extracted = await asyncio.to_thread(
            extract, originals.original_file(store, asset), asset["mime_type"], asset["media_type"], sidecar, override
        )
    except Exception as exc:
        if is_transient(exc):
            raise
        failure = f"cannot read metadata: {exc}"
        extracted = None
    # The result, the task's end and the next step's task commit together: a crash
    # can never leave a finished step whose successor does not exist.
    async with db.transaction():
        if extracted is not None:
            await _save_metadata(asset, extracted, read_at)
            result = (f"capture time from {extracted.meta.original.source}" if extracted.meta.original
                      else "no capture time in the file")
            # Warnings (e.g. a refused sidecar) travel with the result.
            await tasks.finish(task_id, ok=True, result="; ".join([result, *extracted.warnings]))
        else:
            await _fail(asset, task_id, failure)
        # Pixels may still be readable when the tags were not: the chain goes on either way.
        next_task = await _next_task(asset) if chain else None
    if extracted is not None:
        # As Immich: the storage template places a new original once its capture date is known,
        # before the next step reads it.
        from app.domain import storage_moves

        await storage_moves.apply(store, asset["id"])
    if next_task is not None:
        await _enqueue(queue, VARIANTS_JOB, next_task, tasks.VARIANTS[asset["media_type"]], asset)
    return "ok"


def _sidecar_to_read(store: BlobStore, asset: asyncpg.Record, sidecar_key: str | None) -> Path | None:
    """The XMP sidecar the metadata step reads. An external asset's own sidecar is read in place and
    never written: tags set in the app go to the server's copy (tags.write_sidecars, seeded from the
    one in place), which is then the newer one and wins, so a re-read keeps those tags. A sidecar in
    place edited after that copy (another program) wins in turn."""
    stored = store.path(sidecar_key) if sidecar_key is not None else None
    if asset["sidecar_path"] is None:
        return stored
    in_place = Path(asset["sidecar_path"])
    if stored is None:
        return in_place
    try:
        return stored if stored.stat().st_mtime_ns >= in_place.stat().st_mtime_ns else in_place
    except OSError:  # either one gone: the other, if any
        return stored if stored.exists() else in_place


async def _next_task(asset: asyncpg.Record) -> uuid.UUID:
    async with db.connection() as conn:
        return await tasks.create(conn, asset, tasks.VARIANTS[asset["media_type"]])


async def _enqueue(queue: Queue | None, function: str, task_id: uuid.UUID, task_type: str,
                   asset: asyncpg.Record) -> None:
    """After the commit that created the task. If this fails, the task is pending in the
    database and the stalled-task sweep enqueues it."""
    if queue is None:
        return
    try:
        await queue.enqueue(function, task_id, tasks.job_id(task_type, asset["id"]))
    except Exception:
        log.warning("could not enqueue %s for asset %s; the sweep will", task_type, asset["id"], exc_info=True)


async def _fail(asset: asyncpg.Record, task_id: uuid.UUID, message: str) -> None:
    log.warning("asset %s: %s", asset["id"], message)
    async with db.transaction():
        await db.execute("UPDATE assets SET processing_error = $2 WHERE id = $1", asset["id"], message[:2000])
        await tasks.finish(task_id, ok=False, error=message[:2000])


def variant_options(image: dict[str, Any]) -> VariantOptions:
    """The renditions the system config's `image` section asks for."""
    def encoding(section: dict[str, Any]) -> Encoding:
        return Encoding(section["format"], section["quality"], section.get("progressive", False))

    return VariantOptions(thumbnail_side=image["thumbnail"]["size"], thumbnail=encoding(image["thumbnail"]),
                          preview_side=image["preview"]["size"], preview=encoding(image["preview"]),
                          fullsize=encoding(image["fullsize"]))


# Pictures up to this size (known from the metadata step) skip the heap trim after rendering: it cost
# more CPU than the rendering of a 2 MP photo, and their buffers, mapped apart (memory.limit_arenas),
# are already given back.
TRIM_AFTER_PIXELS = 8_000_000


def _render(asset: asyncpg.Record, path, mime: str, options: VariantOptions = DEFAULT_VARIANTS) -> Any:
    try:
        if asset["media_type"] == "video":
            return render_frame(poster_frame(path, options.decode_side), options)
        return render_image(path, mime, options)
    finally:
        # Size unknown (no metadata yet, or a caller passing only the kind): trimmed, as a large one.
        pixels = (asset.get("width") or 0) * (asset.get("height") or 0)
        if asset["media_type"] == "video" or not pixels or pixels > TRIM_AFTER_PIXELS:
            memory.release()


async def _rendering_source(asset: asyncpg.Record) -> tuple[str, str]:
    """The file the variants show: the current rendering (app/domain/asset_versions.py), not
    necessarily the upload."""
    if asset["current_version_id"] is not None:
        version = await db.fetchrow("SELECT storage_key, mime_type FROM asset_versions WHERE id = $1",
                                    asset["current_version_id"])
        if version is not None:
            return version["storage_key"], version["mime_type"]
    return asset["storage_key"], asset["mime_type"]


def _source_path(store: BlobStore, asset: asyncpg.Record, key: str):
    """The rendering's file: the original (in place for an external asset) or a stored version."""
    return originals.original_file(store, asset) if key == asset["storage_key"] else store.path(key)


async def _superseded(asset_id: uuid.UUID, source: tuple[str, str]) -> bool:
    now = await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)
    return now is None or await _rendering_source(now) != source


async def run_variants(store: BlobStore, task_id: uuid.UUID, attempt: int = 1, queue: Queue | None = None,
                       chain: bool | None = None, settings: Any = None) -> str:
    """chain: whether the next steps follow; by default, on the asset's first pass (step_subject).
    settings (the app's, for its model folder): when given, a following step that cannot run (its
    feature off, its model missing) has its task recorded as skipped here rather than run for that."""
    subject = await step_subject(task_id)
    if subject is None:
        return "asset no longer exists"
    asset = subject.asset
    chain = subject.first_pass if chain is None else chain
    if await tasks.start(task_id, attempt) is None:
        return "not run: the task has ended, or a live worker runs it"
    source = None
    try:
        # Read per run, so a config change applies from the next rendition on, without a restart.
        options = variant_options((await system_config.current())["image"])
        source = source_key, source_mime = await _rendering_source(asset)
        if originals.is_external(asset):
            vips_cache.forget_loaded_files()  # the file may have changed in place since this process read it
        rendered = await asyncio.to_thread(_render, asset, _source_path(store, asset, source_key), source_mime,
                                           options)
    except Exception as exc:
        if (source is not None and not _source_path(store, asset, source[0]).exists()
                and await _superseded(asset["id"], source)):
            # The rendering changed while this run read it (its file is gone): the change's own
            # task renders the new one.
            await tasks.finish(task_id, ok=True, result="superseded by a newer rendering")
            return "superseded"
        if is_transient(exc):
            raise
        await _fail(asset, task_id, str(exc) if isinstance(exc, (UndecodableImage, NoVideoStream))
                    else f"cannot decode: {exc}")
        return "failed"

    detection_skip = encoding_skip = None
    if chain and settings is not None:  # decided before the transaction: a first call may load a model
        from app.domain import recognition, smart_search

        try:
            detection_skip = await recognition.detection_skip(settings, subject.owner_detects_faces)
            encoding_skip = await smart_search.encoding_skip(settings)
        except Exception:  # a model that fails to load: the steps' own jobs meet it, and record it
            log.warning("could not tell whether faces and CLIP run for asset %s", asset["id"], exc_info=True)
            detection_skip = encoding_skip = None
    prefix = store.derived_prefix(asset["library_id"], asset["id"])
    written = []
    for rendition in rendered.renditions:
        key = f"{prefix}/{rendition.kind}{_EXT[rendition.mime_type]}"
        await asyncio.to_thread(store.put_derived, key, rendition.data)
        written.append((rendition, key))
    async with db.transaction() as conn:
        exists = await conn.fetchval("SELECT 1 FROM assets WHERE id = $1 FOR UPDATE", asset["id"])
        if not exists:  # deleted while we rendered: leave nothing behind
            store.delete_tree(prefix)
            return "asset no longer exists"
        # Read once the lock is held (a statement that waits for it keeps its older snapshot): the
        # variants' files as another run may just have left them, and whether a new rendering
        # (asset_versions) started this task, by its event, older than this transaction's own.
        locked = await conn.fetchrow(
            "SELECT array(SELECT storage_key FROM asset_files WHERE asset_id = $1 AND kind <> 'sidecar') AS keys,"
            " EXISTS (SELECT 1 FROM events WHERE entity_id = $1 AND event_type = 'asset_updated'"
            " AND payload ->> $2 = $3) AS edited", asset["id"], RENDERING_TASK, str(task_id))
        # Files of renditions now written under another name (the config changed their format) or
        # no longer made: removed once the rows stop naming them.
        replaced = set(locked["keys"]) - {key for _, key in written}
        await conn.execute(
            """
            WITH dropped AS (DELETE FROM asset_files WHERE asset_id = $1 AND kind <> 'sidecar'
                             AND NOT kind = ANY($2::text[]))
            INSERT INTO asset_files (asset_id, kind, storage_key, mime_type, width, height, size_bytes, checksum_sha1)
            SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::bigint[],
                                       $8::bytea[]) AS u
            ON CONFLICT (asset_id, kind) DO UPDATE SET storage_key = EXCLUDED.storage_key,
                mime_type = EXCLUDED.mime_type, width = EXCLUDED.width, height = EXCLUDED.height,
                size_bytes = EXCLUDED.size_bytes, checksum_sha1 = EXCLUDED.checksum_sha1, created_at = now()
            """,
            asset["id"], [r.kind for r, _ in written], [key for _, key in written],
            [r.mime_type for r, _ in written], [r.width for r, _ in written], [r.height for r, _ in written],
            [len(r.data) for r, _ in written], [hashlib.sha1(r.data).digest() for r, _ in written],
        )
        await conn.execute(
            """
            UPDATE assets SET thumbhash = $2, processing_error = NULL, updated_at = now(),
                   width = coalesce(width, $3), height = coalesce(height, $4)
            WHERE id = $1
            """,
            asset["id"], rendered.thumbhash, rendered.width, rendered.height,
        )
        await events.record(conn, entity_type=events.ASSET, entity_id=asset["id"], event_type="asset_updated",
                            library_id=asset["library_id"], owner_id=asset["owner_id"])
        # The next step's task and this one's end commit with the files' rows: a crash leaves
        # either all (the chain goes on) or none (this task is run again, rewriting the same keys).
        detection = encoding = None
        if chain:
            from app.domain import recognition, smart_search

            detection = await recognition.create_detection(conn, asset, detection_skip)
            encoding = await smart_search.create_encoding(conn, asset, encoding_skip)
        # Warnings (a thumbhash that could not be made) travel with the result.
        await tasks.finish(task_id, ok=True,
                           result="; ".join([", ".join(r.kind for r, _ in written), *rendered.warnings]))
    for key in replaced:
        store.delete(key)
    # Immich tells an edit's end apart from an upload's: AssetEditReadyV2 vs AssetUploadReadyV2.
    realtime.publish({"kind": "edit_ready" if locked["edited"] else "upload_ready", "asset_id": str(asset["id"]),
                      "owner_id": str(asset["owner_id"]),
                      "library_id": str(asset["library_id"])})
    if detection is not None:
        from app.domain import recognition

        await _enqueue(queue, recognition.DETECT_JOB, detection, recognition.DETECTION_TASK, asset)
    if encoding is not None:
        from app.domain import smart_search

        await _enqueue(queue, smart_search.ENCODE_JOB, encoding, smart_search.ENCODE_TASK, asset)
    return "ok"


async def enqueue_variants(queue: Queue | None, asset: asyncpg.Record, task_id: uuid.UUID) -> None:
    """After the commit that created a variants task outside the upload chain (a new rendering)."""
    await _enqueue(queue, VARIANTS_JOB, task_id, tasks.VARIANTS[asset["media_type"]], asset)


async def new_task(asset: asyncpg.Record, step: str) -> uuid.UUID:
    """A task row for running one step directly (the reprocess command)."""
    from app.domain import recognition

    if step == "faces":
        task_type = recognition.DETECTION_TASK
    elif step == "smart_search":
        from app.domain import smart_search

        task_type = smart_search.ENCODE_TASK
    else:
        task_type = (tasks.METADATA if step == "metadata" else tasks.VARIANTS)[asset["media_type"]]
    async with db.transaction() as conn:
        return await tasks.create(conn, asset, task_type)
