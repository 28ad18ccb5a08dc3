"""Duplicate groups (app/domain/duplicates.py, duplicate_resolve.py): detection over an owner's
embeddings and checksums, the group list, dissolving and resolving groups."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from app.db import engine as db
from app.domain import duplicate_resolve, duplicates, system_config
from app.domain.errors import BadRequest
from tests.domain import factories as f

MODEL = system_config.defaults()["machineLearning"]["clip"]["modelName"]
DIM = 64


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype("<f4")


def _random(rng: np.random.Generator) -> np.ndarray:
    return _unit(rng.standard_normal(DIM))


def _near(vector: np.ndarray, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """Within about scale**2 / 2 cosine distance of vector: 0.00005 for the default scale."""
    return _unit(vector + scale * rng.standard_normal(DIM) / np.sqrt(DIM))


async def _embed(asset, vector: np.ndarray) -> None:
    await db.execute("INSERT INTO smart_search (asset_id, model, library_id, embedding) VALUES ($1, $2, $3, $4)",
                     asset["id"], MODEL, asset["library_id"], vector.astype("<f4").tobytes())


async def _groups(*assets) -> list:
    rows = await db.fetch("SELECT id, duplicate_id FROM assets WHERE id = ANY($1::uuid[])", [a["id"] for a in assets])
    by_id = {r["id"]: r["duplicate_id"] for r in rows}
    return [by_id[a["id"]] for a in assets]


async def _photo(user, vector, **overrides):
    asset = await f.new_asset(user, **overrides)
    await _embed(asset, vector)
    return asset


async def test_near_identical_photos_are_grouped_and_far_ones_are_not(user):
    rng = np.random.default_rng(1)
    base = _random(rng)
    a = await _photo(user, base)
    b = await _photo(user, _near(base, rng))
    c = await _photo(user, _random(rng))
    result = await duplicates.detect(user["id"])
    assert result.grouped == 2
    ga, gb, gc = await _groups(a, b, c)
    assert ga is not None and ga == gb and ga.version == 4
    assert gc is None
    # Each change has its asset_updated event; the embeddings are stamped as checked.
    logged = await db.fetch("SELECT entity_id FROM events WHERE event_type = 'asset_updated'"
                            " AND entity_id = ANY($1::uuid[])", [a["id"], b["id"], c["id"]])
    assert sorted(r["entity_id"] for r in logged) == sorted([a["id"], b["id"]])
    unchecked = await db.fetchval("SELECT count(*) FROM smart_search WHERE asset_id = ANY($1::uuid[])"
                                  " AND duplicates_checked_at IS NULL", [a["id"], b["id"], c["id"]])
    assert unchecked == 0
    # Detecting again changes nothing.
    assert (await duplicates.detect(user["id"])).changed == 0


async def test_a_group_change_reaches_the_sync_stream_as_an_asset_upsert(user):
    """Immich's sync lines carry no duplicateId: a client learns of a group change as the asset's
    upsert (then reads the asset), which is what the stream sends after detection."""
    from app.domain import sync

    rng = np.random.default_rng(11)
    base = _random(rng)
    a, b = await _photo(user, base, event="asset_created"), await _photo(user, _near(base, rng), event="asset_created")
    snap = await sync.snapshot()
    before = [c async for c in snap.changes("asset", user["default_library_id"], None)][-1].cursor
    assert (await duplicates.detect(user["id"])).grouped == 2
    later = [c async for c in (await sync.snapshot()).changes("asset", user["default_library_id"], before)]
    assert sorted(c.entity_id for c in later) == sorted([a["id"], b["id"]]) and all(c.row is not None for c in later)


async def test_a_photo_is_never_a_videos_duplicate_nor_another_owners(user):
    rng = np.random.default_rng(2)
    base = _random(rng)
    other = await f.new_user()
    a = await _photo(user, base)
    v = await _photo(user, _near(base, rng), media_type="video")
    o = await _photo(other, _near(base, rng))
    await duplicates.detect(user["id"])
    await duplicates.detect(other["id"])
    assert await _groups(a, v, o) == [None, None, None]


async def test_groups_that_meet_merge_and_keep_an_existing_id(user):
    rng = np.random.default_rng(3)
    base = _random(rng)
    kept = uuid.uuid4()
    a = await _photo(user, base, duplicate_id=kept)
    b = await _photo(user, _near(base, rng), duplicate_id=kept)
    c = await _photo(user, _near(base, rng), duplicate_id=uuid.uuid4())  # a smaller group: joins
    d = await _photo(user, _near(base, rng))
    # A member of the joining group that detection does not look at (trashed) follows its group.
    absent = await f.new_asset(user, duplicate_id=(await _groups(c))[0], trashed_at=None)
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", absent["id"])
    await duplicates.detect(user["id"])
    assert await _groups(a, b, c, d, absent) == [kept] * 5


async def test_an_asset_with_no_neighbour_any_more_leaves_its_group(user):
    rng = np.random.default_rng(4)
    lonely = await _photo(user, _random(rng), duplicate_id=uuid.uuid4())
    await duplicates.detect(user["id"])
    assert await _groups(lonely) == [None]


async def test_same_bytes_in_two_libraries_of_one_owner_are_one_group(user):
    second = await f.new_library(user)
    checksum = bytes(range(32))
    a = await f.new_asset(user, checksum_sha256=checksum)
    b = await f.new_asset(user, library_id=second["id"], checksum_sha256=checksum)
    other = await f.new_user()
    foreign = await f.new_asset(other, checksum_sha256=checksum)
    await duplicates.detect(user["id"])
    ga, gb = await _groups(a, b)
    assert ga is not None and ga == gb
    assert await _groups(foreign) == [None]


async def test_hidden_locked_stacked_and_trashed_assets_are_left_out(user):
    rng = np.random.default_rng(5)
    base = _random(rng)
    a = await _photo(user, base)
    hidden = await _photo(user, _near(base, rng), visibility="hidden")
    locked = await _photo(user, _near(base, rng), visibility="locked")
    trashed = await _photo(user, _near(base, rng))
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", trashed["id"])
    await duplicates.detect(user["id"])
    assert await _groups(a, hidden, locked, trashed) == [None] * 4


async def test_detection_is_skipped_when_smart_search_is_off(user):
    admin = f.principal_for(await f.new_user(is_admin=True))
    rng = np.random.default_rng(6)
    base = _random(rng)
    a = await _photo(user, base)
    await _photo(user, _near(base, rng))
    config = system_config.defaults()
    config["machineLearning"]["clip"]["enabled"] = False
    await system_config.update(admin, config)
    try:
        assert await duplicates.detect(user["id"]) is None
        assert await _groups(a) == [None]
    finally:
        await system_config.update(admin, system_config.defaults())


async def test_twenty_thousand_embeddings_take_seconds_and_keep_every_planted_pair(user):
    rng = np.random.default_rng(7)
    n, planted = 20_000, 200
    vectors = np.stack([_random(rng) for _ in range(n - planted)])
    twins = np.stack([_near(vectors[i], rng) for i in range(planted)])
    vectors = np.concatenate([vectors, twins])
    library = user["default_library_id"]
    ids = [uuid.uuid4() for _ in range(n)]
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO assets (id, library_id, owner_id, media_type, mime_type, original_file_name, storage_key,"
            " file_size_bytes, checksum_sha256, checksum_sha1, device_asset_id, device_id, file_created_at,"
            " file_modified_at, local_datetime)"
            " SELECT u.id, $2, $3, 'image', 'image/jpeg', 'x.jpg', 'tests/' || u.id, 1000,"
            "  sha256(u.id::text::bytea), substring(sha256(u.id::text::bytea) from 1 for 20), u.id::text, 'tests',"
            "  now(), now(), now()::timestamp FROM unnest($1::uuid[]) AS u(id)",
            ids, library, user["id"])
        await conn.execute(
            "INSERT INTO smart_search (asset_id, model, library_id, embedding)"
            " SELECT u.id, $2, $3, u.e FROM unnest($1::uuid[], $4::bytea[]) AS u(id, e)",
            ids, MODEL, library, [v.tobytes() for v in vectors])
    started = time.perf_counter()
    result = await duplicates.detect(user["id"])
    took = time.perf_counter() - started
    assert took < 15, took
    groups = dict((r["id"], r["duplicate_id"]) for r in await db.fetch(
        "SELECT id, duplicate_id FROM assets WHERE owner_id = $1", user["id"]))
    for i in range(planted):
        original, twin = ids[i], ids[n - planted + i]
        assert groups[original] is not None and groups[original] == groups[twin]
    assert result.grouped == 2 * planted


# --- the groups as the caller sees them ---


async def _group_of_three(user):
    rng = np.random.default_rng(8)
    base = _random(rng)
    assets = [await _photo(user, base if i == 0 else _near(base, rng)) for i in range(3)]
    await duplicates.detect(user["id"])
    return assets, (await _groups(assets[0]))[0]


async def test_listing_clears_groups_of_one_first(user, principal):
    lone = await f.new_asset(user, duplicate_id=uuid.uuid4())
    assets, group = await _group_of_three(user)
    listed = await duplicates.list_groups(principal)
    assert [(g, sorted(r["id"] for r in rows)) for g, rows in listed] == [(group, sorted(a["id"] for a in assets))]
    assert await _groups(lone) == [None]


async def test_dissolving_needs_a_group_of_the_callers(user, principal):
    assets, group = await _group_of_three(user)
    stranger = f.principal_for(await f.new_user())
    with pytest.raises(BadRequest):
        await duplicates.dissolve(stranger, [group])
    with pytest.raises(BadRequest):
        await duplicates.dissolve(principal, [group, uuid.uuid4()])
    await duplicates.dissolve(principal, [group])
    assert await _groups(*assets) == [None] * 3


async def test_resolve_checks_each_group_in_immichs_order(user, principal):
    (a, b, c), group = await _group_of_three(user)
    both, _ = await duplicate_resolve.resolve_group(principal, group, [a["id"], b["id"]], [b["id"], c["id"]])
    assert (both.error, both.message) == ("validation", duplicate_resolve.BOTH_LISTS)
    neither, _ = await duplicate_resolve.resolve_group(principal, group, [a["id"]], [b["id"], uuid.uuid4()])
    assert (neither.error, neither.message) == ("validation", duplicate_resolve.NEITHER_LIST)
    missing, _ = await duplicate_resolve.resolve_group(principal, uuid.uuid4(), [], [])
    assert missing.error == "not_found"
    assert await _groups(a, b, c) == [group] * 3


async def test_resolve_merges_into_the_one_keeper_and_trashes_the_rest(user, principal):
    (a, b, c), group = await _group_of_three(user)
    await db.execute("UPDATE assets SET rating = 3, user_description = 'one\ntwo', visibility = 'archive'"
                     " WHERE id = $1", b["id"])
    await db.execute("UPDATE assets SET user_description = 'two\nthree' WHERE id = $1", c["id"])
    album = await f.new_album(user)
    await f.new_album_asset(album, c)
    results, _ = await duplicate_resolve.resolve(principal, [(group, [a["id"]], [b["id"], c["id"]])])
    assert [(r.duplicate_id, r.error) for r in results] == [(group, None)]
    keeper = await db.fetchrow("SELECT * FROM assets WHERE id = $1", a["id"])
    assert keeper["effective_rating"] == 3 and keeper["visibility"] == "archive"
    assert keeper["user_description"] == "one\ntwo\nthree"
    assert keeper["duplicate_id"] is None and keeper["trashed_at"] is None
    assert await db.fetchval("SELECT count(*) FROM album_assets WHERE album_id = $1 AND asset_id = $2",
                             album["id"], a["id"]) == 1
    gone = await db.fetch("SELECT trashed_at, duplicate_id FROM assets WHERE id = ANY($1::uuid[])", [b["id"], c["id"]])
    assert all(r["trashed_at"] is not None and r["duplicate_id"] is None for r in gone)
    trashed = await db.fetchval("SELECT count(*) FROM events WHERE event_type = 'asset_trashed'"
                                " AND entity_id = ANY($1::uuid[])", [b["id"], c["id"]])
    assert trashed == 2


async def test_bulk_update_sets_and_clears_a_group_only_on_the_callers_assets(user, principal):
    a = await f.new_asset(user)
    group = uuid.uuid4()
    await duplicates.set_duplicate_id(principal, [a["id"]], group)
    assert await _groups(a) == [group]
    await duplicates.set_duplicate_id(principal, [a["id"]], None)
    assert await _groups(a) == [None]
    stranger = f.principal_for(await f.new_user())
    with pytest.raises(Exception) as refused:
        await duplicates.set_duplicate_id(stranger, [a["id"]], group)
    assert getattr(refused.value, "status", None) == 404
