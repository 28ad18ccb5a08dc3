"""Domain rows as the Immich sync payloads (`Sync*` DTOs), shared by the sync stream and socket.io."""

from __future__ import annotations

import json

import asyncpg

from app.domain import effective
from compat import dtos
from compat.mapping import _as_utc_wall, _utc, avatar_color, b64, exif_fields, face_box


def _text_or_none(value) -> str | None:
    return None if value is None else str(value)


def asset_v2(row: asyncpg.Record) -> dtos.SyncAssetV2:
    return dtos.SyncAssetV2(
        id=str(row["id"]),
        ownerId=str(row["owner_id"]),
        originalFileName=row["original_file_name"],
        thumbhash=b64(row["thumbhash"]) or None,
        checksum=b64(row["checksum_sha1"]),
        fileCreatedAt=_utc(row["taken_at"]),
        fileModifiedAt=_utc(row["file_modified_at"]),
        createdAt=_utc(row["created_at"]),
        localDateTime=_as_utc_wall(row["local_datetime"]),
        duration=row["duration_ms"],
        type="VIDEO" if row["media_type"] == "video" else "IMAGE",
        deletedAt=_utc(row["trashed_at"]),
        isFavorite=effective.is_favorite(row["effective_rating"]),
        visibility=row["visibility"],
        livePhotoVideoId=None if row["live_photo_video_id"] is None else str(row["live_photo_video_id"]),
        stackId=None if row["stack_id"] is None else str(row["stack_id"]),
        libraryId=_text_or_none(row.get("external_library_id")),
        width=row["width"],
        height=row["height"],
        isEdited=row["current_version_id"] is not None,
    )


def asset_edit_v1(row: asyncpg.Record) -> dtos.SyncAssetEditV1:
    parameters = row["parameters"]
    return dtos.SyncAssetEditV1(id=row["id"], assetId=row["asset_id"], action=row["action"],
                                parameters=json.loads(parameters) if isinstance(parameters, str) else parameters,
                                sequence=row["sequence"])


class _AssetColumns:
    """The asset's columns of a flat sync row, where they carry an `asset_` prefix."""

    __slots__ = ("row",)

    def __init__(self, row):
        self.row = row

    def __getitem__(self, key: str):
        return self.row["asset_" + key] if key != "id" else self.row["id"]


def asset_exif_v1_flat(row: asyncpg.Record) -> dtos.SyncAssetExifV1:
    """AssetExifV1 from one flat row: exif columns as is, the asset's prefixed `asset_`."""
    return asset_exif_v1(_AssetColumns(row), row if row["asset_id"] is not None else None)


def asset_exif_v1(asset_row, exif: asyncpg.Record | None) -> dict:
    """The same values as the asset's exifInfo, as SyncAssetExifV1's fields.

    A plain dict, not the DTO: a sync stream builds 100,000 of these, and the DTO's
    keyword construction was a fifth of that cost; the field names are the DTO's.
    """
    fields = exif_fields(asset_row, exif)
    fields["assetId"] = str(asset_row["id"])
    fields["profileDescription"] = None
    fields["fps"] = None if exif is None else exif["fps"]
    return fields


def _user_fields(row: asyncpg.Record) -> dict:
    return dict(
        id=str(row["id"]),
        name=row["name"],
        email=row["email"],
        avatarColor=avatar_color(row),
        deletedAt=_utc(row["deleted_at"]),
        hasProfileImage=bool(row.get("profile_image_key")),
        profileChangedAt=_utc(row["profile_changed_at"]),
    )


def auth_user_v1(row: asyncpg.Record) -> dtos.SyncAuthUserV1:
    """UserV1's fields plus what only the signed-in user sees of themselves."""
    return dtos.SyncAuthUserV1(
        **_user_fields(row),
        isAdmin=row["is_admin"],
        pinCode=None,
        oauthId="",
        storageLabel=row["storage_label"],
        quotaSizeInBytes=row["storage_limit_bytes"],
        quotaUsageInBytes=row["storage_used_bytes"],
    )


def user_v1(row: asyncpg.Record) -> dtos.SyncUserV1:
    return dtos.SyncUserV1(**_user_fields(row))


def album_v2(row: asyncpg.Record) -> dtos.SyncAlbumV2:
    return dtos.SyncAlbumV2(
        id=str(row["id"]),
        name=row["name"],
        description=row["description"] or "",
        createdAt=_utc(row["created_at"]),
        updatedAt=_utc(row["updated_at"]),
        thumbnailAssetId=None if row["effective_cover_id"] is None else str(row["effective_cover_id"]),
        isActivityEnabled=row["is_activity_enabled"],
        order="desc",
    )


def stack_v1(row: asyncpg.Record) -> dtos.SyncStackV1:
    return dtos.SyncStackV1(
        id=str(row["id"]),
        createdAt=_utc(row["created_at"]),
        updatedAt=_utc(row["updated_at"]),
        primaryAssetId=str(row["effective_primary_id"]),
        ownerId=str(row["owner_id"]),
    )


def person_v1(row: asyncpg.Record) -> dtos.SyncPersonV1:
    from datetime import datetime, timezone

    birth = row["birth_date"]
    return dtos.SyncPersonV1(
        id=str(row["id"]),
        createdAt=_utc(row["created_at"]),
        updatedAt=_utc(row["updated_at"]),
        ownerId=str(row["owner_id"]),
        name=row["name"] or "",
        birthDate=None if birth is None else datetime(birth.year, birth.month, birth.day, tzinfo=timezone.utc),
        isHidden=row["is_hidden"],
        isFavorite=row["is_favorite"],
        color=row["color"],
        faceAssetId=None if row["thumbnail_face_id"] is None else str(row["thumbnail_face_id"]),
    )


def asset_face_v2(row: asyncpg.Record) -> dtos.SyncAssetFaceV2:
    return dtos.SyncAssetFaceV2(
        **face_box(row),
        assetId=str(row["asset_id"]),
        personId=None if row["person_id"] is None else str(row["person_id"]),
        deletedAt=None,
        isVisible=True,
    )


# --- memories ---


def memory_v1(row: asyncpg.Record) -> dtos.SyncMemoryV1:
    data = row["data"]
    return dtos.SyncMemoryV1(
        id=str(row["id"]),
        createdAt=_utc(row["created_at"]),
        updatedAt=_utc(row["updated_at"]),
        deletedAt=_utc(row["deleted_at"]),
        ownerId=str(row["owner_id"]),
        type=row["type"],
        data=data if isinstance(data, dict) else json.loads(data),
        isSaved=row["is_saved"],
        memoryAt=_utc(row["memory_at"]),
        seenAt=_utc(row["seen_at"]),
        showAt=_utc(row["show_at"]),
        hideAt=_utc(row["hide_at"]),
    )


def memory_asset_v1(row: asyncpg.Record) -> dtos.SyncMemoryAssetV1:
    return dtos.SyncMemoryAssetV1(memoryId=str(row["memory_id"]), assetId=str(row["asset_id"]))


# --- asset metadata ---------------------------------------------------------------------------


def asset_metadata_v1(row: asyncpg.Record) -> dtos.SyncAssetMetadataV1:
    return dtos.SyncAssetMetadataV1(assetId=row["id"], key=row["key"], value=json.loads(row["value"]))
