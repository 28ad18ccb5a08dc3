"""Native response and request shapes, and the one function per shape that fills them."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from app.api import ids
from app.domain import effective
from app.domain.asset_views import AssetView
from app.domain.assets import BROWSER_IMAGES, IMAGE_VARIANTS, VIDEO_VARIANTS
from app.domain.datetimes import from_instant, join_wall_clock
from app.storage.signing import UrlSigner, media_state


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
    faces: list[FaceResponse] | None
    people: list[PersonResponse] | None
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


def _signed(row: asyncpg.Record, variant: str, signer: UrlSigner, base_url: str) -> str:
    expires, sig = signer.sign(row["id"], variant, state=media_state(row["trashed_at"]))
    return f"{base_url}/media/assets/{ids.encode(ids.ASSET, row['id'])}/{variant}?exp={expires}&sig={sig}"


def asset_urls(v: AssetView, signer: UrlSigner, base_url: str) -> dict[str, AssetVariant]:
    """Signed URLs for the variants that exist now; one not generated yet is simply absent."""
    row = v.row
    mime = row["mime_type"] if v.version is None else v.version["mime_type"]  # of the current rendering
    urls = {"original": AssetVariant(_signed(row, "original", signer, base_url), mime, row["width"])}
    table = VIDEO_VARIANTS if row["media_type"] == "video" else IMAGE_VARIANTS
    for name, kind in table.items():
        f = v.files.get(kind)
        if f is not None:
            urls[name] = AssetVariant(_signed(row, name, signer, base_url), f["mime_type"], f["width"])
        elif name == "fullsize" and mime in BROWSER_IMAGES:
            urls[name] = AssetVariant(_signed(row, name, signer, base_url), mime, row["width"])
    return urls


def _display_label(city: str | None, state: str | None, country: str | None) -> str | None:
    """Most specific place first, then broader context: 'City, State' or 'City, Country'."""
    parts = [p for p in (city, state or country) if p] if city else [p for p in (state, country) if p][:1]
    return ", ".join(parts) or None


def _metadata(v: AssetView) -> Metadata | None:
    """The file's values with the user's edits on top; nothing is filled in by guessing."""
    row, e = v.row, v.exif
    user_set = (
        row["user_description"] is not None
        or row["user_latitude"] is not None
        or row["user_original_datetime"] is not None
        or row["rating"] is not None
    )
    if e is None and not user_set:
        return None

    def ev(name: str):
        return None if e is None else e[name]

    shown = effective.of(row, e)
    return Metadata(
        asset_id=ids.encode(ids.ASSET, row["id"]),
        created_at=e["created_at"] if e is not None else row["created_at"],
        updated_at=max(e["updated_at"], row["updated_at"]) if e is not None else row["updated_at"],
        altitude=shown.altitude,
        auto_stack_id=ev("auto_stack_id"),
        city=ev("city"),
        state=ev("state"),
        country=ev("country"),
        country_code=ev("country_code"),
        display_label=_display_label(ev("city"), ev("state"), ev("country")),
        description=shown.description,
        digitized_datetime=None if ev("digitized_datetime") is None
        else join_wall_clock(e["digitized_datetime"], e["digitized_offset_minutes"]),
        modified_datetime=None if ev("modified_datetime") is None
        else join_wall_clock(e["modified_datetime"], e["modified_offset_minutes"]),
        original_datetime=shown.original_datetime,
        exposure_bias=ev("exposure_bias"),
        exposure_time=ev("exposure_time"),
        f_number=ev("f_number"),
        focal_length=ev("focal_length"),
        fps=ev("fps"),
        iso=ev("iso"),
        latitude=shown.latitude,
        longitude=shown.longitude,
        lens_model=ev("lens_model"),
        live_photo_cid=ev("live_photo_cid"),
        make=ev("make"),
        model=ev("model"),
        orientation=ev("orientation"),
        projection_type=ev("projection_type"),
        rating=shown.rating,
        raw_width=ev("raw_width"),
        raw_height=ev("raw_height"),
        timezone=ev("timezone"),
    )


def asset_response(v: AssetView, signer: UrlSigner, base_url: str, faces: list | None = None,
                   people: list | None = None) -> AssetResponse:
    row, shown = v.row, v.version  # top-level fields describe the current rendering
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
        current_version_id=ids.encode(ids.VERSION, row["original_version_id"] if shown is None else shown["id"]),
        kind="original" if shown is None else shown["kind"],
        mime_type=row["mime_type"] if shown is None else shown["mime_type"],
        original_file_name=row["original_file_name"],
        file_size_bytes=row["file_size_bytes"] if shown is None else shown["size_bytes"],
        local_datetime=join_wall_clock(row["local_datetime"], row["local_offset_minutes"]),
        width=row["width"],
        height=row["height"],
        duration=None if row["duration_ms"] is None else row["duration_ms"] / 1000,
        thumbhash=b64(row["thumbhash"]),
        description=row["description"],
        quality_score=None,
        stack_id=None if row["stack_id"] is None else ids.encode(ids.STACK, row["stack_id"]),
        trashed_at=row["trashed_at"],
        asset_urls=asset_urls(v, signer, base_url),
        metadata=_metadata(v),
        # Only when asked for (include=faces / include=people): null otherwise, [] for none.
        faces=None if faces is None else [face_response(f, signer, base_url) for f in faces],
        people=None if people is None else [person_response(p, signer, base_url) for p in people],
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
        role=row["role"],  # the caller's: owner, or a member's role
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
        # Detection is offered everywhere this server runs (no regional restrictions).
        face_detection_available=True,
        favorite_display_mode=row["favorite_display_mode"],
        demo_mode_enabled=row["demo_mode_enabled"],
        email=row["email"],
        first_name=first or None,
        last_name=last or None,
        timezone=None,
        home_country=None,
        home_subdivision=None,
        face_detection_preference=row["face_detection_preference"],
        # null means "the default library" for the Immich surface.
        immich_library_id=None if row["immich_library_id"] is None else ids.encode(ids.LIBRARY, row["immich_library_id"]),
    )


class TaskResponse(msgspec.Struct):
    id: str
    celery_task_id: str
    task_type: str
    status: str
    retry_count: int
    created_at: str
    asset_id: str | None
    outcome: str | None
    result: str | None
    error_message: str | None
    started_at: str | None
    completed_at: str | None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def task_response(row: asyncpg.Record) -> TaskResponse:
    return TaskResponse(
        id=ids.encode(ids.TASK, row["id"]),
        celery_task_id=row["job_id"],
        task_type=row["task_type"],
        status=row["status"],
        retry_count=row["retry_count"],
        created_at=_iso(row["created_at"]),
        asset_id=None if row["asset_id"] is None else ids.encode(ids.ASSET, row["asset_id"]),
        outcome=row["outcome"],
        result=row["result"],
        error_message=row["error_message"],
        started_at=_iso(row["started_at"]),
        completed_at=_iso(row["completed_at"]),
    )


class CountBucket(msgspec.Struct):
    time_bucket: datetime
    count: int


class CountPage(msgspec.Struct):
    data: list[CountBucket]
    has_more: bool


class GeoCluster(msgspec.Struct):
    latitude: float
    longitude: float
    count: int
    representative_asset_id: str


class GeoClusters(msgspec.Struct):
    data: list[GeoCluster]


class AlbumResponse(msgspec.Struct):
    id: str
    name: str
    asset_count: int
    created_at: datetime
    updated_at: datetime
    description: str | None
    album_cover_asset_id: str | None
    asset_urls: dict[str, AssetVariant] | None
    start_date: datetime | None
    end_date: datetime | None


class AlbumPage(msgspec.Struct):
    data: list[AlbumResponse]
    has_more: bool


class AlbumAssetResponse(msgspec.Struct):
    id: str
    album_id: str
    asset_id: str
    created_at: datetime
    updated_at: datetime


class AlbumAssetPage(msgspec.Struct):
    data: list[AlbumAssetResponse]
    has_more: bool


class AssociationAddResponse(msgspec.Struct):
    added_assets: list[str]
    duplicate_assets: list[str]
    not_found_assets: list[str]


class StackResponse(msgspec.Struct):
    id: str
    origin: str
    asset_count: int
    created_at: datetime
    updated_at: datetime
    primary_asset_id: str | None
    asset_ids: list[str] | None


class StackPage(msgspec.Struct):
    data: list[StackResponse]
    has_more: bool


class SearchResultItem(msgspec.Struct):
    asset: AssetResponse
    distance: float | None


class SearchResponse(msgspec.Struct):
    data: list[SearchResultItem]
    has_more: bool


def _opt_id(prefix: str, value) -> str | None:
    return None if value is None else ids.encode(prefix, value)


def album_response(row: asyncpg.Record, cover: AssetView | None, signer: UrlSigner, base_url: str) -> AlbumResponse:
    """An album row of albums.ALBUM_VIEW, with its cover asset as albums.covers loaded it."""
    urls = None
    if cover is not None:
        thumb = asset_urls(cover, signer, base_url)
        name = "thumbnail_image" if cover.row["media_type"] == "video" else "thumbnail"
        urls = {"thumbnail": thumb[name]} if name in thumb else None
    return AlbumResponse(
        id=ids.encode(ids.ALBUM, row["id"]),
        name=row["name"],
        asset_count=row["asset_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        description=row["description"],
        album_cover_asset_id=_opt_id(ids.ASSET, row["effective_cover_id"]),
        asset_urls=urls,
        start_date=row["start_date"],
        end_date=row["end_date"],
    )


def album_asset_response(row: asyncpg.Record) -> AlbumAssetResponse:
    return AlbumAssetResponse(
        id=ids.encode(ids.ALBUM_ASSET, row["id"]),
        album_id=ids.encode(ids.ALBUM, row["album_id"]),
        asset_id=ids.encode(ids.ASSET, row["asset_id"]),
        created_at=row["created_at"],
        updated_at=row["created_at"],  # links are never modified, only created or deleted
    )


def stack_response(row: asyncpg.Record, members: list | None = None) -> StackResponse:
    return StackResponse(
        id=ids.encode(ids.STACK, row["id"]),
        origin=row["origin"],
        asset_count=row["asset_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        primary_asset_id=_opt_id(ids.ASSET, row["primary_asset_id"]),
        asset_ids=None if members is None else [ids.encode(ids.ASSET, m) for m in members],
    )


# --- faces and people ------------------------------------------------------------------------


class BoundingBox(msgspec.Struct):
    x: int
    y: int
    w: int
    h: int


class Candidate(msgspec.Struct):
    person_id: str
    distance: float
    name: str | None


class ClusterAssignmentResponse(msgspec.Struct):
    distance_to_person: float | None
    candidates: list[Candidate] | None


class FaceResponse(msgspec.Struct):
    id: str
    asset_id: str
    bounding_box: BoundingBox
    source: str
    created_at: datetime
    updated_at: datetime
    person_id: str | None
    confidence: float | None
    timestamp_ms: int | None
    asset_urls: dict[str, AssetVariant] | None
    cluster_assignment: ClusterAssignmentResponse | None = None


class FacePage(msgspec.Struct):
    data: list[FaceResponse]
    has_more: bool


class ClusterMetricsResponse(msgspec.Struct):
    face_count: int
    pairwise_mean: float
    pairwise_p90: float


class PersonResponse(msgspec.Struct):
    id: str
    created_at: datetime
    updated_at: datetime
    is_favorite: bool
    is_hidden: bool
    name: str | None
    birth_date: Any
    asset_count: int | None
    thumbnail_face_id: str | None
    asset_urls: dict[str, AssetVariant] | None
    cluster_metrics: ClusterMetricsResponse | None = None


class PersonPage(msgspec.Struct):
    data: list[PersonResponse]
    has_more: bool


def _face_thumbnail(face_id, signer: UrlSigner, base_url: str) -> dict[str, AssetVariant]:
    expires, sig = signer.sign(face_id, "face")
    url = f"{base_url}/media/faces/{ids.encode(ids.FACE, face_id)}/thumbnail?exp={expires}&sig={sig}"
    return {"thumbnail": AssetVariant(url, "image/jpeg", 250)}


def face_response(row: asyncpg.Record, signer: UrlSigner, base_url: str, assignment=None) -> FaceResponse:
    cluster = None
    if assignment is not None:
        cluster = ClusterAssignmentResponse(
            distance_to_person=assignment.distance_to_person,
            candidates=[Candidate(ids.encode(ids.PERSON, p), d, n) for p, d, n in assignment.candidates],
        )
    return FaceResponse(
        id=ids.encode(ids.FACE, row["id"]),
        asset_id=ids.encode(ids.ASSET, row["asset_id"]),
        bounding_box=BoundingBox(row["box_x"], row["box_y"], row["box_w"], row["box_h"]),
        source=row["source"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        person_id=None if row["person_id"] is None else ids.encode(ids.PERSON, row["person_id"]),
        confidence=row["confidence"],
        timestamp_ms=row["timestamp_ms"],
        asset_urls=_face_thumbnail(row["id"], signer, base_url),
        cluster_assignment=cluster,
    )


def person_response(row: asyncpg.Record, signer: UrlSigner, base_url: str, with_metrics: bool = False) -> PersonResponse:
    metrics = None
    if with_metrics and row["centroid"] is not None:
        metrics = ClusterMetricsResponse(row["face_count"], row["pairwise_mean"] or 0.0, row["pairwise_p90"] or 0.0)
    thumb = row["thumbnail_face_id"]
    return PersonResponse(
        id=ids.encode(ids.PERSON, row["id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        is_favorite=row["is_favorite"],
        is_hidden=row["is_hidden"],
        name=row["name"],
        birth_date=row["birth_date"],
        asset_count=row["asset_count"],
        thumbnail_face_id=None if thumb is None else ids.encode(ids.FACE, thumb),
        asset_urls=None if thumb is None else _face_thumbnail(thumb, signer, base_url),
        cluster_metrics=metrics,
    )
