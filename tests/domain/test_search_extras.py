"""Immich's search extras on the domain: random picks, the largest files, counts, album markers,
the explore strip, the folder view and place names. Trashed, hidden (motion parts) and locked
assets stay out as the shared filters decide."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from app.db import engine as db
from app.domain import albums, search
from app.domain.asset_filters import LOCKED, SHOWN, AssetFilter
from app.domain.errors import Forbidden, Invalid, NotFound, Unauthorized
from tests.domain import factories as f

TRASHED = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _shown(user, **kw) -> AssetFilter:
    return AssetFilter(library_id=user["default_library_id"], visibilities=SHOWN, **kw)


def _ids(rows) -> set:
    return {r["id"] for r in rows}


async def test_random_picks_only_what_the_filter_shows():
    owner = await f.new_user()
    me = f.principal_for(owner)
    live, archived = await f.new_asset(owner), await f.new_asset(owner, visibility="archive")
    await f.new_asset(owner, visibility="hidden")  # a live photo's motion part
    await f.new_asset(owner, trashed_at=TRASHED)
    locked = await f.new_asset(owner, visibility=LOCKED)
    assert _ids(await search.random_assets(me, [_shown(owner)], 100)) == {live["id"], archived["id"]}
    assert len(await search.random_assets(me, [_shown(owner)], 1)) == 1
    # the locked folder: only its own visibility, and only from an unlocked session
    only_locked = AssetFilter(library_id=owner["default_library_id"], visibility=LOCKED)
    with pytest.raises(Unauthorized):
        await search.random_assets(me, [only_locked], 10)
    unlocked = dataclasses.replace(me, elevated=True)
    assert _ids(await search.random_assets(unlocked, [dataclasses.replace(only_locked, elevated=True)], 10)) == {locked["id"]}
    with pytest.raises(Invalid):
        await search.random_assets(me, [_shown(owner)], 0)


async def test_a_partners_library_adds_its_photos_but_never_its_locked_ones():
    owner, partner = await f.new_user(), await f.new_user()
    mine = await f.new_asset(owner)
    theirs = await f.new_asset(partner)
    await f.new_asset(partner, visibility=LOCKED)
    elevated = dataclasses.replace(f.principal_for(owner), elevated=True)
    own = _shown(owner, elevated=True)
    shared = dataclasses.replace(own, library_id=partner["default_library_id"], through_share=True)
    assert _ids(await search.random_assets(elevated, [own, shared], 50)) == {mine["id"], theirs["id"]}
    assert await search.count(elevated, [own, shared]) == 2


async def test_largest_first_and_strictly_above_the_minimum():
    owner = await f.new_user()
    me = f.principal_for(owner)
    small, mid, big = [await f.new_asset(owner, file_size_bytes=n) for n in (10_000, 20_000, 30_000)]
    await f.new_asset(owner, file_size_bytes=99_000, trashed_at=TRASHED)
    rows = await search.largest_assets(me, [_shown(owner)], 10)
    assert [r["id"] for r in rows] == [big["id"], mid["id"], small["id"]]
    rows = await search.largest_assets(me, [_shown(owner)], 10, min_size_bytes=20_000)
    assert [r["id"] for r in rows] == [big["id"]]
    assert len(await search.largest_assets(me, [_shown(owner)], 2)) == 2
    with pytest.raises(Invalid):
        await search.largest_assets(me, [_shown(owner)], 10, min_size_bytes=-1)


async def test_count_follows_the_filter_and_needs_read():
    owner = await f.new_user()
    await f.new_asset(owner)
    await f.new_asset(owner, media_type="video")
    await f.new_asset(owner, trashed_at=TRASHED)
    me = f.principal_for(owner)
    assert await search.count(me, [_shown(owner)]) == 2
    assert await search.count(me, [_shown(owner, media_type="video")]) == 1
    assert await search.count(me, [_shown(owner, state="all")]) == 3
    with pytest.raises(Forbidden):
        await search.count(f.principal_for(owner, actions=frozenset()), [_shown(owner)])


async def test_album_markers_are_the_albums_geotagged_live_photos():
    owner, stranger = await f.new_user(), await f.new_user()
    album = await f.new_album(owner)
    here = await f.new_asset(owner, exif={"latitude": 59.91, "longitude": 10.75, "city": "Oslo", "country": "Norway"})
    nowhere = await f.new_asset(owner)
    gone = await f.new_asset(owner, exif={"latitude": 1.0, "longitude": 2.0}, trashed_at=TRASHED)
    motion = await f.new_asset(owner, exif={"latitude": 1.0, "longitude": 2.0}, visibility="hidden")
    elsewhere = await f.new_asset(owner, exif={"latitude": 3.0, "longitude": 4.0})  # not in the album
    for a in (here, nowhere, gone, motion):
        await f.new_album_asset(album, a)
    me = f.principal_for(owner)
    rows = await search.album_markers(me, await albums.contents_filter(me, album["id"], visibilities=SHOWN))
    assert [(r["id"], r["city"], r["country"]) for r in rows] == [(here["id"], "Oslo", "Norway")]
    assert elsewhere["id"] not in _ids(rows)
    with pytest.raises(NotFound):
        await albums.contents_filter(f.principal_for(stranger), album["id"])


async def test_explore_names_cities_with_five_photos_by_their_newest():
    owner = await f.new_user()
    oslo = [await f.new_asset(owner, exif={"city": "Oslo"}) for _ in range(5)]
    for _ in range(4):
        await f.new_asset(owner, exif={"city": "Bergen"})
    await f.new_asset(owner, exif={"city": "Bergen"}, media_type="video")  # videos are not counted
    await f.new_asset(owner, exif={"city": "Bergen"}, visibility="archive")  # nor archived photos
    filt = AssetFilter(library_id=owner["default_library_id"], visibility="timeline")
    rows = await search.explore_cities(f.principal_for(owner), filt)
    assert [(r["explore_city"], r["id"]) for r in rows] == [("Oslo", oslo[-1]["id"])]  # the newest one
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", oslo[0]["id"])
    assert await search.explore_cities(f.principal_for(owner), filt) == []


async def test_folders_are_the_originals_own_folders():
    owner = await f.new_user()
    lib = owner["default_library_id"]
    keys = {"x": "a/b/x.jpg", "y": "a/b/c/y.jpg", "z": "a/z.jpg", "w": "a_b/w.jpg", "v": "axb/v.jpg"}
    made = {name: await f.new_asset(owner, storage_key=f"{lib}/{key}", original_file_name=f"{name}.jpg")
            for name, key in keys.items()}
    await f.new_asset(owner, storage_key=f"{lib}/a/b/gone.jpg", trashed_at=TRASHED)
    await f.new_asset(owner, storage_key=f"{lib}/archive/old.jpg", visibility="archive")
    me = f.principal_for(owner)
    filt = AssetFilter(library_id=lib, visibility="timeline")
    assert await search.folders(me, filt) == [f"{lib}/a", f"{lib}/a/b", f"{lib}/a/b/c", f"{lib}/a_b", f"{lib}/axb"]
    assert _ids(await search.folder_assets(me, filt, f"{lib}/a/b")) == {made["x"]["id"]}
    assert _ids(await search.folder_assets(me, filt, f"{lib}/a/b/")) == {made["x"]["id"]}
    assert _ids(await search.folder_assets(me, filt, f"{lib}/a_b")) == {made["w"]["id"]}  # "_" is no wildcard
    assert await search.folder_assets(me, filt, "") == []
    other = await f.new_user()
    assert await search.folders(f.principal_for(other), AssetFilter(library_id=other["default_library_id"])) == []


async def test_place_names_from_the_offline_gazetteer():
    me = f.principal_for(await f.new_user())
    found = await search.places(me, "zurich")
    assert found[0].city == "Zürich" and found[0].country == "Switzerland" and len(found) <= 20
    assert round(found[0].latitude) == 47 and round(found[0].longitude) == 9
    assert await search.places(me, "   ") == []
    place = await search.place_at(me, 39.0, -108.0)
    assert (place.city, place.state, place.country) == ("Cedaredge", "Colorado", "United States")
    assert await search.place_at(me, 0.0, -30.0) is None  # mid-Atlantic: no town within reach
    with pytest.raises(Invalid):
        await search.place_at(me, 91.0, 0.0)
    with pytest.raises(Forbidden):
        await search.places(f.principal_for(await f.new_user(), actions=frozenset()), "oslo")

