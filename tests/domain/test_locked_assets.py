"""Locked assets (visibility "locked", the PIN-protected folder): no share ever reaches one, and
its owner reaches it only from a session unlocked with the PIN (Principal.elevated).

Partners, album users and shared links read through a grant, not a library role: the grant and
the album's listing through it both leave locked assets out, elevated or not.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from app.db import engine as db
from app.domain import access, album_sharing, assets, authentication, partners, pin_codes, sessions, shared_links, sync
from app.domain.asset_filters import LOCKED, AssetFilter
from app.domain.errors import BadRequest, NotFound, Unauthorized
from tests.domain import factories as f


def _unlocked(principal):
    return dataclasses.replace(principal, elevated=True)


async def _lock(asset) -> None:
    await db.execute("UPDATE assets SET visibility = $2 WHERE id = $1", asset["id"], LOCKED)


async def _readable(principal, asset) -> bool:
    try:
        await access.load_asset(principal, asset["id"], access.READ)
    except NotFound:
        return False
    return True


async def test_locked_assets_are_out_of_every_share():
    owner, partner, album_user = await f.new_user(), await f.new_user(), await f.new_user()
    album = await f.new_album(owner)
    open_photo, locked_photo = await f.new_asset(owner), await f.new_asset(owner)
    for photo in (open_photo, locked_photo):
        await f.new_album_asset(album, photo)
    await db.execute("UPDATE assets SET visibility = $2 WHERE id = $1", locked_photo["id"], LOCKED)
    me = f.principal_for(owner)
    await partners.create(me, partner["id"])
    await album_sharing.add_users(me, album["id"], [(album_user["id"], access.ALBUM_VIEWER)])
    link_row = await shared_links.create_link(me, shared_links.ALBUM, shared_links.LinkSettings(),
                                              album_id=album["id"])
    link = await shared_links.authenticate(key=shared_links.encode_key(link_row["key"]))

    assert await _readable(_unlocked(me), locked_photo)
    assert not await _readable(me, locked_photo)
    for reader in (f.principal_for(partner), f.principal_for(album_user), link,
                   _unlocked(f.principal_for(partner)), _unlocked(f.principal_for(album_user))):
        assert await _readable(reader, open_photo)
        assert not await _readable(reader, locked_photo)

    shown = AssetFilter(library_id=album["library_id"], album_id=album["id"], through_share=True, elevated=True)
    assert {r["id"] for r in (await assets.list_assets(shown))[0]} == {open_photo["id"]}
    owners_view = AssetFilter(library_id=album["library_id"], album_id=album["id"], elevated=True)
    assert {r["id"] for r in (await assets.list_assets(owners_view))[0]} == {open_photo["id"], locked_photo["id"]}
    locked_owners_view = AssetFilter(library_id=album["library_id"], album_id=album["id"])
    assert {r["id"] for r in (await assets.list_assets(locked_owners_view))[0]} == {open_photo["id"]}


async def test_the_owner_sees_locked_assets_only_when_unlocked():
    owner = await f.new_user()
    library = owner["default_library_id"]
    open_photo, locked_photo = await f.new_asset(owner), await f.new_asset(owner)
    await _lock(locked_photo)
    me = f.principal_for(owner)

    def ids(rows):
        return {r["id"] for r in rows}

    plain, unlocked = AssetFilter(library_id=library), AssetFilter(library_id=library, elevated=True)
    assert ids((await assets.list_assets(plain))[0]) == {open_photo["id"]}
    assert ids((await assets.list_assets(unlocked))[0]) == {open_photo["id"], locked_photo["id"]}
    assert ids((await assets.search_page(plain, page=1, limit=10))[0]) == {open_photo["id"]}
    # Timeline counts: the per-day counters count locked assets, so a locked caller gets exact counts.
    counted = await assets.counts(plain, group_by="day", order="desc", limit=10, starting_after_bucket=None)
    assert sum(r["count"] for r in counted[0]) == 1
    counted = await assets.counts(unlocked, group_by="day", order="desc", limit=10, starting_after_bucket=None)
    assert sum(r["count"] for r in counted[0]) == 2
    # Asking for the locked folder itself needs the unlock (Immich's 401).
    with pytest.raises(Unauthorized):
        await assets.list_assets(AssetFilter(library_id=library, visibility=LOCKED))
    only_locked = AssetFilter(library_id=library, visibility=LOCKED, elevated=True)
    assert ids((await assets.list_assets(only_locked))[0]) == {locked_photo["id"]}
    with pytest.raises(Unauthorized):
        await assets.statistics(me, library, visibility=LOCKED)
    assert (await assets.statistics(me, library))["total"] == 1
    assert (await assets.statistics(_unlocked(me), library))["total"] == 2
    # One asset by id: 404 until unlocked, for writes too.
    for action in (access.READ, access.WRITE):
        with pytest.raises(NotFound):
            await access.load_asset(me, locked_photo["id"], action)
        assert (await access.load_asset(_unlocked(me), locked_photo["id"], action))["id"] == locked_photo["id"]


async def test_an_api_key_is_never_unlocked():
    owner = await f.new_user(password="pw")
    _, secret = await f.new_api_key(owner, actions=list(access.ALL_ACTIONS))
    await pin_codes.set_up(owner["id"], "123456")
    for session in await sessions.list_sessions(owner["id"]):
        await sessions.unlock(session["id"])
    assert not (await authentication.authenticate_api_key(secret)).elevated


async def test_the_pin_unlocks_one_session_for_a_while():
    owner = await f.new_user(password="pw")
    session, token = await f.new_session(owner)
    other, other_token = await f.new_session(owner)
    with pytest.raises(BadRequest, match="User does not have a PIN code"):
        await pin_codes.unlock_session(owner["id"], session["id"], pin="123456")
    await pin_codes.set_up(owner["id"], "123456")
    with pytest.raises(BadRequest, match="User already has a PIN code"):
        await pin_codes.set_up(owner["id"], "654321")
    assert (await db.fetchval("SELECT pin_hash FROM pin_codes WHERE user_id = $1", owner["id"])) != "123456"
    with pytest.raises(BadRequest, match="Wrong PIN code"):
        await pin_codes.unlock_session(owner["id"], session["id"], pin="000000")
    with pytest.raises(BadRequest, match="Either password or pinCode is required"):
        await pin_codes.unlock_session(owner["id"], session["id"], pin=None)
    assert not (await authentication.authenticate_session(token))[0].elevated

    await pin_codes.unlock_session(owner["id"], session["id"], pin="123456")
    assert (await authentication.authenticate_session(token))[0].elevated
    assert not (await authentication.authenticate_session(other_token))[0].elevated  # one session only
    status = await pin_codes.status(owner["id"], session["id"], elevated=True)
    assert status.has_pin and status.has_password and status.pin_expires_at is not None

    # Near its end, each request stretches the unlock a little (Immich: 5 minutes); past it, locked.
    await db.execute("UPDATE sessions SET pin_expires_at = now() + interval '1 minute' WHERE id = $1", session["id"])
    assert (await authentication.authenticate_session(token))[0].elevated
    left = await db.fetchval("SELECT pin_expires_at - now() FROM sessions WHERE id = $1", session["id"])
    assert timedelta(minutes=4) < left <= timedelta(minutes=5)
    await db.execute("UPDATE sessions SET pin_expires_at = now() - interval '1 second' WHERE id = $1", session["id"])
    assert not (await authentication.authenticate_session(token))[0].elevated

    await pin_codes.unlock_session(owner["id"], session["id"], pin="123456")
    await sessions.lock(owner["id"], session["id"])
    assert not (await authentication.authenticate_session(token))[0].elevated
    with pytest.raises(NotFound):  # another user's session is not found
        await sessions.lock((await f.new_user())["id"], session["id"])


async def test_change_and_reset_the_pin():
    owner = await f.new_user(password="pw")
    session, token = await f.new_session(owner)
    await pin_codes.set_up(owner["id"], "123456")
    with pytest.raises(BadRequest, match="Wrong password"):
        await pin_codes.change(owner["id"], "222222", pin="123456", password="nope")  # the password is checked first
    await pin_codes.change(owner["id"], "222222", pin="123456", password=None)
    with pytest.raises(BadRequest, match="Wrong PIN code"):
        await pin_codes.unlock_session(owner["id"], session["id"], pin="123456")
    await pin_codes.unlock_session(owner["id"], session["id"], pin="222222")
    await pin_codes.reset(owner["id"], pin=None, password="pw")
    assert not (await authentication.authenticate_session(token))[0].elevated  # every session locked again
    assert not await pin_codes.has_pin(owner["id"])


async def test_the_sync_stream_shows_locked_assets_only_to_an_unlocked_owner():
    owner, partner = await f.new_user(), await f.new_user()
    library = owner["default_library_id"]
    open_photo = await f.new_asset(owner, event="asset_created")
    locked_photo = await f.new_asset(owner, event="asset_created")
    await _lock(locked_photo)
    await partners.create(f.principal_for(owner), partner["id"])

    async def upserts(snap, kind="asset"):
        return {c.entity_id for c in [c async for c in snap.changes(kind, library, None)]}

    locked_snap, unlocked_snap = await sync.snapshot(), await sync.snapshot(shows_locked=True)
    assert await upserts(locked_snap) == {open_photo["id"]}
    assert await upserts(unlocked_snap) == {open_photo["id"], locked_photo["id"]}
    # A client that holds it drops it while locked.
    deletes = [c.entity_id async for c in locked_snap.changes("asset", library, (0, 0), deletes=True)]
    assert deletes == [locked_photo["id"]]
    # A partner's stream and backfill never carry it.
    shared = {c.entity_id async for c in sync.shared_changes(unlocked_snap, "asset", [library], None)}
    assert shared == {open_photo["id"]}
    backfill = {row["id"] async for row in sync.current("asset", [library])}
    assert backfill == {str(open_photo["id"])}


async def test_an_album_neither_counts_nor_shows_a_locked_cover():
    from app.domain import albums

    owner = await f.new_user()
    album = await f.new_album(owner)
    older = await f.new_asset(owner)
    photo = await f.new_asset(owner)
    for asset in (older, photo):
        await f.new_album_asset(album, asset)
    await db.execute("UPDATE albums SET cover_asset_id = $2 WHERE id = $1", album["id"], photo["id"])
    await _lock(photo)
    row = await albums.get_album(_unlocked(f.principal_for(owner)), album["id"])
    assert row["asset_count"] == 1 and row["effective_cover_id"] == older["id"]


async def test_pin_guesses_are_throttled(domain):
    from redis.asyncio import Redis

    from app.domain import login_throttle

    owner = await f.new_user(password="pw")
    session, _ = await f.new_session(owner)
    await pin_codes.set_up(owner["id"], "123456")
    redis = Redis.from_url(domain.redis_url)
    try:
        throttle = login_throttle.LoginThrottle(redis, login_throttle.Limits(60, per_pair=3, per_address=10,
                                                                             per_account=10))
        guard = pin_codes.Guard(throttle, f"10.9.{f._next() % 250}.1")
        for _ in range(3):
            with pytest.raises(BadRequest, match="Wrong PIN code"):
                await pin_codes.unlock_session(owner["id"], session["id"], pin="000000", guard=guard)
        with pytest.raises(login_throttle.Throttled):  # even the right PIN waits now
            await pin_codes.unlock_session(owner["id"], session["id"], pin="123456", guard=guard)
        # Sign-in with the password is not locked out by PIN guesses.
        await login_throttle.LoginThrottle(redis, throttle.limits).begin(owner["email"], guard.address)
    finally:
        await redis.aclose()
