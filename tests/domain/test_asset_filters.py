"""The filter builder (app/domain/asset_filters.py): each AssetFilter turned into SQL and run against
factory rows, checking which assets it matches."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.db import engine as db
from app.domain.asset_filters import AssetFilter, BBox, Sql, check_references, where
from app.domain.errors import Invalid, NotFound
from tests.domain import factories as f


async def matching(f_: AssetFilter) -> set:
    sql = Sql()
    clause = where(f_, sql)
    return {r["id"] for r in await db.fetch(f"SELECT a.id FROM assets a WHERE {clause}", *sql.args)}


def ids(*rows) -> set:
    return {r["id"] for r in rows}


async def test_only_the_filters_library(user, library_id):
    mine = await f.new_asset(user)
    await f.new_asset(user, library_id=(await f.new_library(user))["id"])
    await f.new_asset(await f.new_user())
    assert await matching(AssetFilter(library_id)) == ids(mine)


async def test_trash_states(user, library_id):
    live = await f.new_asset(user)
    trashed = await f.new_asset(user, trashed_at=datetime.now(timezone.utc))
    assert await matching(AssetFilter(library_id)) == ids(live)
    assert await matching(AssetFilter(library_id, state="trashed")) == ids(trashed)
    assert await matching(AssetFilter(library_id, state="all")) == ids(live, trashed)


async def test_ids_media_type_and_visibility(user, library_id):
    photo = await f.new_asset(user)
    video = await f.new_asset(user, media_type="video")
    archived = await f.new_asset(user, visibility="archive")
    assert await matching(AssetFilter(library_id, ids=[photo["id"], video["id"]])) == ids(photo, video)
    assert await matching(AssetFilter(library_id, media_type="video")) == ids(video)
    assert await matching(AssetFilter(library_id, visibility="archive")) == ids(archived)
    assert await matching(AssetFilter(library_id, ids=[])) == set()


async def test_ratings_use_the_users_rating_else_the_files_and_zero_for_unrated(user, library_id):
    user_five = await f.new_asset(user, rating=5, file_rating=1)
    file_five = await f.new_asset(user, file_rating=5)
    overridden = await f.new_asset(user, rating=2, file_rating=5)
    unrated = await f.new_asset(user)
    zero = await f.new_asset(user, file_rating=0)
    assert await matching(AssetFilter(library_id, ratings=[5])) == ids(user_five, file_five)
    assert await matching(AssetFilter(library_id, ratings=[2])) == ids(overridden)
    assert await matching(AssetFilter(library_id, ratings=[0])) == ids(unrated, zero)
    assert await matching(AssetFilter(library_id, ratings=[0, 5, 5])) == ids(user_five, file_five, unrated, zero)


async def test_albums(user, library_id):
    album = await f.new_album(user)
    other_album = await f.new_album(user)
    in_album = await f.new_asset(user)
    in_other = await f.new_asset(user)
    loose = await f.new_asset(user)
    await f.new_album_asset(album, in_album)
    await f.new_album_asset(other_album, in_other)
    assert await matching(AssetFilter(library_id, album_id=album["id"])) == ids(in_album)
    assert await matching(AssetFilter(library_id, album_filter="in_album")) == ids(in_album, in_other)
    assert await matching(AssetFilter(library_id, album_filter="not_in_album")) == ids(loose)


async def test_people_must_all_appear(user, library_id):
    ann, bob = await f.new_person(user), await f.new_person(user)
    both = await f.new_asset(user)
    only_ann = await f.new_asset(user)
    await f.new_asset(user)
    await f.new_face(both, person=ann)
    await f.new_face(both, person=bob)
    await f.new_face(only_ann, person=ann)
    await f.new_face(only_ann)  # nobody's
    assert await matching(AssetFilter(library_id, person_ids=[ann["id"]])) == ids(both, only_ann)
    assert await matching(AssetFilter(library_id, person_ids=[ann["id"], bob["id"], ann["id"]])) == ids(both)


async def test_stacks(user, library_id):
    a, b, c = [await f.new_asset(user) for _ in range(3)]
    stack = await f.new_stack(user, [a, b])
    assert await matching(AssetFilter(library_id, stack_id=stack["id"])) == ids(a, b)
    assert c["id"] not in await matching(AssetFilter(library_id, stack_id=stack["id"]))


async def test_boxes_and_circles(user, library_id):
    oslo = await f.new_asset(user, exif={"latitude": 59.91, "longitude": 10.75})
    bergen = await f.new_asset(user, exif={"latitude": 60.39, "longitude": 5.32})
    fiji = await f.new_asset(user, exif={"latitude": -17.8, "longitude": 178.0})
    samoa = await f.new_asset(user, exif={"latitude": -13.8, "longitude": -172.0})
    await f.new_asset(user)  # no position
    norway = BBox(west=4.0, south=57.0, east=31.0, north=71.0)
    assert await matching(AssetFilter(library_id, bbox=norway)) == ids(oslo, bergen)
    pacific = BBox(west=170.0, south=-20.0, east=-170.0, north=-10.0)
    assert pacific.crosses_antimeridian
    assert await matching(AssetFilter(library_id, bbox=pacific)) == ids(fiji, samoa)
    # Oslo to Bergen is about 305 km: a 50 km circle around Oslo holds Oslo only.
    assert await matching(AssetFilter(library_id, center=(10.75, 59.91), radius_m=50_000)) == ids(oslo)
    assert await matching(AssetFilter(library_id, center=(10.8, 59.9), radius_m=1)) == set()


async def test_what_the_file_says_and_text_search(user, library_id):
    canon = await f.new_asset(user, original_file_name="100%_real.JPG",
                              exif={"make": "Canon", "model": "R5", "city": "Oslo", "description": "Fjord at dusk"})
    await f.new_asset(user, original_file_name="100x_real.jpg", exif={"make": "Nikon", "city": "Oslo"})
    edited = await f.new_asset(user, user_description="My fjord trip", exif={"description": "nothing"})
    overruled = await f.new_asset(user, user_description="", exif={"description": "fjord"})
    assert await matching(AssetFilter(library_id, exif_equals={"make": "Canon", "city": "Oslo"})) == ids(canon)
    assert await matching(AssetFilter(library_id, exif_equals={"make": "canon"})) == set()  # exact
    # % and _ are literal, not wildcards
    assert await matching(AssetFilter(library_id, file_name_contains="100%_")) == ids(canon)
    assert await matching(AssetFilter(library_id, description_contains="FJORD")) == ids(canon, edited)
    assert overruled["id"] not in await matching(AssetFilter(library_id, description_contains="fjord"))
    with pytest.raises(Invalid):
        await matching(AssetFilter(library_id, exif_equals={"storage_key": "x"}))


async def test_capture_time_bounds_naive_and_aware(user, library_id):
    plus2 = timezone(timedelta(hours=2))
    # 12:00 wall clock in UTC+2 is 10:00 UTC; the naive one has no known offset.
    aware = await f.new_asset(user, taken=datetime(2023, 5, 1, 12, 0, tzinfo=plus2))
    naive = await f.new_asset(user, taken=datetime(2023, 5, 1, 11, 0))
    wall = AssetFilter(library_id, after=datetime(2023, 5, 1, 11, 30))
    assert await matching(wall) == ids(aware)  # by the wall clock: 12:00 is after 11:30, 11:00 is not
    instant = AssetFilter(library_id, after=datetime(2023, 5, 1, 10, 30, tzinfo=timezone.utc))
    assert await matching(instant) == ids(naive)  # 10:00 UTC is before; the naive one counts as 11:00
    both = AssetFilter(library_id, after=datetime(2023, 5, 1, 9, 0), before=datetime(2023, 5, 1, 11, 30))
    assert await matching(both) == ids(naive)
    taken = AssetFilter(library_id, taken_after=datetime(2023, 5, 1, 9, 30, tzinfo=timezone.utc),
                        taken_before=datetime(2023, 5, 1, 10, 30, tzinfo=timezone.utc))
    assert await matching(taken) == ids(aware)


async def test_row_times_motion_encoding_and_several_albums(user, library_id):
    """Immich's createdAfter/Before, updatedAfter/Before, trashedAfter/Before (inclusive), isMotion,
    isEncoded and albumIds past the first (an asset in all of them)."""
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    old = await f.new_asset(user, created_at=t0, updated_at=t0 + timedelta(days=5))
    new = await f.new_asset(user, created_at=t0 + timedelta(days=2), updated_at=t0 + timedelta(days=2))
    gone = await f.new_asset(user, created_at=t0, trashed_at=t0 + timedelta(days=3))
    assert await matching(AssetFilter(library_id, created_after=t0 + timedelta(days=2))) == ids(new)
    assert await matching(AssetFilter(library_id, created_before=t0)) == ids(old)  # inclusive
    assert await matching(AssetFilter(library_id, created_before=datetime(2024, 5, 1, 12, 0))) == ids(old)  # naive: UTC
    assert await matching(AssetFilter(library_id, updated_after=t0 + timedelta(days=3))) == ids(old)
    assert await matching(AssetFilter(library_id, updated_before=t0 + timedelta(days=2))) == ids(new)
    assert await matching(AssetFilter(library_id, state="all", trashed_after=t0 + timedelta(days=3),
                                      trashed_before=t0 + timedelta(days=3))) == ids(gone)

    motion_part = await f.new_asset(user, media_type="video")
    still = await f.new_asset(user, live_photo_video_id=motion_part["id"])
    assert await matching(AssetFilter(library_id, is_motion=True)) == ids(still)
    assert still["id"] not in await matching(AssetFilter(library_id, is_motion=False))
    assert await matching(AssetFilter(library_id, is_encoded=True)) == set()  # nothing is transcoded here
    assert await matching(AssetFilter(library_id, is_encoded=False)) == await matching(AssetFilter(library_id))

    first, second = await f.new_album(user), await f.new_album(user)
    for asset in (old, new):
        await f.new_album_asset(first, asset)
    await f.new_album_asset(second, new)
    assert await matching(AssetFilter(library_id, album_id=first["id"], also_in_albums=[second["id"]])) == ids(new)
    assert await matching(AssetFilter(library_id, album_id=first["id"], also_in_albums=[first["id"]])) == ids(old, new)


async def test_checksum(user, library_id):
    asset = await f.new_asset(user)
    await f.new_asset(user)
    assert await matching(AssetFilter(library_id, checksum_sha1=asset["checksum_sha1"])) == ids(asset)


async def test_filters_combine(user, library_id):
    album = await f.new_album(user)
    hit = await f.new_asset(user, media_type="video", rating=4)
    for row in (hit, await f.new_asset(user, rating=4), await f.new_asset(user, media_type="video")):
        await f.new_album_asset(album, row)
    combined = AssetFilter(library_id, album_id=album["id"], media_type="video", ratings=[4])
    assert await matching(combined) == ids(hit)


@pytest.mark.parametrize("bad", [
    dict(after=datetime(2023, 1, 1), before=datetime(2023, 2, 1, tzinfo=timezone.utc)),
    dict(album_filter="not_in_album", album_id="00000000-0000-0000-0000-000000000000"),
    dict(center=(0.0, 0.0)),
    dict(radius_m=10.0),
    dict(center=(0.0, 0.0), radius_m=0.0),
    dict(center=(0.0, 0.0), radius_m=50_001.0),
    dict(center=(0.0, 0.0), radius_m=10.0, bbox=BBox(0, 0, 1, 1)),
    dict(ratings=[6]),
    dict(ratings=[-1]),
])
def test_contradictions_are_invalid(bad):
    import uuid

    with pytest.raises(Invalid):
        AssetFilter(uuid.uuid4(), **bad).validate()


async def test_named_albums_stacks_and_people_must_be_in_the_library(user, library_id):
    stranger = await f.new_user()
    their_album, their_person = await f.new_album(stranger), await f.new_person(stranger)
    their_stack = await f.new_stack(stranger, [await f.new_asset(stranger)])
    for named in (dict(album_id=their_album["id"]), dict(stack_id=their_stack["id"]),
                  dict(person_ids=[their_person["id"]])):
        with pytest.raises(NotFound):
            await check_references(AssetFilter(library_id, **named))
    mine = await f.new_person(user)
    await check_references(AssetFilter(library_id, person_ids=[mine["id"], mine["id"]],
                                       album_id=(await f.new_album(user))["id"]))
