"""Albums, stacks, events, search, counts, geo clusters, bulk updates, API keys, users/me: via gumnut-sdk."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid

import gumnut
import pytest

from tests.conftest import run
from tests.helpers import UTC, upload
from tests.media import png_bytes


def _assets(account, count, seed, start=dt.datetime(2022, 1, 1, tzinfo=UTC), step=dt.timedelta(days=1)):
    return [upload(account, f"b{seed}-{i}.png", png_bytes(seed * 1000 + i), created=start + step * i).parse().id
            for i in range(count)]


def _set_gps(asset_id, lat, lon):
    """Coordinates as if the file had them (after its metadata step, which would otherwise reset them)."""
    from app.db import engine as db
    from app.api import ids

    run(db.execute("UPDATE assets SET latitude = $2, longitude = $3 WHERE id = $1",
                   ids.decode(ids.ASSET, asset_id), lat, lon))


# --- albums ------------------------------------------------------------------------


def test_albums_end_to_end(account):
    a1, a2, a3 = _assets(account, 3, 11)
    albums = account.client.albums
    raw = albums.with_raw_response.create(name="  Holiday ", description="sun")
    assert raw.status_code == 201
    album = raw.parse()
    assert (album.name, album.asset_count, album.album_cover_asset_id, album.start_date) == ("Holiday", 0, None, None)
    again = albums.with_raw_response.create(name="holiday")
    assert again.status_code == 200 and again.parse().id == album.id
    with pytest.raises(gumnut.ConflictError) as err:
        albums.create(name="HOLIDAY", description="rain")
    assert err.value.response.headers["x-should-retry"] == "false"
    assert albums.create().name == "New Album"

    added = albums.assets_associations.add(album.id, asset_ids=[a1, a2, a1, "asset_" + "2" * 22])
    assert (added.added_assets, added.duplicate_assets, added.not_found_assets) == ([a1, a2], [], ["asset_" + "2" * 22])
    assert albums.assets_associations.add(album.id, asset_ids=[a2]).duplicate_assets == [a2]
    got = albums.retrieve(album.id)
    assert got.asset_count == 2 and got.album_cover_asset_id == a2  # newest by default
    assert got.start_date.date() == dt.date(2022, 1, 1) and got.end_date.date() == dt.date(2022, 1, 2)
    assert [a.id for a in account.client.assets.list(album_id=album.id)] == [a2, a1]
    assert [a.id for a in account.client.assets.list(album_filter="not_in_album")] == [a3]
    assert {a.id for a in account.client.assets.list(album_filter="in_album")} == {a1, a2}
    assert [x.id for x in albums.list(name="OLID")] == [album.id]
    assert [x.id for x in albums.list(asset_id=a1)] == [album.id]

    patched = albums.update(album.id, name="Summer", album_cover_asset_id=a1, description=None)
    assert (patched.name, patched.album_cover_asset_id, patched.description) == ("Summer", a1, None)
    with pytest.raises(gumnut.UnprocessableEntityError):
        albums.update(album.id, album_cover_asset_id=a3)  # not in the album
    with pytest.raises(gumnut.ConflictError):
        albums.update(album.id, name="new album")

    links = list(account.client.album_assets.list(album_id=album.id))
    assert {(x.album_id, x.asset_id) for x in links} == {(album.id, a1), (album.id, a2)}
    assert account.client.album_assets.get(links[0].id).id == links[0].id
    albums.assets_associations.remove(album.id, asset_ids=[a1])
    assert albums.retrieve(album.id).asset_count == 1
    assert albums.delete(album.id).to_dict() == {}
    with pytest.raises(gumnut.NotFoundError):
        albums.retrieve(album.id)

    feed = list(_feed(account, entity_types=["album", "album_asset"]))
    kinds = [(e["entity_type"], e["event_type"]) for e in feed]
    assert kinds.count(("album_asset", "album_asset_added")) == 2
    removed = [e for e in feed if e["event_type"] == "album_asset_removed"]
    assert [e["payload"] for e in removed] == [{"album_id": album.id, "asset_id": a1}]
    assert kinds[-1] == ("album", "album_deleted")


def test_declared_list_parameters_keep_every_list_form(account):
    """`ids` and `include` are declared in the routes' signatures for the document, and still read by list_param:
    repeated, comma-joined and `name[]=` all mean the same, on every route that declares them."""
    a1, a2, a3, a4 = _assets(account, 4, 13)
    albums = [account.client.albums.create(name=f"Forms {i}").id for i in range(3)]
    people = [account.client.people.create(name=f"Forms {i}").id for i in range(3)]
    stack = account.client.stacks.create_stack(asset_ids=[a3, a4]).id

    def forms(name, values):
        return ([(name, v) for v in values], [(name, ",".join(values))], [(f"{name}[]", v) for v in values])

    with account.http() as http:
        for path, wanted in (("/api/albums", albums[:2]), ("/api/people", people[:2]), ("/api/assets", [a1, a2]),
                             ("/api/stacks", [stack])):
            for query in forms("ids", wanted):
                got = http.get(path, params=query)
                assert got.status_code == 200, (path, query, got.text)
                assert {x["id"] for x in got.json()["data"]} == set(wanted), (path, query)
        for query in forms("include", ["metadata", "people"]):
            got = http.get(f"/api/assets/{a1}", params=query)
            assert got.status_code == 200 and got.json()["people"] == [], (query, got.text)
        for query in forms("include", ["asset_ids"]):
            (listed,) = http.get("/api/stacks", params=[*query, ("ids", stack)]).json()["data"]
            assert set(listed["asset_ids"]) == {a3, a4}
        refused = http.get("/api/assets", params=[("include[]", "metadata,planets")])
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "include"]
        # The asset filter's parameters are declared (by a dependency) as the SDK's types, yet read as before.
        unrated = {x["id"] for x in http.get("/api/assets").json()["data"]}
        for query in forms("ratings", ["0", "5"]):
            got = http.get("/api/assets", params=[*query, ("radius", "")])
            assert got.status_code == 200 and {x["id"] for x in got.json()["data"]} == unrated, query
        assert http.get("/api/assets", params={"ratings": "4"}).json()["data"] == []
        assert http.get("/api/search", params={"media_type": "image", "limit": "", "page": ""}).status_code == 200
        for path, query, loc, message in (
            ("/api/assets", {"ratings": "1,x"}, "ratings", "ratings must be integers from 0 to 5"),
            ("/api/assets/counts", {"radius": "far", "center": "0,0"}, "radius", "radius must be a number of meters"),
            ("/api/assets/geo-clusters", {"cell_size": 1, "state": "gone"}, "state",
             "state must be one of live, trashed, all"),
            ("/api/search", {"media_type": "image", "page": "x"}, "page", "page must be an integer"),
            ("/api/search", {"query": "cats", "asset_id": "asset_x"}, "query",
             "Give one of query, image or asset_id: combining them is not supported"),
        ):
            refused = http.get(path, params=query)
            assert refused.status_code == 422, (path, query, refused.text)
            assert refused.json()["detail"] == [{"loc": ["query", loc], "msg": message, "type": "value_error"}]


def test_albums_are_private(account, make_account):
    album = account.client.albums.create(name="Mine")
    other = make_account()
    for call in (lambda: other.client.albums.retrieve(album.id),
                 lambda: other.client.albums.update(album.id, name="x"),
                 lambda: other.client.albums.delete(album.id),
                 lambda: other.client.albums.assets_associations.add(album.id, asset_ids=[])):
        with pytest.raises(gumnut.NotFoundError):
            call()
    assert list(other.client.albums.list()) == []


# --- events feed -------------------------------------------------------------------------


def _feed(account, limit=50, **params):
    with account.http() as http:
        cursor = None
        while True:
            query = {"limit": limit, **params}
            if cursor:
                query["after_cursor"] = cursor
            page = http.get("/api/events", params=query).json()
            yield from page["data"]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return


def test_event_feed_pages_and_validates(account):
    ids_ = _assets(account, 5, 21)
    events = list(_feed(account, limit=2, entity_types="asset"))
    created = [e["entity_id"] for e in events if e["event_type"] == "asset_created"]
    assert created == ids_
    assert len({e["cursor"] for e in events}) == len(events)
    sdk = account.client.events.get(entity_types=["asset"], limit=3)
    assert len(sdk.data) == 3 and sdk.has_more and sdk.next_cursor and sdk.as_of
    with account.http() as http:
        assert http.get("/api/events", params={"entity_types": "planet"}).status_code == 400
        assert http.get("/api/events", params={"after_cursor": "nonsense"}).status_code == 400
        assert http.get("/api/events", params={"after_cursor": "fffffffff.1"}).status_code == 400
        empty = http.get("/api/events", params={"entity_types": "person"}).json()
    assert empty["data"] == [] and empty["next_cursor"] is None and empty["has_more"] is False


def test_event_feed_filters_by_creation_time(account):
    """created_at_lt keeps the events recorded before it (created_at_gte those at or after): the SDK sends both.
    Background processing may add events meanwhile, all of them later: each answer holds every event seen
    first that passes its bounds, in feed order, and no event outside them."""
    _assets(account, 4, 23)
    seen = list(_feed(account, entity_types="asset"))
    at = lambda e: dt.datetime.fromisoformat(e["created_at"] if isinstance(e, dict) else e.created_at.isoformat())
    times = sorted({at(e) for e in seen})
    assert len(times) >= 4

    def check(answer, low=None, high=None):
        inside = lambda e: (low is None or low <= at(e)) and (high is None or at(e) < high)
        cursors = [e["cursor"] if isinstance(e, dict) else e.cursor for e in answer]
        assert all(inside(e) for e in answer)
        assert [c for c in cursors if c in {e["cursor"] for e in seen}] == [e["cursor"] for e in seen if inside(e)]
        return cursors

    before = check(list(_feed(account, entity_types="asset", created_at_lt=times[2].isoformat())), high=times[2])
    assert before and len(before) < len(seen)
    assert check(list(_feed(account, entity_types="asset", created_at_gte=times[2].isoformat())), low=times[2])
    assert check(account.client.events.get(entity_types=["asset"], created_at_lt=times[2], limit=200).data,
                 high=times[2]) == before
    window = account.client.events.get(entity_types=["asset"], created_at_gte=times[1], created_at_lt=times[3],
                                       limit=200)
    assert check(window.data, low=times[1], high=times[3])
    # Declaring entity_types did not narrow the forms it takes: repeated, comma-joined, entity_types[].
    with account.http() as http:
        forms = [[e["cursor"] for e in http.get("/api/events", params=[*query, ("created_at_lt", times[2].isoformat()),
                                                                        ("limit", 200)]).json()["data"]]
                 for query in ([("entity_types", "asset"), ("entity_types", "album")], [("entity_types", "asset,album")],
                               [("entity_types[]", "asset"), ("entity_types[]", "album")])]
    assert forms == [before] * 3
    with account.http() as http:
        bad_lt = http.get("/api/events", params={"created_at_lt": "yesterday"})
        bad_gte = http.get("/api/events", params={"created_at_gte": "yesterday"})
    assert bad_lt.status_code == bad_gte.status_code >= 400
    assert "created_at_lt" in bad_lt.text


def test_event_feed_never_skips_a_late_commit(account):
    """A transaction that started writing first but commits last must still be read, once."""
    from app.db import engine as db
    from app.api import ids
    from app.domain import events

    library = ids.decode(ids.LIBRARY, account.client.libraries.list()[0].id)
    late_entity = uuid.uuid4()
    holding, release = threading.Event(), threading.Event()

    def late_writer():
        async def go():
            await db.open_pool(max_size=1)
            try:
                async with db.transaction() as conn:
                    await events.record(conn, entity_type="asset", entity_id=late_entity, event_type="asset_updated",
                                        library_id=library, owner_id=account.user_id)
                    holding.set()
                    while not release.is_set():
                        await asyncio.sleep(0.05)
            finally:
                await db.close_pool()

        asyncio.run(go())

    thread = threading.Thread(target=late_writer)
    thread.start()
    assert holding.wait(10)
    try:
        # Writes that commit while the early transaction is still open.
        after = _assets(account, 3, 22)
        seen_before = list(_feed(account, limit=2))
        assert not any(e["entity_id"] in after for e in seen_before)  # held back behind the open transaction
        with account.http() as http:
            cursor = http.get("/api/events", params={"limit": 200}).json()["next_cursor"]
    finally:
        release.set()
        thread.join()
    rest = []
    with account.http() as http:
        while True:
            page = http.get("/api/events", params={"limit": 2, **({"after_cursor": cursor} if cursor else {})}).json()
            rest += page["data"]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
    everything = seen_before + rest
    names = [e["entity_id"] for e in everything]
    assert ids.encode(ids.ASSET, late_entity) in names
    assert set(after) <= set(names)
    assert len(names) == len([e["cursor"] for e in everything]) == len({e["cursor"] for e in everything})


def test_event_feed_under_concurrent_writes(account):
    """Readers paging while writers commit see every event exactly once."""
    from app.db import engine as db

    stop = threading.Event()
    errors = []

    def writer(seed):
        n = 0
        while not stop.is_set() and n < 15:
            try:
                upload(account, f"cw{seed}-{n}.png", png_bytes(seed * 100 + n))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            n += 1

    threads = [threading.Thread(target=writer, args=(s,)) for s in (61, 62, 63)]
    [t.start() for t in threads]
    seen, cursor = [], None
    with account.http() as http:
        while any(t.is_alive() for t in threads):
            page = http.get("/api/events", params={"limit": 7, **({"after_cursor": cursor} if cursor else {})}).json()
            seen += page["data"]
            cursor = page["next_cursor"] or cursor
        [t.join() for t in threads]
        while True:
            page = http.get("/api/events", params={"limit": 7, **({"after_cursor": cursor} if cursor else {})}).json()
            seen += page["data"]
            cursor = page["next_cursor"] or cursor
            if not page["has_more"]:
                break
    assert not errors
    cursors = [e["cursor"] for e in seen]
    assert len(cursors) == len(set(cursors))
    in_db = run(db.fetchval(
        "SELECT count(*) FROM events WHERE owner_id = $1 AND event_type <> 'library_created'"
        " AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint", account.user_id))
    assert len(seen) <= in_db
    created = [e for e in seen if e["event_type"] == "asset_created"]
    assert len(created) == 45


# --- search, counts, geo ---------------------------------------------------------------


def test_search_filters(account):
    ids_ = _assets(account, 6, 31, start=dt.datetime(2021, 6, 1, tzinfo=UTC))
    account.client.assets.update_asset(ids_[0], rating=5)
    account.client.assets.update_asset(ids_[1], rating=3)
    s = account.client.search
    assert [r.asset.id for r in s.search(ratings=[5]).data] == [ids_[0]]
    assert sorted(r.asset.id for r in s.search(ratings=[0]).data) == sorted(ids_[2:])
    page1 = s.search(media_type="image", limit=4, page=1)
    page2 = s.search(media_type="image", limit=4, page=2)
    assert page1.has_more and not page2.has_more
    assert [r.asset.id for r in page1.data + page2.data] == list(reversed(ids_))
    assert all(r.distance is None for r in page1.data)
    window = s.search(local_datetime_after=dt.datetime(2021, 6, 2), local_datetime_before=dt.datetime(2021, 6, 5))
    assert [r.asset.id for r in window.data] == [ids_[3], ids_[2]]
    multipart = s.search_assets(ratings=[5, 3])
    assert {r.asset.id for r in multipart.data} == {ids_[0], ids_[1]}
    # Smart search is on in the default config, but its CLIP model is not on the test server.
    with pytest.raises(gumnut.BadRequestError) as err:
        s.search(query="dogs on a beach")
    assert "CLIP model" in str(err.value.body)
    with pytest.raises(gumnut.BadRequestError):
        s.search_assets(image=("q.png", png_bytes(1), "image/png"), ratings=[5])
    with pytest.raises(gumnut.UnprocessableEntityError):
        s.search(bbox="-10,-10,10,10")  # a location only narrows
    with pytest.raises(gumnut.NotFoundError):
        s.search(person_ids=["person_" + "2" * 22])


def test_location_filters_and_antimeridian(account):
    from tests.helpers import wait_processed

    ids_ = _assets(account, 4, 41)
    for asset_id in ids_:
        wait_processed(account, asset_id)
    _set_gps(ids_[0], -17.7, 178.0)   # Fiji, west of the antimeridian
    _set_gps(ids_[1], -14.3, -170.7)  # American Samoa, east of it
    _set_gps(ids_[2], 48.8566, 2.3522)  # Paris
    c = account.client.assets
    crossing = {a.id for a in c.list(bbox="170,-30,-160,0")}
    assert crossing == {ids_[0], ids_[1]}
    assert {a.id for a in c.list(bbox="-180,-90,180,90")} == set(ids_[:3])
    near_paris = {a.id for a in c.list(center="2.35,48.85", radius=2000)}
    assert near_paris == {ids_[2]}
    assert [a.id for a in c.list(center="2.35,48.85", radius=10)] == []
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.list(center="2.35,48.85", radius=60000)
    clusters = c.cluster_by_geo(bbox="-180,-90,180,90", cell_size=10).data
    assert sum(cl.count for cl in clusters) == 3
    assert {cl.representative_asset_id for cl in clusters} == set(ids_[:3])
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.cluster_by_geo(bbox="-180,-90,180,90", cell_size=0.00001)


def test_counts_by_month(account):
    start = dt.datetime(2020, 1, 15, tzinfo=UTC)
    _assets(account, 3, 51, start=start, step=dt.timedelta(days=31))  # Jan, Feb, Mar
    _assets(account, 2, 52, start=start, step=dt.timedelta(days=1))   # two more in Jan
    c = account.client.assets
    data = c.counts(group_by="month").data
    assert [(b.time_bucket.month, b.count) for b in data] == [(3, 1), (2, 1), (1, 3)]
    first = c.counts(group_by="month", order="asc", limit=2)
    assert first.has_more and [b.count for b in first.data] == [3, 1]
    rest = c.counts(group_by="month", order="asc", limit=2, starting_after_bucket=first.data[-1].time_bucket)
    assert [(b.time_bucket.month, b.count) for b in rest.data] == [(3, 1)] and not rest.has_more
    assert [b.count for b in c.counts(group_by="year").data] == [5]
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.counts(local_datetime_after=dt.datetime(2020, 1, 1, tzinfo=UTC))


# --- bulk update, stacks ----------------------------------------------------------------


def test_bulk_update_is_all_or_nothing(account, make_account):
    a, b = _assets(account, 2, 71)
    theirs = _assets(make_account(), 1, 72)[0]
    c = account.client.assets
    assert c.bulk_update_assets(updates=[{"id": a, "change": {"rating": 5}},
                                         {"id": b, "change": {"description": "x"}}]).to_dict() == {}
    assert c.retrieve(a).metadata.rating == 5 and c.retrieve(b).metadata.description == "x"
    with pytest.raises(gumnut.NotFoundError):
        c.bulk_update_assets(updates=[{"id": a, "change": {"rating": 1}}, {"id": theirs, "change": {"rating": 1}}])
    with pytest.raises(gumnut.UnprocessableEntityError):
        c.bulk_update_assets(updates=[{"id": a, "change": {"rating": 1}}, {"id": b, "change": {"rating": 9}}])
    assert c.retrieve(a).metadata.rating == 5


def test_stacks(account):
    a, b, c_, d = _assets(account, 4, 81)
    st = account.client.stacks
    with pytest.raises(gumnut.UnprocessableEntityError):
        st.create_stack(asset_ids=[a])
    stack = st.create_stack(asset_ids=[a, b], primary_asset_id=b)
    assert (stack.origin, stack.asset_count, stack.primary_asset_id) == ("user", 2, b)
    assert account.client.assets.retrieve(a).stack_id == stack.id
    assert {x.id for x in account.client.assets.list(stack_id=stack.id)} == {a, b}
    grown = st.add_assets_to_stack(stack.id, asset_ids=[c_])
    assert grown.asset_count == 3
    listed = st.list_stacks(include=["asset_ids"]).data
    assert listed[0].asset_ids == [a, b, c_]
    assert st.set_cover(stack.id, primary_asset_id=c_).primary_asset_id == c_
    with pytest.raises(gumnut.UnprocessableEntityError):
        st.set_cover(stack.id, primary_asset_id=d)
    # Moving the old stack's pinned cover into a new stack folds the whole old stack in.
    other = st.create_stack(asset_ids=[c_, d])
    assert st.retrieve_stack(other.id).asset_count == 4
    with pytest.raises(gumnut.NotFoundError):
        st.retrieve_stack(stack.id)
    st.remove_assets(other.id, asset_ids=[a, b, c_])  # one member left: the stack dissolves
    with pytest.raises(gumnut.NotFoundError):
        st.retrieve_stack(other.id)
    assert account.client.assets.retrieve(d).stack_id is None
    third = st.create_stack(asset_ids=[a, b])
    assert st.delete(third.id).to_dict() == {}
    assert account.client.assets.retrieve(a).stack_id is None
    kinds = [e["event_type"] for e in _feed(account, entity_types="stack")]
    assert kinds.count("stack_created") == 3 and kinds.count("stack_deleted") == 3


# --- API keys and users/me ----------------------------------------------------------------


def test_api_keys_are_managed_from_a_session_only(make_account):
    from app.domain import access
    from tests.helpers import session_token

    owner = make_account()
    # An API key cannot manage keys: a leaked key must not mint one that outlives its revocation.
    for call in (lambda: owner.client.api_keys.list(),
                 lambda: owner.client.api_keys.create(name="x", actions=["read"], library_scope_mode="all_libraries")):
        with pytest.raises(gumnut.PermissionDeniedError):
            call()
    session = gumnut.Gumnut(api_key=session_token(owner), base_url=owner.base_url, max_retries=0)
    keys = session.api_keys
    listed = keys.list()
    assert len(listed) == 1 and listed[0].is_active and set(listed[0].actions) == set(access.ALL_ACTIONS)
    created = keys.create(name="reader", actions=["read"], library_scope_mode="all_libraries")
    assert created.api_key.startswith("apikey_") and created.actions == ["read"]
    reader = gumnut.Gumnut(api_key=created.api_key, base_url=owner.base_url, max_retries=0)
    assert reader.users.me().email == owner.email
    with pytest.raises(gumnut.PermissionDeniedError):
        upload(type(owner)(owner.email, owner.user_id, created.api_key, reader, owner.base_url), "x.png", png_bytes(9))
    with pytest.raises(gumnut.UnprocessableEntityError):
        keys.create(name="bad", actions=["write"], library_scope_mode="all_libraries")  # read is required
    lib = session.libraries.list()[0].id
    scoped = keys.create(name="one lib", actions=["read", "write"], library_scope_mode="selected_libraries",
                         library_ids=[lib])
    assert scoped.selected_library_count == 1
    other_lib = make_account().client.libraries.list()[0].id
    with pytest.raises(gumnut.NotFoundError):
        keys.create(name="theirs", actions=["read"], library_scope_mode="selected_libraries", library_ids=[other_lib])
    assert keys.update(created.id, name="renamed").name == "renamed"
    assert keys.delete(created.id).to_dict() == {}
    with pytest.raises(gumnut.AuthenticationError):
        reader.users.me()
    revoked = [k for k in keys.list() if k.id == created.id][0]
    assert revoked.is_active is False and revoked.actions is None
    stranger = gumnut.Gumnut(api_key=session_token(make_account()), base_url=owner.base_url, max_retries=0)
    with pytest.raises(gumnut.NotFoundError):
        stranger.api_keys.delete(created.id)


def test_users_me_patch(account, make_account):
    users = account.client.users
    me = users.update(demo_mode_enabled=True, favorite_display_mode="rating")
    assert (me.demo_mode_enabled, me.favorite_display_mode) == (True, "rating")
    lib = account.client.libraries.list()[0].id
    assert users.update(immich_library_id=lib).immich_library_id == lib
    with account.http() as http:
        assert http.patch("/api/users/me", json={"demo_mode_enabled": None}).status_code == 422
        assert http.patch("/api/users/me", json={"immich_library_id": None}).json()["immich_library_id"] is None
    with pytest.raises(gumnut.PermissionDeniedError):
        users.update(home_country="US")
    other_lib = make_account().client.libraries.list()[0].id
    with pytest.raises(gumnut.NotFoundError):
        users.update(immich_library_id=other_lib)


def test_pagination_to_the_end_of_a_1000_asset_library(account):
    """1,000 asset rows (inserted directly: listing needs no files), read through the SDK's auto-pagination."""
    import hashlib
    import os

    from app.db import engine as db

    library = run(db.fetchval("SELECT default_library_id FROM users WHERE id = $1", account.user_id))
    rows = []
    for i in range(1000):
        data = os.urandom(16)
        rows.append((uuid.uuid4(), library, account.user_id, "image", "image/png", f"r{i}.png", f"missing/{library}/{i}.png",
                     100, hashlib.sha256(data).digest(), hashlib.sha1(data).digest(), f"d{i}", "bulk",
                     dt.datetime(2020, 1, 1, tzinfo=UTC), dt.datetime(2020, 1, 1, tzinfo=UTC),
                     dt.datetime(2020, 1, 1) + dt.timedelta(minutes=i // 3)))  # ties share a time: id breaks them

    async def insert():
        async with db.connection() as conn:
            await conn.executemany(
                "INSERT INTO assets (id, library_id, owner_id, media_type, mime_type, original_file_name, storage_key,"
                " file_size_bytes, checksum_sha256, checksum_sha1, device_asset_id, device_id, file_created_at,"
                " file_modified_at, local_datetime) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
                rows,
            )

    run(insert())
    seen = [a.id for a in account.client.assets.list(limit=200)]
    assert len(seen) == 1000 == len(set(seen))
    asc = [a.id for a in account.client.assets.list(limit=137, order="asc")]
    assert asc == list(reversed(seen))


def test_counts_rollup_matches_a_full_scan(account):
    ids_ = _assets(account, 6, 91, start=dt.datetime(2019, 5, 30, 22, tzinfo=UTC), step=dt.timedelta(hours=13))
    c = account.client.assets
    c.trash(ids=ids_[:2])
    c.restore(ids=ids_[1:2])
    c.delete(ids_[2])
    c.update_asset(ids_[3], original_datetime=dt.datetime(2018, 12, 31, 23, 59))
    for state in ("live", "trashed", "all"):
        for group_by in ("day", "week", "month", "year"):
            fast = [(b.time_bucket, b.count) for b in c.counts(group_by=group_by, state=state, limit=200).data]
            scan = [(b.time_bucket, b.count) for b in  # every rating: same rows, but no rollup
                    c.counts(group_by=group_by, state=state, limit=200, ratings=[0, 1, 2, 3, 4, 5]).data]
            assert fast == scan, (state, group_by)
    assert sum(b.count for b in c.counts(group_by="year", state="all").data) == 5


def test_review_regressions(account):
    """Edge cases found in review: covers leaving albums, odd offsets, NUL bytes, hostile cursors."""
    a, b = _assets(account, 2, 95)
    albums = account.client.albums
    album = albums.create(name="Cover test")
    albums.assets_associations.add(album.id, asset_ids=[a, b])
    albums.update(album.id, album_cover_asset_id=a)
    albums.assets_associations.remove(album.id, asset_ids=[a])
    assert albums.retrieve(album.id).album_cover_asset_id == b  # the default, not the removed asset
    albums.assets_associations.remove(album.id, asset_ids=[b])
    got = albums.retrieve(album.id)
    assert (got.asset_count, got.album_cover_asset_id) == (0, None)
    with account.http() as http:
        assert http.patch(f"/api/assets/{a}", json={"original_datetime": "2024-01-01T00:00:00+20:00"}).status_code == 422
        assert http.post("/api/albums", json={"name": "nul\u0000"}).status_code == 422
        assert http.get("/api/events", params={"after_cursor": "0.-ffffffffffffffffffff"}).status_code == 400
        assert http.get("/api/events", params={"as_of": "h-1"}).status_code == 400
        assert http.get("/api/assets", params={"local_datetime_after": "0001-01-01T00:00:00+01:00"}).status_code == 422
        assert http.get("/api/search", params={"query": ""}).status_code == 422
    stack = account.client.stacks.create_stack(asset_ids=[a, b], primary_asset_id=a)
    c = _assets(account, 1, 96)[0]
    account.client.stacks.add_assets_to_stack(stack.id, asset_ids=[c])
    account.client.assets.delete(a)  # the pinned cover goes: the pin clears, with an event
    assert account.client.stacks.retrieve_stack(stack.id).primary_asset_id is None
    kinds = [e["event_type"] for e in _feed(account, entity_types="stack")]
    assert kinds[-1] == "stack_updated"
