"""Shared links (app/domain/shared_links.py) and the grant they give (app/domain/access.py).

A link's key or slug yields a Principal that reads the link's album and its live assets, or the
link's listed assets, and nothing else: no library role, album share or partnership reaches
anything through it, it never writes (but uploads, when allowed), and it stops working on the
request after it expires or is deleted. Every change is logged as a "shared_link" event, which
the native feed does not show.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from app.db import engine as db
from app.domain import access, album_sharing, albums, events, partners, shared_links
from app.domain.errors import BadRequest, Forbidden, NotFound, Unauthorized
from tests.domain import factories as f

SETTINGS = shared_links.LinkSettings()


async def _album_link(owner, album, **settings):
    row = await shared_links.create_link(f.principal_for(owner), shared_links.ALBUM,
                                         shared_links.LinkSettings(**settings), album_id=album["id"])
    return row, await shared_links.authenticate(key=shared_links.encode_key(row["key"]))


async def test_an_album_link_reads_its_album_and_live_assets_and_nothing_else():
    owner, friend = await f.new_user(), await f.new_user()
    album = await f.new_album(owner)
    in_album, elsewhere, trashed = await f.new_asset(owner), await f.new_asset(owner), await f.new_asset(owner)
    other_album = await f.new_album(owner)
    await f.new_album_asset(album, in_album)
    await f.new_album_asset(album, trashed)
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", trashed["id"])
    # What the owner could reach otherwise: a partner's photos, an album shared with it.
    await partners.create(f.principal_for(friend), owner["id"])
    friends_photo = await f.new_asset(friend)
    friends_album = await f.new_album(friend)
    await album_sharing.add_users(f.principal_for(friend), friends_album["id"], [(owner["id"], access.ALBUM_VIEWER)])

    _, link = await _album_link(owner, album, allow_upload=False)
    assert link.user_id == owner["id"] and link.library_scope == frozenset()
    assert link.actions == frozenset({access.READ}) and link.shared_link.album_id == album["id"]

    assert (await access.load_asset(link, in_album["id"], access.READ))["id"] == in_album["id"]
    assert (await albums.get_album(link, album["id"]))["id"] == album["id"]
    for asset in (elsewhere, trashed, friends_photo):
        assert await f.outcome(access.load_asset(link, asset["id"], access.READ)) == "404"
    for other in (other_album, friends_album):
        assert await f.outcome(albums.get_album(link, other["id"])) == "404"
    # Never a write, whatever the object: the credential lacks the action, or the grant is read-only.
    assert await f.outcome(access.load_asset(link, in_album["id"], access.WRITE)) == "403"
    assert await f.outcome(albums.get_album(link, album["id"], access.WRITE)) == "403"
    with pytest.raises(NotFound):
        await access.library_for(link, None, access.READ)
    assert await access.live_library_ids(link) == []
    assert await access.partner_timeline_libraries(link) == []
    assert await albums.shared_albums(link) == []


async def test_an_individual_link_reads_its_listed_assets_only():
    owner = await f.new_user()
    shown, hidden = await f.new_asset(owner), await f.new_asset(owner)
    album = await f.new_album(owner)
    await f.new_album_asset(album, shown)
    row = await shared_links.create_link(f.principal_for(owner), shared_links.INDIVIDUAL, SETTINGS,
                                         asset_ids=[shown["id"]])
    link = await shared_links.authenticate(key=shared_links.encode_key(row["key"]))
    assert link.shared_link.asset_ids == frozenset({shown["id"]}) and link.shared_link.album_id is None
    assert await f.outcome(access.load_asset(link, shown["id"], access.READ)) == "ok"
    assert await f.outcome(access.load_asset(link, hidden["id"], access.READ)) == "404"
    assert await f.outcome(albums.get_album(link, album["id"])) == "404"  # its asset's album is not shown

    results = await shared_links.add_assets(f.principal_for(owner), row["id"], [hidden["id"], shown["id"], uuid.uuid4()])
    assert [r.error for r in results] == [None, shared_links.DUPLICATE, shared_links.NO_PERMISSION]
    assert await f.outcome(access.load_asset(link, hidden["id"], access.READ)) == "ok"  # read live
    results = await shared_links.remove_assets(f.principal_for(owner), row["id"], [shown["id"], uuid.uuid4()])
    assert [r.error for r in results] == [None, shared_links.NOT_FOUND]
    assert await f.outcome(access.load_asset(link, shown["id"], access.READ)) == "404"


async def test_an_individual_link_lists_no_trashed_or_locked_asset():
    owner = await f.new_user()
    kept, trashed, locked = await f.new_asset(owner), await f.new_asset(owner), await f.new_asset(owner)
    row = await shared_links.create_link(f.principal_for(owner), shared_links.INDIVIDUAL, SETTINGS,
                                         asset_ids=[kept["id"], trashed["id"], locked["id"]])
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", trashed["id"])
    await db.execute("UPDATE assets SET visibility = 'locked' WHERE id = $1", locked["id"])
    listed = (await shared_links.link_assets([row]))[row["id"]]
    assert [a["id"] for a in listed] == [kept["id"]]


async def test_keys_slugs_expiry_and_deletion():
    owner = await f.new_user()
    album = await f.new_album(owner)
    row, _ = await _album_link(owner, album, slug="summer")
    assert len(row["key"]) == 50
    key = shared_links.encode_key(row["key"])
    assert (await shared_links.authenticate(slug="summer")).shared_link.id == row["id"]
    assert (await shared_links.authenticate(key=row["key"].hex())).shared_link.id == row["id"]  # Immich's hex form
    # A guess, or a slug someone else holds: the same 401 as a missing link.
    for guess in (shared_links.encode_key(b"x" * 50), "not base64 !", ""):
        with pytest.raises(Unauthorized, match="Invalid share key"):
            await shared_links.authenticate(key=guess)
    with pytest.raises(Unauthorized, match="Invalid share slug"):
        await shared_links.authenticate(slug="winter")
    with pytest.raises(BadRequest, match="Failed to save shared link"):
        await _album_link(owner, album, slug="summer")

    # An expiry in the past (or reached) refuses the next request; clearing it restores the link.
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    await shared_links.update_link(f.principal_for(owner), row["id"], shared_links.LinkSettings(expires_at=past),
                                   frozenset({"expires_at", "slug"}))
    with pytest.raises(Unauthorized, match="Invalid share key"):
        await shared_links.authenticate(key=key)
    soon = datetime.now(timezone.utc) + timedelta(seconds=1)
    await shared_links.update_link(f.principal_for(owner), row["id"], shared_links.LinkSettings(expires_at=soon),
                                   frozenset({"expires_at"}))
    link = await shared_links.authenticate(key=key)
    await asyncio.sleep(1.2)
    # A principal authenticated before the expiry reaches nothing after it: the grant re-reads the link.
    assert await f.outcome(albums.get_album(link, album["id"])) == "404"
    with pytest.raises(Unauthorized):
        await shared_links.authenticate(key=key)

    await shared_links.update_link(f.principal_for(owner), row["id"], SETTINGS, frozenset({"expires_at"}))
    link = await shared_links.authenticate(key=key)
    await shared_links.delete_link(f.principal_for(owner), row["id"])
    assert await f.outcome(albums.get_album(link, album["id"])) == "404"
    with pytest.raises(Unauthorized):
        await shared_links.authenticate(key=key)


async def test_a_password_needs_its_token():
    owner = await f.new_user()
    album = await f.new_album(owner)
    row = await shared_links.create_link(f.principal_for(owner), shared_links.ALBUM,
                                         shared_links.LinkSettings(password="open sesame"), album_id=album["id"])
    key = shared_links.encode_key(row["key"])
    with pytest.raises(Unauthorized, match="Password required"):
        await shared_links.authenticate(key=key)
    unlocked = await shared_links.authenticate(key=key, password_checked=False)  # the login itself
    with pytest.raises(Unauthorized, match="Invalid password"):
        await shared_links.login(unlocked, "wrong")
    _, token = await shared_links.login(unlocked, "open sesame")
    assert (await shared_links.authenticate(key=key, password_tokens=["other", token])).shared_link.id == row["id"]
    # A new password invalidates the old token.
    await shared_links.update_link(f.principal_for(owner), row["id"], shared_links.LinkSettings(password="new"),
                                   frozenset({"password"}))
    with pytest.raises(Unauthorized, match="Password required"):
        await shared_links.authenticate(key=key, password_tokens=[token])
    # Without a password there is nothing to log in to; without a link, no link to log in to.
    _, link = await _album_link(owner, album)
    with pytest.raises(BadRequest, match="not password protected"):
        await shared_links.login(link, "x")
    with pytest.raises(Forbidden):
        await shared_links.login(f.principal_for(owner), "x")


async def test_who_may_create_and_manage_links():
    owner, collaborator, viewer, editor, stranger = [await f.new_user() for _ in range(5)]
    library = await db.fetchrow("SELECT * FROM libraries WHERE id = $1", owner["default_library_id"])
    await f.new_member(library, collaborator, "collaborator")
    await f.new_member(library, viewer, "viewer")
    album = await f.new_album(owner)
    photo = await f.new_asset(owner)
    await album_sharing.add_users(f.principal_for(owner), album["id"], [(editor["id"], access.ALBUM_EDITOR)])

    assert (await shared_links.create_link(f.principal_for(collaborator), shared_links.ALBUM, SETTINGS,
                                           album_id=album["id"]))["owner_id"] == collaborator["id"]
    for who in (viewer, editor, stranger):  # a reader, an album user, anyone else: not theirs to share
        with pytest.raises((NotFound, Forbidden)):
            await shared_links.create_link(f.principal_for(who), shared_links.ALBUM, SETTINGS, album_id=album["id"])
        with pytest.raises((NotFound, Forbidden)):
            await shared_links.create_link(f.principal_for(who), shared_links.INDIVIDUAL, SETTINGS,
                                           asset_ids=[photo["id"]])
    with pytest.raises(BadRequest, match="Invalid albumId"):
        await shared_links.create_link(f.principal_for(owner), shared_links.ALBUM, SETTINGS)
    with pytest.raises(BadRequest, match="Invalid assetIds"):
        await shared_links.create_link(f.principal_for(owner), shared_links.INDIVIDUAL, SETTINGS, asset_ids=[])
    # A key limited to another library cannot share this one's album.
    scoped = f.principal_for(owner, library_scope=frozenset({uuid.uuid4()}))
    with pytest.raises(NotFound):
        await shared_links.create_link(scoped, shared_links.ALBUM, SETTINGS, album_id=album["id"])

    row = await shared_links.create_link(f.principal_for(owner), shared_links.ALBUM, SETTINGS, album_id=album["id"])
    # Another user's link is missing to them, in every operation.
    them = f.principal_for(stranger)
    for attempt in (shared_links.get_link(them, row["id"]), shared_links.delete_link(them, row["id"]),
                    shared_links.update_link(them, row["id"], SETTINGS, frozenset({"description"}))):
        with pytest.raises(NotFound):
            await attempt
    assert await shared_links.list_links(them) == []
    mine = await shared_links.list_links(f.principal_for(owner), album_id=album["id"])
    assert [r["id"] for r in mine] == [row["id"]]
    with pytest.raises(BadRequest, match="Invalid shared link type"):
        await shared_links.add_assets(f.principal_for(owner), row["id"], [photo["id"]])


async def test_uploads_act_as_the_owner_in_the_albums_library_only_when_allowed():
    owner = await f.new_user()
    album = await f.new_album(owner)
    _, closed = await _album_link(owner, album, allow_upload=False)
    with pytest.raises(Unauthorized):
        await shared_links.upload_target(closed)
    _, link = await _album_link(owner, album, allow_upload=True)
    assert link.actions == frozenset({access.READ, access.WRITE})
    acting, library = await shared_links.upload_target(link)
    assert (acting.user_id, library, acting.library_scope) == (owner["id"], album["library_id"],
                                                               frozenset({album["library_id"]}))
    assert acting.shared_link is None and not acting.is_admin
    uploaded = await f.new_asset(owner)
    await shared_links.attach_upload(link, acting, uploaded["id"])
    assert await db.fetchval("SELECT count(*) FROM album_assets WHERE album_id = $1 AND asset_id = $2",
                             album["id"], uploaded["id"]) == 1
    assert await f.outcome(access.load_asset(link, uploaded["id"], access.READ)) == "ok"


async def test_every_change_is_logged_and_hidden_from_the_native_feed():
    owner = await f.new_user()
    photo, other = await f.new_asset(owner), await f.new_asset(owner)
    me = f.principal_for(owner)
    row = await shared_links.create_link(me, shared_links.INDIVIDUAL, SETTINGS, asset_ids=[photo["id"]])
    await shared_links.update_link(me, row["id"], shared_links.LinkSettings(description="hi"), frozenset({"description"}))
    await shared_links.add_assets(me, row["id"], [other["id"]])
    await shared_links.remove_assets(me, row["id"], [other["id"]])
    await shared_links.delete_link(me, row["id"])
    logged = await db.fetch("SELECT event_type, owner_id FROM events WHERE entity_type = 'shared_link'"
                            " AND entity_id = $1 ORDER BY id", row["id"])
    assert [r["event_type"] for r in logged] == ["shared_link_created", "shared_link_updated", "shared_link_updated",
                                                 "shared_link_updated", "shared_link_deleted"]
    assert {r["owner_id"] for r in logged} == {owner["id"]}
    assert shared_links.ENTITY not in events.FEED_ENTITY_TYPES
    # An album's link is no event of the album's library: its feed (every type) never shows one.
    album = await f.new_album(owner, event="album_created")
    await shared_links.create_link(me, shared_links.ALBUM, SETTINGS, album_id=album["id"])
    async with db.connection() as conn:
        feed, _, _ = await events.read_feed(conn, library_id=album["library_id"], after=None, horizon=None,
                                            entity_types=None, created_at_gte=None, created_at_lt=None, limit=200)
    assert feed and shared_links.ENTITY not in {r["entity_type"] for r in feed}


async def test_the_preview_a_links_page_shows_to_unfurlers():
    owner = await f.new_user()
    album = await f.new_album(owner, name="Cabin")
    photo = await f.new_asset(owner)
    await f.new_album_asset(album, photo)
    row, _ = await _album_link(owner, album, slug="cabin-preview")
    key = shared_links.encode_key(row["key"])
    seen = await shared_links.preview(key=key)
    assert (seen.title, seen.description, seen.thumbnail_asset_id, seen.key) == (
        "Cabin", "1 shared photos & videos", photo["id"], key)
    assert await shared_links.preview(slug="cabin-preview") == seen
    # A list of assets is a "Public Share"; the owner's description wins over the count.
    listed = await shared_links.create_link(f.principal_for(owner), shared_links.INDIVIDUAL,
                                            shared_links.LinkSettings(description="For you"), asset_ids=[photo["id"]])
    seen = await shared_links.preview(key=shared_links.encode_key(listed["key"]))
    assert (seen.title, seen.description, seen.thumbnail_asset_id) == ("Public Share", "For you", photo["id"])
    # An empty album has no thumbnail; a password, a guess or an expired link show nothing.
    empty = await f.new_album(owner, name="Empty")
    empty_row, _ = await _album_link(owner, empty)
    seen = await shared_links.preview(key=shared_links.encode_key(empty_row["key"]))
    assert (seen.description, seen.thumbnail_asset_id) == ("0 shared photos & videos", None)
    guarded = await shared_links.create_link(f.principal_for(owner), shared_links.ALBUM,
                                             shared_links.LinkSettings(password="pw"), album_id=album["id"])
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    await shared_links.update_link(f.principal_for(owner), empty_row["id"], shared_links.LinkSettings(expires_at=past),
                                   frozenset({"expires_at"}))
    for k in (shared_links.encode_key(guarded["key"]), shared_links.encode_key(empty_row["key"]), "not a key", ""):
        assert await shared_links.preview(key=k) is None
    assert await shared_links.preview(slug="nobody") is None
