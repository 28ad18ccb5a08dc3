"""External libraries (Immich's /api/libraries): folders indexed in place into their owner's library.

Running them is an administrator's job, as in Immich: every operation here starts with
principal.require_admin(). A library's assets are ordinary rows of its owner's Immich library
(library_id); the scan that fills it is app.domain.library_scan. Deleting one answers at once
(deleted_at) and leaves the rows to the background job `library_delete` (remove_deleted).
"""

from __future__ import annotations

import os
import stat as file_modes
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from msgspec import UNSET, UnsetType

from app.db import engine as db
from app.domain import access, assets, events
from app.domain.errors import BadRequest, NotFound
from app.storage.blobstore import BlobStore

ENTITY = "external_library"
DEFAULT_NAME = "New External Library"
# Immich's defaults: NAS metadata folders and macOS resource forks are never photos.
DEFAULT_EXCLUSION_PATTERNS = ("**/@eaDir/**", "**/._*", "**/#recycle/**", "**/#snapshot/**")
SCAN_JOB = "library_scan"
DELETE_JOB = "library_delete"

# A library with what its responses show: assetCount counts its assets that are not trashed.
_SELECT = """
SELECT x.*, (SELECT count(*) FROM assets a WHERE a.external_library_id = x.id AND a.trashed_at IS NULL)
            AS asset_count
FROM external_libraries x
"""


def _missing(library_id: uuid.UUID) -> NotFound:
    return NotFound("Library not found", kind="external_library", ids=(library_id,))


@dataclass(frozen=True)
class LibraryChange:
    """A change to an external library: a field left UNSET stays as it is."""

    name: str | UnsetType = UNSET
    import_paths: list[str] | UnsetType = UNSET
    exclusion_patterns: list[str] | UnsetType = UNSET


async def create(principal: access.Principal, owner_id: uuid.UUID, *, name: str | None = None,
                 import_paths: list[str] | None = None, exclusion_patterns: list[str] | None = None) -> asyncpg.Record:
    """A new library of `owner_id`, its assets to go into the owner's Immich library. As in Immich,
    the paths are not checked here (validate and update do)."""
    principal.require_admin()
    library_id = await access.immich_library_of(owner_id)
    if library_id is None:
        raise BadRequest("User not found")
    patterns = list(DEFAULT_EXCLUSION_PATTERNS) if exclusion_patterns is None else exclusion_patterns
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "INSERT INTO external_libraries (owner_id, library_id, name, import_paths, exclusion_patterns)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING *, 0::bigint AS asset_count",
            owner_id, library_id, name or DEFAULT_NAME, import_paths or [], patterns,
        )
        await _record(conn, row, "external_library_created")
    return row


async def list_libraries(principal: access.Principal) -> list[asyncpg.Record]:
    """Every library not being deleted, of every owner (Immich lists them all to an administrator)."""
    principal.require_admin()
    return await db.fetch(_SELECT + " WHERE x.deleted_at IS NULL ORDER BY x.created_at, x.id")


async def get(principal: access.Principal, library_id: uuid.UUID) -> asyncpg.Record:
    principal.require_admin()
    row = await db.fetchrow(_SELECT + " WHERE x.id = $1 AND x.deleted_at IS NULL", library_id)
    if row is None:
        raise _missing(library_id)
    return row


async def update(principal: access.Principal, library_id: uuid.UUID, change: LibraryChange,
                 data_dir: Path) -> asyncpg.Record:
    """Rename or change the paths. New import paths must all be valid (Immich's 400 names the first
    problem); a scan picks up the change, as in Immich."""
    principal.require_admin()
    await get(principal, library_id)
    if change.import_paths is not UNSET:
        for path in change.import_paths:
            problem = import_path_problem(path, data_dir)
            if problem is not None:
                raise BadRequest(f"Invalid import path: {problem}")
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "UPDATE external_libraries SET name = coalesce($2, name), import_paths = coalesce($3, import_paths),"
            " exclusion_patterns = coalesce($4, exclusion_patterns), updated_at = now()"
            " WHERE id = $1 AND deleted_at IS NULL RETURNING *",
            library_id, _given(change.name), _given(change.import_paths), _given(change.exclusion_patterns),
        )
        if row is None:
            raise _missing(library_id)
        await _record(conn, row, "external_library_updated")
    return await get(principal, library_id)


def _given(value):
    return None if value is UNSET else value


def import_path_problem(path: str, data_dir: Path) -> str | None:
    """Why `path` cannot be an import path (Immich's messages, its checks in its order), or None."""
    if _inside(path, data_dir):
        return "Cannot use media upload folder for external libraries"
    if not os.path.isabs(path):
        return f"Import path must be absolute, try {os.path.abspath(path)}"
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return "Path does not exist (ENOENT)"
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        return str(error)
    if not file_modes.S_ISDIR(stat.st_mode):
        return "Not a directory"
    if not os.access(path, os.R_OK):
        return "Lacking read permission for folder"
    return None


def _inside(path: str, data_dir: Path) -> bool:
    """Whether the path is the media folder or under it: as written (Immich's check) or once its
    links are followed (a link into the store would expose it)."""
    roots = {os.path.abspath(data_dir), os.path.realpath(data_dir)}
    try:
        candidates = {os.path.abspath(path), os.path.realpath(path)}
    except ValueError:
        return False
    return any(c == r or c.startswith(r.rstrip("/") + "/") for c in candidates for r in roots)


def validate(principal: access.Principal, import_paths: list[str], data_dir: Path) -> list[tuple[str, str | None]]:
    """Each path with its problem (None when valid), in the order given. Any id validates: Immich
    does not look the library up."""
    principal.require_admin()
    return [(path, import_path_problem(path, data_dir)) for path in import_paths]


async def statistics(principal: access.Principal, library_id: uuid.UUID) -> asyncpg.Record:
    """Photos, videos, both, and the bytes of their originals, over the library's live assets."""
    await get(principal, library_id)
    return await db.fetchrow(
        "SELECT count(*) FILTER (WHERE media_type = 'image') AS photos,"
        " count(*) FILTER (WHERE media_type = 'video') AS videos, count(*) AS total,"
        " coalesce(sum(file_size_bytes), 0)::bigint AS usage"
        " FROM assets WHERE external_library_id = $1 AND trashed_at IS NULL",
        library_id,
    )


async def queue_scan(principal: access.Principal, queue, library_id: uuid.UUID) -> None:
    """Queue a scan of the library (one at a time per library: the job id is the library's)."""
    principal.require(access.WRITE)
    await get(principal, library_id)
    if queue is None:
        raise BadRequest("No job queue is running to scan the library")
    await queue.enqueue_plain(SCAN_JOB, str(library_id), job_id=f"{SCAN_JOB}:{library_id}")


# The lock a scan's insert shares and a delete takes alone (the two-key form: its own key space).
_LOCK = "SELECT pg_advisory_xact_lock{}(hashtext('external_library'), hashtext($1::uuid::text))"


async def delete(principal: access.Principal, queue, library_id: uuid.UUID) -> None:
    """Mark the library deleted (it disappears at once) and queue the removal of its assets. If the
    queue cannot take it, the hourly library_delete sweep (app/jobs/worker.py) finds it."""
    principal.require(access.DELETE)
    await get(principal, library_id)
    async with db.transaction() as conn:
        await conn.execute(_LOCK.format(""), library_id)  # after the scans' inserts in flight (hold_for_insert)
        row = await conn.fetchrow(
            "UPDATE external_libraries SET deleted_at = now(), updated_at = now()"
            " WHERE id = $1 AND deleted_at IS NULL RETURNING *", library_id,
        )
        if row is None:
            raise _missing(library_id)
        await _record(conn, row, "external_library_deleted")
    if queue is not None:
        await queue.enqueue_plain(DELETE_JOB, str(library_id), job_id=f"{DELETE_JOB}:{library_id}")


async def hold_for_insert(conn: asyncpg.Connection, library_id: uuid.UUID) -> bool:
    """Whether the library is live, and if so, kept from being deleted until `conn`'s transaction
    ends: a delete waits for the inserts in flight, and one that starts after it sees deleted_at. An
    advisory lock rather than FOR SHARE on the row: a waiting delete holds back new shared holders,
    so a scan's back-to-back chunks cannot keep a delete (and its HTTP request) waiting to the end."""
    await conn.execute(_LOCK.format("_shared"), library_id)
    return await conn.fetchval("SELECT deleted_at IS NULL FROM external_libraries WHERE id = $1", library_id) is True


async def remove_deleted(store: BlobStore, library_id: uuid.UUID | None = None) -> int:
    """The background half of a delete: the assets of a deleted library (or of every one, when no id
    is given) go as a permanent delete removes them, in batches with their events; then the library
    row. Returns how many assets went."""
    ids = await db.fetch("SELECT id FROM external_libraries WHERE deleted_at IS NOT NULL"
                         " AND ($1::uuid IS NULL OR id = $1)", library_id)
    removed = 0
    for (external_id,) in ids:
        removed += await assets.purge_external_library(store, external_id)
        async with db.transaction() as conn:
            # A scan that raced the delete may have added rows since: the library stays for the next pass.
            gone = await conn.fetchrow(
                "DELETE FROM external_libraries x WHERE x.id = $1 AND x.deleted_at IS NOT NULL"
                " AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.external_library_id = x.id) RETURNING *",
                external_id,
            )
            if gone is not None:
                await _record(conn, gone, "external_library_removed")
    return removed


async def _record(conn: asyncpg.Connection, row: asyncpg.Record, event_type: str) -> None:
    await events.record(conn, entity_type=ENTITY, entity_id=row["id"], event_type=event_type,
                        library_id=row["library_id"], owner_id=row["owner_id"])
