"""Activities (app/domain/activities.py): comments and likes on an album shared with a viewer and an
editor, next to a stranger.

Whoever reads the album reads and adds activities; a second like of the same thing is the first
one; an album with activity turned off takes none; only the author or the album's owner removes one;
another user's album is NotFound; every write is logged in its transaction, outside the native feed.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.db import engine as db
from app.domain import access, activities, albums, assets, events
from app.domain.errors import AccessRefused, Invalid
from tests.domain import factories as f


@pytest.fixture
def shared(domain) -> f.SharedAlbum:
    return domain.run(f.new_shared_album())


async def _events(album: asyncpg.Record) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM events WHERE entity_type = 'activity' AND library_id = $1 ORDER BY id",
                          album["library_id"])


async def test_whoever_reads_the_album_reads_and_adds_activities(shared):
    s = shared
    album = s.album["id"]
    said, _ = await activities.create(s.p(s.owner), album, activities.COMMENT, comment="Look at this")
    liked, created = await activities.create(s.p(s.viewer), album, activities.LIKE, asset_id=s.in_album["id"])
    noted, _ = await activities.create(s.p(s.editor), album, activities.COMMENT, asset_id=s.in_album["id"],
                                       comment="Nice")
    assert created and (liked.kind, liked.row["comment"], liked.author["id"]) == ("like", None, s.viewer["id"])
    for user in (s.owner, s.viewer, s.editor):
        found = await activities.list_activities(s.p(user), album)
        assert [a.row["id"] for a in found] == [said.row["id"], liked.row["id"], noted.row["id"]]  # oldest first
    p = s.p(s.viewer)
    narrow = activities.ActivityFilter
    assert [a.row["id"] for a in await activities.list_activities(p, album, narrow(level="album"))] == [said.row["id"]]
    on_photo = await activities.list_activities(p, album, narrow(asset_id=s.in_album["id"]))
    assert [a.row["id"] for a in on_photo] == [liked.row["id"], noted.row["id"]]
    assert [a.row["id"] for a in await activities.list_activities(p, album, narrow(kind="like"))] == [liked.row["id"]]
    mine = await activities.list_activities(p, album, narrow(kind="comment", user_id=s.editor["id"]))
    assert [a.row["id"] for a in mine] == [noted.row["id"]]
    assert await activities.statistics(p, album) == (2, 1)
    assert await activities.statistics(p, album, s.in_album["id"]) == (1, 1)
    # every write is logged with the album's library and owner
    logged = await _events(s.album)
    assert [(e["event_type"], e["owner_id"]) for e in logged] == [("activity_created", s.owner["id"])] * 3


async def test_other_users_album_is_not_found(shared):
    s = shared
    album = s.album["id"]
    await activities.create(s.p(s.owner), album, activities.LIKE)
    stranger = s.p(s.stranger)
    assert await f.outcome(activities.list_activities(stranger, album)) == "404"
    assert await f.outcome(activities.statistics(stranger, album)) == "404"
    assert await f.outcome(activities.create(stranger, album, activities.LIKE)) == "404"
    # a credential limited to the viewer's own libraries reaches nothing through the share
    scoped = s.p(s.viewer, library_scope=frozenset({s.viewer["default_library_id"]}))
    assert await f.outcome(activities.list_activities(scoped, album)) == "404"
    # a read-only credential reads but adds nothing
    reader = s.p(s.viewer, actions=frozenset({access.READ}))
    assert len(await activities.list_activities(reader, album)) == 1
    assert await f.outcome(activities.create(reader, album, activities.COMMENT, comment="hi")) == "403"


async def test_a_second_like_is_the_first_one(shared):
    s = shared
    album, viewer = s.album["id"], s.p(s.viewer)
    first, created = await activities.create(viewer, album, activities.LIKE)
    again, created_again = await activities.create(viewer, album, activities.LIKE)
    assert created and not created_again and again.row["id"] == first.row["id"]
    # a like of an asset in the album, and someone else's like, are other likes
    on_photo, created = await activities.create(viewer, album, activities.LIKE, asset_id=s.in_album["id"])
    assert created and on_photo.row["id"] != first.row["id"]
    assert (await activities.create(viewer, album, activities.LIKE, asset_id=s.in_album["id"]))[1] is False
    assert (await activities.create(s.p(s.owner), album, activities.LIKE))[1] is True
    # comments are never merged
    for _ in range(2):
        assert (await activities.create(viewer, album, activities.COMMENT, comment="again"))[1] is True
    assert await activities.statistics(viewer, album) == (2, 3)
    assert len(await _events(s.album)) == 5  # a repeated like writes nothing
    # two likes at once are still one
    both = await asyncio.gather(*(activities.create(s.p(s.editor), album, activities.LIKE) for _ in range(2)))
    assert sorted(created for _, created in both) == [False, True]
    assert both[0][0].row["id"] == both[1][0].row["id"]


async def test_what_an_activity_may_say_and_name(shared):
    s = shared
    album, viewer = s.album["id"], s.p(s.viewer)
    for comment in (None, "", "   "):
        with pytest.raises(Invalid, match="comment"):
            await activities.create(viewer, album, activities.COMMENT, comment=comment)
    with pytest.raises(Invalid, match="like"):
        await activities.create(viewer, album, activities.LIKE, comment="text")
    with pytest.raises(Invalid, match="type"):
        await activities.create(viewer, album, "asset_added")
    # the asset must be live and in this album
    assert await f.outcome(activities.create(viewer, album, activities.LIKE, asset_id=s.elsewhere["id"])) == "404"
    await assets.set_trashed(s.p(s.owner), None, [s.in_album["id"]], True)
    assert await f.outcome(activities.create(viewer, album, activities.LIKE, asset_id=s.in_album["id"])) == "404"
    assert await _events(s.album) == []


async def test_an_album_with_activity_turned_off_takes_none(shared):
    s = shared
    album = s.album["id"]
    await activities.create(s.p(s.viewer), album, activities.COMMENT, comment="before")
    await albums.update_album(s.p(s.owner), album, albums.AlbumPatch(is_activity_enabled=False))
    assert (await albums.get_album(s.p(s.viewer), album))["is_activity_enabled"] is False
    for user in (s.owner, s.viewer):
        with pytest.raises(AccessRefused):
            await activities.create(s.p(user), album, activities.LIKE)
    # what was said stays readable
    assert [a.row["comment"] for a in await activities.list_activities(s.p(s.viewer), album)] == ["before"]
    # an album user cannot turn it back on; the owner can
    assert await f.outcome(albums.update_album(s.p(s.editor), album, albums.AlbumPatch(is_activity_enabled=True))) \
        == "403"
    await albums.update_album(s.p(s.owner), album, albums.AlbumPatch(is_activity_enabled=True))
    assert (await activities.create(s.p(s.viewer), album, activities.LIKE))[1] is True


async def test_only_the_author_or_the_album_owner_removes_an_activity(shared):
    s = shared
    album = s.album["id"]
    owners, _ = await activities.create(s.p(s.owner), album, activities.COMMENT, comment="owner's")
    viewers, _ = await activities.create(s.p(s.viewer), album, activities.COMMENT, comment="viewer's")
    editors, _ = await activities.create(s.p(s.editor), album, activities.LIKE)
    assert await f.outcome(activities.delete(s.p(s.viewer), owners.row["id"])) == "403"
    assert await f.outcome(activities.delete(s.p(s.editor), viewers.row["id"])) == "403"
    assert await f.outcome(activities.delete(s.p(s.stranger), viewers.row["id"])) == "404"
    await activities.delete(s.p(s.owner), viewers.row["id"])  # the owner moderates
    await activities.delete(s.p(s.editor), editors.row["id"])  # the author takes back its own
    left = await activities.list_activities(s.p(s.owner), album)
    assert [a.row["id"] for a in left] == [owners.row["id"]]
    assert await f.outcome(activities.delete(s.p(s.owner), viewers.row["id"])) == "404"  # gone
    deleted = [e for e in await _events(s.album) if e["event_type"] == "activity_deleted"]
    assert [(e["entity_id"], e["library_id"], e["owner_id"]) for e in deleted] == [
        (viewers.row["id"], s.album["library_id"], s.owner["id"]),
        (editors.row["id"], s.album["library_id"], s.owner["id"])]


async def test_activities_go_with_their_asset_and_album(shared):
    s = shared
    album, viewer = s.album["id"], s.p(s.viewer)
    await activities.create(viewer, album, activities.LIKE)
    await activities.create(viewer, album, activities.COMMENT, asset_id=s.in_album["id"], comment="on the photo")
    # an asset that leaves the album (trash) takes its activities out of sight
    await assets.set_trashed(s.p(s.owner), None, [s.in_album["id"]], True)
    assert await activities.statistics(viewer, album) == (0, 1)
    await assets.set_trashed(s.p(s.owner), None, [s.in_album["id"]], False)
    assert await activities.statistics(viewer, album) == (1, 1)
    await db.execute("DELETE FROM assets WHERE id = $1", s.in_album["id"])
    assert await db.fetchval("SELECT count(*) FROM activities WHERE album_id = $1", album) == 1
    await albums.delete_album(s.p(s.owner), album)
    assert await db.fetchval("SELECT count(*) FROM activities WHERE album_id = $1", album) == 0


async def test_the_native_feed_does_not_show_activities(shared):
    s = shared
    await activities.create(s.p(s.viewer), s.album["id"], activities.LIKE)
    assert len(await _events(s.album)) == 1
    async with db.connection() as conn:
        rows, _, _ = await events.read_feed(conn, library_id=s.album["library_id"], after=None, horizon=None,
                                            entity_types=None, created_at_gte=None, limit=200)
    assert "activity" not in {r["entity_type"] for r in rows}
