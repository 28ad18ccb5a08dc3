"""Shared data in the domain's sync reader (app/domain/sync.py) and who hears what (access
audiences): partnerships in the change log, several libraries walked in one cursor order,
current-state backfills, and the assets a client must drop when an album share ends."""

from __future__ import annotations

from app.db import engine as db
from app.domain import access, album_sharing, albums, events, partners, sync, users
from tests.domain import factories as f


async def _walk(kind, libraries, after=None, **kwargs):
    snap = await sync.snapshot()
    return [c async for c in sync.shared_changes(snap, kind, libraries, after, **kwargs)]


async def _partner_changes(user_id, after=None, *, deletes=False):
    snap = await sync.snapshot()
    return [c async for c in sync.partner_changes(snap, user_id, after, deletes=deletes)]


async def test_partnerships_are_in_the_change_log_for_both_users_only(user):
    other, stranger = await f.new_user(), await f.new_user()
    await partners.create(f.principal_for(user), other["id"])
    for who in (user, other):
        got = await _partner_changes(who["id"])
        assert [(c.row["shared_by_id"], c.row["shared_with_id"], c.row["in_timeline"]) for c in got] == [
            (user["id"], other["id"], False)]
    assert await _partner_changes(stranger["id"]) == []
    # The native feed reads one library's events: a partnership, in none, never shows there.
    assert await db.fetchval("SELECT library_id FROM events WHERE entity_type = 'partner'"
                             " AND entity_id = $1", partners.partnership_id(user["id"], other["id"])) is None

    first = got[0].cursor
    await partners.set_in_timeline(f.principal_for(other), user["id"], True)
    changed = await _partner_changes(other["id"], first)
    assert [c.row["in_timeline"] for c in changed] == [True] and changed[0].cursor > first

    await partners.remove(f.principal_for(user), other["id"])
    assert await _partner_changes(other["id"], first) == []
    gone = await _partner_changes(other["id"], first, deletes=True)
    assert [(sync.payload_of(c)["shared_by_id"], sync.payload_of(c)["shared_with_id"]) for c in gone] == [
        (str(user["id"]), str(other["id"]))]


async def test_one_cursor_walks_several_libraries_in_feed_order(user):
    other = await f.new_user()
    mine = await f.new_asset(user, event="asset_created")
    theirs = await f.new_asset(other, event="asset_created")
    again = await f.new_asset(user, event="asset_created")
    libraries = [user["default_library_id"], other["default_library_id"]]
    got = await _walk("asset", libraries)
    assert [c.entity_id for c in got] == [mine["id"], theirs["id"], again["id"]]
    assert [c.entity_id for c in await _walk("asset", libraries, got[0].cursor)] == [theirs["id"], again["id"]]
    assert [c.entity_id for c in await _walk("asset", [other["default_library_id"]])] == [theirs["id"]]
    assert await _walk("asset", []) == []


async def test_album_walks_keep_only_the_shared_albums_events(user):
    shared = await f.new_album(user, event="album_created")
    private = await f.new_album(user, event="album_created")
    asset = await f.new_asset(user, event="asset_created")
    hidden = await f.new_asset(user, event="asset_created")
    await f.new_album_asset(shared, asset)
    await f.new_album_asset(private, hidden)
    for link in await db.fetch("SELECT * FROM album_assets WHERE album_id = ANY($1::uuid[])",
                               [shared["id"], private["id"]]):
        await f.record_event("album_asset", link["id"], "album_asset_added", library_id=link["library_id"],
                             owner_id=user["id"],
                             payload={"album_id": str(link["album_id"]), "asset_id": str(link["asset_id"])})
    library = [user["default_library_id"]]
    albums = await _walk("album", library, where=sync.OF_ALBUMS, album_ids=[shared["id"]])
    assert [c.entity_id for c in albums] == [shared["id"]]
    links = await _walk("album_asset", library, where=sync.LINKS_OF_ALBUMS, album_ids=[shared["id"]])
    assert [c.row["asset_id"] for c in links] == [asset["id"]]
    assets = await _walk("asset", library, where=sync.LINKED_IN_ALBUMS, album_ids=[shared["id"]])
    assert [c.entity_id for c in assets] == [asset["id"]]
    # An album link seen as its asset leaves out the caller's own library's assets.
    assert await _walk("link_asset", library, where=sync.LINKS_OF_ALBUMS, album_ids=[shared["id"]],
                       own_library=user["default_library_id"]) == []
    assert [c.row["id"] for c in await _walk("link_asset", library, where=sync.LINKS_OF_ALBUMS,
                                             album_ids=[shared["id"]])] == [str(asset["id"])]


async def test_current_state_comes_in_id_order_in_batches(user, monkeypatch):
    assets = [await f.new_asset(user) for _ in range(5)]
    monkeypatch.setattr(sync, "BATCH", 2)
    got = [r["id"] async for r in sync.current("asset", [user["default_library_id"]])]
    assert got == sorted(str(a["id"]) for a in assets)
    exif = [r["id"] async for r in sync.current("exif", [user["default_library_id"]])]
    assert exif == got
    assert [r async for r in sync.current("asset", [])] == []


async def test_album_assets_from_the_current_state_leave_out_the_callers_own(user):
    owner = await f.new_user()
    album = await f.new_album(owner)
    theirs, mine = await f.new_asset(owner), await f.new_asset(user)
    await f.new_album_asset(album, theirs)
    await f.new_album_asset(album, mine)
    got = [r["id"] async for r in sync.current("album_asset_asset", [album["id"]],
                                               exclude_library=user["default_library_id"])]
    assert got == [str(theirs["id"])]
    links = [r["asset_id"] async for r in sync.current("album_asset", [album["id"]])]
    assert sorted(links) == sorted([theirs["id"], mine["id"]])


async def test_a_lost_album_drops_only_assets_seen_no_other_way(user):
    owner, sharer = await f.new_user(), await f.new_user()
    lost, kept = await f.new_album(owner), await f.new_album(owner)
    only_there, also_kept, partners_photo = await f.new_asset(owner), await f.new_asset(owner), await f.new_asset(sharer)
    own = await f.new_asset(user)
    for asset in (only_there, also_kept, partners_photo, own):
        await f.new_album_asset(lost, asset)
    await f.new_album_asset(kept, also_kept)
    dropped = [a async for a in sync.dropped_album_assets(
        [lost["id"]], keep_libraries=[user["default_library_id"], sharer["default_library_id"]],
        keep_albums=[kept["id"]])]
    assert dropped == [only_there["id"]]


async def test_audiences_name_partners_and_album_users(user):
    receiver, member = await f.new_user(), await f.new_user()
    await partners.create(f.principal_for(user), receiver["id"])
    library = user["default_library_id"]
    assert await access.partner_libraries_of(receiver["id"]) == [library]
    assert await access.partner_libraries_of(user["id"]) == []
    assert await access.library_partner_audiences([library]) == {library: [receiver["id"]]}
    album = await f.new_album(user)
    await album_sharing.add_users(f.principal_for(user), album["id"], [(member["id"], access.ALBUM_VIEWER)])
    assert await access.shared_album_ids(member["id"]) == [album["id"]]
    assert await access.album_user_audiences([album["id"]]) == {album["id"]: [member["id"]]}
    assert await access.album_user_audiences([]) == {}
    # A trashed library shares its albums no more.
    await db.execute("UPDATE libraries SET trashed_at = now() WHERE id = $1", library)
    assert await access.shared_album_ids(member["id"]) == []
    assert await access.partner_libraries_of(receiver["id"]) == []


async def test_partnership_ids_are_computed_alike_in_sql_and_python(user):
    other = await f.new_user()
    # the expression migration 2026-11-29T17:20 gives partnerships made before they recorded events
    in_sql = await db.fetchval("SELECT md5($1::uuid::text || ':' || $2::uuid::text)::uuid", user["id"], other["id"])
    assert in_sql == partners.partnership_id(user["id"], other["id"])


async def test_the_migration_gives_earlier_partnerships_their_event(user):
    import importlib

    other = await f.new_user()
    await db.execute("INSERT INTO partners (shared_by_id, shared_with_id, in_timeline) VALUES ($1, $2, true)",
                     user["id"], other["id"])
    assert await _partner_changes(other["id"]) == []
    migration = importlib.import_module("migrations.photos_2026_11_29t17_20_00_000000")
    await db.execute(migration.SQL.replace("FROM partners p", "FROM partners p WHERE p.shared_by_id = $1"), user["id"])
    got = await _partner_changes(other["id"])
    assert [(c.entity_id, c.row["in_timeline"]) for c in got] == [(partners.partnership_id(user["id"], other["id"]),
                                                                   True)]


async def test_a_lost_partner_drops_only_assets_in_no_kept_album(user):
    sharer = await f.new_user()
    album = await f.new_album(sharer)
    in_album, alone = await f.new_asset(sharer), await f.new_asset(sharer)
    await f.new_album_asset(album, in_album)
    library = [sharer["default_library_id"]]
    assert [a async for a in sync.dropped_library_assets(library, keep_albums=[album["id"]])] == [alone["id"]]
    assert sorted([a async for a in sync.dropped_library_assets(library, keep_albums=[])]) == sorted(
        [in_album["id"], alone["id"]])


async def test_a_partners_stacks_come_with_their_primary(user):
    first, second = await f.new_asset(user), await f.new_asset(user)
    stack = await f.new_stack(user, [first, second], event="stack_created")
    got = [r async for r in sync.current("stack", [user["default_library_id"]])]
    assert [(r["id"], r["effective_primary_id"]) for r in got] == [(stack["id"], first["id"])]
    walked = await _walk("stack", [user["default_library_id"]])
    assert [c.row["effective_primary_id"] for c in walked] == [first["id"]]


async def _own_walk(kind, library, after, *, deletes=False):
    snap = await sync.snapshot()
    return [c async for c in snap.changes(kind, library, after, deletes=deletes)]


async def _horizon():
    return ((await sync.snapshot()).horizon, 0)


async def test_a_removed_album_user_is_a_delete_for_everyone_who_still_sees_the_album(user):
    leaving, staying = await f.new_user(), await f.new_user()
    album = await f.new_album(user)
    owner = f.principal_for(user)
    await album_sharing.add_users(owner, album["id"], [(leaving["id"], access.ALBUM_VIEWER),
                                                       (staying["id"], access.ALBUM_EDITOR)])
    start = await _horizon()
    library = user["default_library_id"]
    await album_sharing.update_user(owner, album["id"], staying["id"], access.ALBUM_VIEWER)  # a role change is no delete
    await album_sharing.remove_user(f.principal_for(leaving), album["id"], leaving["id"])  # it leaves
    # The owner's library walk and the remaining users' shared walk of the album both name it.
    own = await _own_walk("album_user", library, start, deletes=True)
    shared = await _walk("album_user", [library], start, where=sync.LINKS_OF_ALBUMS, album_ids=[album["id"]],
                         deletes=True)
    for got in (own, shared):
        assert [(sync.payload_of(c)["album_id"], sync.payload_of(c)["user_id"]) for c in got] == [
            (str(album["id"]), str(leaving["id"]))]
        assert got[0].entity_id == album_sharing.album_user_id(album["id"], leaving["id"])
    # Another album's users hear nothing of it; the native feed has no album users.
    assert await _walk("album_user", [library], start, where=sync.LINKS_OF_ALBUMS,
                       album_ids=[(await f.new_album(user))["id"]], deletes=True) == []
    async with db.transaction() as conn:
        feed, _, _ = await events.read_feed(conn, library_id=library, after=start, horizon=None, entity_types=None,
                                            created_at_gte=None, limit=100)
    assert {r["entity_type"] for r in feed} == {"album"}
    # Added back, the user is no delete any more.
    await album_sharing.add_users(owner, album["id"], [(leaving["id"], access.ALBUM_VIEWER)])
    assert await _own_walk("album_user", library, start, deletes=True) == []


async def test_deleting_a_shared_album_leaves_what_its_users_must_drop(user):
    member, sharer = await f.new_user(), await f.new_user()
    album, kept = await f.new_album(user), await f.new_album(user)
    only_there, also_kept = await f.new_asset(user), await f.new_asset(user)
    partners_photo, own = await f.new_asset(sharer), await f.new_asset(member)
    for asset in (only_there, also_kept, partners_photo, own):
        await f.new_album_asset(album, asset)
    await f.new_album_asset(kept, also_kept)
    await albums.delete_album(f.principal_for(user), album["id"])
    assert await db.fetchval("SELECT count(*) FROM album_assets WHERE album_id = $1", album["id"]) == 0
    removed = await db.fetch("SELECT e.txid, e.payload->>'asset_id' AS asset_id FROM events e"
                             " WHERE e.entity_type = $2 AND e.payload->>'album_id' = $1",
                             str(album["id"]), albums.DELETED_ALBUM_LINK)
    deleted = await db.fetchval("SELECT txid FROM events WHERE entity_id = $1 AND event_type = 'album_deleted'",
                                album["id"])
    assert sorted(r["asset_id"] for r in removed) == sorted(str(a["id"]) for a in (only_there, also_kept,
                                                                                    partners_photo, own))
    assert {r["txid"] for r in removed} == {deleted}  # in the deletion's transaction
    # The native feed keeps to album_deleted, which implies the links are gone.
    async with db.transaction() as conn:
        feed, _, _ = await events.read_feed(conn, library_id=user["default_library_id"], after=None, horizon=None,
                                            entity_types=None, created_at_gte=None, limit=1000)
    assert [r["event_type"] for r in feed if r["txid"] == deleted] == ["album_deleted"]
    dropped = [a async for a in sync.dropped_album_assets(
        [album["id"]], keep_libraries=[member["default_library_id"], sharer["default_library_id"]],
        keep_albums=[kept["id"]])]
    assert dropped == [only_there["id"]]


async def test_deleting_an_account_ends_its_partnerships_for_the_other_side(user):
    admin, receiver, sharer = await f.new_user(is_admin=True), await f.new_user(), await f.new_user()
    await partners.create(f.principal_for(user), receiver["id"])
    await partners.create(f.principal_for(sharer), user["id"])
    start = await _horizon()
    await users.admin_delete_user(f.principal_for(admin), user["id"])
    assert await db.fetchval("SELECT count(*) FROM partners WHERE $1 IN (shared_by_id, shared_with_id)",
                             user["id"]) == 0
    for other, pair in ((receiver, (user, receiver)), (sharer, (sharer, user))):
        gone = await _partner_changes(other["id"], start, deletes=True)
        assert [(sync.payload_of(c)["shared_by_id"], sync.payload_of(c)["shared_with_id"]) for c in gone] == [
            (str(pair[0]["id"]), str(pair[1]["id"]))]
        assert gone[0].entity_id == partners.partnership_id(pair[0]["id"], pair[1]["id"])


async def test_several_libraries_come_library_by_library_each_in_id_order(user, monkeypatch):
    other = await f.new_user()
    mine = [await f.new_asset(user) for _ in range(3)]
    theirs = [await f.new_asset(other) for _ in range(3)]
    monkeypatch.setattr(sync, "BATCH", 2)
    libraries = sorted([user["default_library_id"], other["default_library_id"]])
    by_library = {user["default_library_id"]: mine, other["default_library_id"]: theirs}
    expected = [str(a["id"]) for lib in libraries for a in sorted(by_library[lib], key=lambda a: a["id"])]
    assert [r["id"] async for r in sync.current("asset", libraries[::-1])] == expected
    assert [str(a) async for a in sync.dropped_library_assets(libraries, keep_albums=[])] == expected


async def _removed(user, albums_seen, after, *, keep_libraries, keep_albums):
    snap = await sync.snapshot()
    libraries = sorted({user["default_library_id"], *(await sync.album_library_ids(albums_seen, deleted_too=True))})
    return [a async for _, a in sync.removed_album_assets(
        snap, libraries, albums_seen, after, own_library=user["default_library_id"],
        keep_libraries=keep_libraries, keep_albums=keep_albums)]


async def test_photos_taken_out_of_a_shared_album_drop_when_seen_no_other_way(user):
    owner, sharer = await f.new_user(), await f.new_user()
    album, kept, private = await f.new_album(owner), await f.new_album(owner), await f.new_album(owner)
    only_there, also_kept = await f.new_asset(owner), await f.new_asset(owner)
    partners_photo, own = await f.new_asset(sharer), await f.new_asset(user)
    for asset in (only_there, also_kept, partners_photo, own):
        await f.new_album_asset(album, asset)
    await f.new_album_asset(kept, also_kept)
    hidden = await f.new_asset(owner)
    await f.new_album_asset(private, hidden)
    start = await _horizon()
    by_owner = f.principal_for(owner)
    await albums.remove_assets(by_owner, album["id"], [a["id"] for a in (only_there, also_kept, partners_photo, own)])
    await albums.remove_assets(by_owner, private["id"], [hidden["id"]])  # an album not shared with the user
    keep = dict(keep_libraries=[user["default_library_id"], sharer["default_library_id"]],
                keep_albums=[album["id"], kept["id"]])
    assert await _removed(user, [album["id"], kept["id"]], start, **keep) == [only_there["id"]]
    # From a later cursor, nothing; put back, it is seen again and stays.
    assert await _removed(user, [album["id"], kept["id"]], await _horizon(), **keep) == []
    await f.new_album_asset(album, only_there)
    assert await _removed(user, [album["id"], kept["id"]], start, **keep) == []


async def test_an_editors_photo_taken_out_of_the_owners_album_drops_for_the_owner_not_the_editor(user):
    editor = await f.new_user()
    album = await f.new_album(user)
    await album_sharing.add_users(f.principal_for(user), album["id"], [(editor["id"], access.ALBUM_EDITOR)])
    theirs, mine = await f.new_asset(editor), await f.new_asset(user)
    await albums.add_assets(f.principal_for(editor), album["id"], [theirs["id"]])
    await f.new_album_asset(album, mine)
    start = await _horizon()
    await albums.remove_assets(f.principal_for(user), album["id"], [theirs["id"], mine["id"]])
    # The owner's own library's albums: the editor's photo goes, the owner's own stays.
    assert await _removed(user, [], start, keep_libraries=[user["default_library_id"]],
                          keep_albums=[]) == [theirs["id"]]
    # The editor keeps its own photo and drops the owner's.
    assert await _removed(editor, [album["id"]], start, keep_libraries=[editor["default_library_id"]],
                          keep_albums=[album["id"]]) == [mine["id"]]


async def test_a_deleted_accounts_albums_are_shared_no_more_and_its_album_places_end(user):
    admin, member, host = await f.new_user(is_admin=True), await f.new_user(), await f.new_user()
    mine, hosted = await f.new_album(user), await f.new_album(host)
    photo = await f.new_asset(user)
    await f.new_album_asset(mine, photo)
    await album_sharing.add_users(f.principal_for(user), mine["id"], [(member["id"], access.ALBUM_VIEWER)])
    await album_sharing.add_users(f.principal_for(host), hosted["id"], [(user["id"], access.ALBUM_EDITOR),
                                                                        (member["id"], access.ALBUM_VIEWER)])
    seen_by_member = f.principal_for(member)
    assert await access.album_user_role(seen_by_member, mine["id"]) == access.ALBUM_VIEWER
    start = await _horizon()
    await users.admin_delete_user(f.principal_for(admin), user["id"])

    # Its albums: no album user reaches them, nor their photos, nor hears of them.
    assert await access.shared_album_ids(member["id"]) == [hosted["id"]]
    assert await access.album_user_role(seen_by_member, mine["id"]) is None
    assert await access._album_asset_grant(seen_by_member, photo["id"]) is False
    assert [a["id"] for a in await albums.shared_albums(seen_by_member)] == [hosted["id"]]
    assert await access.album_user_audiences([mine["id"]]) == {}
    # Its place in another's album ends, in the deletion's transaction, as a removal does.
    assert await db.fetchval("SELECT count(*) FROM album_users WHERE user_id = $1", user["id"]) == 0
    library = host["default_library_id"]
    for got in (await _own_walk("album_user", library, start, deletes=True),
                await _walk("album_user", [library], start, where=sync.LINKS_OF_ALBUMS, album_ids=[hosted["id"]],
                            deletes=True)):
        assert [(sync.payload_of(c)["album_id"], sync.payload_of(c)["user_id"]) for c in got] == [
            (str(hosted["id"]), str(user["id"]))]
    removed = await db.fetchval("SELECT txid FROM events WHERE entity_id = $1",
                                album_sharing.album_user_id(hosted["id"], user["id"]))
    assert removed == await db.fetchval("SELECT txid FROM events WHERE entity_id = $1 AND event_type = $2"
                                        " ORDER BY id DESC LIMIT 1", hosted["id"], "album_updated")


async def test_a_purged_librarys_albums_leave_what_their_users_must_drop(user, tmp_path):
    from app.domain import library_admin
    from app.storage.blobstore import BlobStore

    member = await f.new_user()
    doomed = await f.new_library(user)
    album, elsewhere = await f.new_album(user, library_id=doomed["id"]), await f.new_album(user)
    photo, kept = await f.new_asset(user, library_id=doomed["id"]), await f.new_asset(user, library_id=doomed["id"])
    editors = await f.new_asset(member)
    for asset in (photo, kept, editors):
        await f.new_album_asset(album, asset)
    await f.new_album_asset(elsewhere, kept)
    owner = f.principal_for(user)
    await album_sharing.add_users(owner, album["id"], [(member["id"], access.ALBUM_VIEWER)])
    await album_sharing.add_users(owner, elsewhere["id"], [(member["id"], access.ALBUM_VIEWER)])
    await library_admin.trash_library(owner, doomed["id"])
    assert await access.shared_album_ids(member["id"]) == [elsewhere["id"]]  # trashed: shared no more
    await library_admin.delete_library(owner, BlobStore(tmp_path), doomed["id"])
    assert await db.fetchval("SELECT count(*) FROM albums WHERE library_id = $1", doomed["id"]) == 0
    deleted = await db.fetchval("SELECT txid FROM events WHERE entity_id = $1 AND event_type = 'album_deleted'",
                                album["id"])
    links = await db.fetch("SELECT txid, payload->>'asset_id' AS asset_id FROM events"
                           " WHERE entity_type = $1 AND payload->>'album_id' = $2",
                           albums.DELETED_ALBUM_LINK, str(album["id"]))
    assert deleted is not None and {r["txid"] for r in links} == {deleted}
    assert sorted(r["asset_id"] for r in links) == sorted(str(a["id"]) for a in (photo, kept, editors))
    # The photos are gone for good, yet the member's client still holds them: they drop, its own stays.
    dropped = [a async for a in sync.dropped_album_assets([album["id"]], keep_libraries=[member["default_library_id"]],
                                                          keep_albums=[elsewhere["id"]])]
    assert sorted(dropped) == sorted([photo["id"], kept["id"]])


async def test_a_photo_taken_out_of_an_album_deleted_since_still_drops(user):
    owner = await f.new_user()
    album = await f.new_album(owner)
    out, left = await f.new_asset(owner), await f.new_asset(owner)
    await f.new_album_asset(album, out)
    await f.new_album_asset(album, left)
    start = await _horizon()
    await albums.remove_assets(f.principal_for(owner), album["id"], [out["id"]])
    await albums.delete_album(f.principal_for(owner), album["id"])
    assert await sync.album_library_ids([album["id"]]) == []
    assert await sync.album_library_ids([album["id"]], deleted_too=True) == [owner["default_library_id"]]
    # Taken out before the album went: the removal walk names it (the deletion's links name the other).
    assert await _removed(user, [album["id"]], start, keep_libraries=[user["default_library_id"]],
                          keep_albums=[]) == [out["id"]]
