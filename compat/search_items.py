"""An asset of an Immich search page (POST /api/search/metadata), built for pages of hundreds.

The JSON is Immich's AssetResponseDto, field for field what mapping.asset writes for the same asset
(tests/domain/test_metadata_search.py holds them equal), minus what Immich's search leaves out
unless asked: exifInfo without withExif, and the stack. The struct keeps the row's own values where
msgspec writes them exactly as the DTO's strings (a UUID as its text, bytes as base64, a UTC
datetime with a Z), so an item costs no per-field conversion in Python.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from msgspec import UNSET, UnsetType

from app.domain import effective
from app.domain.search import PageItem
from compat import dtos, mapping


class SearchAssetItem(msgspec.Struct, kw_only=True):
    """AssetResponseDto's fields (same names, same order) as a search page fills them."""

    checksum: bytes
    createdAt: datetime
    duration: int | None
    fileCreatedAt: datetime | None
    fileModifiedAt: datetime
    hasMetadata: bool
    height: int | None
    id: uuid.UUID
    isArchived: bool
    isEdited: bool
    isFavorite: bool
    isOffline: bool
    isTrashed: bool
    localDateTime: datetime
    originalFileName: str
    originalPath: str
    ownerId: uuid.UUID
    thumbhash: bytes | None
    type: str
    updatedAt: datetime
    visibility: str
    width: int | None
    duplicateId: uuid.UUID | None
    exifInfo: dict | UnsetType = UNSET  # ExifResponseDto's fields (mapping.exif_fields)
    libraryId: uuid.UUID | None
    livePhotoVideoId: uuid.UUID | None
    originalMimeType: str
    people: list[dtos.PersonResponseDto]


def search_item(item: PageItem, *, with_exif: bool) -> SearchAssetItem:
    row = item.row
    dto = SearchAssetItem(
        id=row["id"],
        ownerId=row["owner_id"],
        checksum=row["checksum_sha1"] or b"",
        type="VIDEO" if row["media_type"] == "video" else "IMAGE",
        originalFileName=row["original_file_name"],
        originalMimeType=row["mime_type"],
        originalPath=row["original_path"] or "",
        fileCreatedAt=mapping._utc(row["taken_at"]),
        fileModifiedAt=mapping._utc(row["file_modified_at"]),
        createdAt=mapping._utc(row["created_at"]),
        updatedAt=mapping._utc(row["updated_at"]),
        localDateTime=mapping._as_utc_wall(row["local_datetime"]),
        duration=row["duration_ms"],
        width=row["width"],
        height=row["height"],
        thumbhash=row["thumbhash"] or None,
        isFavorite=effective.is_favorite(row["effective_rating"]),
        isArchived=row["visibility"] == "archive",
        isTrashed=row["trashed_at"] is not None,
        isOffline=row["is_offline"],
        isEdited=row["current_version_id"] is not None,
        hasMetadata=item.has_metadata,
        visibility=row["visibility"],
        livePhotoVideoId=row["live_photo_video_id"],
        libraryId=row["external_library_id"],
        duplicateId=row["duplicate_id"],
        people=[mapping.person(p) for p in item.people],
    )
    if with_exif:
        # ExifResponseDto's fields as a plain dict (as the sync stream sends them): the same JSON
        # without a keyword construction per asset.
        dto.exifInfo = mapping.exif_fields(row, item.exif)
    return dto
