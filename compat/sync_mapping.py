"""Domain rows as the Immich sync payloads (`Sync*` DTOs), shared by the sync stream and socket.io."""

from __future__ import annotations

import asyncpg

from compat import dtos
from compat.mapping import _as_utc_wall, _exposure, _utc, avatar_color, b64


def asset_v2(row: asyncpg.Record) -> dtos.SyncAssetV2:
    from app.domain.assets import AssetView, effective

    rating = effective(AssetView(row, None, {})).rating
    return dtos.SyncAssetV2(
        id=str(row["id"]),
        ownerId=str(row["owner_id"]),
        originalFileName=row["original_file_name"],
        thumbhash=b64(row["thumbhash"]) or None,
        checksum=b64(row["checksum_sha1"]),
        fileCreatedAt=_utc(row["captured_at"]) or _as_utc_wall(row["local_datetime"]),
        fileModifiedAt=_utc(row["file_modified_at"]),
        createdAt=_utc(row["created_at"]),
        localDateTime=_as_utc_wall(row["local_datetime"]),
        duration=row["duration_ms"],
        type="VIDEO" if row["media_type"] == "video" else "IMAGE",
        deletedAt=_utc(row["trashed_at"]),
        isFavorite=rating == 5,
        visibility=row["visibility"],
        livePhotoVideoId=None if row["live_photo_video_id"] is None else str(row["live_photo_video_id"]),
        stackId=None if row["stack_id"] is None else str(row["stack_id"]),
        libraryId=None,
        width=row["width"],
        height=row["height"],
        isEdited=False,
    )


def asset_exif_v1(asset_row: asyncpg.Record, exif: asyncpg.Record | None) -> dtos.SyncAssetExifV1:
    """The file's metadata with the user's edits on top, like the asset's exifInfo."""
    from app.domain.assets import AssetView, effective
    from app.domain.datetimes import join_wall_clock

    shown = effective(AssetView(asset_row, exif, {}))

    def ev(name):
        return None if exif is None else exif[name]

    original = shown.original_datetime
    if original is not None and original.tzinfo is None:
        original = _as_utc_wall(original)
    modified = None
    if ev("modified_datetime") is not None:
        modified = join_wall_clock(exif["modified_datetime"], exif["modified_offset_minutes"])
        modified = modified if modified.tzinfo else _as_utc_wall(modified)
    return dtos.SyncAssetExifV1(
        assetId=str(asset_row["id"]),
        description=shown.description or "",
        exifImageWidth=ev("raw_width"),
        exifImageHeight=ev("raw_height"),
        fileSizeInByte=asset_row["file_size_bytes"],
        orientation=None if ev("orientation") is None else str(exif["orientation"]),
        dateTimeOriginal=_utc(original),
        modifyDate=_utc(modified),
        timeZone=ev("timezone"),
        latitude=shown.latitude,
        longitude=shown.longitude,
        projectionType=ev("projection_type"),
        city=ev("city"),
        state=ev("state"),
        country=ev("country"),
        make=ev("make"),
        model=ev("model"),
        lensModel=ev("lens_model"),
        fNumber=ev("f_number"),
        focalLength=ev("focal_length"),
        iso=ev("iso"),
        exposureTime=_exposure(ev("exposure_time")),
        profileDescription=None,
        rating=shown.rating,
        fps=ev("fps"),
    )


def auth_user_v1(row: asyncpg.Record) -> dtos.SyncAuthUserV1:
    return dtos.SyncAuthUserV1(
        id=str(row["id"]),
        name=row["name"],
        email=row["email"],
        avatarColor=avatar_color(row),
        deletedAt=_utc(row["deleted_at"]),
        hasProfileImage=False,
        profileChangedAt=_utc(row["profile_changed_at"]),
        isAdmin=row["is_admin"],
        pinCode=None,
        oauthId="",
        storageLabel=row["storage_label"],
        quotaSizeInBytes=row["storage_limit_bytes"],
        quotaUsageInBytes=row["storage_used_bytes"],
    )


def user_v1(row: asyncpg.Record) -> dtos.SyncUserV1:
    return dtos.SyncUserV1(
        id=str(row["id"]),
        name=row["name"],
        email=row["email"],
        avatarColor=avatar_color(row),
        deletedAt=_utc(row["deleted_at"]),
        hasProfileImage=False,
        profileChangedAt=_utc(row["profile_changed_at"]),
    )


def album_v2(row: asyncpg.Record) -> dtos.SyncAlbumV2:
    return dtos.SyncAlbumV2(
        id=str(row["id"]),
        name=row["name"],
        description=row["description"] or "",
        createdAt=_utc(row["created_at"]),
        updatedAt=_utc(row["updated_at"]),
        thumbnailAssetId=None if row["effective_cover_id"] is None else str(row["effective_cover_id"]),
        isActivityEnabled=False,
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
        id=str(row["id"]),
        assetId=str(row["asset_id"]),
        personId=None if row["person_id"] is None else str(row["person_id"]),
        imageWidth=row["image_width"],
        imageHeight=row["image_height"],
        boundingBoxX1=row["box_x"],
        boundingBoxY1=row["box_y"],
        boundingBoxX2=row["box_x"] + row["box_w"],
        boundingBoxY2=row["box_y"] + row["box_h"],
        sourceType="machine-learning" if row["source"] == "automatic" else "manual",
        deletedAt=None,
        isVisible=True,
    )
