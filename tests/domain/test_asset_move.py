"""Moving assets between libraries (app/domain/asset_move.py): who may, what comes along (id,
faces, metadata, derived files, album links of other libraries), what stays behind (the source's
albums, stack and people), one outcome per asset, and events for both libraries."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from app.db import engine as db
from app.domain import access, asset_move, smart_search
from app.domain.asset_filters import AssetFilter
from app.domain.errors import Forbidden, Invalid, NotFound
from app.storage.blobstore import BlobStore
from tests.domain import factories as f


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path)


async def _two_libraries(user):
    source = await db.fetchrow("SELECT * FROM libraries WHERE id = $1", user["default_library_id"])
    return source, await f.new_library(user)


async def _outcomes(results):
    return [(r.outcome, r.failure) for r in results]


async def test_an_asset_moves_with_its_id_faces_metadata_and_derived_files(user, store):
    me = f.principal_for(user)
    source, destination = await _two_libraries(user)
    asset = await f.new_asset(user)
    person = await f.new_person(user)
    face = await f.new_face(asset, person=person)
    await db.execute("UPDATE people SET thumbnail_face_id = $2 WHERE id = $1", person["id"], face["id"])
    await db.execute("INSERT INTO asset_metadata (asset_id, key, value) VALUES ($1, 'k', '{}')", asset["id"])
    old_prefix = store.derived_prefix(source["id"], asset["id"])
    store.put_derived(f"{old_prefix}/thumbnail.webp", b"thumb")
    await f.new_asset_file(asset, "thumbnail", storage_key=f"{old_prefix}/thumbnail.webp")

    results = await asset_move.move_assets(me, store, None, source["id"], destination["id"], [asset["id"]])
    assert await _outcomes(results) == [(asset_move.MOVED, None)]
    row = await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset["id"])
    assert row["library_id"] == destination["id"] and row["storage_key"] == asset["storage_key"]
    moved_face = await db.fetchrow("SELECT * FROM faces WHERE id = $1", face["id"])
    assert moved_face["library_id"] == destination["id"] and moved_face["person_id"] is None
    assert moved_face["cluster_state"] == "pending"
    assert (await db.fetchrow("SELECT * FROM people WHERE id = $1", person["id"]))["thumbnail_face_id"] is None
    key = await db.fetchval("SELECT storage_key FROM asset_files WHERE asset_id = $1", asset["id"])
    assert key == f"{store.derived_prefix(destination['id'], asset['id'])}/thumbnail.webp"
    assert store.path(key).read_bytes() == b"thumb" and not store.path(old_prefix).exists()
    assert await db.fetchval("SELECT count(*) FROM asset_metadata WHERE asset_id = $1", asset["id"]) == 1
    assert await db.fetchval("SELECT count(*) FROM events WHERE entity_type = 'asset_metadata' AND library_id = $1",
                             destination["id"]) == 1
    events = [(e["library_id"], e["entity_type"], e["event_type"]) for e in await db.fetch(
        "SELECT * FROM events WHERE entity_id = ANY($1::uuid[]) ORDER BY id", [asset["id"], face["id"]])]
    assert (source["id"], "asset", "asset_deleted") in events
    assert (destination["id"], "asset", "asset_created") in events
    assert (destination["id"], "metadata", "metadata_updated") in events
    assert (source["id"], "face", "face_deleted") in events and (destination["id"], "face", "face_created") in events
    # Repeating the request is safe.
    again = await asset_move.move_assets(me, store, None, source["id"], destination["id"], [asset["id"]])
    assert await _outcomes(again) == [(asset_move.ALREADY_THERE, None)]


async def test_the_source_librarys_albums_and_stack_stay_behind(user, store):
    me = f.principal_for(user)
    source, destination = await _two_libraries(user)
    a, b = await f.new_asset(user), await f.new_asset(user)
    stack = await f.new_stack(user, [a, b])
    album = await f.new_album(user, cover_asset_id=a["id"])
    await f.new_album_asset(album, a)
    elsewhere = await f.new_album(user, library_id=destination["id"])
    await f.new_album_asset(elsewhere, a)  # an album of another library that holds the asset
    await asset_move.move_assets(me, store, None, source["id"], destination["id"], [a["id"]])
    assert await db.fetchval("SELECT count(*) FROM album_assets WHERE album_id = $1", album["id"]) == 0
    assert (await db.fetchrow("SELECT * FROM albums WHERE id = $1", album["id"]))["cover_asset_id"] is None
    assert await db.fetchval("SELECT count(*) FROM album_assets WHERE album_id = $1", elsewhere["id"]) == 1
    assert await db.fetchval("SELECT count(*) FROM stacks WHERE id = $1", stack["id"]) == 0  # one left: dissolved
    assert await db.fetchval("SELECT stack_id FROM assets WHERE id = $1", a["id"]) is None


async def test_each_asset_has_its_outcome(user, store):
    me = f.principal_for(user)
    source, destination = await _two_libraries(user)
    ok, trashed, busy, clash = [await f.new_asset(user) for _ in range(4)]
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", trashed["id"])
    await f.new_task(busy, status="pending")
    await f.new_asset(user, library_id=destination["id"], checksum_sha256=clash["checksum_sha256"])
    foreign = await f.new_asset(await f.new_user())
    third = await f.new_library(user)
    gone_elsewhere = await f.new_asset(user, library_id=third["id"])
    wanted = [ok["id"], trashed["id"], busy["id"], clash["id"], foreign["id"], uuid.uuid4(), gone_elsewhere["id"],
              ok["id"]]
    results = await asset_move.move_assets(me, store, None, source["id"], destination["id"], wanted)
    assert [r.asset_id for r in results] == list(dict.fromkeys(wanted))
    assert await _outcomes(results) == [
        (asset_move.MOVED, None), (asset_move.FAILED, asset_move.UNAVAILABLE), (asset_move.FAILED, asset_move.BUSY),
        (asset_move.FAILED, asset_move.DUPLICATE), (asset_move.FAILED, asset_move.UNAVAILABLE),
        (asset_move.FAILED, asset_move.UNAVAILABLE), (asset_move.FAILED, asset_move.CHANGED_SOURCE)]
    assert await db.fetchval("SELECT library_id FROM assets WHERE id = $1", busy["id"]) == source["id"]


async def test_a_destination_without_room_refuses_the_asset(user, store):
    me = f.principal_for(user)
    source, _ = await _two_libraries(user)
    destination = await f.new_library(user, storage_limit_bytes=10)
    asset = await f.new_asset(user, file_size_bytes=1000)
    results = await asset_move.move_assets(me, store, None, source["id"], destination["id"], [asset["id"]])
    assert await _outcomes(results) == [(asset_move.FAILED, asset_move.QUOTA)]


async def test_a_live_photos_motion_part_moves_with_it(user, store):
    me = f.principal_for(user)
    source, destination = await _two_libraries(user)
    motion = await f.new_asset(user, media_type="video", visibility="hidden")
    still = await f.new_asset(user, live_photo_video_id=motion["id"])
    results = await asset_move.move_assets(me, store, None, source["id"], destination["id"], [still["id"]])
    assert await _outcomes(results) == [(asset_move.MOVED, None)]
    assert await db.fetchval("SELECT library_id FROM assets WHERE id = $1", motion["id"]) == destination["id"]
    # A motion part a job is still working on holds its still back.
    motion = await f.new_asset(user, media_type="video", visibility="hidden")
    still = await f.new_asset(user, live_photo_video_id=motion["id"])
    await f.new_task(motion, status="started")
    results = await asset_move.move_assets(me, store, None, source["id"], destination["id"], [still["id"]])
    assert await _outcomes(results) == [(asset_move.FAILED, asset_move.BUSY)]
    # Both named, the motion part first: each moves once.
    motion = await f.new_asset(user, media_type="video", visibility="hidden")
    still = await f.new_asset(user, live_photo_video_id=motion["id"])
    results = await asset_move.move_assets(me, store, None, source["id"], destination["id"],
                                           [motion["id"], still["id"]])
    assert await _outcomes(results) == [(asset_move.MOVED, None)] * 2
    assert await db.fetchval("SELECT count(*) FROM events WHERE entity_id = $1 AND event_type = 'asset_created'",
                             motion["id"]) == 1


async def test_who_may_move(user, store):
    source, destination = await _two_libraries(user)
    asset = await f.new_asset(user)
    other = await f.new_user()
    other_library = await db.fetchrow("SELECT * FROM libraries WHERE id = $1", other["default_library_id"])
    me = f.principal_for(user)
    with pytest.raises(Invalid):
        await asset_move.move_assets(me, store, None, source["id"], source["id"], [asset["id"]])
    with pytest.raises(NotFound):  # a library the caller has no role in
        await asset_move.move_assets(me, store, None, source["id"], other_library["id"], [asset["id"]])
    # A collaborator may move its own assets into the library, but nothing out of it.
    await f.new_member(other_library, user, "collaborator")
    results = await asset_move.move_assets(me, store, None, source["id"], other_library["id"], [asset["id"]])
    assert await _outcomes(results) == [(asset_move.MOVED, None)]
    assert await db.fetchval("SELECT owner_id FROM assets WHERE id = $1", asset["id"]) == other["id"]
    with pytest.raises(Forbidden):
        await asset_move.move_assets(me, store, None, other_library["id"], source["id"], [asset["id"]])
    # A credential needs both write and permanent deletion, over both libraries.
    narrow = f.principal_for(user, actions=frozenset({access.READ, access.WRITE}))
    with pytest.raises(Forbidden):
        await asset_move.move_assets(narrow, store, None, source["id"], destination["id"], [asset["id"]])
    scoped = f.principal_for(user, library_scope=frozenset({source["id"]}))
    with pytest.raises(NotFound):
        await asset_move.move_assets(scoped, store, None, source["id"], destination["id"], [asset["id"]])


async def test_two_moves_of_one_asset_at_once_move_it_once(user, store):
    import asyncio

    me = f.principal_for(user)
    source, first = await _two_libraries(user)
    second = await f.new_library(user)
    asset = await f.new_asset(user)
    results = await asyncio.gather(
        asset_move.move_assets(me, store, None, source["id"], first["id"], [asset["id"]]),
        asset_move.move_assets(me, store, None, source["id"], second["id"], [asset["id"]]))
    outcomes = sorted(r[0].outcome for r in results)
    assert outcomes == [asset_move.FAILED, asset_move.MOVED]
    assert {r[0].failure for r in results} - {None} <= {asset_move.BUSY, asset_move.CHANGED_SOURCE}
    winner = first if results[0][0].outcome == asset_move.MOVED else second
    assert await db.fetchval("SELECT library_id FROM assets WHERE id = $1", asset["id"]) == winner["id"]


async def test_a_moved_asset_keeps_its_versions(user, store):
    from app.domain import asset_versions as av
    from tests.domain.test_asset_versions import _jpeg, rendering, stored_photo

    me = f.principal_for(user)
    source, destination = await _two_libraries(user)
    asset, _ = await stored_photo(store, user)
    version = await av.append(me, store, None, asset["id"], rendering(store, _jpeg(120, 80)))
    await db.execute("UPDATE tasks SET status = 'success' WHERE asset_id = $1", asset["id"])  # not busy
    results = await asset_move.move_assets(me, store, None, source["id"], destination["id"], [asset["id"]])
    assert await _outcomes(results) == [(asset_move.MOVED, None)]
    key = await db.fetchval("SELECT storage_key FROM asset_versions WHERE asset_id = $1", asset["id"])
    assert key.startswith(store.derived_prefix(destination["id"], asset["id"]) + "/")
    assert store.path(key).exists() and version is not None


async def test_a_moved_assets_embedding_is_found_in_its_new_library(user, store):
    me = f.principal_for(user)
    source, destination = await _two_libraries(user)
    asset = await f.new_asset(user)
    vector = np.zeros(8, dtype=np.float32)
    vector[3] = 1
    async with db.transaction() as conn:
        await smart_search.store(conn, asset["id"], source["id"], "test-model", vector)
    # Both libraries' indexes exist before the move (a search built them).
    assert await smart_search.rank([AssetFilter(library_id=source["id"])], "test-model", vector, 0, 5) != []
    assert await smart_search.rank([AssetFilter(library_id=destination["id"])], "test-model", vector, 0, 5) == []

    await asset_move.move_assets(me, store, None, source["id"], destination["id"], [asset["id"]])
    found = await smart_search.rank([AssetFilter(library_id=destination["id"])], "test-model", vector, 0, 5)
    assert [asset_id for asset_id, _ in found] == [asset["id"]]
    assert await smart_search.rank([AssetFilter(library_id=source["id"])], "test-model", vector, 0, 5) == []
