"""Field conversions between the domain's rows and Immich DTOs, one function per shape."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import asyncpg
import msgspec

from app.domain import effective, licenses, users
from app.domain import calendar_heatmap as calendar_heatmap_domain
from app.domain.activities import Activity
from app.domain.album_sharing import AlbumUser
from app.domain.albums import AlbumPatch
from app.domain.asset_filters import AssetFilter
from app.domain.assets import AssetPatch
from app.domain.datetimes import join_wall_clock
from app.domain.people import PersonPatch
from compat import dtos
from compat.validation import parse_uuid  # noqa: F401  (the routes call it as mapping.parse_uuid)


def b64(value: bytes | None) -> str:
    """Immich checksums are base64 SHA-1; a missing one is an empty string."""
    import base64

    return "" if value is None else base64.b64encode(value).decode()


AVATAR_COLORS = users.AVATAR_COLORS


def avatar_color(row: asyncpg.Record) -> str:
    if row["avatar_color"] in AVATAR_COLORS:
        return row["avatar_color"]
    return AVATAR_COLORS[row["id"].int % len(AVATAR_COLORS)]  # stable per user


def profile_image_path(row: asyncpg.Record) -> str:
    """Immich's clients only test it for emptiness, then fetch /users/{id}/profile-image."""
    return f"upload/profile/{row['id']}" if row.get("profile_image_key") else ""


def user_admin(row: asyncpg.Record) -> dtos.UserAdminResponseDto:
    return dtos.UserAdminResponseDto(
        id=str(row["id"]),
        email=row["email"],
        name=row["name"],
        avatarColor=avatar_color(row),
        createdAt=row["created_at"],
        updatedAt=row["updated_at"],
        deletedAt=row["deleted_at"],
        isAdmin=row["is_admin"],
        license=account_license(row),
        oauthId="",
        profileChangedAt=row["profile_changed_at"],
        profileImagePath=profile_image_path(row),
        quotaSizeInBytes=row["storage_limit_bytes"],
        quotaUsageInBytes=row["storage_used_bytes"] if "storage_used_bytes" in row.keys() else None,
        shouldChangePassword=row["should_change_password"],
        status=user_status(row),
        storageLabel=row["storage_label"],
    )


def user_status(row: asyncpg.Record) -> str:
    if row["deleted_at"] is None:
        return "active"
    return "removing" if "removal_requested" in row.keys() and row["removal_requested"] else "deleted"


def account_license(row: asyncpg.Record) -> dtos.UserLicense | None:
    """The account's license, when the row was read with it (users._ACCOUNT) and it has one."""
    if "license_key" not in row.keys() or row["license_key"] is None:
        return None
    return dtos.UserLicense(licenseKey=row["license_key"], activationKey=row["license_activation_key"],
                            activatedAt=row["license_activated_at"])


def license_response(found: licenses.License) -> dtos.UserLicense:
    return dtos.UserLicense(licenseKey=found.license_key, activationKey=found.activation_key,
                            activatedAt=found.activated_at)


def calendar_heatmap(heatmap: calendar_heatmap_domain.Heatmap) -> dtos.CalendarHeatmapResponseDto:
    return dtos.CalendarHeatmapResponseDto(
        from_=heatmap.start.isoformat(), to=heatmap.end.isoformat(), totalCount=heatmap.total,
        series=[{"date": day.isoformat(), "count": count} for day, count in heatmap.series])


def login(row: asyncpg.Record, token: str) -> dtos.LoginResponseDto:
    return dtos.LoginResponseDto(
        accessToken=token,
        userId=str(row["id"]),
        userEmail=row["email"],
        name=row["name"],
        profileImagePath=profile_image_path(row),
        isAdmin=row["is_admin"],
        shouldChangePassword=row["should_change_password"],
        isOnboarded=row["is_onboarded"],
    )


# Immich's defaults; what a user stored (users.preferences) is merged over them.
DEFAULT_PREFERENCES = {
    "albums": {"defaultAssetOrder": "desc"},
    "cast": {"gCastEnabled": False},
    "download": {"archiveSize": 4 * 1024**3, "includeEmbeddedVideos": False},
    "emailNotifications": {"enabled": True, "albumInvite": True, "albumUpdate": True},
    "folders": {"enabled": False, "sidebarWeb": False},
    "memories": {"enabled": True, "duration": 5},
    "people": {"enabled": True, "sidebarWeb": False, "minimumFaces": 3},
    "purchase": {"hideBuyButtonUntil": "2022-06-06T00:00:00.000Z", "showSupportBadge": True},
    "ratings": {"enabled": False},
    "recentlyAdded": {"sidebarWeb": False},
    "sharedLinks": {"enabled": True, "sidebarWeb": False},
    "tags": {"enabled": False, "sidebarWeb": False},
}


def preferences(row: asyncpg.Record) -> dict:
    stored = row["preferences"]
    if isinstance(stored, str):
        stored = json.loads(stored)
    merged = {}
    for section, defaults in DEFAULT_PREFERENCES.items():
        merged[section] = {**defaults, **{k: v for k, v in (stored or {}).get(section, {}).items() if k in defaults}}
    return merged


def sha1_base64(checksum: str) -> str | None:
    """Immich clients send SHA-1 as 40 hex characters (CLI, web) or base64 (mobile); we compare base64."""
    import base64
    import binascii

    value = checksum.strip()
    try:
        if len(value) == 40:
            return base64.b64encode(bytes.fromhex(value)).decode()
        raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return None
    return value if len(raw) == 20 else None


def user(row: asyncpg.Record) -> dtos.UserResponseDto:
    return dtos.UserResponseDto(id=str(row["id"]), email=row["email"], name=row["name"],
                                avatarColor=avatar_color(row), profileChangedAt=row["profile_changed_at"],
                                profileImagePath=profile_image_path(row))


def album(row: asyncpg.Record, owner: asyncpg.Record, shared_with: Sequence[AlbumUser] = (),
          viewer_id: uuid.UUID | None = None) -> dtos.AlbumResponseDto:
    """`shared_with`: the album's users by name (album_sharing.users_of). Immich lists the owner
    first, then the caller when it is an album user, then the rest in name order."""
    cover = row["effective_cover_id"]
    ordered = sorted(shared_with, key=lambda u: u.user["id"] != viewer_id)  # stable: names keep their order
    dto = dtos.AlbumResponseDto(
        id=str(row["id"]),
        albumName=row["name"],
        description=row["description"] or "",
        albumThumbnailAssetId=None if cover is None else str(cover),
        albumUsers=[dtos.AlbumUserResponseDto(role="owner", user=user(owner))]
        + [dtos.AlbumUserResponseDto(role=u.role, user=user(u.user)) for u in ordered],
        assetCount=row["asset_count"],
        createdAt=row["created_at"],
        updatedAt=row["updated_at"],
        hasSharedLink=False,
        isActivityEnabled=row["is_activity_enabled"],
        shared=bool(shared_with),
        order="desc",
    )
    if row["start_date"] is not None:
        dto.startDate = row["start_date"]
        dto.endDate = row["end_date"]
    return dto


def _utc(value):
    # asyncpg reads timestamptz in UTC already: only other values are moved (this runs per asset).
    if value is None or value.tzinfo is timezone.utc:
        return value
    return value.astimezone(timezone.utc)


def positional_struct(dto: type[msgspec.Struct], leave_out: frozenset[str] = frozenset()) -> type[msgspec.Struct]:
    """A struct that encodes as `dto` does (its field names, in its order, less `leave_out`), built
    by position: for responses of hundreds of items (search pages, sync batches), where a keyword
    construction per item costs several times as much. Not tracked by the garbage collector (such
    structs never hold a cycle, and each tracked one brings the next collection nearer)."""
    return msgspec.defstruct("Fast" + dto.__name__,
                             [(name, Any) for name in dto.__struct_fields__ if name not in leave_out], gc=False)


def _as_utc_wall(wall):
    """Immich's localDateTime: the wall-clock time written as if it were UTC. (Built by the
    constructor: `wall.replace(tzinfo=...)` costs twice as much, and this runs per asset.)"""
    return datetime(wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second, wall.microsecond,
                    timezone.utc)


def _exposure(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds >= 1 or seconds <= 0:
        return f"{seconds:g}"
    return f"1/{round(1 / seconds)}"


def tag(row: asyncpg.Record) -> dtos.TagResponseDto:
    """A tag as Immich's TagResponseDto: its name is the last level of its value (the full path)."""
    from app.domain.tags import name_of

    dto = dtos.TagResponseDto(id=str(row["id"]), name=name_of(row["value"]), value=row["value"],
                              createdAt=_utc(row["created_at"]), updatedAt=_utc(row["updated_at"]))
    if row["color"] is not None:
        dto.color = row["color"]
    if row["parent_id"] is not None:
        dto.parentId = str(row["parent_id"])
    return dto


def asset(view, owner_row=None, people_rows=None) -> dtos.AssetResponseDto:
    """An AssetView (row + file metadata + files) as Immich's AssetResponseDto."""

    row, exif = view.row, view.exif
    dto = dtos.AssetResponseDto(
        id=str(row["id"]),
        ownerId=str(row["owner_id"]),
        checksum=b64(row["checksum_sha1"]),
        type="VIDEO" if row["media_type"] == "video" else "IMAGE",
        originalFileName=row["original_file_name"],
        originalMimeType=row["mime_type"],
        # An upload's stored path is this server's business; an external file's path is the user's own.
        originalPath=row["original_path"] or "",
        fileCreatedAt=_utc(row["taken_at"]),
        fileModifiedAt=_utc(row["file_modified_at"]),
        createdAt=_utc(row["created_at"]),
        updatedAt=_utc(row["updated_at"]),
        localDateTime=_as_utc_wall(row["local_datetime"]),
        duration=row["duration_ms"],
        width=row["width"],
        height=row["height"],
        thumbhash=b64(row["thumbhash"]) or None,
        isFavorite=effective.is_favorite(row["effective_rating"]),
        isArchived=row["visibility"] == "archive",
        isTrashed=row["trashed_at"] is not None,
        isOffline=row["is_offline"],
        isEdited=row["current_version_id"] is not None,
        hasMetadata=exif is not None,
        visibility=row["visibility"],
        livePhotoVideoId=None if row["live_photo_video_id"] is None else str(row["live_photo_video_id"]),
        libraryId=None if row["external_library_id"] is None else str(row["external_library_id"]),
        duplicateId=None if row["duplicate_id"] is None else str(row["duplicate_id"]),
        people=[person(p) for p in people_rows or ()],
        stack=None,
    )
    if owner_row is not None:
        dto.owner = user(owner_row)
    dto.exifInfo = dtos.ExifResponseDto(**exif_fields(row, exif))
    return dto


def strip_metadata(dto: dtos.AssetResponseDto) -> dtos.AssetResponseDto:
    """An asset as a shared link with showMetadata off shows it (Immich's stripMetadata): no EXIF
    (camera, location, description, dates of the file), no people, tags or owner, and no original
    file name (the id, keeping the extension, so a client still knows the format). The fields the
    spec requires stay."""
    extension = dto.originalFileName.rsplit(".", 1)[-1] if "." in dto.originalFileName else ""
    dto.originalFileName = f"{dto.id}.{extension}" if extension else dto.id
    dto.exifInfo = msgspec.UNSET
    dto.people = msgspec.UNSET
    dto.tags = msgspec.UNSET
    dto.owner = msgspec.UNSET
    dto.hasMetadata = False
    return dto


class _NoFile:
    """What an asset with no asset_exif row reads for every file field: nothing."""

    def __getitem__(self, name: str) -> None:
        return None


_NO_FILE = _NoFile()


def exif_fields(row: asyncpg.Record, exif: asyncpg.Record | None) -> dict:
    """The file's metadata with the user's edits on top, in Immich's field names.

    Shared by the asset's exifInfo, the sync stream's AssetExifV1 and search pages (hundreds of
    assets a call: fields are read straight from the row).
    """
    shown = effective.of(row, exif)
    ev = _NO_FILE if exif is None else exif

    original = shown.original_datetime
    if original is not None and original.tzinfo is None:
        original = _as_utc_wall(original)
    modified = None
    if ev["modified_datetime"] is not None:
        modified = join_wall_clock(exif["modified_datetime"], exif["modified_offset_minutes"])
        modified = modified if modified.tzinfo else _as_utc_wall(modified)
    orientation = ev["orientation"]
    # A dict display, not dict(**kwargs): this runs once per asset of a search page or sync batch.
    return {
        "make": ev["make"], "model": ev["model"], "lensModel": ev["lens_model"], "fNumber": ev["f_number"],
        "focalLength": ev["focal_length"], "iso": ev["iso"], "exposureTime": _exposure(ev["exposure_time"]),
        "orientation": None if orientation is None else str(orientation),
        "dateTimeOriginal": _utc(original), "modifyDate": _utc(modified), "timeZone": ev["timezone"],
        "latitude": shown.latitude, "longitude": shown.longitude,
        "city": ev["city"], "state": ev["state"], "country": ev["country"],
        "description": shown.description or "", "rating": shown.rating, "projectionType": ev["projection_type"],
        "exifImageWidth": ev["raw_width"], "exifImageHeight": ev["raw_height"], "fileSizeInByte": row["file_size_bytes"],
    }


def face_box(row: asyncpg.Record) -> dict:
    """A face's box as Immich's corner coordinates in an image of imageWidth x imageHeight."""
    return dict(
        id=str(row["id"]),
        imageWidth=row["image_width"],
        imageHeight=row["image_height"],
        boundingBoxX1=row["box_x"],
        boundingBoxY1=row["box_y"],
        boundingBoxX2=row["box_x"] + row["box_w"],
        boundingBoxY2=row["box_y"] + row["box_h"],
        sourceType="machine-learning" if row["source"] == "automatic" else "manual",
    )


def person(row: asyncpg.Record) -> dtos.PersonResponseDto:
    dto = dtos.PersonResponseDto(
        id=str(row["id"]),
        name=row["name"] or "",
        birthDate=row["birth_date"],
        isHidden=row["is_hidden"],
        isFavorite=row["is_favorite"],
        updatedAt=_utc(row["updated_at"]),
        # Clients build the image URL from the id; an empty path means "no thumbnail yet".
        thumbnailPath="" if row["thumbnail_face_id"] is None else f"/api/people/{row['id']}/thumbnail",
    )
    if row["color"] is not None:
        dto.color = row["color"]
    return dto


def face(row: asyncpg.Record, person_row: asyncpg.Record | None) -> dtos.AssetFaceResponseDto:
    return dtos.AssetFaceResponseDto(**face_box(row), person=None if person_row is None else person(person_row))


# --- Immich request DTOs -> domain commands -------------------------------------------
# One section per concern, so the converters of each stay together.


# --- assets and stacks ---


def asset_patch(dto: dtos.UpdateAssetDto | dtos.AssetBulkUpdateDto) -> AssetPatch:
    """Immich's asset fields as the domain's patch. Fields the domain has no use for (a bulk
    update's relative date shift and time zone) are not applied; its duplicate id is the route's
    (duplicate_id_update)."""
    from msgspec import UNSET, UnsetType

    from app.domain.datetimes import parse_iso

    rating: int | None | UnsetType = UNSET
    if dto.isFavorite is not UNSET:
        rating = effective.rating_for_favorite(dto.isFavorite)
    if dto.rating is not UNSET:  # a rating sent with isFavorite wins, as in Immich
        rating = None if dto.rating is None or dto.rating < 0 else dto.rating
    latitude = longitude = UNSET
    if dto.latitude is not UNSET or dto.longitude is not UNSET:
        # One without the other clears nothing: the domain refuses the pair.
        latitude = None if dto.latitude is UNSET else dto.latitude
        longitude = None if dto.longitude is UNSET else dto.longitude
    when = dto.dateTimeOriginal
    return AssetPatch(
        rating=rating,
        description=dto.description,
        latitude=latitude,
        longitude=longitude,
        original_datetime=UNSET if when is UNSET else parse_iso(when, "dateTimeOriginal"),
        visibility=dto.visibility,
    )


def duplicate_id_update(dto: dtos.AssetBulkUpdateDto) -> tuple[bool, uuid.UUID | None]:
    """(whether the bulk update sets duplicateId, the id or None to clear it)."""
    if dto.duplicateId is msgspec.UNSET:
        return False, None
    return True, None if dto.duplicateId is None else parse_uuid(dto.duplicateId, "duplicateId")


_SEARCH_EXIF_FIELDS = {"make": "make", "model": "model", "lensModel": "lens_model", "city": "city",
                       "state": "state", "country": "country"}
# Applied to the search; a field outside these that carries a value is refused rather than ignored.
_SEARCH_FIELDS = {*_SEARCH_EXIF_FIELDS, "albumIds", "isFavorite", "isNotInAlbum", "visibility", "type",
                  "originalFileName", "description", "takenAfter", "takenBefore", "withDeleted", "order", "page",
                  "size", "rating", "withExif", "withStacked", "withPeople", "checksum", "id", "personIds", "tagIds",
                  "libraryId", "originalPath", "isOffline", "createdAfter", "createdBefore", "updatedAfter",
                  "updatedBefore", "trashedAfter", "trashedBefore", "isMotion", "isEncoded"}
_MEDIA_TYPES = {"IMAGE": "image", "VIDEO": "video"}


def metadata_search_filter(dto: dtos.MetadataSearchDto | dtos.RandomSearchDto | dtos.StatisticsSearchDto,
                           library: uuid.UUID) -> AssetFilter:
    """An Immich search body (metadata, random, statistics: one family of filter fields, each DTO a
    subset) as the domain's asset filter (paging stays with the caller)."""
    import base64

    from msgspec import UNSET

    from app.domain.errors import BadRequest

    def field(name: str):
        return getattr(dto, name, UNSET)  # a field this DTO lacks reads as unset

    unsupported = sorted(name for name in dto.__struct_fields__ if name not in _SEARCH_FIELDS
                         and getattr(dto, name) not in (UNSET, None, False, [], ""))
    if unsupported:
        raise BadRequest(f"Search by {', '.join(unsupported)} is not supported by this server")
    album_ids = [parse_uuid(a, "albumIds", i) for i, a in enumerate(field("albumIds") or [])]
    if field("type") and field("type") not in _MEDIA_TYPES:
        raise BadRequest("type must be IMAGE or VIDEO")
    # As Immich: asking for trashed dates or for offline assets looks at trashed assets too.
    with_deleted = bool(field("withDeleted") or field("trashedAfter") or field("trashedBefore")
                        or field("isOffline") is True)
    f = AssetFilter(
        library_id=library,
        state="all" if with_deleted else "live",
        album_id=album_ids[0] if album_ids else None,
        also_in_albums=album_ids[1:] or None,
        album_filter="not_in_album" if field("isNotInAlbum") else "all",
        media_type=_MEDIA_TYPES.get(field("type")) if field("type") else None,
        visibility=field("visibility") or None,
        exif_equals={column: field(key) for key, column in _SEARCH_EXIF_FIELDS.items() if field(key)},
        file_name_contains=field("originalFileName") or None,
        description_contains=field("description") or None,
        taken_after=field("takenAfter") or None,
        taken_before=field("takenBefore") or None,
    )
    if field("isFavorite") is not UNSET:
        f.ratings = effective.ratings_for_favorite(field("isFavorite"))
    if field("rating") not in (UNSET, None):
        f.ratings = [field("rating")]
    if field("personIds"):
        f.person_ids = [parse_uuid(p) for p in field("personIds")]
    if field("tagIds") is None:  # null, unlike leaving it out, asks for the assets with no tag (Immich)
        f.untagged = True
    elif field("tagIds"):
        f.tag_ids = [parse_uuid(t, "tagIds", i) for i, t in enumerate(field("tagIds"))]
    if field("id"):
        f.ids = [parse_uuid(field("id"))]
    if field("libraryId") is None:  # null, unlike leaving it out, asks for uploads only (Immich)
        f.uploads_only = True
    elif field("libraryId"):
        f.external_library_id = parse_uuid(field("libraryId"), "libraryId")
    if field("originalPath"):
        f.original_path_contains = field("originalPath")
    if field("isOffline") is not UNSET:
        f.is_offline = field("isOffline")
    for name, attribute in (("createdAfter", "created_after"), ("createdBefore", "created_before"),
                            ("updatedAfter", "updated_after"), ("updatedBefore", "updated_before"),
                            ("trashedAfter", "trashed_after"), ("trashedBefore", "trashed_before")):
        if field(name):
            setattr(f, attribute, field(name))
    for name, attribute in (("isMotion", "is_motion"), ("isEncoded", "is_encoded")):
        if field(name) not in (UNSET, None):
            setattr(f, attribute, field(name))
    if field("checksum"):
        sha1 = sha1_base64(field("checksum"))
        if sha1 is None:
            raise BadRequest("checksum must be a SHA-1 in hex or base64")
        f.checksum_sha1 = base64.b64decode(sha1)
    return f


# --- albums ---


def album_patch(dto: dtos.UpdateAlbumDto) -> AlbumPatch:
    """order is accepted and kept by nothing: there is no album order here."""
    patch = AlbumPatch()
    if dto.albumName is not msgspec.UNSET:
        patch.name = dto.albumName
    if dto.description is not msgspec.UNSET:
        patch.description = dto.description
    if dto.albumThumbnailAssetId is not msgspec.UNSET:
        patch.album_cover_asset_id = parse_uuid(dto.albumThumbnailAssetId)
    if dto.isActivityEnabled is not msgspec.UNSET:
        patch.is_activity_enabled = dto.isActivityEnabled
    return patch


# --- people and faces ---


def person_patch(dto: dtos.PersonCreateDto | dtos.PersonUpdateDto | dtos.PeopleUpdateItem) -> PersonPatch:
    """Immich's person fields as the domain's patch. Immich clears a name with "" (or blanks);
    its featureFaceAssetId names an asset, so the route resolves it to a face itself."""
    name = dto.name
    if isinstance(name, str) and not name.strip():
        name = None
    return PersonPatch(name=name, birth_date=dto.birthDate, is_favorite=dto.isFavorite, is_hidden=dto.isHidden,
                       color=dto.color)


# --- users, libraries, keys, sync ---


def account_patch(dto: dtos.UserUpdateMeDto) -> users.AccountPatch:
    return users.AccountPatch(email=dto.email, name=dto.name, avatar_color=dto.avatarColor, password=dto.password)


def user_admin_patch(dto: dtos.UserAdminUpdateDto) -> users.UserAdminPatch:
    """An administrator's account change in the domain's terms."""
    return users.UserAdminPatch(
        avatar_color=dto.avatarColor,
        email=dto.email,
        name=dto.name,
        password=dto.password,
        is_admin=dto.isAdmin,
        storage_limit_bytes=dto.quotaSizeInBytes,
        storage_label=dto.storageLabel,
        should_change_password=dto.shouldChangePassword,
        pin_code=dto.pinCode,
    )


def new_user_settings(dto: dtos.UserAdminCreateDto) -> users.UserAdminPatch:
    """What a new account gets beyond its e-mail, name, password and admin flag (which create it)."""
    return users.UserAdminPatch(
        avatar_color=dto.avatarColor,
        storage_limit_bytes=dto.quotaSizeInBytes,
        storage_label=dto.storageLabel,
        should_change_password=dto.shouldChangePassword,
        pin_code=dto.pinCode,
    )


def preferences_update(current: dict, dto: dtos.UserPreferencesUpdateDto) -> dict:
    """The preferences with what the client sent laid over them. Sections and keys this server
    does not keep (see DEFAULT_PREFERENCES) are dropped, so the stored document stays one the
    preferences response can show."""
    updated = {section: dict(values) for section, values in current.items()}
    for section, values in msgspec.to_builtins(dto).items():  # sections the client left out are absent
        if section in updated:
            updated[section].update({k: v for k, v in values.items() if k in updated[section]})
    return updated


# --- partners ---


def partner(row: asyncpg.Record) -> dtos.PartnerResponseDto:
    """A partnership as Immich shows it: the other account's summary, and the receiver's timeline choice."""
    summary = user(row)
    return dtos.PartnerResponseDto(id=summary.id, email=summary.email, name=summary.name,
                                   avatarColor=summary.avatarColor, profileChangedAt=summary.profileChangedAt,
                                   profileImagePath=summary.profileImagePath, inTimeline=row["in_timeline"])


# --- activities ---


def activity(item: Activity) -> dtos.ActivityResponseDto:
    """A comment or a like, with its author; a like's comment is null, as in Immich."""
    row = item.row
    return dtos.ActivityResponseDto(
        id=str(row["id"]),
        assetId=None if row["asset_id"] is None else str(row["asset_id"]),
        createdAt=row["created_at"],
        type=item.kind,
        user=user(item.author),
        comment=row["comment"],
    )


def session(row, current: uuid.UUID | None) -> dtos.SessionResponseDto:
    """A session as Immich shows it; `current` is the caller's own session (None: none is, as an
    administrator sees another user's)."""
    return dtos.SessionResponseDto(
        id=str(row["id"]), createdAt=row["created_at"].isoformat(), updatedAt=row["updated_at"].isoformat(),
        expiresAt=row["expires_at"].isoformat() if row["expires_at"] else msgspec.UNSET,
        current=current is not None and row["id"] == current, deviceOS=row["device_os"],
        deviceType=row["device_type"], appVersion=row["app_version"], isPendingSyncReset=row["is_pending_sync_reset"],
    )


def web_address(base_url) -> str:
    """The address an Immich client reached this listener at (a request's base_url), which the
    e-mails link to when Immich's external domain is not set."""
    return str(base_url).rstrip("/")


def notification(row: dict) -> dtos.NotificationDto:
    """A notification as Immich shows it: no description, data or readAt when it has none."""
    return dtos.NotificationDto(
        id=str(row["id"]), createdAt=row["created_at"], level=row["level"], type=row["type"], title=row["title"],
        description=msgspec.UNSET if row["description"] is None else row["description"],
        data=msgspec.UNSET if row["data"] is None else row["data"],
        readAt=msgspec.UNSET if row["read_at"] is None else row["read_at"],
    )
