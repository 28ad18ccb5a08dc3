"""Copying what the user attached to one asset onto another (Immich's asset copy, used when a
better version of a photo replaces an older one): album links, shared links, stack, favorite and
the XMP sidecar.

Each part is its own change, made by the module that owns it, with its own events; like Immich's,
a copy is not one transaction, and a part that fails leaves the parts before it done. Albums and
stacks belong to a library here, so album links and the stack are copied only within what the
target's library allows: an album of another library keeps its links as they are, and a stack is
shared or merged only when both assets are in the same library.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.db import engine as db
from app.domain import access, albums, assets, effective, job_queues, shared_links, stacks
from app.domain.blob_locks import lock_blobs
from app.domain.errors import BadRequest, Forbidden, NotFound
from app.storage.blobstore import BlobStore


@dataclass(frozen=True)
class CopyParts:
    albums: bool = True
    shared_links: bool = True
    stack: bool = True
    favorite: bool = True
    sidecar: bool = True


async def check_access(principal: access.Principal, source_id: uuid.UUID,
                       target_id: uuid.UUID) -> tuple[asyncpg.Record, asyncpg.Record]:
    """Both assets, if the caller may change both (404 or 403 otherwise)."""
    return (await access.load_asset(principal, source_id, access.WRITE),
            await access.load_asset(principal, target_id, access.WRITE))


async def copy(principal: access.Principal, store: BlobStore, job_queue, source_id: uuid.UUID,
               target_id: uuid.UUID, parts: CopyParts) -> None:
    source, target = await check_access(principal, source_id, target_id)
    if source["id"] == target["id"]:
        raise BadRequest("Source and target id must be distinct")
    if parts.albums:
        await _copy_albums(principal, source, target)
    if parts.shared_links:
        await _copy_shared_links(principal, source, target)
    if parts.stack:
        await _copy_stack(principal, source, target)
    if parts.favorite:
        await _copy_favorite(principal, source, target)
    if parts.sidecar:
        await _copy_sidecar(store, job_queue, source, target)


async def _copy_albums(principal, source, target) -> None:
    """The target joins every album of the source that may hold it (its library's albums, or shared
    albums the caller may add to); albums.add_assets decides, and skips the others."""
    album_ids = [r["album_id"] for r in await db.fetch(
        "SELECT album_id FROM album_assets WHERE asset_id = $1 ORDER BY album_id", source["id"])]
    for album_id in album_ids:
        try:
            await albums.add_assets(principal, album_id, [target["id"]])
        except Forbidden:
            continue  # an album the caller only views
        except NotFound:
            continue  # an album the caller cannot reach (someone else's share of the source)


async def _copy_shared_links(principal, source, target) -> None:
    """The caller's individual shared links that show the source show the target too."""
    link_ids = [r["id"] for r in await db.fetch(
        "SELECT sl.id FROM shared_links sl JOIN shared_link_assets sla ON sla.shared_link_id = sl.id"
        " WHERE sla.asset_id = $1 AND sl.owner_id = $2 AND sl.link_type = 'INDIVIDUAL' ORDER BY sl.id",
        source["id"], principal.user_id)]
    for link_id in link_ids:
        await shared_links.add_assets(principal, link_id, [target["id"]])


async def _copy_stack(principal, source, target) -> None:
    """The target joins the source's stack; when it is in a stack of its own, the source's stack
    merges into it (and dissolves). Only within one library, where stacks live."""
    if source["stack_id"] is None or source["library_id"] != target["library_id"]:
        return
    if target["stack_id"] is None:
        await stacks.add_assets(principal, source["stack_id"], [target["id"]])
    elif target["stack_id"] != source["stack_id"]:
        members = [r["id"] for r in await db.fetch("SELECT id FROM assets WHERE stack_id = $1", source["stack_id"])]
        await stacks.add_assets(principal, target["stack_id"], members)


async def _copy_favorite(principal, source, target) -> None:
    wanted = effective.is_favorite(source["effective_rating"])
    if effective.is_favorite(target["effective_rating"]) != wanted:
        await assets.update_asset(principal, target["id"],
                                  assets.AssetPatch(rating=effective.rating_for_favorite(wanted)))


async def _copy_sidecar(store: BlobStore, job_queue, source, target) -> None:
    """The source's sidecar becomes the target's (replacing any), and the target's metadata is read again."""
    row = await db.fetchrow("SELECT * FROM asset_files WHERE asset_id = $1 AND kind = 'sidecar'", source["id"])
    # An external asset's sidecar may be only the one beside its file (read, never written).
    in_place = source.get("sidecar_path") if row is None else None
    if row is None and in_place is None:
        return
    key = f"{store.derived_prefix(target['library_id'], target['id'])}/sidecar.xmp"
    staged = store.stage()
    try:
        try:
            from_path = store.path(row["storage_key"]) if row is not None else Path(in_place)
            await asyncio.to_thread(_fill, staged, from_path)
        except FileNotFoundError:  # an external sidecar deleted since the last scan: nothing to copy
            return
        async with db.transaction() as conn:
            await lock_blobs(conn, target["id"], wait=True)
            await asyncio.to_thread(store.commit, staged, key)
            await conn.execute(
                "INSERT INTO asset_files (asset_id, kind, storage_key, mime_type, size_bytes)"
                " VALUES ($1, 'sidecar', $2, $3, $4) ON CONFLICT (asset_id, kind) DO UPDATE"
                " SET storage_key = EXCLUDED.storage_key, size_bytes = EXCLUDED.size_bytes",
                target["id"], key, "application/xml" if row is None else row["mime_type"], staged.size,
            )
    finally:
        staged.discard()
    if job_queue is not None:
        await job_queues.run_for_assets(job_queue, "metadata", [target["id"]])


def _fill(staged, path: Path) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            staged.write(chunk)
    staged.finish()
