"""An asset with what the pipeline learned about it (file metadata, derived files), read in batches.

Apart from app/domain/assets.py so that modules assets.py itself uses (albums, for its covers)
can read views without importing it back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from app.db import engine as db


@dataclass
class AssetView:
    """An asset row with what the pipeline learned about it."""

    row: asyncpg.Record
    exif: asyncpg.Record | None
    files: dict[str, asyncpg.Record]
    # The asset_versions row it shows instead of its uploaded original (None: the original).
    version: asyncpg.Record | None = None


async def views(rows: list[asyncpg.Record]) -> list[AssetView]:
    if not rows:
        return []
    asset_ids = [r["id"] for r in rows]
    exif = {
        r["asset_id"]: r
        for r in await db.fetch("SELECT * FROM asset_exif WHERE asset_id = ANY($1::uuid[])", asset_ids)
    }
    files: dict[uuid.UUID, dict[str, asyncpg.Record]] = {}
    for f in await db.fetch(
        "SELECT asset_id, kind, mime_type, width, height, size_bytes, checksum_sha1 FROM asset_files"
        " WHERE asset_id = ANY($1::uuid[]) AND kind <> 'sidecar'",
        asset_ids,
    ):
        files.setdefault(f["asset_id"], {})[f["kind"]] = f
    edited = [r["id"] for r in rows if r["current_version_id"] is not None]
    versions = {
        v["asset_id"]: v
        for v in await db.fetch(
            "SELECT v.* FROM asset_versions v JOIN assets a ON a.current_version_id = v.id"
            " WHERE a.id = ANY($1::uuid[])", edited)
    } if edited else {}
    return [AssetView(r, exif.get(r["id"]), files.get(r["id"], {}), versions.get(r["id"])) for r in rows]


async def view(row: asyncpg.Record) -> AssetView:
    return (await views([row]))[0]


async def rows_by_id(asset_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """Assets by id with no access check: for telling owners about their own changes only."""
    return await db.fetch("SELECT * FROM assets WHERE id = ANY($1::uuid[])", asset_ids)
