"""The sync stream's batch encoders (compat/sync_encode.py) write, for every type of the caller's own
upserts, the very bytes the per-row mapping (compat/sync_mapping.py through routes/sync.py's
_upsert_data and _line) writes for the same rows, on a library varied in every field they read."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from app.db import engine as db
from app.domain import sync
from compat import sync_encode, sync_shared
from compat.routes import sync as routes
from tests.domain import factories as f

# (own upsert type, change-log kind) as routes/sync.py walks them
OWN = [("AssetV2", "asset"), ("AssetExifV1", "exif"), ("AlbumV2", "album"), ("AlbumV1", "album"),
       ("AlbumToAssetV1", "album_asset"), ("StackV1", "stack"), ("PersonV1", "person"), ("AssetFaceV2", "face")]


def _per_row(entity_type: str, batch: list[sync.Change]) -> bytes:
    return b"".join(routes._line(entity_type, routes._upsert_data(entity_type, c.row),
                                 routes._ack(entity_type, c.cursor)) for c in batch)


async def _varied_library(user) -> None:
    library_id = user["default_library_id"]
    odd = 'Ünïcode "quoted" \\ back\tslash \u2028 \U0001f4f7 \x01'
    plus = timezone(timedelta(hours=5, minutes=30))
    minus = timezone(timedelta(hours=-8))
    plain = await f.new_asset(user, event="asset_created")
    video = await f.new_asset(user, media_type="video", thumbhash=b"\x01\x02\x03" * 9, event="asset_created",
                              exif={"fps": 29.97, "make": "Apple", "model": odd, "exposure_time": 2.5,
                                    "orientation": 1, "original_datetime": datetime(2020, 2, 29, 23, 59, 59, 5),
                                    "original_offset_minutes": -480, "timezone": "America/Los_Angeles"})
    await f.new_asset(user, taken=datetime(2019, 7, 1, 12, 0, 0, 123456, tzinfo=plus), rating=5,
                      original_file_name=odd, thumbhash=b"", event="asset_created",
                      exif={"exposure_time": 0.004, "f_number": 1.8, "focal_length": 4.25, "iso": 64,
                            "latitude": -33.9, "longitude": 151.2, "altitude": 12.0, "city": "Sydney",
                            "state": odd, "country": "Australia", "description": "", "projection_type": "EQUIRECT",
                            "raw_width": 8000, "raw_height": 6000, "lens_model": "iPhone back camera",
                            "original_datetime": datetime(2019, 7, 1, 12, 0, 0, 123000),
                            "modified_datetime": datetime(2019, 7, 2, 8, 0), "modified_offset_minutes": 330})
    await f.new_asset(user, taken=datetime(2001, 1, 1, 0, 0, tzinfo=minus), file_rating=5, rating=1,
                      trashed_at=datetime(2024, 3, 3, 3, 3, 3, 999999, tzinfo=timezone.utc),
                      user_description=odd, user_latitude=1.5, user_longitude=-2.25,
                      user_original_datetime=datetime(1999, 12, 31, 23, 59), user_original_offset_minutes=60,
                      event="asset_created", exif={"description": "camera's", "latitude": 50.0, "longitude": 8.0,
                                                   "exposure_time": 0.0, "modified_datetime": datetime(2002, 2, 2)})
    await f.new_asset(user, taken=datetime(1970, 1, 1), file_rating=5, visibility="archive", event="asset_created",
                      user_original_datetime=datetime(1980, 6, 6, 6, 6, 6), user_description="",
                      live_photo_video_id=video["id"], exif={"orientation": 8, "description": "kept?"})
    await f.new_asset(user, visibility="hidden", event="asset_created", exif={})
    await f.new_asset(user, visibility="locked", event="asset_created", exif={"make": "Locked"})
    stacked = [await f.new_asset(user, event="asset_created") for _ in range(2)]
    await f.new_stack(user, stacked, event="stack_created")
    await f.new_stack(user, [plain], primary_asset_id=None, event="stack_created")
    for asset_id in [r["id"] for r in await db.fetch("SELECT id FROM assets WHERE library_id = $1", library_id)]:
        await f.record_event("metadata", asset_id, "asset_updated", library_id=library_id, owner_id=user["id"])
    # an asset changed twice comes once, at its newest event
    await f.record_event("asset", plain["id"], "asset_updated", library_id=library_id, owner_id=user["id"])

    album = await f.new_album(user, description=None, event="album_created")
    await f.new_album(user, name=odd, description=odd, is_activity_enabled=False, event="album_created")
    for asset in (plain, video, *stacked):
        await f.new_album_asset(album, asset, event="album_asset_added")
    friend = await f.new_user()
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO album_users (album_id, user_id, role) VALUES ($1, $2, 'editor')",
                           album["id"], friend["id"])

    named = await f.new_person(user, name=odd, birth_date=date(1990, 5, 17), color="#ff0000", is_favorite=True,
                               event="person_created")
    await f.new_person(user, name=None, is_hidden=True, event="person_created")
    await f.new_face(plain, person=named, event="face_created")
    await f.new_face(video, source="manual", box_x=0, box_y=7, box_w=1, box_h=2, event="face_created")


async def test_every_own_upsert_type_encodes_as_the_per_row_mapping(user, monkeypatch):
    monkeypatch.setattr(sync, "BATCH", 3)  # several batches, the last short
    await _varied_library(user)
    library_id = user["default_library_id"]
    for shows_locked in (False, True):
        snap = await sync.snapshot(shows_locked=shows_locked)
        for entity_type, kind in OWN:
            batches = [b async for b in snap.change_batches(kind, library_id, None)]
            assert sum(len(b) for b in batches) > 0, entity_type
            for batch in batches:
                assert sync_encode.upserts(entity_type, batch, routes._upsert_data) == _per_row(entity_type, batch)


async def test_album_users_of_a_batch_are_each_albums_users(user):
    await _varied_library(user)
    snap = await sync.snapshot()
    albums = [c.row for b in [b async for b in snap.change_batches("album", user["default_library_id"], None)]
              for c in b]
    assert len(albums) == 2
    per_album = [await sync_shared.album_users_v1(album) for album in albums]
    assert await sync_shared.albums_users_v1(albums) == per_album
    assert [len(users) for users in per_album] == [2, 1]
    assert await sync_shared.albums_users_v1([]) == []
