"""A page of a metadata search (search.metadata_page, Immich's POST /api/search/metadata): the
order and paging, EXIF and people only when asked for, and items that map to the same Immich asset
as the full view does for every field they keep."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from app.domain import asset_views, search
from app.domain.asset_filters import LOCKED, AssetFilter
from app.domain.errors import Forbidden, Invalid
from compat import mapping, search_items
from tests.domain import factories as f
from tests.domain.immich import conforms

START = datetime(2023, 5, 1, 12, 0)


def _all(user, **kw) -> AssetFilter:
    return AssetFilter(library_id=user["default_library_id"], **kw)


def _ids(items) -> list:
    return [item.row["id"] for item in items]


async def test_pages_follow_capture_time_and_say_whether_more_follow():
    owner = await f.new_user()
    me = f.principal_for(owner)
    made = [await f.new_asset(owner, taken=START + timedelta(hours=i)) for i in range(5)]
    await f.new_asset(owner, taken=START, trashed_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    await f.new_asset(owner, taken=START, visibility=LOCKED)
    newest_first = [a["id"] for a in reversed(made)]
    first, more = await search.metadata_page(me, _all(owner), page=1, size=2)
    assert (_ids(first), more) == (newest_first[:2], True)
    second, more = await search.metadata_page(me, _all(owner), page=2, size=2)
    assert (_ids(second), more) == (newest_first[2:4], True)
    last, more = await search.metadata_page(me, _all(owner), page=3, size=2)
    assert (_ids(last), more) == (newest_first[4:], False)
    beyond, more = await search.metadata_page(me, _all(owner), page=9, size=2)
    assert (beyond, more) == ([], False)
    oldest_first, more = await search.metadata_page(me, _all(owner), page=1, size=5, order="asc")
    assert (_ids(oldest_first), more) == ([a["id"] for a in made], False)
    # the filter still decides: one media type only
    video = await f.new_asset(owner, media_type="video", taken=START - timedelta(days=1))
    only, _ = await search.metadata_page(me, _all(owner, media_type="video"), page=1, size=10)
    assert _ids(only) == [video["id"]]


async def test_exif_and_people_only_when_asked_for():
    owner = await f.new_user()
    me = f.principal_for(owner)
    described = await f.new_asset(owner, exif={"make": "Canon", "city": "Oslo"})
    bare = await f.new_asset(owner, taken=START)
    ann = await f.new_person(owner, name="Ann")
    await f.new_face(described, person=ann)
    lean, _ = await search.metadata_page(me, _all(owner), page=1, size=10)
    assert [(i.row["id"], i.has_metadata, i.exif, i.people) for i in lean] == [
        (described["id"], True, None, []), (bare["id"], False, None, [])]
    assert "make" not in lean[0].row.keys() and "user_description" not in lean[0].row.keys()
    full, _ = await search.metadata_page(me, _all(owner), page=1, size=10, with_exif=True, with_people=True)
    assert [(i.exif and i.exif["make"], [p["id"] for p in i.people]) for i in full] == [
        ("Canon", [ann["id"]]), (None, [])]
    assert full[1].has_metadata is False


async def test_paging_and_the_credential_are_checked():
    owner = await f.new_user()
    for page, size, order in ((0, 10, "desc"), (1, 0, "desc"), (1, 1001, "desc"), (1, 10, "sideways"),
                              (2**62, 1000, "desc")):
        with pytest.raises(Invalid):
            await search.metadata_page(f.principal_for(owner), _all(owner), page=page, size=size, order=order)
    with pytest.raises(Forbidden):
        await search.metadata_page(f.principal_for(owner, actions=frozenset()), _all(owner), page=1, size=1)


async def test_an_item_maps_like_the_full_view_for_every_field_it_keeps():
    owner = await f.new_user()
    me = f.principal_for(owner)
    asset = await f.new_asset(
        owner, taken=datetime(2023, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), rating=5,
        user_description="mine", user_latitude=1.5, user_longitude=2.5, visibility="archive",
        exif={"make": "Canon", "model": "R5", "exposure_time": 0.004, "orientation": 6, "city": "Oslo",
              "original_datetime": datetime(2023, 5, 1, 12, 0), "original_offset_minutes": 120,
              "modified_datetime": datetime(2023, 5, 2, 8, 0), "description": "the file's"})
    await f.new_asset(owner, taken=START - timedelta(days=1))  # no EXIF row; older, so it comes second
    # A wall clock with microseconds and no known offset, the file's own values only (no user edits),
    # and a video with no EXIF time.
    await f.new_asset(owner, taken=START - timedelta(days=2, microseconds=-123456), file_rating=3,
                      exif={"original_datetime": START - timedelta(days=2, microseconds=-123456), "latitude": 59.9,
                            "longitude": 10.7, "altitude": 12.5, "exposure_time": 2.0, "description": "file"})
    await f.new_asset(owner, taken=START - timedelta(days=3), media_type="video", mime_type="video/mp4",
                      duration_ms=1500, exif={"make": "Sony"})
    rows = [await _row(i.row["id"]) for i in (await search.metadata_page(me, _all(owner), page=1, size=10))[0]]
    assert rows[0]["id"] == asset["id"] and len(rows) == 4
    full = [msgspec.to_builtins(mapping.asset(view)) for view in await asset_views.views(rows)]
    for with_exif in (False, True):
        items, _ = await search.metadata_page(me, _all(owner), page=1, size=10, with_exif=with_exif)
        shown = [msgspec.to_builtins(search_items.search_item(i, with_exif=with_exif)) for i in items]
        for dto in shown:
            conforms("AssetResponseDto", dto)
        for dto, view in zip(shown, full, strict=True):
            assert dto == {k: v for k, v in view.items() if k != "stack" and (with_exif or k != "exifInfo")}
        assert ("exifInfo" in shown[1]) is with_exif and shown[1]["hasMetadata"] is False
        assert "stack" not in shown[0]
    assert full[0]["exifInfo"]["description"] == "mine" and full[0]["exifInfo"]["latitude"] == 1.5
    assert full[2]["localDateTime"].endswith(".123456Z") and full[3]["type"] == "VIDEO"


async def _row(asset_id):
    from app.db import engine as db

    return await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)

