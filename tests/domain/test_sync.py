"""The sync stream's reader (app/domain/sync.py) on real change-log rows, and the sync mapping
(compat/sync_mapping.py) of the rows it yields, checked against the Immich schemas."""

from __future__ import annotations

import uuid

from app.db import engine as db
from app.domain import sync
from compat import sync_mapping
from tests.domain import factories as f
from tests.domain.immich import conforms


async def changes(kind, library_id, after=None, *, deletes=False, snapshot=None):
    snap = snapshot or await sync.snapshot()
    return [c async for c in snap.changes(kind, library_id, after, deletes=deletes)]


async def test_each_entity_comes_once_at_its_newest_event(user, library_id):
    a1 = await f.new_asset(user, event="asset_created")
    a2 = await f.new_asset(user, event="asset_created")
    await f.record_event("asset", a1["id"], "asset_updated", library_id=library_id, owner_id=user["id"])
    got = await changes("asset", library_id)
    assert [c.entity_id for c in got] == [a2["id"], a1["id"]]
    assert got[0].cursor < got[1].cursor and all(c.row is not None for c in got)
    assert got[1].row["id"] == str(a1["id"])  # the asset line's ids come as text


async def test_gone_entities_are_deletes_and_live_ones_upserts(user, library_id):
    keep = await f.new_asset(user, event="asset_created")
    gone = await f.new_asset(user, event="asset_created")
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM assets WHERE id = $1", gone["id"])
    await f.record_event("asset", gone["id"], "asset_deleted", library_id=library_id, owner_id=user["id"])
    assert [c.entity_id for c in await changes("asset", library_id)] == [keep["id"]]
    deletes = await changes("asset", library_id, deletes=True)
    assert [(c.entity_id, c.row) for c in deletes] == [(gone["id"], None)]


async def test_after_a_cursor_only_later_changes(user, library_id):
    first = await f.new_asset(user, event="asset_created")
    (seen,) = await changes("asset", library_id)
    second = await f.new_asset(user, event="asset_created")
    assert [c.entity_id for c in await changes("asset", library_id, seen.cursor)] == [second["id"]]
    assert seen.entity_id == first["id"]


async def test_a_stream_stops_at_its_snapshot(user, library_id):
    before = await f.new_asset(user, event="asset_created")
    snap = await sync.snapshot()
    await f.new_asset(user, event="asset_created")
    assert [c.entity_id for c in await changes("asset", library_id, snapshot=snap)] == [before["id"]]


async def test_other_libraries_are_not_seen(user, library_id):
    other = await f.new_user()
    await f.new_asset(other, event="asset_created")
    own_second_library = await f.new_library(user)
    await f.new_asset(user, library_id=own_second_library["id"], event="asset_created")
    assert await changes("asset", library_id) == []


async def test_batches_page_through_the_whole_log(user, library_id, monkeypatch):
    monkeypatch.setattr(sync, "BATCH", 3)
    made = [await f.new_asset(user, event="asset_created") for _ in range(8)]
    got = await changes("asset", library_id)
    assert [c.entity_id for c in got] == [a["id"] for a in made]


async def test_asset_lines_conform_and_favorite_follows_the_effective_rating(user, library_id):
    await f.new_asset(user, rating=5, event="asset_created")
    await f.new_asset(user, file_rating=5, event="asset_created")
    await f.new_asset(user, rating=2, file_rating=5, event="asset_created")
    await f.new_asset(user, media_type="video", trashed_at=f._BASE_TIME, event="asset_created")
    lines = [conforms("SyncAssetV2", sync_mapping.asset_v2(c.row)) for c in await changes("asset", library_id)]
    assert [line["isFavorite"] for line in lines] == [True, True, False, False]
    assert lines[3]["type"] == "VIDEO" and lines[3]["deletedAt"] is not None
    assert lines[0]["ownerId"] == str(user["id"]) and lines[0]["deletedAt"] is None


async def test_exif_lines_conform_with_and_without_file_metadata(user, library_id):
    with_exif = await f.new_asset(user, exif={"make": "Canon", "exposure_time": 0.004, "orientation": 6,
                                              "latitude": 59.9, "longitude": 10.7, "city": "Oslo"})
    bare = await f.new_asset(user)
    for asset in (with_exif, bare):
        await f.record_event("metadata", asset["id"], "asset_updated", library_id=library_id, owner_id=user["id"])
    lines = [conforms("SyncAssetExifV1", sync_mapping.asset_exif_v1_flat(c.row))
             for c in await changes("exif", library_id)]
    assert [line["assetId"] for line in lines] == [str(with_exif["id"]), str(bare["id"])]
    assert (lines[0]["make"], lines[0]["exposureTime"], lines[0]["orientation"], lines[0]["city"]) == (
        "Canon", "1/250", "6", "Oslo")
    assert lines[1]["make"] is None and lines[1]["fileSizeInByte"] == bare["file_size_bytes"]


async def test_user_edits_win_over_the_file_in_exif_lines(user, library_id):
    asset = await f.new_asset(user, user_description="mine", user_latitude=1.5, user_longitude=2.5,
                              exif={"description": "camera's", "latitude": 50.0, "longitude": 8.0})
    await f.record_event("metadata", asset["id"], "asset_updated", library_id=library_id, owner_id=user["id"])
    (change,) = await changes("exif", library_id)
    line = conforms("SyncAssetExifV1", sync_mapping.asset_exif_v1_flat(change.row))
    assert (line["description"], line["latitude"], line["longitude"]) == ("mine", 1.5, 2.5)


async def test_album_stack_person_and_face_lines_conform(user, library_id):
    older = await f.new_asset(user, taken=f._BASE_TIME)
    newer = await f.new_asset(user)
    album = await f.new_album(user, description=None, event="album_created")
    for asset in (older, newer):
        await f.new_album_asset(album, asset, event="album_asset_added")
    stack = await f.new_stack(user, [older, newer], primary_asset_id=None, event="stack_created")
    person = await f.new_person(user, birth_date=__import__("datetime").date(1990, 5, 17), color="#ff0000",
                                event="person_created")
    face = await f.new_face(newer, person=person, event="face_created")

    (a,) = await changes("album", library_id)
    line = conforms("SyncAlbumV2", sync_mapping.album_v2(a.row))
    assert line["thumbnailAssetId"] == str(newer["id"]) and line["description"] == ""
    links = await changes("album_asset", library_id)
    assert {(c.row["album_id"], c.row["asset_id"]) for c in links} == {(album["id"], older["id"]),
                                                                       (album["id"], newer["id"])}
    (s,) = await changes("stack", library_id)
    line = conforms("SyncStackV1", sync_mapping.stack_v1(s.row))
    assert line["primaryAssetId"] == str(newer["id"]) and s.entity_id == stack["id"]  # newest, with none set
    (p,) = await changes("person", library_id)
    line = conforms("SyncPersonV1", sync_mapping.person_v1(p.row))
    assert line["birthDate"].startswith("1990-05-17") and line["color"] == "#ff0000"
    (fc,) = await changes("face", library_id)
    line = conforms("SyncAssetFaceV2", sync_mapping.asset_face_v2(fc.row))
    assert (line["boundingBoxX2"], line["boundingBoxY2"]) == (face["box_x"] + face["box_w"],
                                                              face["box_y"] + face["box_h"])
    assert line["personId"] == str(person["id"]) and line["sourceType"] == "machine-learning"


async def test_user_lines_conform(user):
    from app.domain import users

    await f.new_asset(user, file_size_bytes=12345)
    row = await users.user_by_id(user["id"])
    mine = conforms("SyncAuthUserV1", sync_mapping.auth_user_v1(row))
    assert mine["quotaUsageInBytes"] == 12345 and mine["isAdmin"] is False
    assert conforms("SyncUserV1", sync_mapping.user_v1(row))["email"] == user["email"]


async def test_checkpoints_per_session(user):
    session, _ = await f.new_session(user, is_pending_sync_reset=True)
    other, _ = await f.new_session(user)
    await sync.save_checkpoints(session["id"], {"AssetV1": "a|1", "AlbumV1": "b|2"})
    await sync.save_checkpoints(session["id"], {"AssetV1": "a|3"})
    await sync.save_checkpoints(other["id"], {"AssetV1": "other"})
    assert await sync.checkpoints(session["id"]) == {"AlbumV1": "b|2", "AssetV1": "a|3"}
    await sync.delete_checkpoints(session["id"], ["AlbumV1"])
    assert await sync.checkpoints(session["id"]) == {"AssetV1": "a|3"}
    assert await sync.pending_reset(session["id"])
    await sync.reset(session["id"])
    assert await sync.checkpoints(session["id"]) == {} and not await sync.pending_reset(session["id"])
    assert await sync.checkpoints(other["id"]) == {"AssetV1": "other"}
    await sync.delete_checkpoints(other["id"], None)
    assert await sync.checkpoints(other["id"]) == {}
    assert not await sync.pending_reset(uuid.uuid4())


async def test_batches_read_ahead_stop_with_their_reader(user, library_id, monkeypatch):
    import asyncio

    monkeypatch.setattr(sync, "BATCH", 2)
    made = [await f.new_asset(user, event="asset_created") for _ in range(9)]
    snap = await sync.snapshot()
    walk = snap.change_batches("asset", library_id, None)
    first = await anext(walk)
    assert [c.entity_id for c in first] == [a["id"] for a in made[:2]]
    await walk.aclose()  # a client gone mid-stream: the batches read ahead are dropped, nothing keeps reading

    def readers():
        return [t for t in asyncio.all_tasks() if "change_batches" in repr(t.get_coro())]

    for _ in range(500):  # cancelled, its query's cancellation takes a round trip
        if not readers():
            break
        await asyncio.sleep(0.01)
    assert not readers()


async def test_a_failed_batch_read_is_raised_where_the_batches_are_taken(user, library_id, monkeypatch):
    import asyncpg
    import pytest

    await f.new_asset(user, event="asset_created")
    monkeypatch.setattr(sync.Snapshot, "_sql", lambda self, kind: "SELECT * FROM no_such_table")
    snap = await sync.snapshot()
    with pytest.raises(asyncpg.PostgresError):
        [batch async for batch in snap.change_batches("asset", library_id, None)]
