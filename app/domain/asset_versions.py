"""An asset's renderings: the uploaded original and the versions above it, and Immich's edits.

One concept under both contracts:
- The chain: position 0 is the uploaded original (the assets row: its file, checksums, and
  `original_version_id` as the version id); rows of `asset_versions` are the renderings above it.
  The current rendering is `assets.current_version_id` (NULL: the original); it is always the top
  of the chain, because every operation that makes an older version current deletes the later ones.
- Native clients append, replace, revert and delete whole renderings (bytes they rendered).
- Immich's edits (crop, rotate, mirror) are a rendering the server makes from the original and the
  edit list: a version of kind `external:immich` whose params hold the list. PUT renders the
  original anew (appended above the original, or replacing the current version), DELETE removes
  it; the original's bytes never change.
- Whatever is current is what every reader shows: width and height on the assets row (so sync and
  both APIs agree), the native `original` URL, mime type and size, and the variants, which the
  thumbnail pipeline renders from the current rendering's file (processing._rendering_source).
- The asset's own checksums stay the uploaded file's: they identify the upload (deduplication,
  the Immich app's backup matching); each version carries its own checksums.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from app.db import engine as db
from app.domain import access, events, originals, processing, tasks
from app.domain.errors import BadRequest, Conflict, Invalid, NotFound
from app.media import edits as edit_media
from app.media.images import UndecodableImage
from app.storage.blobstore import BlobStore, StagedFile

ORIGINAL = "original"
IMMICH_KIND = "external:immich"  # rendered by this server from an Immich client's edit list
EDIT_ENTITY = "asset_edit"  # the change log's entity type for one of those edits (by its id)
_KIND = re.compile(r"^(edit|external:[A-Za-z0-9._-]{1,64})$")
MAX_PARAMS_BYTES = 64 * 1024
MAX_VERSION_BYTES = 100 * 1024 * 1024
_EXT = {"image/jpeg": ".jpg", "image/png": ".png"}
_CONCRETE_DECLARED = {"image/jpeg", "image/jpg", "image/png"}


@dataclass
class Version:
    id: uuid.UUID
    position: int
    kind: str
    params: dict[str, Any] | None
    mime_type: str
    width: int
    height: int
    size_bytes: int
    checksum_sha256: bytes | None
    checksum_sha1: bytes | None
    storage_key: str
    created_at: datetime
    original_path: str | None = None  # position 0 of an external asset: its file in place, read-only


def file_path(store: BlobStore, version: Version) -> Path:
    """Where a version's bytes are: position 0 of an external asset is its file in its folder."""
    return originals.original_file(store, {"original_path": version.original_path, "storage_key": version.storage_key})


def _from_row(row: asyncpg.Record) -> Version:
    params = row["params"]
    return Version(row["id"], row["position"], row["kind"], json.loads(params) if isinstance(params, str) else params,
                   row["mime_type"], row["width"], row["height"], row["size_bytes"], row["checksum_sha256"],
                   row["checksum_sha1"], row["storage_key"], row["created_at"])


def _original_size(asset: asyncpg.Record, exif: asyncpg.Record | None) -> tuple[int, int]:
    """The upload's display size: the row's while it is current, else from its stored size and orientation."""
    if asset["current_version_id"] is None:
        return asset["width"] or 0, asset["height"] or 0
    if exif is None or not exif["raw_width"] or not exif["raw_height"]:
        return 0, 0
    turned = exif["orientation"] in (5, 6, 7, 8)
    return (exif["raw_height"], exif["raw_width"]) if turned else (exif["raw_width"], exif["raw_height"])


def _original(asset: asyncpg.Record, exif: asyncpg.Record | None) -> Version:
    width, height = _original_size(asset, exif)
    return Version(asset["original_version_id"], 0, ORIGINAL, None, asset["mime_type"], width, height,
                   asset["file_size_bytes"], asset["checksum_sha256"], asset["checksum_sha1"], asset["storage_key"],
                   asset["created_at"], asset.get("original_path"))


async def _derived(asset_id: uuid.UUID) -> list[Version]:
    rows = await db.fetch("SELECT * FROM asset_versions WHERE asset_id = $1 ORDER BY position", asset_id)
    return [_from_row(r) for r in rows]


async def chain(asset: asyncpg.Record) -> list[Version]:
    exif = await db.fetchrow("SELECT raw_width, raw_height, orientation FROM asset_exif WHERE asset_id = $1",
                             asset["id"])
    return [_original(asset, exif), *await _derived(asset["id"])]


async def current_versions(asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, Version]:
    """The current derived version of each asset that has one (assets showing their original are absent)."""
    rows = await db.fetch(
        "SELECT v.* FROM asset_versions v JOIN assets a ON a.current_version_id = v.id"
        " WHERE a.id = ANY($1::uuid[])", asset_ids)
    return {r["asset_id"]: _from_row(r) for r in rows}


async def current_file(asset: asyncpg.Record) -> Version:
    """The bytes the asset shows now (the native `original` URL, Immich's `edited=true` original)."""
    if asset["current_version_id"] is None:
        return _original(asset, None)
    row = await db.fetchrow("SELECT * FROM asset_versions WHERE id = $1", asset["current_version_id"])
    return _from_row(row) if row is not None else _original(asset, None)


async def version_file(asset_id: uuid.UUID, version_id: uuid.UUID) -> Version | None:
    """One retained version's bytes, with no access check: for signed URLs only."""
    asset = await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)
    if asset is None:
        return None
    if version_id == asset["original_version_id"]:
        return _original(asset, None)
    row = await db.fetchrow("SELECT * FROM asset_versions WHERE id = $1 AND asset_id = $2", version_id, asset_id)
    return None if row is None else _from_row(row)


async def list_versions(principal: access.Principal, asset_id: uuid.UUID) -> list[Version]:
    asset = await access.load_asset(principal, asset_id, access.READ)
    return await chain(asset)


# --- changing the chain ------------------------------------------------------------------------------


@dataclass
class NewRendering:
    """A rendering to store: a staged file (hashed while received) and what describes it."""

    staged: StagedFile
    kind: str
    params: dict[str, Any]
    declared_mime: str | None = None


def parse_params(text: str) -> dict[str, Any]:
    if len(text.encode()) > MAX_PARAMS_BYTES:
        raise Invalid(f"params is larger than {MAX_PARAMS_BYTES} bytes", "params")
    try:
        value = json.loads(text)
    except ValueError:
        raise Invalid("params is not valid JSON", "params") from None
    if not isinstance(value, dict):
        raise Invalid("params must be a JSON object", "params")
    return value


def check_kind(kind: str) -> str:
    if kind == ORIGINAL:
        raise Invalid("kind 'original' is reserved for the uploaded version", "kind")
    if kind == IMMICH_KIND:  # its params are this server's edit list, read back for Immich clients
        raise Invalid(f"kind '{IMMICH_KIND}' is reserved for edits made through the Immich API", "kind")
    if not _KIND.match(kind):
        raise Invalid("kind must be 'edit' or 'external:<service>'", "kind")
    return kind


def _probe(new: NewRendering) -> tuple[str, int, int]:
    if new.staged.size > MAX_VERSION_BYTES:
        raise Invalid("a version may be at most 100 MiB", "file")
    mime = edit_media.sniff(new.staged.head)
    if mime is None:
        raise Invalid("a version must be a JPEG or PNG image", "file")
    declared = (new.declared_mime or "").split(";")[0].strip().lower()
    if declared in _CONCRETE_DECLARED and declared.replace("jpg", "jpeg") != mime:
        raise Invalid(f"the file is {mime}, not {declared}", "file")
    size = edit_media.display_size(new.staged.path)
    if size is None:
        raise Invalid("the image cannot be read", "file")
    return mime, *size


async def _load_for_change(principal: access.Principal, asset_id: uuid.UUID) -> asyncpg.Record:
    asset = await access.load_asset(principal, asset_id, access.WRITE, lock=True)
    if asset["media_type"] != "image":
        raise BadRequest("Only images have versions")
    return asset


async def _store(conn: asyncpg.Connection, store: BlobStore, asset: asyncpg.Record, position: int,
                 new: NewRendering, mime: str, width: int, height: int) -> Version:
    version_id = uuid.uuid4()
    key = f"{store.derived_prefix(asset['library_id'], asset['id'])}/versions/{version_id.hex}{_EXT[mime]}"
    await asyncio.to_thread(store.commit, new.staged, key)
    row = await conn.fetchrow(
        "INSERT INTO asset_versions (id, asset_id, position, kind, params, storage_key, mime_type, width, height,"
        " size_bytes, checksum_sha256, checksum_sha1) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12)"
        " RETURNING *",
        version_id, asset["id"], position, new.kind, json.dumps(new.params), key, mime, width, height,
        new.staged.size, new.staged.sha256, new.staged.sha1)
    return _from_row(row)


def _edit_events(asset: asyncpg.Record, versions: list[asyncpg.Record]) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
    """(edit id, library, owner) of the Immich edits these versions carry: an Immich client syncs
    each edit as its own row (AssetEditV1), so each comes and goes with its version."""
    out = []
    for v in versions:
        if v["kind"] == IMMICH_KIND:
            params = json.loads(v["params"]) if isinstance(v["params"], str) else v["params"]
            out += [(uuid.UUID(e["id"]), asset["library_id"], asset["owner_id"]) for e in params["edits"]]
    return out


async def _drop_above(conn: asyncpg.Connection, asset: asyncpg.Record, position: int) -> list[str]:
    """Deletes the versions above `position`; their files go once the transaction has committed."""
    rows = await conn.fetch(
        "DELETE FROM asset_versions WHERE asset_id = $1 AND position > $2 RETURNING storage_key, kind, params",
        asset["id"], position)
    await events.record_many(conn, entity_type=EDIT_ENTITY, event_type="asset_edit_deleted",
                             rows=_edit_events(asset, rows))
    return [r["storage_key"] for r in rows]


async def _make_current(conn: asyncpg.Connection, asset: asyncpg.Record, version: Version | None,
                        original_size: tuple[int, int] | None = None) -> uuid.UUID:
    """Points the asset at `version` (None: the original), records the change and starts the
    re-render of its variants; returns that task's id, to enqueue after commit."""
    width, height = (version.width, version.height) if version is not None else original_size or (None, None)
    await conn.execute(
        "UPDATE assets SET current_version_id = $2, width = $3, height = $4, thumbhash = NULL, updated_at = now()"
        " WHERE id = $1", asset["id"], None if version is None else version.id, width, height)
    task_id = await tasks.create(conn, asset, tasks.VARIANTS["image"])
    # The event names the re-render it starts: when that task's variants exist, the worker
    # announces an edit ready (Immich's AssetEditReadyV2), not an upload ready.
    await events.record(conn, entity_type=events.ASSET, entity_id=asset["id"], event_type="asset_updated",
                        library_id=asset["library_id"], owner_id=asset["owner_id"],
                        payload={processing.RENDERING_TASK: str(task_id)})
    if version is not None and version.kind == IMMICH_KIND:
        await events.record_many(conn, entity_type=EDIT_ENTITY, event_type="asset_edit_created", rows=_edit_events(
            asset, [{"kind": version.kind, "params": version.params}]))
    return task_id


async def _after_commit(store: BlobStore, queue: processing.Queue | None, asset: asyncpg.Record,
                        task_id: uuid.UUID | None, dropped: list[str]) -> None:
    for key in dropped:
        store.delete(key)
    if task_id is not None:
        await processing.enqueue_variants(queue, asset, task_id)


async def _original_display_size(store: BlobStore, asset: asyncpg.Record) -> tuple[int, int] | None:
    return await asyncio.to_thread(edit_media.original_display_size, originals.original_file(store, asset),
                                   asset["mime_type"])


async def append(principal: access.Principal, store: BlobStore, queue: processing.Queue | None,
                 asset_id: uuid.UUID, new: NewRendering) -> Version:
    """A rendering above the original; only while the original is current."""
    try:
        mime, width, height = await asyncio.to_thread(_probe, new)
        async with db.transaction() as conn:
            asset = await _load_for_change(principal, asset_id)
            if asset["current_version_id"] is not None:
                raise Conflict("The asset already has a derived version; replace it instead")
            version = await _store(conn, store, asset, 1, new, mime, width, height)
            task_id = await _make_current(conn, asset, version)
    finally:
        new.staged.discard()
    await _after_commit(store, queue, asset, task_id, [])
    return version


async def _require_current(asset: asyncpg.Record, version_id: uuid.UUID) -> None:
    if version_id == asset["original_version_id"]:
        raise Invalid("The original version cannot be replaced or deleted", "version_id")
    exists = await db.fetchval("SELECT 1 FROM asset_versions WHERE id = $1 AND asset_id = $2", version_id, asset["id"])
    if not exists:
        raise NotFound("Asset version not found", kind="asset_version", ids=(version_id,))
    if asset["current_version_id"] != version_id:
        raise Conflict("Only the current version can be changed; this one is buried under a later version")


async def replace(principal: access.Principal, store: BlobStore, queue: processing.Queue | None,
                  asset_id: uuid.UUID, version_id: uuid.UUID, new: NewRendering) -> Version:
    """A new rendering in place of the current derived version (same position, same parent)."""
    try:
        mime, width, height = await asyncio.to_thread(_probe, new)
        async with db.transaction() as conn:
            asset = await _load_for_change(principal, asset_id)
            await _require_current(asset, version_id)
            current = _from_row(await conn.fetchrow("SELECT * FROM asset_versions WHERE id = $1", version_id))
            if (current.checksum_sha256, current.kind, current.params) == (new.staged.sha256, new.kind, new.params):
                return current  # an exact duplicate stores nothing
            dropped = await _drop_above(conn, asset, current.position - 1)
            version = await _store(conn, store, asset, current.position, new, mime, width, height)
            task_id = await _make_current(conn, asset, version)
    finally:
        new.staged.discard()
    await _after_commit(store, queue, asset, task_id, dropped)
    return version


async def _back_to(conn: asyncpg.Connection, store: BlobStore, asset: asyncpg.Record,
                   position: int) -> tuple[uuid.UUID, list[str]]:
    """Makes the version at `position` current, deleting every later one."""
    dropped = await _drop_above(conn, asset, position)
    if position == 0:
        task_id = await _make_current(conn, asset, None, await _original_display_size(store, asset))
    else:
        row = await conn.fetchrow("SELECT * FROM asset_versions WHERE asset_id = $1 AND position = $2",
                                  asset["id"], position)
        task_id = await _make_current(conn, asset, _from_row(row))
    return task_id, dropped


async def revert(principal: access.Principal, store: BlobStore, queue: processing.Queue | None,
                 asset_id: uuid.UUID, version_id: uuid.UUID) -> uuid.UUID:
    """Makes a retained version current, deleting all later ones; the current one is a no-op."""
    async with db.transaction() as conn:
        asset = await _load_for_change(principal, asset_id)
        if version_id == asset["original_version_id"]:
            position = 0
        else:
            position = await conn.fetchval("SELECT position FROM asset_versions WHERE id = $1 AND asset_id = $2",
                                           version_id, asset["id"])
            if position is None:
                raise NotFound("Asset version not found", kind="asset_version", ids=(version_id,))
        current = asset["current_version_id"] or asset["original_version_id"]
        task_id, dropped = (None, []) if current == version_id else await _back_to(conn, store, asset, position)
    await _after_commit(store, queue, asset, task_id, dropped)
    return asset["id"]


async def delete(principal: access.Principal, store: BlobStore, queue: processing.Queue | None,
                 asset_id: uuid.UUID, version_id: uuid.UUID) -> uuid.UUID:
    """Deletes the current derived version; its predecessor becomes current."""
    async with db.transaction() as conn:
        asset = await _load_for_change(principal, asset_id)
        await _require_current(asset, version_id)
        position = await conn.fetchval("SELECT position FROM asset_versions WHERE id = $1", version_id)
        task_id, dropped = await _back_to(conn, store, asset, position - 1)
    await _after_commit(store, queue, asset, task_id, dropped)
    return asset["id"]


# --- Immich's edits: a server-rendered version --------------------------------------------------------


async def edits(principal: access.Principal, asset_id: uuid.UUID) -> list[dict[str, Any]]:
    """The edit list of the current rendering, when it is an Immich edit; [] otherwise."""
    asset = await access.load_asset(principal, asset_id, access.READ)
    current = await current_file(asset)
    return list(current.params["edits"]) if current.kind == IMMICH_KIND else []


def _checked_edits(items: list[dict[str, Any]], width: int, height: int) -> list[dict[str, Any]]:
    """Immich's rules: the crop comes first and stays inside the picture; turns are quarter turns."""
    if not width or not height:
        raise BadRequest("Asset dimensions are not available for editing")
    actions = [item["action"] for item in items]
    if "crop" in actions:
        if actions[0] != "crop":
            raise BadRequest("Crop action must be the first edit action")
        crop = items[0]["parameters"]
        if crop["x"] + crop["width"] > width or crop["y"] + crop["height"] > height:
            raise BadRequest("Crop parameters are out of bounds")
    for item in items:
        if item["action"] == "rotate" and item["parameters"]["angle"] % 90 != 0:
            raise BadRequest("Rotation angle must be a multiple of 90")
    return [{"id": str(uuid.uuid4()), "action": item["action"], "parameters": item["parameters"]} for item in items]


async def set_edits(principal: access.Principal, store: BlobStore, queue: processing.Queue | None,
                    asset_id: uuid.UUID, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Renders the original with `items` applied and makes that the current rendering."""
    asset = await access.load_asset(principal, asset_id, access.WRITE)
    if asset["media_type"] != "image":
        raise BadRequest("Only images can be edited")
    if asset["live_photo_video_id"] is not None:
        raise BadRequest("Editing live photos is not supported")
    if asset["mime_type"] in ("image/gif", "image/svg+xml"):
        raise BadRequest(f"Editing {asset['mime_type'].split('/')[1].split('+')[0].upper()} images is not supported")
    size = await _original_display_size(store, asset)
    checked = _checked_edits(items, *(size or (0, 0)))
    staged = store.stage()
    try:
        try:
            mime = await asyncio.to_thread(edit_media.render_edited, originals.original_file(store, asset),
                                           asset["mime_type"], checked, staged)
        except UndecodableImage as exc:  # a file the thumbnails could not read either
            raise BadRequest(f"The asset cannot be edited: {exc}") from None
        new = NewRendering(staged, IMMICH_KIND, {"edits": checked}, mime)
        mime, width, height = await asyncio.to_thread(_probe, new)
        async with db.transaction() as conn:
            asset = await _load_for_change(principal, asset_id)
            position = await conn.fetchval("SELECT max(position) FROM asset_versions WHERE asset_id = $1",
                                           asset["id"])
            # Above the original, or in place of the current rendering (its parent is kept).
            position = 1 if position is None else position
            dropped = await _drop_above(conn, asset, position - 1)
            version = await _store(conn, store, asset, position, new, mime, width, height)
            task_id = await _make_current(conn, asset, version)
    finally:
        staged.discard()
    await _after_commit(store, queue, asset, task_id, dropped)
    return checked


async def remove_edits(principal: access.Principal, store: BlobStore, queue: processing.Queue | None,
                       asset_id: uuid.UUID) -> None:
    """Back to the rendering below the Immich edit (the original, unless a native version sits under it)."""
    async with db.transaction() as conn:
        asset = await _load_for_change(principal, asset_id)
        current = await current_file(asset)
        task_id, dropped = None, []
        if current.kind == IMMICH_KIND:
            task_id, dropped = await _back_to(conn, store, asset, current.position - 1)
    await _after_commit(store, queue, asset, task_id, dropped)


async def edit_rows(asset_id: uuid.UUID) -> list[dict[str, Any]]:
    """The Immich edits of the asset's current rendering, as the sync stream's AssetEditV1 rows
    (id, asset_id, action, parameters, sequence); [] when it has none. For live notices, which
    reach only those the asset's events reach, so no access check here."""
    row = await db.fetchrow("SELECT v.kind, v.params FROM assets a JOIN asset_versions v ON v.id = a.current_version_id"
                            " WHERE a.id = $1", asset_id)
    if row is None or row["kind"] != IMMICH_KIND:
        return []
    params = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
    return [{"id": item["id"], "asset_id": str(asset_id), "action": item["action"], "parameters": item["parameters"],
             "sequence": seq} for seq, item in enumerate(params["edits"])]
