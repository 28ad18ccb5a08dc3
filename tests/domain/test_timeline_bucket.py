"""A month of the timeline as columns (app/domain/timeline.py): the same answer, byte for byte, as
building each asset's whole Immich answer from its rows (the per-asset path the bucket used before),
over a varied month; and the rules the columns keep (bounds, order, libraries merged, trash, places)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from app.domain import asset_views, assets, stacks, tags, timeline
from app.domain.asset_filters import AssetFilter
from app.domain.errors import NotFound
from compat import mapping
from compat.routes.timeline import _month, bucket_body
from tests.domain import factories as f

AFTER, BEFORE = _month("2024-03-01")
IN_MONTH = datetime(2024, 3, 10, 12, 0)


async def per_asset(filters: list[AssetFilter], order: str, with_coordinates: bool, hide_location: bool) -> dict:
    """The bucket as it was built before: whole rows page by page, each asset's full answer, six fields kept."""
    rows = []
    for flt in filters:
        rows += await assets.all_pages(dataclasses.replace(flt, after=AFTER, before=BEFORE), order=order)
    rows.sort(key=lambda r: (r["local_datetime"], r["id"]), reverse=order != "asc")
    views = await asset_views.views(rows)
    sizes = await stacks.live_counts(list({r["stack_id"] for r in rows if r["stack_id"] is not None}))
    names = ("id", "ownerId", "ratio", "isFavorite", "isImage", "isTrashed", "thumbhash", "fileCreatedAt",
             "localOffsetHours", "duration", "projectionType", "livePhotoVideoId", "visibility", "createdAt", "stack")
    columns: dict[str, list] = {name: [] for name in names}
    if with_coordinates:
        for name in ("latitude", "longitude", "city", "country"):
            columns[name] = []
    for v in views:
        dto, row = mapping.asset(v), v.row
        columns["id"].append(dto.id)
        columns["ownerId"].append(dto.ownerId)
        columns["ratio"].append((row["width"] / row["height"]) if row["width"] and row["height"] else 1.0)
        columns["isFavorite"].append(dto.isFavorite)
        columns["isImage"].append(row["media_type"] == "image")
        columns["isTrashed"].append(dto.isTrashed)
        columns["thumbhash"].append(dto.thumbhash)
        columns["fileCreatedAt"].append(dto.fileCreatedAt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"))
        offset = row["local_offset_minutes"]
        columns["localOffsetHours"].append(0 if offset is None else offset / 60)
        columns["duration"].append(row["duration_ms"])
        columns["projectionType"].append(None if v.exif is None else v.exif["projection_type"])
        columns["livePhotoVideoId"].append(dto.livePhotoVideoId)
        columns["visibility"].append(row["visibility"])
        columns["createdAt"].append(row["created_at"].astimezone(timezone.utc).isoformat().replace("+00:00", "Z"))
        stack = row["stack_id"]
        columns["stack"].append(None if stack is None else [str(stack), str(sizes.get(stack, 0))])
        if with_coordinates:
            for name in ("latitude", "longitude", "city", "country"):
                columns[name].append(None if hide_location else getattr(dto.exifInfo, name))
    return columns


async def same_answer(filters: list[AssetFilter], *, order: str = "desc", with_coordinates: bool = False,
                      hide_location: bool = False) -> dict:
    new = await timeline.bucket_columns(filters, after=AFTER, before=BEFORE, order=order,
                                        with_places=with_coordinates, hide_places=hide_location)
    body = bucket_body(new, with_coordinates)
    old = await per_asset(filters, order, with_coordinates, hide_location)
    assert msgspec.json.encode(body) == msgspec.json.encode(old)
    return body


async def varied_month(user) -> dict:
    """A month of everything the columns show, plus assets just outside it and in another library."""
    made = {}
    at = IN_MONTH
    made["plain"] = await f.new_asset(user, taken=at, thumbhash=bytes(range(25)))
    made["favourite"] = await f.new_asset(user, taken=at + timedelta(hours=1), rating=5)
    made["file_favourite"] = await f.new_asset(user, taken=at + timedelta(hours=2), file_rating=5)
    made["unfavourited"] = await f.new_asset(user, taken=at + timedelta(hours=3), file_rating=5, rating=2)
    made["offset"] = await f.new_asset(user, taken=datetime(2024, 3, 11, 9, 30, 0, 123456,
                                                            tzinfo=timezone(timedelta(hours=5, minutes=30))))
    made["west"] = await f.new_asset(user, taken=datetime(2024, 3, 12, 23, 0, tzinfo=timezone(timedelta(hours=-7))))
    made["video"] = await f.new_asset(user, taken=at + timedelta(days=3), media_type="video", duration_ms=65432,
                                      width=1920, height=1080, thumbhash=b"")
    made["square_unknown"] = await f.new_asset(user, taken=at + timedelta(days=4), width=None, height=None)
    made["zero"] = await f.new_asset(user, taken=at + timedelta(days=4, hours=1), width=0, height=3000)
    made["odd_ratio"] = await f.new_asset(user, taken=at + timedelta(days=4, hours=2), width=3001, height=1999)
    motion = await f.new_asset(user, taken=at + timedelta(days=5), media_type="video", visibility="hidden")
    made["live"] = await f.new_asset(user, taken=at + timedelta(days=5), live_photo_video_id=motion["id"])
    made["panorama"] = await f.new_asset(user, taken=at + timedelta(days=6),
                                         exif={"projection_type": "EQUIRECTANGULAR", "latitude": 48.8566,
                                               "longitude": 2.3522, "city": "Paris", "country": "France"})
    made["moved"] = await f.new_asset(user, taken=at + timedelta(days=6, hours=1), user_latitude=-33.8688,
                                      user_longitude=151.2093,
                                      exif={"latitude": 1.5, "longitude": 2.5, "city": "Somewhere", "country": "X"})
    made["archived"] = await f.new_asset(user, taken=at + timedelta(days=7), visibility="archive")
    made["trashed"] = await f.new_asset(user, taken=at + timedelta(days=8),
                                        trashed_at=datetime.now(timezone.utc) - timedelta(days=1))
    # Two with the same capture time: the id breaks the tie.
    made["tie_a"] = await f.new_asset(user, taken=at + timedelta(days=9))
    made["tie_b"] = await f.new_asset(user, taken=at + timedelta(days=9))
    first = await f.new_asset(user, taken=at + timedelta(days=10))
    second = await f.new_asset(user, taken=at + timedelta(days=10, minutes=1))
    gone = await f.new_asset(user, taken=at + timedelta(days=10, minutes=2),
                             trashed_at=datetime.now(timezone.utc))
    made["stack"] = await f.new_stack(user, [first, second, gone])
    made["stacked"] = (first, second)
    # Bounds: the first instant of the month is in, the first of the next is out.
    made["first_instant"] = await f.new_asset(user, taken=datetime(2024, 3, 1, 0, 0))
    await f.new_asset(user, taken=datetime(2024, 4, 1, 0, 0))
    await f.new_asset(user, taken=datetime(2024, 2, 29, 23, 59, 59, 999999))
    await f.new_asset(await f.new_user(), taken=at)  # another user's
    return made


async def test_the_columns_are_the_per_asset_answer(user, library_id):
    made = await varied_month(user)
    own = AssetFilter(library_id=library_id, visibility="timeline")
    body = await same_answer([own])
    assert str(made["trashed"]["id"]) not in body["id"] and str(made["archived"]["id"]) not in body["id"]
    assert str(made["first_instant"]["id"]) in body["id"]
    assert len(body["id"]) == 18
    for order in ("asc", "desc"):
        await same_answer([own], order=order, with_coordinates=True)
    await same_answer([own], with_coordinates=True, hide_location=True)
    await same_answer([AssetFilter(library_id=library_id)])  # timeline and archive
    await same_answer([AssetFilter(library_id=library_id, visibility="hidden")])
    await same_answer([AssetFilter(library_id=library_id, ratings=[5])])
    trash = await same_answer([AssetFilter(library_id=library_id, state="trashed")], with_coordinates=True)
    assert trash["isTrashed"] == [True, True]


async def test_the_values_themselves(user, library_id):
    made = await varied_month(user)
    body = bucket_body(await timeline.bucket_columns([AssetFilter(library_id=library_id, visibility="timeline")],
                                                     after=AFTER, before=BEFORE, with_places=True), True)
    at = {i: n for n, i in enumerate(body["id"])}

    def value(name, key):
        return body[name][at[str(made[key]["id"])]]

    assert value("thumbhash", "plain") == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA=="
    assert value("thumbhash", "video") is None  # no bytes
    assert value("isFavorite", "favourite") and value("isFavorite", "file_favourite")
    assert not value("isFavorite", "unfavourited") and not value("isFavorite", "plain")
    assert value("fileCreatedAt", "offset") == "2024-03-11T04:00:00.123456Z"
    assert value("localOffsetHours", "offset") == 5.5 and value("localOffsetHours", "west") == -7.0
    assert value("localOffsetHours", "plain") == 0
    assert value("fileCreatedAt", "plain") == "2024-03-10T12:00:00Z"  # no offset: read as UTC
    assert value("duration", "video") == 65432 and value("isImage", "video") is False
    assert value("ratio", "square_unknown") == 1.0 and value("ratio", "zero") == 1.0
    assert value("ratio", "odd_ratio") == 3001 / 1999
    assert value("livePhotoVideoId", "live") is not None
    assert value("projectionType", "panorama") == "EQUIRECTANGULAR"
    assert (value("latitude", "panorama"), value("city", "panorama")) == (48.8566, "Paris")
    # The user's place wins over the file's; the place names stay the file's.
    assert (value("latitude", "moved"), value("longitude", "moved")) == (-33.8688, 151.2093)
    first, second = made["stacked"]
    assert body["stack"][at[str(first["id"])]] == [str(made["stack"]["id"]), "2"]  # the trashed member not counted
    assert body["id"].index(str(second["id"])) < body["id"].index(str(first["id"]))  # newest first
    ties = sorted([made["tie_a"]["id"], made["tie_b"]["id"]], reverse=True)
    assert body["id"].index(str(ties[0])) < body["id"].index(str(ties[1]))


async def test_libraries_merge_in_timeline_order(user, library_id):
    partner = await f.new_user()
    mine, theirs = [], []
    for n in range(6):
        mine.append(await f.new_asset(user, taken=IN_MONTH + timedelta(hours=2 * n)))
        theirs.append(await f.new_asset(partner, taken=IN_MONTH + timedelta(hours=2 * n + 1), rating=5))
    # Same capture time in both libraries: the id decides, across libraries too.
    await f.new_asset(user, taken=IN_MONTH + timedelta(days=1))
    await f.new_asset(partner, taken=IN_MONTH + timedelta(days=1))
    filters = [AssetFilter(library_id=library_id, visibility="timeline"),
               AssetFilter(library_id=partner["default_library_id"], visibility="timeline", through_share=True)]
    for order in ("asc", "desc"):
        body = await same_answer(filters, order=order, with_coordinates=True)
        assert len(body["id"]) == 14
    desc = await same_answer(filters)
    # After the two at the same time, the libraries alternate hour by hour.
    assert desc["ownerId"][2:6] == [str(partner["id"]), str(user["id"])] * 2


async def test_a_partners_locked_assets_never_show(user, library_id):
    partner = await f.new_user()
    await f.new_asset(partner, taken=IN_MONTH, visibility="locked")
    shown = await f.new_asset(partner, taken=IN_MONTH)
    through = AssetFilter(library_id=partner["default_library_id"], through_share=True, elevated=True)
    body = await same_answer([AssetFilter(library_id=library_id), through])
    assert body["id"] == [str(shown["id"])]


async def test_album_and_tag_contents(user, library_id, principal):
    made = await varied_month(user)
    album = await f.new_album(user)
    for key in ("plain", "video", "trashed", "panorama"):
        await f.new_album_asset(album, made[key])
    body = await same_answer([AssetFilter(library_id=library_id, album_id=album["id"])], with_coordinates=True)
    assert sorted(body["id"]) == sorted(str(made[k]["id"]) for k in ("plain", "video", "panorama"))
    with pytest.raises(NotFound):  # a wrong album is 404, not an empty month
        await timeline.bucket_columns([AssetFilter(library_id=library_id, album_id=made["plain"]["id"])],
                                      after=AFTER, before=BEFORE)
    [parent, child] = await tags.upsert_tags(principal, ["Trips", "Trips/Rome"])
    await tags.add_assets(principal, child["id"], [made["live"]["id"], made["moved"]["id"]])
    body = await same_answer([AssetFilter(library_id=library_id, tag_ids=[parent["id"]])])
    assert sorted(body["id"]) == sorted(str(made[k]["id"]) for k in ("live", "moved"))


async def test_an_empty_month(user, library_id):
    await f.new_asset(user, taken=datetime(2023, 1, 1))
    body = await same_answer([AssetFilter(library_id=library_id)], with_coordinates=True)
    assert body["id"] == [] and body["latitude"] == [] and body["stack"] == []

