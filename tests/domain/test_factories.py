"""The factories make rows the schema accepts, linked the way the domain links them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.db import engine as db
from tests.domain import factories as f


async def test_user_has_a_default_library(user):
    library = await db.fetchrow("SELECT * FROM libraries WHERE id = $1", user["default_library_id"])
    assert library["owner_id"] == user["id"]


async def test_asset_capture_time_from_an_aware_time(user):
    taken = datetime(2023, 6, 1, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    asset = await f.new_asset(user, taken=taken, file_rating=3, exif={"make": "Canon"})
    assert asset["local_datetime"] == datetime(2023, 6, 1, 10, 30)
    assert asset["local_offset_minutes"] == 120
    assert asset["captured_at"] == taken
    exif = await db.fetchrow("SELECT * FROM asset_exif WHERE asset_id = $1", asset["id"])
    assert exif["make"] == "Canon" and asset["file_rating"] == 3


async def test_every_kind_of_row(user):
    asset = await f.new_asset(user, media_type="video", event="asset_created")
    assert asset["mime_type"] == "video/mp4"
    album = await f.new_album(user, event="album_created")
    link = await f.new_album_asset(album, asset, event="album_asset_added")
    person = await f.new_person(user)
    face = await f.new_face(asset, person=person)
    stack = await f.new_stack(user, [asset, await f.new_asset(user)])
    _, secret = await f.new_api_key(user)
    _, token = await f.new_session(user)
    task = await f.new_task(asset)
    await f.new_asset_file(asset, "preview")
    assert link["library_id"] == album["library_id"] == face["library_id"] == user["default_library_id"]
    assert face["person_id"] == person["id"] and stack["primary_asset_id"] == asset["id"]
    assert secret.startswith("apikey_") and token and task["status"] == "pending"
    kinds = await db.fetch("SELECT entity_type FROM events WHERE entity_id = ANY($1::uuid[])",
                           [asset["id"], album["id"], link["id"]])
    assert sorted(r["entity_type"] for r in kinds) == ["album", "album_asset", "asset"]


async def test_an_unknown_column_is_refused(user):
    import pytest

    with pytest.raises(TypeError, match="no column"):
        await f.new_asset(user, favourite=True)


async def test_piccolo_tables_reach_the_tiers_database(user):
    from app.db import tables as t

    found = await t.User.select(t.User.email).where(t.User.id == user["id"]).first()
    assert found == {"email": user["email"]}
    async with db.transaction():  # a Piccolo query inside our transaction shares its connection
        await t.Album.insert(t.Album(library_id=user["default_library_id"], owner_id=user["id"], name="Piccolo"))
        assert await db.fetchval("SELECT count(*) FROM albums WHERE owner_id = $1", user["id"]) == 1
