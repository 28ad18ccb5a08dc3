"""The Immich response mapping (compat/mapping.py): pure conversions, and DTOs built from real rows
(the rows the routes pass in), checked against the Immich 3.1 component schemas."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from app.db import engine as db
from app.domain import asset_views, users
from app.domain.albums import ALBUM_VIEW
from compat import mapping, sync_mapping
from tests.domain import factories as f
from tests.domain.immich import conforms

SHA1 = hashlib.sha1(b"photo").digest()


# --- pure conversions ---------------------------------------------------------------------


@pytest.mark.parametrize("given, expected", [
    (SHA1.hex(), base64.b64encode(SHA1).decode()),
    (SHA1.hex().upper(), base64.b64encode(SHA1).decode()),
    (base64.b64encode(SHA1).decode(), base64.b64encode(SHA1).decode()),
    (f"  {SHA1.hex()}\n", base64.b64encode(SHA1).decode()),
    ("zz" * 20, None),  # 40 characters, not hex
    (base64.b64encode(b"short").decode(), None),  # base64 of the wrong length
    ("not base64!", None),
    ("", None),
])
def test_sha1_base64(given, expected):
    assert mapping.sha1_base64(given) == expected


@pytest.mark.parametrize("seconds, shown", [
    (None, None), (0.004, "1/250"), (1 / 3, "1/3"), (0.5, "1/2"), (1, "1"), (2.5, "2.5"), (30, "30"), (0, "0"),
])
def test_exposure(seconds, shown):
    assert mapping._exposure(seconds) == shown


def test_b64():
    assert mapping.b64(None) == "" and mapping.b64(b"\x00\x01") == "AAE="


def test_avatar_colour_is_the_stored_one_or_stable_per_user():
    uid = uuid.uuid4()
    assert mapping.avatar_color({"id": uid, "avatar_color": "green"}) == "green"
    derived = mapping.avatar_color({"id": uid, "avatar_color": "not a colour"})
    assert derived in mapping.AVATAR_COLORS
    assert derived == mapping.avatar_color({"id": uid, "avatar_color": None})


def test_preferences_are_the_defaults_with_known_stored_values_over_them():
    stored = {"memories": {"enabled": False, "bogus": 1}, "unknown_section": {"x": 1}}
    merged = mapping.preferences({"preferences": stored})
    assert merged["memories"] == {"enabled": False, "duration": 5}
    assert "unknown_section" not in merged and merged["people"] == mapping.DEFAULT_PREFERENCES["people"]
    assert mapping.preferences({"preferences": '{"ratings": {"enabled": true}}'})["ratings"] == {"enabled": True}
    conforms("UserPreferencesResponseDto", mapping.preferences({"preferences": {}}))


def test_parse_uuid():
    from litestar.exceptions import ValidationException

    value = uuid.uuid4()
    assert mapping.parse_uuid(str(value)) == value
    for bad in ("asset_abc", "", None, str(uuid.uuid1())):  # Immich takes UUID v4 only
        with pytest.raises(ValidationException) as refused:
            mapping.parse_uuid(bad)
        assert refused.value.extra[0]["message"] == "Invalid UUID"


# --- users --------------------------------------------------------------------------------


async def test_user_admin_and_login(user):
    await f.new_asset(user, file_size_bytes=4321)
    row = await users.user_by_id(user["id"])
    body = conforms("UserAdminResponseDto", mapping.user_admin(row))
    assert (body["status"], body["quotaUsageInBytes"], body["quotaSizeInBytes"]) == ("active", 4321, None)
    assert body["id"] == str(user["id"]) and body["avatarColor"] in mapping.AVATAR_COLORS
    conforms("UserResponseDto", mapping.user(row))
    login = conforms("LoginResponseDto", mapping.login(row, "token"))
    assert (login["accessToken"], login["userId"]) == ("token", str(user["id"]))


async def test_a_deleted_user_without_usage():
    gone = await f.new_user(deleted_at=datetime.now(timezone.utc), storage_limit_bytes=10**9, is_admin=True)
    body = conforms("UserAdminResponseDto", mapping.user_admin(gone))  # a plain row: no usage column
    assert (body["status"], body["quotaUsageInBytes"], body["isAdmin"]) == ("deleted", None, True)


# --- assets -------------------------------------------------------------------------------


async def test_a_bare_asset(user):
    row = await f.new_asset(user, taken=datetime(2023, 7, 1, 9, 15))  # naive: no known offset
    body = conforms("AssetResponseDto", mapping.asset(await asset_views.view(row)))
    assert body["id"] == str(row["id"]) and body["type"] == "IMAGE" and body["hasMetadata"] is False
    assert body["checksum"] == base64.b64encode(row["checksum_sha1"]).decode()
    # Without a known offset the wall clock is given as if it were UTC, in both fields.
    assert body["localDateTime"].startswith("2023-07-01T09:15:00") and body["fileCreatedAt"] == body["localDateTime"]
    assert body["exifInfo"]["fileSizeInByte"] == row["file_size_bytes"] and body["exifInfo"]["make"] is None
    assert "owner" not in body and body["people"] == []


async def test_an_asset_with_file_metadata_owner_and_people(user):
    row = await f.new_asset(
        user, taken=datetime(2023, 7, 1, 9, 15, tzinfo=timezone(timedelta(hours=-5))),
        file_rating=5, visibility="archive",
        exif={"make": "Sony", "model": "A7", "f_number": 2.8, "iso": 400, "exposure_time": 0.01, "orientation": 1,
              "original_datetime": datetime(2023, 7, 1, 9, 15), "original_offset_minutes": -300,
              "latitude": 40.7, "longitude": -74.0, "city": "New York", "description": "Skyline"},
    )
    person = await f.new_person(user, name="Ann")
    owner = await users.user_by_id(user["id"])
    body = conforms("AssetResponseDto", mapping.asset(await asset_views.view(row), owner, [person]))
    assert body["fileCreatedAt"].startswith("2023-07-01T14:15:00")  # the instant, in UTC
    assert body["localDateTime"].startswith("2023-07-01T09:15:00")  # the wall clock
    assert body["isFavorite"] is True and body["isArchived"] is True and body["hasMetadata"] is True
    exif = body["exifInfo"]
    assert (exif["make"], exif["exposureTime"], exif["orientation"], exif["rating"]) == ("Sony", "1/100", "1", 5)
    assert exif["dateTimeOriginal"].startswith("2023-07-01T14:15:00") and exif["description"] == "Skyline"
    assert body["owner"]["id"] == str(user["id"]) and [p["name"] for p in body["people"]] == ["Ann"]


async def test_user_edits_show_over_the_file(user):
    row = await f.new_asset(user, rating=1, user_description="mine", user_latitude=1.0, user_longitude=2.0,
                            user_original_datetime=datetime(2020, 1, 2, 3, 4), user_original_offset_minutes=60,
                            trashed_at=datetime.now(timezone.utc), media_type="video",
                            file_rating=5, exif={"description": "file", "latitude": 9.0, "longitude": 9.0})
    body = conforms("AssetResponseDto", mapping.asset(await asset_views.view(row)))
    exif = body["exifInfo"]
    assert (exif["rating"], exif["description"], exif["latitude"], exif["longitude"]) == (1, "mine", 1.0, 2.0)
    assert exif["dateTimeOriginal"].startswith("2020-01-02T02:04:00")
    assert body["isFavorite"] is False and body["isTrashed"] is True and body["type"] == "VIDEO"
    assert body["duration"] is not None


# --- albums, people, faces ----------------------------------------------------------------


async def album_row(album_id):
    return await db.fetchrow(ALBUM_VIEW + " WHERE al.id = $1", album_id)


async def test_albums_empty_and_with_assets(user):
    owner = await users.user_by_id(user["id"])
    empty = await f.new_album(user, name="Empty")
    body = conforms("AlbumResponseDto", mapping.album(await album_row(empty["id"]), owner))
    assert (body["assetCount"], body["albumThumbnailAssetId"], body["description"]) == (0, None, "")
    assert "startDate" not in body and body["albumUsers"][0]["role"] == "owner"

    full = await f.new_album(user, name="Trip", description="Summer")
    old = await f.new_asset(user, taken=datetime(2022, 6, 1, 10, 0))
    new = await f.new_asset(user, taken=datetime(2022, 6, 9, 18, 0))
    trashed = await f.new_asset(user, taken=datetime(2022, 7, 1), trashed_at=datetime.now(timezone.utc))
    for asset in (old, new, trashed):
        await f.new_album_asset(full, asset)
    body = conforms("AlbumResponseDto", mapping.album(await album_row(full["id"]), owner))
    assert (body["assetCount"], body["albumThumbnailAssetId"]) == (2, str(new["id"]))
    assert body["startDate"].startswith("2022-06-01") and body["endDate"].startswith("2022-06-09")


async def test_an_albums_activity_flag_reaches_both_its_response_and_its_sync_line(user):
    owner = await users.user_by_id(user["id"])
    album = await f.new_album(user, name="Quiet")
    for enabled in (True, False):
        await db.execute("UPDATE albums SET is_activity_enabled = $2 WHERE id = $1", album["id"], enabled)
        row = await album_row(album["id"])
        assert mapping.album(row, owner).isActivityEnabled is enabled
        assert conforms("SyncAlbumV2", sync_mapping.album_v2(row))["isActivityEnabled"] is enabled


async def test_people_and_faces(user):
    asset = await f.new_asset(user)
    unnamed = await f.new_person(user, name=None)
    named = await f.new_person(user, name="Bo", birth_date=date(2001, 2, 3), is_favorite=True, color="#00ff00")
    face = await f.new_face(asset, person=named, source="manual")
    named = await db.fetchrow("UPDATE people SET thumbnail_face_id = $2 WHERE id = $1 RETURNING *",
                              named["id"], face["id"])
    body = conforms("PersonResponseDto", mapping.person(unnamed))
    assert (body["name"], body["thumbnailPath"]) == ("", "")
    body = conforms("PersonResponseDto", mapping.person(named))
    assert body["thumbnailPath"] == f"/api/people/{named['id']}/thumbnail" and body["color"] == "#00ff00"
    assert body["birthDate"] == "2001-02-03"
    body = conforms("AssetFaceResponseDto", mapping.face(face, named))
    assert body["sourceType"] == "manual" and body["person"]["id"] == str(named["id"])
    assert (body["boundingBoxX1"], body["boundingBoxY1"], body["boundingBoxX2"], body["boundingBoxY2"]) == (
        100, 200, 400, 600)
    assert conforms("AssetFaceResponseDto", mapping.face(await f.new_face(asset), None))["person"] is None


@pytest.mark.parametrize("body, state", [
    ({}, "live"),
    ({"withDeleted": True}, "all"),
    ({"isOffline": True}, "all"),  # Immich: asking for offline assets looks in the trash too
    ({"isOffline": False}, "live"),  # ...but isOffline false does not
    ({"trashedAfter": datetime(2024, 1, 1, tzinfo=timezone.utc)}, "all"),
    ({"trashedBefore": datetime(2024, 1, 1, tzinfo=timezone.utc)}, "all"),
])
def test_search_bodies_that_look_in_the_trash(body, state):
    from compat import dtos

    assert mapping.metadata_search_filter(dtos.MetadataSearchDto(**body), uuid.uuid4()).state == state
