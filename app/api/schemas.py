"""Native response and request shapes, and the one function per shape that fills them."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from app.domain import ids
from app.domain.datetimes import from_instant, join_wall_clock
from app.storage.signing import UrlSigner


class AssetVariant(msgspec.Struct):
    url: str
    mimetype: str
    width: int | None


class FileData(msgspec.Struct):
    checksum: str
    checksum_sha1: str | None
    device_asset_id: str
    device_id: str
    file_created_at: datetime
    file_modified_at: datetime
    file_size_bytes: int


class Metadata(msgspec.Struct):
    asset_id: str
    created_at: datetime
    updated_at: datetime
    altitude: float | None = None
    auto_stack_id: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    country_code: str | None = None
    sublocation: str | None = None
    place_name: str | None = None
    display_label: str | None = None
    description: str | None = None
    digitized_datetime: datetime | None = None
    modified_datetime: datetime | None = None
    original_datetime: datetime | None = None
    exposure_bias: float | None = None
    exposure_time: float | None = None
    f_number: float | None = None
    focal_length: float | None = None
    fps: float | None = None
    iso: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    lens_model: str | None = None
    live_photo_cid: str | None = None
    make: str | None = None
    model: str | None = None
    orientation: int | None = None
    projection_type: str | None = None
    rating: int | None = None
    raw_width: int | None = None
    raw_height: int | None = None
    timezone: str | None = None


class AssetResponse(msgspec.Struct):
    id: str
    created_at: datetime
    updated_at: datetime
    current_version_id: str
    kind: str
    mime_type: str
    original_file_name: str
    file_size_bytes: int
    local_datetime: datetime
    width: int | None
    height: int | None
    duration: float | None
    thumbhash: str | None
    description: str | None
    quality_score: float | None
    stack_id: str | None
    trashed_at: datetime | None
    asset_urls: dict[str, AssetVariant] | None
    metadata: Metadata | None
    faces: list[Any] | None
    people: list[Any] | None
    file_data: FileData
    # The flat provenance fields older SDKs read; same values as file_data.
    checksum: str
    checksum_sha1: str | None
    device_asset_id: str
    device_id: str
    file_created_at: datetime
    file_modified_at: datetime


class AssetLite(msgspec.Struct):
    id: str
    checksum: str
    checksum_sha1: str | None
    device_asset_id: str
    device_id: str


class AssetExistence(msgspec.Struct):
    assets: list[AssetLite]


class AssetPage(msgspec.Struct):
    data: list[AssetResponse]
    has_more: bool


class UserSummary(msgspec.Struct):
    id: str
    display_name: str | None


class LibraryResponse(msgspec.Struct):
    id: str
    name: str
    asset_count: int
    storage_used_bytes: int
    owner: UserSummary
    role: str
    user_id: str
    created_at: datetime
    updated_at: datetime
    description: str | None
    storage_limit_bytes: int | None


class UserResponse(msgspec.Struct):
    id: str
    created_at: datetime
    updated_at: datetime
    is_active: bool
    is_superuser: bool
    is_verified: bool
    storage_limit_bytes: int
    storage_used_bytes: int
    face_detection_available: bool
    favorite_display_mode: str
    demo_mode_enabled: bool
    email: str | None
    first_name: str | None
    last_name: str | None
    timezone: str | None
    home_country: str | None
    home_subdivision: str | None
    face_detection_preference: bool | None
    immich_library_id: str | None


# --- conversions (one per field kind) ---------------------------------------------


def b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()


def asset_urls(row: asyncpg.Record, signer: UrlSigner, base_url: str) -> dict[str, AssetVariant]:
    """Signed URLs for the variants that exist now (derived ones arrive with the media pipeline)."""
    native_id = ids.encode(ids.ASSET, row["id"])
    expires, sig = signer.sign(row["id"], "original")
    return {
        "original": AssetVariant(
            url=f"{base_url}/media/assets/{native_id}/original?exp={expires}&sig={sig}",
            mimetype=row["mime_type"],
            width=None,
        )
    }


def _metadata(row: asyncpg.Record) -> Metadata | None:
    """Only values somebody actually provided; nothing is filled in by guessing."""
    user_set = (
        row["user_description"] is not None
        or row["user_latitude"] is not None
        or row["user_original_datetime"] is not None
        or row["rating"] is not None
    )
    if not user_set:
        return None
    original = None
    if row["user_original_datetime"] is not None:
        original = join_wall_clock(row["user_original_datetime"], row["user_original_offset_minutes"])
    return Metadata(
        asset_id=ids.encode(ids.ASSET, row["id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        description=row["user_description"],
        latitude=row["user_latitude"],
        longitude=row["user_longitude"],
        original_datetime=original,
        rating=row["rating"],
    )


def asset_response(row: asyncpg.Record, signer: UrlSigner, base_url: str) -> AssetResponse:
    file_created = from_instant(row["file_created_at"], row["file_created_offset_minutes"])
    file_modified = row["file_modified_at"]
    checksum = b64(row["checksum_sha256"])
    checksum_sha1 = b64(row["checksum_sha1"])
    file_data = FileData(
        checksum=checksum,
        checksum_sha1=checksum_sha1,
        device_asset_id=row["device_asset_id"],
        device_id=row["device_id"],
        file_created_at=file_created,
        file_modified_at=file_modified,
        file_size_bytes=row["file_size_bytes"],
    )
    return AssetResponse(
        id=ids.encode(ids.ASSET, row["id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        current_version_id=ids.encode(ids.VERSION, row["original_version_id"]),
        kind="original",
        mime_type=row["mime_type"],
        original_file_name=row["original_file_name"],
        file_size_bytes=row["file_size_bytes"],
        local_datetime=join_wall_clock(row["local_datetime"], row["local_offset_minutes"]),
        width=row["width"],
        height=row["height"],
        duration=None if row["duration_ms"] is None else row["duration_ms"] / 1000,
        thumbhash=b64(row["thumbhash"]),
        description=row["description"],
        quality_score=None,
        stack_id=None if row["stack_id"] is None else ids.encode(ids.STACK, row["stack_id"]),
        trashed_at=row["trashed_at"],
        asset_urls=asset_urls(row, signer, base_url),
        metadata=_metadata(row),
        # No face detection has run yet in this version: an empty list is the truth.
        faces=[],
        people=[],
        file_data=file_data,
        checksum=checksum,
        checksum_sha1=checksum_sha1,
        device_asset_id=row["device_asset_id"],
        device_id=row["device_id"],
        file_created_at=file_created,
        file_modified_at=file_modified,
    )


def asset_lite(row: asyncpg.Record) -> AssetLite:
    return AssetLite(
        id=ids.encode(ids.ASSET, row["id"]),
        checksum=b64(row["checksum_sha256"]),
        checksum_sha1=b64(row["checksum_sha1"]),
        device_asset_id=row["device_asset_id"],
        device_id=row["device_id"],
    )


def library_response(row: asyncpg.Record) -> LibraryResponse:
    owner_id = ids.encode(ids.USER, row["owner_id"])
    return LibraryResponse(
        id=ids.encode(ids.LIBRARY, row["id"]),
        name=row["name"],
        asset_count=row["asset_count"],
        storage_used_bytes=row["storage_used_bytes"],
        owner=UserSummary(id=owner_id, display_name=row["owner_name"] or None),
        role="owner",
        user_id=owner_id,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        description=row["description"],
        storage_limit_bytes=row["storage_limit_bytes"],
    )


def user_response(row: asyncpg.Record) -> UserResponse:
    first, _, last = (row["name"] or "").partition(" ")
    return UserResponse(
        id=ids.encode(ids.USER, row["id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        is_active=row["deleted_at"] is None,
        is_superuser=row["is_admin"],
        is_verified=True,
        # 0 = no cap (Immich's convention for an unlimited quota).
        storage_limit_bytes=row["storage_limit_bytes"] or 0,
        storage_used_bytes=row["storage_used_bytes"],
        face_detection_available=False,
        favorite_display_mode="favorite",
        demo_mode_enabled=False,
        email=row["email"],
        first_name=first or None,
        last_name=last or None,
        timezone=None,
        home_country=None,
        home_subdivision=None,
        face_detection_preference=None,
        # No preference stored yet: null means "the default library".
        immich_library_id=None,
    )
