"""Field conversions between the domain's rows and Immich DTOs, one function per shape."""

from __future__ import annotations

import json

import asyncpg

from compat import dtos

def b64(value: bytes | None) -> str:
    """Immich checksums are base64 SHA-1; a missing one is an empty string."""
    import base64

    return "" if value is None else base64.b64encode(value).decode()


AVATAR_COLORS = ("primary", "pink", "red", "yellow", "blue", "green", "purple", "orange", "gray", "amber")


def avatar_color(row: asyncpg.Record) -> str:
    if row["avatar_color"] in AVATAR_COLORS:
        return row["avatar_color"]
    return AVATAR_COLORS[row["id"].int % len(AVATAR_COLORS)]  # stable per user


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
        license=None,
        oauthId="",
        profileChangedAt=row["profile_changed_at"],
        profileImagePath="",
        quotaSizeInBytes=row["storage_limit_bytes"],
        quotaUsageInBytes=row["storage_used_bytes"] if "storage_used_bytes" in row.keys() else None,
        shouldChangePassword=row["should_change_password"],
        status="active" if row["deleted_at"] is None else "deleted",
        storageLabel=row["storage_label"],
    )


def login(row: asyncpg.Record, token: str) -> dtos.LoginResponseDto:
    return dtos.LoginResponseDto(
        accessToken=token,
        userId=str(row["id"]),
        userEmail=row["email"],
        name=row["name"],
        profileImagePath="",
        isAdmin=row["is_admin"],
        shouldChangePassword=row["should_change_password"],
        isOnboarded=True,
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
                                profileImagePath="")


def album(row: asyncpg.Record, owner: asyncpg.Record) -> dtos.AlbumResponseDto:
    cover = row["effective_cover_id"]
    dto = dtos.AlbumResponseDto(
        id=str(row["id"]),
        albumName=row["name"],
        description=row["description"] or "",
        albumThumbnailAssetId=None if cover is None else str(cover),
        albumUsers=[dtos.AlbumUserResponseDto(role="owner", user=user(owner))],
        assetCount=row["asset_count"],
        createdAt=row["created_at"],
        updatedAt=row["updated_at"],
        hasSharedLink=False,
        isActivityEnabled=False,
        shared=False,
        order="desc",
    )
    if row["start_date"] is not None:
        dto.startDate = row["start_date"]
        dto.endDate = row["end_date"]
    return dto
