"""The first look at an external asset's content, before its metadata step: the file read once for
its checksums (which replace the scan's path checksums) and its type (the bytes decide, as for an
upload), and a rename recognised: the same content as an offline asset of the same library means
the file moved, so that asset takes the new path and keeps its id, albums and faces."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from app.db import engine as db
from app.domain import asset_removal, events, media_types
from app.domain.errors import Invalid

_READ = 1 << 20
_HEAD = 8192


@dataclass(frozen=True)
class Content:
    sha256: bytes
    sha1: bytes
    head: bytes


def read_content(path: str) -> Content:
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    head = b""
    with open(path, "rb") as f:
        while chunk := f.read(_READ):
            if not head:
                head = chunk[:_HEAD]
            sha256.update(chunk)
            sha1.update(chunk)
    return Content(sha256.digest(), sha1.digest(), head)


@dataclass(frozen=True)
class Settled:
    asset: Any | None  # the row to go on with; None: the step ends here
    message: str  # why it ended (failure), or what happened
    failed: bool = False


async def settle(asset: Any) -> Settled:
    """Hash, sniff and match an external asset whose checksums are still its path's."""
    try:
        content = await asyncio.to_thread(read_content, asset["original_path"])
    except OSError as exc:
        return Settled(None, f"cannot read {asset['original_path']}: {exc.strerror or exc}", failed=True)
    try:
        kind = media_types.classify(asset["original_file_name"], content.head)
    except Invalid as exc:
        return Settled(None, str(exc), failed=True)
    async with db.transaction() as conn:
        current = await conn.fetchrow("SELECT * FROM assets WHERE id = $1 FOR UPDATE", asset["id"])
        if current is None:
            return Settled(None, "asset no longer exists")
        # Only a file the scan has just found can be a moved one: an asset already processed (a
        # changed file, read again) keeps its identity whatever offline copy shares its content.
        fresh = not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM asset_files WHERE asset_id = $1)",
                                        current["id"])
        moved = None if not fresh else await conn.fetchrow(
            "SELECT * FROM assets WHERE external_library_id = $1 AND checksum_sha256 = $2 AND is_offline"
            " AND checksum_source = 'content' AND id <> $3 ORDER BY updated_at DESC LIMIT 1 FOR UPDATE",
            current["external_library_id"], content.sha256, current["id"],
        )
        if moved is not None:
            await _take_over(conn, moved, current, content)
            return Settled(None, f"renamed: asset {moved['id']} now has this file")
        row = await conn.fetchrow(
            "UPDATE assets SET checksum_sha256 = $2, checksum_sha1 = $3, checksum_source = 'content',"
            " media_type = $4, mime_type = $5, updated_at = now() WHERE id = $1 RETURNING *",
            current["id"], content.sha256, content.sha1, kind.media_type, kind.mime_type,
        )
        await events.record(conn, entity_type=events.ASSET, entity_id=row["id"], event_type="asset_updated",
                            library_id=row["library_id"], owner_id=row["owner_id"])
    return Settled(row, "content read")


async def _take_over(conn: Any, old: Any, new: Any, content: Content) -> None:
    """The offline asset `old` is the file now at `new`'s path: `new` (made by the scan a moment ago,
    with nothing attached yet) goes, `old` takes its path and comes back online; out of the trash
    only if the scan put it there (see library_scan._set_online)."""
    # As a permanent delete goes (album links, covers, people with their events); the asset was made
    # by the scan a moment ago, so normally there is nothing but the row.
    await asset_removal.hard_delete_rows(conn, [new])
    by_scan = await conn.fetchval(
        "SELECT coalesce(payload ->> 'offline' = 'true', false) FROM events WHERE entity_type = 'asset'"
        " AND entity_id = $1 AND event_type IN ('asset_trashed', 'asset_restored') ORDER BY id DESC LIMIT 1",
        old["id"],
    )
    await conn.execute(
        "UPDATE assets SET original_path = $2, original_file_name = $3, file_mtime_ns = $4, file_size_bytes = $5,"
        " sidecar_path = $6, checksum_sha1 = $7, checksum_source = 'content', is_offline = false,"
        " trashed_at = CASE WHEN $8 THEN NULL ELSE trashed_at END, device_asset_id = $9, updated_at = now()"
        " WHERE id = $1",
        old["id"], new["original_path"], new["original_file_name"], new["file_mtime_ns"], new["file_size_bytes"],
        new["sidecar_path"], content.sha1, bool(by_scan), new["device_asset_id"],
    )
    await events.record(conn, entity_type=events.ASSET, entity_id=old["id"],
                        event_type="asset_restored" if by_scan else "asset_updated",
                        library_id=old["library_id"], owner_id=old["owner_id"], payload={"offline": False})

