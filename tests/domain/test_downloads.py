"""Downloads (app/domain/downloads.py): how a selection splits into archives, the names files get in
the zip, and who may download what (own libraries, partners, album shares, shared links that allow
downloads; never a stranger, a locked asset without the PIN, or a trashed one)."""

from __future__ import annotations

import uuid

import pytest

from app.db import engine as db
from app.domain import access, downloads, partners, shared_links
from app.domain.asset_filters import LOCKED
from app.domain.errors import BadRequest
from tests.domain import factories as f


def _ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_an_archive_closes_once_it_grows_past_the_target():
    a, b, c, d = _ids(4)
    parts = downloads.split([(a, 40), (b, 70), (c, 10), (d, 200)], 100)
    assert [(p.asset_ids, p.size) for p in parts] == [([a, b], 110), ([c, d], 210)]
    assert [p.asset_ids for p in downloads.split([(a, 100), (b, 1)], 100)] == [[a, b]]  # not past: stays open
    assert downloads.split([], 100) == []


def test_file_names_are_made_safe_as_immich_does():
    assert downloads.safe_file_name("IMG_0001.JPG") == "IMG_0001.JPG"
    assert downloads.safe_file_name("../../etc/passwd") == "....etcpasswd"
    assert downloads.safe_file_name('a<b>:c"d|e?f*g\x01.jpg') == "abcdefg.jpg"
    assert downloads.safe_file_name("..") == "unnamed"
    assert downloads.safe_file_name("CON.txt") == "unnamed"
    assert downloads.safe_file_name("photo. ") == "photo"
    assert downloads.safe_file_name("") == "unnamed"
    assert len(downloads.safe_file_name("é" * 300).encode()) <= 255


async def test_a_plan_includes_live_photo_motion_parts_after_the_selection_and_leaves_trash_out():
    owner = await f.new_user()
    motion = await f.new_asset(owner, media_type="video", visibility="hidden", file_size_bytes=500)
    live = await f.new_asset(owner, live_photo_video_id=motion["id"], file_size_bytes=100)
    plain = await f.new_asset(owner, file_size_bytes=30)
    trashed = await f.new_asset(owner, file_size_bytes=7)
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", trashed["id"])
    me = f.principal_for(owner)

    found = await downloads.plan(me, asset_ids=[live["id"], plain["id"], trashed["id"], live["id"]])
    assert [p.asset_ids for p in found.archives] == [[live["id"], plain["id"], motion["id"]]]
    assert found.total_size == 630

    timeline = await downloads.plan(me, user_id=owner["id"], archive_size=120)
    assert [p.asset_ids for p in timeline.archives] == [[live["id"], plain["id"]], [motion["id"]]]
    assert await downloads.plan(me, asset_ids=[]) == downloads.DownloadPlan([], 0)
    with pytest.raises(BadRequest):
        await downloads.plan(me)


async def test_names_in_an_archive_are_unique():
    owner = await f.new_user()
    rows = [await f.new_asset(owner, original_file_name=n) for n in ("a.jpg", "a.jpg", "a+1.jpg", "a/b.jpg")]
    entries = await downloads.archive_entries(f.principal_for(owner), [r["id"] for r in rows])
    assert [e.name for e in entries] == ["a.jpg", "a+1.jpg", "a+1+1.jpg", "ab.jpg"]
    assert [e.storage_key for e in entries] == [r["storage_key"] for r in rows]


async def test_who_may_download():
    shared = await f.new_shared_album()
    owner, stranger = shared.owner, shared.stranger
    motion = await f.new_asset(owner, media_type="video", visibility="hidden")
    live = await f.new_asset(owner, live_photo_video_id=motion["id"])
    await f.new_album_asset(shared.album, live)
    locked = await f.new_asset(owner, visibility=LOCKED)
    album_assets = [shared.in_album["id"], live["id"], motion["id"]]

    # The owner, an album user (the album's assets and the motion part of its live photo), a partner.
    for user in (owner, shared.viewer, shared.editor):
        entries = await downloads.archive_entries(f.principal_for(user), album_assets)
        assert [e.asset_id for e in entries] == album_assets
        assert await f.outcome(downloads.plan(f.principal_for(user), album_id=shared.album["id"])) == "ok"
    assert await f.outcome(downloads.archive_entries(f.principal_for(shared.viewer), [shared.elsewhere["id"]])) == "404"
    friend = await f.new_user()
    await partners.create(f.principal_for(owner), friend["id"])
    assert len(await downloads.archive_entries(f.principal_for(friend), [shared.elsewhere["id"], motion["id"]])) == 2
    assert await f.outcome(downloads.plan(f.principal_for(friend), user_id=owner["id"])) == "ok"
    assert await f.outcome(downloads.archive_entries(f.principal_for(friend), [locked["id"]])) == "404"

    # A stranger reaches nothing; one refused asset refuses the whole request.
    stranger_p = f.principal_for(stranger)
    assert await f.outcome(downloads.archive_entries(stranger_p, [shared.in_album["id"]])) == "404"
    assert await f.outcome(downloads.plan(stranger_p, asset_ids=[shared.in_album["id"]])) == "404"
    assert await f.outcome(downloads.plan(stranger_p, album_id=shared.album["id"])) == "404"
    assert await f.outcome(downloads.plan(stranger_p, user_id=owner["id"])) == "404"
    assert await f.outcome(downloads.archive_entries(stranger_p, [uuid.uuid4()])) == "404"
    mine = await f.new_asset(stranger)
    assert await f.outcome(downloads.archive_entries(stranger_p, [mine["id"], shared.in_album["id"]])) == "404"

    # A locked asset only with the PIN; a credential scoped to another library reaches nothing here.
    assert await f.outcome(downloads.archive_entries(f.principal_for(owner), [locked["id"]])) == "404"
    elevated = access.Principal(user_id=owner["id"], is_admin=False, api_key_id=None, actions=access.ALL_ACTIONS,
                                library_scope=None, elevated=True)
    assert len(await downloads.archive_entries(elevated, [locked["id"]])) == 1
    other = await f.new_library(owner)
    scoped = f.principal_for(owner, library_scope=frozenset({other["id"]}))
    assert await f.outcome(downloads.archive_entries(scoped, [shared.elsewhere["id"]])) == "404"


async def test_a_shared_link_downloads_what_it_shows_only_when_it_allows_downloads():
    shared = await f.new_shared_album()
    owner = shared.owner
    motion = await f.new_asset(owner, media_type="video", visibility="hidden")
    live = await f.new_asset(owner, live_photo_video_id=motion["id"])
    await f.new_album_asset(shared.album, live)

    async def link(**settings):
        row = await shared_links.create_link(f.principal_for(owner), shared_links.ALBUM,
                                             shared_links.LinkSettings(**settings), album_id=shared.album["id"])
        return await shared_links.authenticate(key=shared_links.encode_key(row["key"]))

    open_link, closed_link = await link(), await link(allow_download=False)
    wanted = [shared.in_album["id"], live["id"], motion["id"]]
    assert [e.asset_id for e in await downloads.archive_entries(open_link, wanted)] == wanted
    assert [p.asset_ids for p in (await downloads.plan(open_link, album_id=shared.album["id"])).archives] == [
        wanted]
    assert await f.outcome(downloads.archive_entries(open_link, [shared.elsewhere["id"]])) == "404"
    assert await f.outcome(downloads.plan(open_link, user_id=owner["id"])) == "404"
    assert await f.outcome(downloads.archive_entries(closed_link, wanted)) == "403"
    assert await f.outcome(downloads.plan(closed_link, album_id=shared.album["id"])) == "403"


async def test_an_entry_whose_file_moved_after_planning_is_found_again():
    owner = await f.new_user()
    asset = await f.new_asset(owner, original_file_name="IMG_1.jpg")
    [entry] = await downloads.archive_entries(f.principal_for(owner), [asset["id"]])
    moved = f"templated/{owner['id']}/2024/IMG_1.jpg"
    await db.execute("UPDATE assets SET storage_key = $2 WHERE id = $1", asset["id"], moved)
    assert await downloads.moved_key(entry) == moved
    await db.execute("DELETE FROM assets WHERE id = $1", asset["id"])
    assert await downloads.moved_key(entry) is None
