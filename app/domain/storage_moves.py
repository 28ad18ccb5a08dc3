"""Moving originals to where Immich's storage template puts them, safely.

An original is uploaded to its id-named key (library/<library>/originals/...). Once its metadata
is known (the capture date), and for every asset when the migration job runs, it moves to
templated/<storage label or owner id>/<rendered template>.<ext>, with Immich's variables,
sanitising and `+1`, `+2`... suffixes for names already taken.

A move never leaves an asset without its file, nor a file nobody will clean up:
1. a journal row (storage_moves: old and new key) commits before the new file exists;
2. the new key is made (hard link, or copy -> fsync -> checksum check), never over a file;
3. the asset's storage_key switches in one UPDATE, only if it still names the old key;
4. whichever of the two files no asset names any more is removed, then the journal row.
A crash anywhere leaves the row; the recovery (at start-up, and before the next move of the
asset) repeats step 4, so the asset keeps the key its row names and the other file goes.
The whole move holds the asset's blob lock (blob_locks, here at session level), which
the reconciliation tries before touching an asset's files, so the two never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

import asyncpg

from app.db import engine as db
from app.domain import originals, system_config
from app.domain.blob_locks import blob_lock, lock_blobs
from app.domain.storage_template import (
    Subject, TemplateError, file_extension, file_stem, relative_path, sanitize, stored_extension)
from app.storage.blobstore import TEMPLATED, BlobStore

log = logging.getLogger(__name__)


async def settings() -> dict:
    """The storageTemplate section of the system config."""
    return (await system_config.current())["storageTemplate"]


# --- where an asset goes ---------------------------------------------------------------------------

def owner_folder(owner_id: uuid.UUID, storage_label: str | None) -> str:
    label = sanitize(storage_label or "")
    return f"{TEMPLATED}/{label or owner_id}"


async def _subject(asset: asyncpg.Record) -> tuple[Subject, str]:
    """The asset's render subject and its file name (a live photo's video takes its still's)."""
    still = await db.fetchrow("SELECT * FROM assets WHERE live_photo_video_id = $1 ORDER BY created_at LIMIT 1",
                              asset["id"])
    source = still or asset
    exif = await db.fetchrow("SELECT make, model, lens_model FROM asset_exif WHERE asset_id = $1", source["id"])
    album = await db.fetchrow(
        "SELECT al.name, min(a.taken_at) AS start, max(a.taken_at) AS end FROM albums al"
        " JOIN album_assets aa ON aa.album_id = al.id JOIN album_assets other ON other.album_id = al.id"
        " JOIN assets a ON a.id = other.asset_id"
        " WHERE aa.asset_id = $1 AND al.owner_id = $2 GROUP BY al.id ORDER BY al.created_at, al.id LIMIT 1",
        source["id"], source["owner_id"],
    )
    file_name = source["original_file_name"] or str(source["id"])
    if still is not None:  # the motion part is named after its still, with its own extension
        file_name = f"{file_stem(file_name)}.{file_extension(asset['storage_key'])}"
    subject = Subject(
        # As Immich: a live photo's video is rendered as its still (id and type included), so
        # both parts land side by side.
        asset_id=source["id"],
        media_type=source["media_type"],
        file_name=file_name,
        taken_at=source["taken_at"] or source["file_created_at"],
        album=album["name"] if album else None,
        album_start=album["start"] if album else None,
        album_end=album["end"] if album else None,
        make=exif["make"] if exif else None,
        model=exif["model"] if exif else None,
        lens_model=exif["lens_model"] if exif else None,
    )
    return subject, file_name


async def destination(asset: asyncpg.Record, template: str) -> tuple[str, str] | None:
    """(path without extension, extension) where the template puts the asset; None: stay."""
    ext = stored_extension(asset["storage_key"])
    subject, _ = await _subject(asset)
    try:
        path = relative_path(template, subject, ext)
    except TemplateError as exc:  # e.g. album date tokens used outside an album block
        log.warning("storage template does not render for asset %s: %s", asset["id"], exc)
        return None
    if path is None:
        log.warning("storage template leaves the owner's folder for asset %s; it stays", asset["id"])
        return None
    label = await db.fetchval("SELECT storage_label FROM users WHERE id = $1", asset["owner_id"])
    return f"{owner_folder(asset['owner_id'], label)}/{path}", ext


def _key(base: str, ext: str, n: int = 0) -> str:
    """The n-th candidate: base.ext, then Immich's collision suffixes base+1.ext, base+2.ext..."""
    return f"{base}{f'+{n}' if n else ''}{f'.{ext}' if ext else ''}"


def already_there(key: str, base: str, ext: str) -> bool:
    """The key is the rendered one, or it with a `+N` collision suffix."""
    return key == _key(base, ext) or re.fullmatch(re.escape(base) + r"\+\d+" + re.escape(_key("", ext)),
                                                   key) is not None


# Serialises choosing free keys (one advisory lock of the one-bigint form, apart from the others).
_CHOOSE_KEY_LOCK = 0x73746F726167  # "storag"


async def _free_key(conn: asyncpg.Connection, store: BlobStore, base: str, ext: str) -> str:
    """The first of base.ext, base+1.ext, ... that no asset, move or file holds. Under
    _CHOOSE_KEY_LOCK; each check is one statement, so a move completing concurrently (its key
    passing from the journal to the asset in one commit) is seen in one place or the other."""
    n = 0
    while True:
        key = _key(base, ext, n)
        taken = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM assets WHERE storage_key = $1 AND external_library_id IS NULL)"
            " OR EXISTS (SELECT 1 FROM storage_moves WHERE new_key = $1 OR old_key = $1)", key)
        if not taken and not await asyncio.to_thread(store.exists, key):
            return key
        n += 1


# --- moving ------------------------------------------------------------------------------------------

async def _settle(store: BlobStore, asset_id: uuid.UUID) -> None:
    """Finish or undo an asset's interrupted move (its blob lock held): remove whichever of the
    two files no asset names, then the journal row."""
    move = await db.fetchrow("SELECT old_key, new_key FROM storage_moves WHERE asset_id = $1", asset_id)
    if move is None:
        return
    for key in (move["new_key"], move["old_key"]):
        if not await db.fetchval("SELECT 1 FROM assets WHERE storage_key = $1 AND external_library_id IS NULL", key):
            await asyncio.to_thread(store.delete, key)
    await db.execute("DELETE FROM storage_moves WHERE asset_id = $1", asset_id)


async def move_asset(store: BlobStore, asset_id: uuid.UUID, config: dict) -> bool:
    """Move one original to where the template puts it. True if it moved."""
    if db.engine().current_transaction.get() is not None:
        # Each step must commit on its own (the journal row before the file exists).
        raise RuntimeError("a storage template move cannot run inside a transaction")
    lock = blob_lock(asset_id)
    async with db.session_connection() as holder:
        # At session level: the lock must outlive the several transactions of a move.
        if not await holder.fetchval("SELECT pg_try_advisory_lock($1, $2)", *lock):
            log.info("asset %s is busy (an upload or another move); not moved now", asset_id)
            return False
        try:
            await _settle(store, asset_id)
            asset = await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)
            # An external library's file stays where its owner keeps it: the template is for uploads.
            if asset is None or originals.is_external(asset):
                return False
            target = await destination(asset, config["template"])
            if target is None or already_there(asset["storage_key"], *target):
                return False
            old = asset["storage_key"]
            if not await asyncio.to_thread(store.exists, old):
                log.warning("asset %s: its original %s is missing; not moved", asset_id, old)
                return False
            async with db.transaction() as conn:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _CHOOSE_KEY_LOCK)
                new = await _free_key(conn, store, *target)
                await conn.execute("INSERT INTO storage_moves (asset_id, old_key, new_key) VALUES ($1, $2, $3)",
                                   asset_id, old, new)
            try:
                checksum = asset["checksum_sha256"] if config.get("hashVerificationEnabled", True) else None
                await asyncio.to_thread(store.place_copy, old, new, checksum)
                await db.execute("UPDATE assets SET storage_key = $2 WHERE id = $1 AND storage_key = $3",
                                 asset_id, new, old)
            finally:
                await _settle(store, asset_id)
            return await db.fetchval("SELECT storage_key = $2 FROM assets WHERE id = $1", asset_id, new) or False
        finally:
            await holder.execute("SELECT pg_advisory_unlock($1, $2)", *lock)


async def apply(store: BlobStore, asset_id: uuid.UUID, config: dict | None = None) -> bool:
    """After metadata extraction: put a new upload (and its live photo video) where the template
    says. A failure leaves the files where they are, for the migration job to retry."""
    moved = False
    try:
        config = config or await settings()
        if not config["enabled"]:
            return False
        moved = await move_asset(store, asset_id, config)
        video = await db.fetchval("SELECT live_photo_video_id FROM assets WHERE id = $1", asset_id)
        if video is not None:
            await move_asset(store, video, config)
    except Exception:
        log.exception("storage template: could not move asset %s; it stays where it is", asset_id)
    return moved


async def migrate_all(store: BlobStore, config: dict | None = None, batch: int = 500) -> int:
    """The storageTemplateMigration job: every asset to where the template puts it. The count moved."""
    config = config or await settings()
    if not config["enabled"]:
        log.info("storage template disabled; migration skipped")
        return 0
    await recover(store)
    moved, after = 0, uuid.UUID(int=0)
    while True:
        ids = [r["id"] for r in await db.fetch("SELECT id FROM assets WHERE id > $1 AND original_path IS NULL"
                                                " ORDER BY id LIMIT $2",
                                                after, batch)]
        if not ids:
            break
        for asset_id in ids:
            try:
                moved += await move_asset(store, asset_id, config)
            except Exception:
                log.exception("storage template: could not move asset %s; it stays where it is", asset_id)
        after = ids[-1]
    await asyncio.to_thread(store.remove_empty_dirs, TEMPLATED)
    log.info("storage template migration moved %d originals", moved)
    return moved


async def recover(store: BlobStore, batch: int = 1000) -> int:
    """Settle the moves a crash interrupted, then remove files under templated/ that no asset
    or move names (a purge's leftovers). Returns how many files and moves it cleaned.

    Why the sweep cannot take a live move's file: a move's journal row names both keys from
    before its new file exists until after the file it gives up is gone, and the asset names the
    key it keeps; so a file listed first and then found unnamed by the database is nobody's. A
    new move cannot take that key meanwhile: keys are chosen only where no file exists."""
    cleaned = 0
    for row in await db.fetch("SELECT asset_id FROM storage_moves"):
        async with db.transaction() as conn:
            if await lock_blobs(conn, row["asset_id"], wait=False):
                await _settle(store, row["asset_id"])
                cleaned += 1
    keys = await asyncio.to_thread(store.templated_keys)
    for start in range(0, len(keys), batch):
        chunk = keys[start:start + batch]
        named = {r["key"] for r in await db.fetch(
            "SELECT storage_key AS key FROM assets WHERE storage_key = ANY($1::text[]) AND external_library_id IS NULL"
            " UNION SELECT old_key FROM storage_moves WHERE old_key = ANY($1::text[])"
            " UNION SELECT new_key FROM storage_moves WHERE new_key = ANY($1::text[])", chunk)}
        for key in chunk:
            if key not in named:
                await asyncio.to_thread(store.delete, key)
                cleaned += 1
                log.info("removed %s: no asset names it", key)
    return cleaned
