"""Album users (app/domain/album_sharing.py) and the grant they give (app/domain/access.py).

An album shared with a viewer and an editor, and a stranger: every album user reads the album and
its live assets and nothing else of the library; only an editor adds assets, and only its own;
nobody but the owner shares; removing a user ends its access on the next call; every change is
logged in its transaction.
"""

from __future__ import annotations


import pytest

from app.db import engine as db
from app.domain import access, album_sharing, albums, assets
from app.domain.errors import BadRequest, Invalid
from tests.domain import factories as f


@pytest.fixture
def shared(domain) -> f.SharedAlbum:
    return domain.run(f.new_shared_album())


async def test_album_users_read_the_album_and_its_assets_and_nothing_else(shared):
    s = shared
    for user in (s.viewer, s.editor):
        p = s.p(user)
        row = await albums.get_album(p, s.album["id"])
        assert (row["id"], row["asset_count"], row["caller_role"]) == (s.album["id"], 1, None)
        assert (await access.load_asset(p, s.in_album["id"], access.READ))["id"] == s.in_album["id"]
        assert await f.outcome(access.load_asset(p, s.elsewhere["id"], access.READ)) == "404"
        for action in (access.WRITE, access.DELETE, access.DELETE_PERMANENTLY):
            assert await f.outcome(access.load_asset(p, s.in_album["id"], action)) == "404", action
            assert await f.outcome(albums.get_album(p, s.album["id"], action)) == "403", action
        assert await f.outcome(albums.update_album(p, s.album["id"], albums.AlbumPatch(name="Mine"))) == "403"
        assert await f.outcome(albums.delete_album(p, s.album["id"])) == "403"
        assert await f.outcome(album_sharing.add_users(p, s.album["id"], [(s.stranger["id"], "viewer")])) == "403"
    stranger = s.p(s.stranger)
    assert await f.outcome(albums.get_album(stranger, s.album["id"])) == "404"
    assert await f.outcome(access.load_asset(stranger, s.in_album["id"], access.READ)) == "404"
    assert await albums.shared_albums(stranger) == []
    # A credential limited to some libraries reaches nothing through a share.
    scoped = s.p(s.viewer, library_scope=frozenset({s.viewer["default_library_id"]}))
    assert await f.outcome(albums.get_album(scoped, s.album["id"])) == "404"
    assert await f.outcome(access.load_asset(scoped, s.in_album["id"], access.READ)) == "404"


async def test_a_trashed_asset_is_out_of_reach_through_the_album(shared):
    s = shared
    await assets.set_trashed(s.p(s.owner), None, [s.in_album["id"]], True)
    assert await f.outcome(access.load_asset(s.p(s.viewer), s.in_album["id"], access.READ)) == "404"


async def test_only_an_editor_adds_and_only_assets_of_its_own_libraries(shared):
    s = shared
    mine = await f.new_asset(s.editor)
    assert await f.outcome(albums.add_assets(s.p(s.viewer), s.album["id"], [mine["id"]])) == "403"
    result = await albums.add_assets(s.p(s.editor), s.album["id"], [mine["id"], s.elsewhere["id"], s.in_album["id"]])
    # the owner's asset outside the album is not the editor's to share, so it is as good as missing
    assert (result.added, result.not_found, result.duplicate) == ([mine["id"]], [s.elsewhere["id"]], [s.in_album["id"]])
    # the owner and the viewer now read the editor's asset through the album
    assert (await albums.get_album(s.p(s.owner), s.album["id"]))["asset_count"] == 2
    for user in (s.owner, s.viewer):
        assert (await access.load_asset(s.p(user), mine["id"], access.READ))["id"] == mine["id"]
    assert await f.outcome(access.load_asset(s.p(s.owner), mine["id"], access.WRITE)) == "404"
    # ...and removes only what is its own; a viewer removes nothing
    assert await f.outcome(albums.remove_assets(s.p(s.viewer), s.album["id"], [mine["id"]])) == "403"
    assert await albums.remove_assets(s.p(s.editor), s.album["id"], [s.in_album["id"], mine["id"]]) == [mine["id"]]
    assert (await albums.get_album(s.p(s.owner), s.album["id"]))["asset_count"] == 1


async def test_the_owner_shares_changes_roles_and_removes_users_with_events(shared):
    s = shared
    owner = s.p(s.owner)
    listed = (await album_sharing.users_of([s.album["id"]]))[s.album["id"]]
    assert {(u.user["id"], u.role) for u in listed} == {(s.viewer["id"], "viewer"), (s.editor["id"], "editor")}
    before = await db.fetchval("SELECT count(*) FROM events WHERE entity_id = $1 AND event_type = 'album_updated'",
                               s.album["id"])
    await album_sharing.update_user(owner, s.album["id"], s.viewer["id"], access.ALBUM_EDITOR)
    mine = await f.new_asset(s.viewer)
    assert (await albums.add_assets(s.p(s.viewer), s.album["id"], [mine["id"]])).added == [mine["id"]]
    await album_sharing.remove_user(owner, s.album["id"], s.viewer["id"])
    assert await f.outcome(albums.get_album(s.p(s.viewer), s.album["id"])) == "404"
    assert await f.outcome(access.load_asset(s.p(s.viewer), s.in_album["id"], access.READ)) == "404"
    # the editor leaves by itself
    await album_sharing.remove_user(s.p(s.editor), s.album["id"], s.editor["id"])
    assert await albums.shared_albums(s.p(s.editor)) == []
    after = await db.fetchval("SELECT count(*) FROM events WHERE entity_id = $1 AND event_type = 'album_updated'",
                              s.album["id"])
    assert after - before == 3


async def test_refusals(shared):
    s = shared
    owner, album = s.p(s.owner), s.album["id"]
    with pytest.raises(BadRequest, match="Cannot be shared with owner"):
        await album_sharing.add_users(owner, album, [(s.owner["id"], "viewer")])
    with pytest.raises(BadRequest, match="User already added"):
        await album_sharing.add_users(owner, album, [(s.viewer["id"], "viewer")])
    with pytest.raises(BadRequest, match="User already added"):
        await album_sharing.add_users(owner, album, [(s.stranger["id"], "viewer"), (s.stranger["id"], "editor")])
    with pytest.raises(Invalid, match="Cannot add another owner"):
        await album_sharing.add_users(owner, album, [(s.stranger["id"], "owner")])
    with pytest.raises(BadRequest, match="Album not shared with user"):
        await album_sharing.update_user(owner, album, s.stranger["id"], "viewer")
    with pytest.raises(BadRequest, match="User is owner"):
        await album_sharing.update_user(owner, album, s.owner["id"], "viewer")
    assert await f.outcome(album_sharing.remove_user(s.p(s.viewer), album, s.editor["id"])) == "403"
    assert await f.outcome(album_sharing.remove_user(s.p(s.stranger), album, s.stranger["id"])) == "404"
    # a refused request changes nothing: the stranger was never added
    assert await albums.shared_albums(s.p(s.stranger)) == []


async def test_an_album_lists_what_its_editors_added_from_their_own_libraries(shared):
    """An editor's photo stays in the editor's library, yet it is the album's content: listing the
    album (its library's filter with album_id) finds it, until its own library is trashed."""
    from app.domain.asset_filters import AssetFilter

    s = shared
    editors = await f.new_asset(s.editor)
    await f.new_album_asset(s.album, editors)
    of_album = AssetFilter(library_id=s.album["library_id"], album_id=s.album["id"])
    page, _ = await assets.list_assets(of_album)
    assert {r["id"] for r in page} == {s.in_album["id"], editors["id"]}
    await db.execute("UPDATE libraries SET trashed_at = now() WHERE id = $1", editors["library_id"])
    page, _ = await assets.list_assets(of_album)
    assert {r["id"] for r in page} == {s.in_album["id"]}
