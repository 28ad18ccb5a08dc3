"""An asset of an Immich search page (POST /api/search/metadata), built for pages of hundreds.

The JSON is Immich's AssetResponseDto, field for field what mapping.asset writes for the same asset
(tests/domain/test_metadata_search.py holds them equal), minus what Immich's search leaves out
unless asked: exifInfo without withExif, and the stack. The struct keeps the row's own values where
msgspec writes them exactly as the DTO's strings (a UUID as its text, bytes as base64, a UTC
datetime with a Z), so an item costs no per-field conversion in Python, and it is built by
position (a keyword call of 30 fields costs several times as much, and a page has hundreds).
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from app.domain import effective
from app.domain.search import PageItem
from compat import dtos, mapping


# AssetResponseDto's fields, in its order, less what a search page never carries: the stack (left
# out, as Immich's search leaves it out), the owner, tags and `resized`. exifInfo is UNSET, so left
# out of the JSON, without withExif.
SearchAssetItem = mapping.positional_struct(dtos.AssetResponseDto,
                                            leave_out=frozenset({"owner", "resized", "stack", "tags"}))


def search_item(item: PageItem, *, with_exif: bool) -> msgspec.Struct:
    row = item.row
    # asyncpg reads every timestamptz as a UTC datetime, so those go in as they come (mapping._utc
    # would hand each back unchanged); the wall clock localDateTime is written as UTC, as Immich does.
    visibility = row["visibility"]
    return SearchAssetItem(
        row["checksum_sha1"] or b"",  # checksum
        row["created_at"],  # createdAt
        row["duration_ms"],  # duration
        row["taken_at"],  # fileCreatedAt
        row["file_modified_at"],  # fileModifiedAt
        item.has_metadata,  # hasMetadata
        row["height"],  # height
        row["id"],  # id
        visibility == "archive",  # isArchived
        row["current_version_id"] is not None,  # isEdited
        effective.is_favorite(row["effective_rating"]),  # isFavorite
        row["is_offline"],  # isOffline
        row["trashed_at"] is not None,  # isTrashed
        mapping._as_utc_wall(row["local_datetime"]),  # localDateTime
        row["original_file_name"],  # originalFileName
        row["original_path"] or "",  # originalPath
        row["owner_id"],  # ownerId
        row["thumbhash"] or None,  # thumbhash
        "VIDEO" if row["media_type"] == "video" else "IMAGE",  # type
        row["updated_at"],  # updatedAt
        visibility,  # visibility
        row["width"],  # width
        row["duplicate_id"],  # duplicateId
        # ExifResponseDto's fields as a plain dict (as the sync stream sends them).
        mapping.exif_fields(row, item.exif) if with_exif else UNSET,  # exifInfo
        row["external_library_id"],  # libraryId
        row["live_photo_video_id"],  # livePhotoVideoId
        row["mime_type"],  # originalMimeType
        [mapping.person(p) for p in item.people],  # people
    )
