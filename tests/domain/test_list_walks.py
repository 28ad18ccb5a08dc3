"""Cursor pages of asset lists (app/domain/assets.py list_assets): a walk neither repeats nor skips
an asset, even while capture times change under it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.db import engine as db
from app.domain import assets
from app.domain.asset_filters import AssetFilter
from app.domain.errors import NotFound
from tests.domain import factories as f

T0 = datetime(2021, 3, 1, 12, 0)


async def make(user, count):
    """Assets an hour apart (naive wall clocks), oldest first."""
    return [await f.new_asset(user, taken=T0 + timedelta(hours=i)) for i in range(count)]


async def walk(flt, *, limit, order="desc", between_pages=None):
    seen, cursor, page_no = [], None, 0
    while True:
        page, more = await assets.list_assets(flt, order=order, limit=limit, starting_after=cursor)
        seen += [r["id"] for r in page]
        page_no += 1
        if not more:
            return seen
        cursor = page[-1]["id"]
        if between_pages is not None:
            await between_pages(page_no)


async def move(asset, to: datetime):
    """What the metadata step or a user's date edit does to an asset's list key."""
    await db.execute("UPDATE assets SET local_datetime = $2 WHERE id = $1", asset["id"], to)


async def test_pages_partition_the_list_in_either_order(user, library_id):
    made = await make(user, 10)
    newest_first = [a["id"] for a in reversed(made)]
    assert await walk(AssetFilter(library_id), limit=3) == newest_first
    assert await walk(AssetFilter(library_id), limit=3, order="asc") == newest_first[::-1]
    assert await walk(AssetFilter(library_id), limit=10) == newest_first
    page, more = await assets.list_assets(AssetFilter(library_id), limit=10)
    assert len(page) == 10 and not more


async def test_equal_times_are_ordered_by_id(user, library_id):
    same = [await f.new_asset(user, taken=T0) for _ in range(5)]
    expected = sorted((a["id"] for a in same), reverse=True)
    assert await walk(AssetFilter(library_id), limit=2) == expected


async def test_an_unseen_asset_moved_behind_the_cursor_still_comes(user, library_id):
    made = await make(user, 9)  # newest first: 8 7 6 | 5 4 3 | 2 1 0

    async def jump(page_no):
        if page_no == 1:
            await move(made[1], T0 + timedelta(days=30))  # now the newest of all, behind the cursor

    seen = await walk(AssetFilter(library_id), limit=3, between_pages=jump)
    assert sorted(seen) == sorted(a["id"] for a in made) and len(seen) == 9


async def test_a_seen_asset_moved_ahead_is_not_repeated(user, library_id):
    made = await make(user, 9)

    async def sink(page_no):
        if page_no == 1:
            await move(made[8], T0 - timedelta(days=30))  # served first, now the oldest of all

    seen = await walk(AssetFilter(library_id), limit=3, between_pages=sink)
    assert len(seen) == len(set(seen)) == 9


async def test_an_asset_trashed_mid_walk_leaves_later_pages(user, library_id):
    made = await make(user, 6)

    async def trash(page_no):
        await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", made[0]["id"])

    seen = await walk(AssetFilter(library_id), limit=2, between_pages=trash)
    assert seen == [a["id"] for a in reversed(made[1:])]


async def test_a_forgotten_walk_resumes_from_the_anchors_current_key(user, library_id):
    made = await make(user, 6)
    page, _ = await assets.list_assets(AssetFilter(library_id), limit=2)
    await db.execute("DELETE FROM asset_list_walks WHERE library_id = $1", library_id)
    rest, more = await assets.list_assets(AssetFilter(library_id), limit=10, starting_after=page[-1]["id"])
    assert [r["id"] for r in page + rest] == [a["id"] for a in reversed(made)] and not more


async def test_the_trash_pages_by_trash_time(user, library_id):
    made = await make(user, 4)
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    # Trashed in the opposite order of capture: the trash lists the latest trashed first.
    for i, asset in enumerate(made):
        await db.execute("UPDATE assets SET trashed_at = $2 WHERE id = $1", asset["id"], base - timedelta(hours=i))
    trash = AssetFilter(library_id, state="trashed")
    assert await walk(trash, limit=3) == [a["id"] for a in made]
    assert await walk(AssetFilter(library_id), limit=3) == []


async def test_walks_of_different_lists_keep_apart(user, library_id):
    videos = [await f.new_asset(user, media_type="video", taken=T0 + timedelta(hours=i)) for i in range(4)]
    photos = await make(user, 4)
    assert await walk(AssetFilter(library_id, media_type="video"), limit=3) == [a["id"] for a in reversed(videos)]
    assert await walk(AssetFilter(library_id, media_type="image"), limit=3) == [a["id"] for a in reversed(photos)]


async def test_a_cursor_outside_the_list_is_not_found(user, library_id):
    stranger = await f.new_user()
    theirs = await f.new_asset(stranger)
    with pytest.raises(NotFound):
        await assets.list_assets(AssetFilter(library_id), starting_after=theirs["id"])


async def test_all_pages_reads_everything(user, library_id):
    made = await make(user, 7)
    rows = await assets.all_pages(AssetFilter(library_id), page_size=3)
    assert [r["id"] for r in rows] == [a["id"] for a in reversed(made)]


async def test_prune_keeps_fresh_walks(user, library_id):
    await make(user, 3)
    await assets.list_assets(AssetFilter(library_id), limit=1)
    await assets.prune_walks()
    assert await db.fetchval("SELECT count(*) FROM asset_list_walks WHERE library_id = $1", library_id) == 1
    await db.execute("UPDATE asset_list_walks SET started_at = now() - interval '2 days' WHERE library_id = $1",
                     library_id)
    assert await assets.prune_walks() >= 1
    assert await db.fetchval("SELECT count(*) FROM asset_list_walks WHERE library_id = $1", library_id) == 0
