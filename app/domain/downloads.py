"""Downloads as zip archives (Immich's download tag): which originals go into an archive, split into
parts of a target size, and the names they carry inside it.

`plan` answers what a selection (some assets, an album, a user's timeline) downloads as: live
assets plus the motion parts of their live photos, cut into archives the way Immich cuts them (an
archive closes as soon as it grows past the target size, so a part may exceed it by one file).
`archive_entries` names the files of one archive; the bytes are streamed by the HTTP layer. Both
check access first: the caller must reach every asset (own library role, partner, album share, or
the shared link it came with, which must allow downloads).
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.db import engine as db
from app.domain import access, albums, asset_versions, shared_links
from app.domain.asset_filters import LOCKED
from app.domain.errors import BadRequest, NotFound
from app.domain.principal import READ, Principal
from app.storage.blobstore import BlobStore

DEFAULT_ARCHIVE_SIZE = 4 * 1024**3  # Immich's default part size: 4 GiB

# A live photo's motion part is its own asset, hidden from the timeline; a timeline download leaves
# hidden and locked assets out (the motion parts then come along with their photos).
_HIDDEN = "hidden"


@dataclass(frozen=True)
class Archive:
    asset_ids: list[uuid.UUID]
    size: int


@dataclass(frozen=True)
class DownloadPlan:
    archives: list[Archive]
    total_size: int


@dataclass(frozen=True)
class ArchiveEntry:
    asset_id: uuid.UUID
    name: str  # the file's name inside the zip, unique within it
    storage_key: str
    original: bool = True  # the uploaded file, not a rendering of the asset's version chain
    original_path: str | None = None  # an external asset's file in place (read, never written)


def entry_file(store: BlobStore, entry: ArchiveEntry) -> Path:
    """Where an entry's bytes are on disk: an external original in its folder, else the store."""
    if entry.original and entry.original_path is not None:
        return Path(entry.original_path)
    return store.path(entry.storage_key)


def split(sizes: list[tuple[uuid.UUID, int]], target: int) -> list[Archive]:
    """Immich's cut: assets are added in order, and an archive closes once its size exceeds `target`."""
    archives: list[Archive] = []
    ids: list[uuid.UUID] = []
    size = 0
    for asset_id, asset_size in sizes:
        ids.append(asset_id)
        size += asset_size
        if size > target:
            archives.append(Archive(ids, size))
            ids, size = [], 0
    if ids:
        archives.append(Archive(ids, size))
    return archives


_ASSET_COLUMNS = "a.id, a.file_size_bytes, a.live_photo_video_id"
_LIVE_ASSET = "a.trashed_at IS NULL"


async def plan(principal: Principal, *, asset_ids: list[uuid.UUID] | None = None, album_id: uuid.UUID | None = None,
               user_id: uuid.UUID | None = None, archive_size: int | None = None) -> DownloadPlan:
    """What a selection downloads as. Exactly one source counts, in Immich's order of precedence:
    `asset_ids` (an empty list is an empty download), else `album_id`, else `user_id`'s timeline.
    An asset, album or timeline the caller may not download: NotFound of kind asset, album or timeline."""
    principal.require(READ)
    if asset_ids is not None:
        rows = await _downloadable(principal, asset_ids)
    elif album_id is not None:
        rows = await _album_assets(principal, album_id)
    elif user_id is not None:
        rows = await _timeline_assets(principal, user_id)
    else:
        raise BadRequest("assetIds, albumId, or userId is required")
    sizes = [(r["id"], r["file_size_bytes"]) for r in rows]
    # The motion parts of live photos follow all the selected assets, as in Immich.
    motion_ids = list(dict.fromkeys(r["live_photo_video_id"] for r in rows if r["live_photo_video_id"] is not None))
    if motion_ids:
        motion = await db.fetch(f"SELECT {_ASSET_COLUMNS} FROM assets a WHERE a.id = ANY($1::uuid[]) AND {_LIVE_ASSET}"
                                " ORDER BY array_position($1::uuid[], a.id)", motion_ids)
        sizes += [(r["id"], r["file_size_bytes"]) for r in motion]
    archives = split(sizes, archive_size or DEFAULT_ARCHIVE_SIZE)
    return DownloadPlan(archives, sum(a.size for a in archives))


async def archive_entries(principal: Principal, asset_ids: list[uuid.UUID], *,
                          edited: bool = False) -> list[ArchiveEntry]:
    """The files of one archive, in the order asked, each under its sanitised original file name;
    a name already taken gets `+1`, `+2`... before its extension (Immich's `IMG_1.jpg`, `IMG_1+1.jpg`).
    Any asset the caller may not download: NotFound of kind asset. Trashed ones are left out.

    `edited` takes each asset's current rendering (asset_versions) where it has one, under the same
    name, as Immich does with its edited files; otherwise every entry is the uploaded original."""
    principal.require(READ)
    rows = await _downloadable(principal, asset_ids,
                               columns="a.id, a.original_file_name, a.storage_key, a.original_path")
    current = await asset_versions.current_versions([r["id"] for r in rows]) if edited and rows else {}
    taken: set[str] = set()
    counts: dict[str, int] = {}
    entries = []
    for row in rows:
        name = safe_file_name(row["original_file_name"])
        stem, ext = os.path.splitext(name)
        count = counts.get(name, 0)
        counts[name] = count + 1
        unique = name if count == 0 else f"{stem}+{count}{ext}"
        while unique in taken:  # `a.jpg`, `a.jpg`, `a+1.jpg`: the third would repeat the second's name
            count += 1
            unique = f"{stem}+{count}{ext}"
        taken.add(unique)
        rendering = current.get(row["id"])
        entries.append(ArchiveEntry(row["id"], unique, row["storage_key"], original_path=row["original_path"])
                       if rendering is None
                       else ArchiveEntry(row["id"], unique, rendering.storage_key, original=False))
    return entries


async def moved_key(entry: ArchiveEntry) -> str | None:
    """Where an entry's file is now, when it moved after the archive was planned (the storage
    template moves originals; a library move, derived files): the same rendering, looked up again.
    An external original is never moved by us, so a missing one has no new place: None."""
    if entry.original and entry.original_path is not None:
        return None
    row = await db.fetchrow(
        "SELECT a.storage_key AS original, v.storage_key AS current FROM assets a"
        " LEFT JOIN asset_versions v ON v.id = a.current_version_id WHERE a.id = $1", entry.asset_id)
    if row is None:
        return None
    return row["original"] if entry.original else row["current"]


# What the `sanitize-filename` package Immich uses removes: path separators and characters Windows
# forbids, control characters, names that are only dots, Windows' reserved device names, and
# trailing dots and spaces.
_ILLEGAL = re.compile(r'[/?<>\\:*|"\x00-\x1f\x80-\x9f]')
_ONLY_DOTS = re.compile(r"^\.+$")
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_TRAILING = re.compile(r"[. ]+$")
_MAX_NAME_BYTES = 255


def safe_file_name(name: str | None) -> str:
    """An original file name made safe to unpack on any system, or `unnamed` when nothing is left."""
    clean = _ILLEGAL.sub("", name or "")
    clean = _ONLY_DOTS.sub("", clean)
    clean = _RESERVED.sub("", clean)
    clean = _TRAILING.sub("", clean)
    clean = clean.encode()[:_MAX_NAME_BYTES].decode(errors="ignore")
    return clean or "unnamed"


# --- access -----------------------------------------------------------------------------------


async def _downloadable(principal: Principal, asset_ids: list[uuid.UUID], *,
                        columns: str = _ASSET_COLUMNS) -> list[asyncpg.Record]:
    """The live assets among `asset_ids` (once each, in the order given), when the caller may download
    every one of them; otherwise NotFound of kind asset naming them all.

    One access query decides for all of them (access.asset_outcomes: load_asset's rules), and a
    live photo's motion part is reachable wherever its photo is, since it downloads with it."""
    shared_links.require_download(principal)
    wanted = list(dict.fromkeys(asset_ids))
    if not wanted:
        return []
    refused = NotFound("Asset not found", kind="asset", ids=tuple(wanted))
    rows = await db.fetch(
        f"SELECT {columns}, a.trashed_at FROM assets a WHERE a.id = ANY($1::uuid[])"
        " ORDER BY array_position($1::uuid[], a.id)", wanted,
    )
    if len(rows) != len(wanted):
        raise refused
    outcomes = await access.asset_outcomes(principal, wanted, READ)
    left = [i for i in wanted if isinstance(outcomes[i], Exception)]
    if left:
        photos = await db.fetch(f"SELECT a.id, a.live_photo_video_id FROM assets a"
                                f" WHERE a.live_photo_video_id = ANY($1::uuid[]) AND {_LIVE_ASSET}", left)
        through = await access.asset_outcomes(principal, [p["id"] for p in photos], READ)
        carried = {p["live_photo_video_id"] for p in photos if not isinstance(through[p["id"]], Exception)}
        if any(i not in carried for i in left):
            raise refused
    return [row for row in rows if row["trashed_at"] is None]


async def _album_assets(principal: Principal, album_id: uuid.UUID) -> list[asyncpg.Record]:
    """The live assets of an album the caller reads (its library's, shared with it, or its link's album)."""
    await albums.get_album(principal, album_id, READ)
    shared_links.require_download(principal)
    return await db.fetch(
        f"SELECT {_ASSET_COLUMNS} FROM album_assets aa JOIN assets a ON a.id = aa.asset_id"
        " JOIN libraries own ON own.id = a.library_id"
        f" WHERE aa.album_id = $1 AND {_LIVE_ASSET} AND a.visibility <> '{LOCKED}' AND own.trashed_at IS NULL"
        " ORDER BY a.local_datetime, a.id",
        album_id,
    )


async def _timeline_assets(principal: Principal, user_id: uuid.UUID) -> list[asyncpg.Record]:
    """The live timeline and archived assets of a user whose timeline the caller sees (its own or a
    partner's). A shared link never reaches a timeline."""
    if principal.shared_link is not None:
        raise NotFound("Timeline not found", kind="timeline", ids=(user_id,))
    library_id = await access.timeline_library_of(principal, user_id)
    return await db.fetch(
        f"SELECT {_ASSET_COLUMNS} FROM assets a"
        f" WHERE a.library_id = $1 AND {_LIVE_ASSET} AND a.visibility NOT IN ('{_HIDDEN}', '{LOCKED}')"
        " ORDER BY a.local_datetime, a.id",
        library_id,
    )
