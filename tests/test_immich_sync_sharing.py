"""Shared data on the Immich sync stream and socket.io, over HTTP as the 3.x app sees it: a partner's
photos and an album shared with the user arrive as rows, and leave again when the share ends."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.helpers import session_token
from tests.immich_contract import SPEC_PATH, _components
from tests.media import png_bytes
from tests import test_immich_socket
from tests.test_immich_socket import _cookie
from tests.test_immich_sync import APP_TYPES, NO_DATA, App, _of, _types
from tests.test_immich_upload import FIELDS

listeners = test_immich_socket.listeners  # the fixture

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")

# The spec's schema of each entity type whose schema is named after another.
SCHEMA_OF = {
    "PartnerAssetV2": "SyncAssetV2", "PartnerAssetBackfillV2": "SyncAssetV2", "AlbumAssetCreateV2": "SyncAssetV2",
    "AlbumAssetUpdateV2": "SyncAssetV2", "AlbumAssetBackfillV2": "SyncAssetV2",
    "PartnerAssetDeleteV1": "SyncAssetDeleteV1",
    "PartnerAssetExifV1": "SyncAssetExifV1", "PartnerAssetExifBackfillV1": "SyncAssetExifV1",
    "AlbumAssetExifCreateV1": "SyncAssetExifV1", "AlbumAssetExifUpdateV1": "SyncAssetExifV1",
    "AlbumAssetExifBackfillV1": "SyncAssetExifV1",
    "PartnerStackV1": "SyncStackV1", "PartnerStackBackfillV1": "SyncStackV1", "PartnerStackDeleteV1": "SyncStackDeleteV1",
    "AlbumUserBackfillV1": "SyncAlbumUserV1", "AlbumToAssetBackfillV1": "SyncAlbumToAssetV1",
}
SHARED = set(SCHEMA_OF) | {"PartnerV1", "PartnerDeleteV1", "AlbumV2", "AlbumUserV1", "AlbumToAssetV1",
                           "AlbumDeleteV1", "AlbumUserDeleteV1", "AlbumToAssetDeleteV1", "AssetDeleteV1", "SyncAckV1"}


class SharingApp(App):
    def stream(self, types=APP_TYPES, **extra) -> list[dict]:
        """App.stream, each line checked against the spec's schema of its entity type."""
        from jsonschema import Draft7Validator

        response = self.http.post("/api/sync/stream", json={"types": types, **extra})
        assert response.status_code == 200, response.text
        lines = [json.loads(raw) for raw in response.text.splitlines() if raw]
        for line in lines:
            assert set(line) == {"type", "data", "ack"} and line["ack"].startswith(line["type"] + "|"), line
            if line["type"] in NO_DATA:
                assert line["data"] == {}
                continue
            name = SCHEMA_OF.get(line["type"], "Sync" + line["type"])
            Draft7Validator({"$ref": f"#/components/schemas/{name}", "components": _components()}).validate(line["data"])
        return lines


def _ids(lines, *entity_types) -> set[str]:
    return {d.get("id") or d.get("assetId") for t in entity_types for d in _of(lines, t)}


def _quiet(lines) -> bool:
    """Nothing shared in a stream (users' rows aside, which every account creation moves)."""
    return not SHARED.intersection(_types(lines)) and lines[-1]["type"] == "SyncCompleteV1"


def test_partner_photos_arrive_and_leave(server, account, make_account):
    a = SharingApp(server, session_token(account))
    other, receiver = make_account(), make_account()
    b = SharingApp(server, session_token(receiver, "receiver-pw"))
    c = SharingApp(server, session_token(other, "other-pw"))
    first = a.upload(account, "a1.png", png_bytes(5101, 40, 30))
    theirs = c.upload(other, "c1.png", png_bytes(5102, 40, 30))
    b.sync()

    # Someone shares with B: B's next stream has the partnership and the photos, parents first.
    assert c.http.post("/api/partners", json={"sharedWithId": str(receiver.user_id)}).status_code == 201
    got = b.sync()
    assert _of(got, "PartnerV1") == [{"sharedById": str(other.user_id), "sharedWithId": str(receiver.user_id),
                                      "inTimeline": False}]
    assert _ids(got, "PartnerAssetV2", "PartnerAssetBackfillV2") == {theirs}
    assert _ids(got, "PartnerAssetExifV1", "PartnerAssetExifBackfillV1") == {theirs}
    kinds = _types(got)
    assert kinds.index("PartnerV1") < min(kinds.index(t) for t in kinds if t.startswith("PartnerAsset"))
    assert kinds[-2:] == ["SyncAckV1", "SyncCompleteV1"]
    assert _quiet(b.sync())

    # A second partner, whose photos are older than B's checkpoint: a backfill.
    assert a.http.post("/api/partners", json={"sharedWithId": str(receiver.user_id)}).status_code == 201
    got = b.sync()
    assert _ids(got, "PartnerAssetBackfillV2") == {first}
    assert _ids(got, "PartnerAssetExifBackfillV1") == {first}
    assert _quiet(b.sync())

    # A new photo of a partner arrives as it is; the receiver's timeline choice too.
    second = a.upload(account, "a2.png", png_bytes(5103, 40, 30))
    got = b.sync()
    assert _ids(got, "PartnerAssetV2") == {second} and _ids(got, "PartnerAssetExifV1") == {second}
    assert _quiet(b.sync())
    assert b.http.put(f"/api/partners/{account.user_id}", json={"inTimeline": True}).status_code == 200
    assert [p["inTimeline"] for p in _of(b.sync(), "PartnerV1")] == [True]
    # The sharer's own stream sees the partnership it made (and not B's photos).
    mine = a.sync()
    assert {(p["sharedById"], p["sharedWithId"]) for p in _of(mine, "PartnerV1")} == {
        (str(account.user_id), str(receiver.user_id))}
    assert not _ids(mine, "PartnerAssetV2", "PartnerAssetBackfillV2")

    # The partnership ends: B drops the partnership and every photo of A's, once.
    assert a.http.delete(f"/api/partners/{receiver.user_id}").status_code == 204
    gone = b.sync()
    assert _of(gone, "PartnerDeleteV1") == [{"sharedById": str(account.user_id), "sharedWithId": str(receiver.user_id)}]
    assert _ids(gone, "PartnerAssetDeleteV1") == {first, second}
    kinds = _types(gone)
    assert kinds.index("PartnerAssetDeleteV1") < kinds.index("PartnerDeleteV1")
    assert _quiet(b.sync())
    # The other partner's photos stay.
    assert theirs not in _ids(gone, "PartnerAssetDeleteV1")


def test_shared_album_arrives_and_leaves(server, account, make_account):
    a = SharingApp(server, session_token(account))
    member = make_account()
    b = SharingApp(server, session_token(member, "member-pw"))
    photo = a.upload(account, "album.png", png_bytes(5201, 40, 30))
    assert a.http.put(f"/api/assets/{photo}", json={"isFavorite": True}).status_code == 200
    album = a.http.post("/api/albums", json={"albumName": "Shared", "assetIds": [photo]}).json()["id"]
    b.sync()

    shared = a.http.put(f"/api/albums/{album}/users",
                        json={"albumUsers": [{"userId": str(member.user_id), "role": "viewer"}]})
    assert shared.status_code == 200, shared.text
    got = b.sync()
    assert [x["id"] for x in _of(got, "AlbumV2")] == [album]
    users = _of(got, "AlbumUserV1") + _of(got, "AlbumUserBackfillV1")
    assert {(u["userId"], u["role"]) for u in users} == {(str(account.user_id), "owner"),
                                                         (str(member.user_id), "viewer")}
    links = _of(got, "AlbumToAssetV1") + _of(got, "AlbumToAssetBackfillV1")
    assert links == [{"albumId": album, "assetId": photo}]
    assets = _of(got, "AlbumAssetCreateV2") + _of(got, "AlbumAssetBackfillV2")
    assert [x["id"] for x in assets] == [photo] and assets[0]["isFavorite"] is False
    assert _ids(got, "AlbumAssetExifCreateV1", "AlbumAssetExifBackfillV1") == {photo}
    kinds = _types(got)
    assert kinds.index("AlbumV2") < kinds.index("AlbumToAssetV1" if "AlbumToAssetV1" in kinds
                                                 else "AlbumToAssetBackfillV1")
    assert _quiet(b.sync())

    # A new photo in the album comes as a new album asset and link.
    added = a.upload(account, "album2.png", png_bytes(5202, 40, 30))
    assert a.http.put(f"/api/albums/{album}/assets", json={"ids": [added]}).status_code == 200
    got = b.sync()
    assert _ids(got, "AlbumAssetCreateV2") == {added}
    assert _of(got, "AlbumToAssetV1") == [{"albumId": album, "assetId": added}]
    assert _quiet(b.sync())

    # The owner's other albums stay out of B's streams; the walks move past their events once.
    private = a.http.post("/api/albums", json={"albumName": "Private", "assetIds": [added]}).json()["id"]
    assert set(_types(b.sync())) <= {"SyncAckV1", "SyncCompleteV1", "UserV1"}
    assert _quiet(b.sync()) and private

    # B is removed: the album, its users and links, and the photos B sees no other way go, children first.
    assert a.http.delete(f"/api/albums/{album}/user/{member.user_id}").status_code == 204
    gone = b.sync()
    assert _of(gone, "AlbumDeleteV1") == [{"albumId": album}]
    assert _of(gone, "AlbumUserDeleteV1") == [{"albumId": album, "userId": str(member.user_id)}]
    assert sorted(x["assetId"] for x in _of(gone, "AlbumToAssetDeleteV1")) == sorted([photo, added])
    assert _ids(gone, "AssetDeleteV1") == {photo, added}
    kinds = _types(gone)
    assert kinds.index("AlbumToAssetDeleteV1") < kinds.index("AlbumUserDeleteV1") < kinds.index("AlbumDeleteV1")
    assert _quiet(b.sync())
    # The owner's own stream keeps its album.
    assert "AlbumDeleteV1" not in _types(a.sync())


def test_partners_and_album_users_hear_live_events(server, account, make_account, listeners):
    receiver, member, stranger = make_account(), make_account(), make_account()
    a = SharingApp(server, session_token(account))
    photo = a.upload(account, "live.png", png_bytes(5301, 40, 30))
    assert a.http.post("/api/partners", json={"sharedWithId": str(receiver.user_id)}).status_code == 201
    album = a.http.post("/api/albums", json={"albumName": "Live"}).json()["id"]
    assert a.http.put(f"/api/albums/{album}/users",
                      json={"albumUsers": [{"userId": str(member.user_id), "role": "viewer"}]}).status_code == 200
    b = listeners(server.immich_url, _cookie(session_token(receiver, "receiver-pw")))
    m = listeners(server.immich_url, _cookie(session_token(member, "member-pw")))
    s = listeners(server.immich_url, _cookie(session_token(stranger, "stranger-pw")))
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        assert http.put(f"/api/assets/{photo}", json={"isFavorite": True}).status_code == 200
        assert b.wait_for("on_asset_update", lambda d: d["id"] == photo)["id"] == photo
        assert http.request("DELETE", "/api/assets", json={"ids": [photo]}).status_code == 204
        assert b.wait_for("on_asset_trash", lambda d: photo in d) == [photo]
        assert http.patch(f"/api/albums/{album}", json={"albumName": "Live 2"}).status_code == 200
        assert m.wait_for("on_album_update", lambda d: d == album) == album
    # A new photo of the sharer's is announced to the partner as ready, for its local timeline.
    fresh = a.upload(account, "fresh.png", png_bytes(5302, 40, 30))
    ready = b.wait_for("AssetUploadReadyV2", lambda d: d["asset"]["id"] == fresh)
    assert ready["asset"]["ownerId"] == str(account.user_id) and ready["exif"]["assetId"] == fresh
    # The album user hears nothing of the library, the partner nothing of the album; a stranger nothing.
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": stranger.api_key}) as http:
        own = http.post("/api/albums", json={"albumName": "Mine"}).json()["id"]
    assert s.wait_for("on_album_update") == own and s.names() == ["on_server_version", "on_album_update"]
    assert "on_asset_update" not in m.names() and "on_album_update" not in b.names()
    assert "AssetUploadReadyV2" not in m.names() and "on_upload_success" not in b.names()


def test_a_marker_commits_only_the_scope_its_own_stream_kept(server, account, make_account):
    """The scope of what a client holds stays on the server: a forged marker claiming a stranger's
    library or album commits nothing, so no drop lines ever list their contents."""
    from app.db import engine as db
    from tests.conftest import run

    victim = make_account()
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": victim.api_key}) as http:
        photo = http.post("/api/assets", files={"assetData": ("v.png", png_bytes(5401), "image/png")},
                          data=FIELDS).json()["id"]
        album = http.post("/api/albums", json={"albumName": "Private", "assetIds": [photo]}).json()["id"]
    library = run(db.fetchval("SELECT library_id FROM assets WHERE id = $1", uuid.UUID(photo)))
    app = SharingApp(server, session_token(account))
    app.sync()
    forged = (f"SyncAckV1|scope:AlbumAssetsV2,AlbumToAssetsV1,PartnerAssetsV2:{library.hex}:{uuid.UUID(album).hex}"
              "~PartnerAssetV2|1.1")
    for bad in (forged, "SyncAckV1|x~Nope|1", "SyncAckV1|nonsense~PartnerAssetV2|zz"):
        assert app.http.post("/api/sync/ack", json={"acks": [bad]}).status_code == 204, bad
    lines = app.stream()
    assert photo not in _ids(lines, "PartnerAssetDeleteV1", "AssetDeleteV1")
    assert album not in {d["albumId"] for d in _of(lines, "AlbumToAssetDeleteV1") + _of(lines, "AlbumDeleteV1")}
    assert _types(lines)[-1] == "SyncCompleteV1"


def test_an_editors_photo_reaches_the_album_owner_as_an_album_asset(server, account, make_account):
    a = SharingApp(server, session_token(account))
    editor = make_account()
    b = SharingApp(server, session_token(editor, "editor-pw"))
    album = a.http.post("/api/albums", json={"albumName": "Together"}).json()["id"]
    assert a.http.put(f"/api/albums/{album}/users",
                      json={"albumUsers": [{"userId": str(editor.user_id), "role": "editor"}]}).status_code == 200
    a.sync()
    theirs = b.upload(editor, "editor.png", png_bytes(5401, 40, 30))
    added = b.http.put(f"/api/albums/{album}/assets", json={"ids": [theirs]})
    assert added.status_code == 200 and added.json()[0]["success"], added.text
    got = a.sync()
    assert _ids(got, "AlbumAssetCreateV2") == {theirs} and _ids(got, "AlbumAssetExifCreateV1") == {theirs}
    assert _of(got, "AlbumToAssetV1") == [{"albumId": album, "assetId": theirs}]
    assert theirs not in _ids(got, "AssetV2")
    kinds = _types(got)
    assert kinds.index("AlbumAssetCreateV2") < kinds.index("AlbumToAssetV1")
    assert _quiet(a.sync())


def test_a_removed_album_user_leaves_every_remaining_users_album(server, account, make_account):
    a = SharingApp(server, session_token(account))
    leaving, staying = make_account(), make_account()
    b = SharingApp(server, session_token(leaving, "leaving-pw"))
    c = SharingApp(server, session_token(staying, "staying-pw"))
    album = a.http.post("/api/albums", json={"albumName": "Three"}).json()["id"]
    assert a.http.put(f"/api/albums/{album}/users", json={"albumUsers": [
        {"userId": str(leaving.user_id), "role": "viewer"},
        {"userId": str(staying.user_id), "role": "editor"}]}).status_code == 200
    for app in (a, b, c):
        app.sync()

    # A role change reaches everyone as an album user line.
    assert a.http.put(f"/api/albums/{album}/user/{staying.user_id}", json={"role": "viewer"}).status_code == 204
    for app in (a, b, c):
        users = _of(app.sync(), "AlbumUserV1")
        assert (str(staying.user_id), "viewer") in {(u["userId"], u["role"]) for u in users}

    # B leaves: the owner and C drop B from the album (and keep the album); B drops the album.
    assert b.http.delete(f"/api/albums/{album}/user/me").status_code == 204
    gone = {"albumId": album, "userId": str(leaving.user_id)}
    for app in (a, c):
        got = app.sync()
        assert _of(got, "AlbumUserDeleteV1") == [gone] and "AlbumDeleteV1" not in _types(got)
        assert _of(app.sync(), "AlbumUserDeleteV1") == []  # once
    mine = b.sync()
    assert _of(mine, "AlbumUserDeleteV1") == [gone] and _of(mine, "AlbumDeleteV1") == [{"albumId": album}]


def test_a_user_removed_from_an_album_hears_of_it(server, account, make_account, listeners):
    member = make_account()
    a = SharingApp(server, session_token(account))
    album = a.http.post("/api/albums", json={"albumName": "Going"}).json()["id"]
    assert a.http.put(f"/api/albums/{album}/users",
                      json={"albumUsers": [{"userId": str(member.user_id), "role": "viewer"}]}).status_code == 200
    m = listeners(server.immich_url, _cookie(session_token(member, "member-pw")))
    assert a.http.delete(f"/api/albums/{album}/user/{member.user_id}").status_code == 204
    assert m.wait_for("on_album_update", lambda d: d == album) == album


def test_a_deleted_shared_album_takes_the_photos_seen_only_there(server, account, make_account):
    a = SharingApp(server, session_token(account))
    member = make_account()
    b = SharingApp(server, session_token(member, "member-pw"))
    only_there = a.upload(account, "gone.png", png_bytes(5501, 40, 30))
    elsewhere = a.upload(account, "kept.png", png_bytes(5502, 40, 30))
    album = a.http.post("/api/albums", json={"albumName": "Doomed", "assetIds": [only_there, elsewhere]}).json()["id"]
    kept = a.http.post("/api/albums", json={"albumName": "Kept", "assetIds": [elsewhere]}).json()["id"]
    for shared in (album, kept):
        assert a.http.put(f"/api/albums/{shared}/users",
                          json={"albumUsers": [{"userId": str(member.user_id), "role": "viewer"}]}).status_code == 200
    got = b.sync()
    assert _ids(got, "AlbumAssetCreateV2", "AlbumAssetBackfillV2") == {only_there, elsewhere}

    assert a.http.delete(f"/api/albums/{album}").status_code == 204
    gone = b.sync()
    assert _of(gone, "AlbumDeleteV1") == [{"albumId": album}]
    assert _ids(gone, "AssetDeleteV1") == {only_there}
    kinds = _types(gone)
    assert kinds.index("AlbumDeleteV1") < kinds.index("AssetDeleteV1")
    assert _quiet(b.sync())
    # The owner keeps its photos.
    assert "AssetDeleteV1" not in _types(a.sync())


def test_a_deleted_account_ends_its_partnerships_on_the_other_side(server, account, make_account):
    from app.db import engine as db
    from tests.conftest import run

    admin, receiver, sharer = make_account(), make_account(), make_account()
    run(db.execute("UPDATE users SET is_admin = true WHERE id = $1", admin.user_id))
    boss = SharingApp(server, session_token(admin, "admin-pw"))
    a = SharingApp(server, session_token(account))
    b = SharingApp(server, session_token(receiver, "receiver-pw"))
    c = SharingApp(server, session_token(sharer, "sharer-pw"))
    assert a.http.post("/api/partners", json={"sharedWithId": str(receiver.user_id)}).status_code == 201
    assert c.http.post("/api/partners", json={"sharedWithId": str(account.user_id)}).status_code == 201
    b.sync(), c.sync()

    assert boss.http.delete(f"/api/admin/users/{account.user_id}").status_code == 200
    assert _of(b.sync(), "PartnerDeleteV1") == [{"sharedById": str(account.user_id),
                                                 "sharedWithId": str(receiver.user_id)}]
    assert _of(c.sync(), "PartnerDeleteV1") == [{"sharedById": str(sharer.user_id),
                                                 "sharedWithId": str(account.user_id)}]
    assert _of(b.sync(), "PartnerDeleteV1") == []


def test_a_photo_taken_out_of_a_shared_album_leaves_the_phones_that_saw_it_only_there(server, account, make_account):
    a = SharingApp(server, session_token(account))
    member = make_account()
    b = SharingApp(server, session_token(member, "member-pw"))
    out, elsewhere = a.upload(account, "out.png", png_bytes(5601, 40, 30)), a.upload(account, "else.png",
                                                                                   png_bytes(5602, 40, 30))
    album = a.http.post("/api/albums", json={"albumName": "Thinned", "assetIds": [out, elsewhere]}).json()["id"]
    kept = a.http.post("/api/albums", json={"albumName": "Keeps", "assetIds": [elsewhere]}).json()["id"]
    for shared in (album, kept):
        assert a.http.put(f"/api/albums/{shared}/users",
                          json={"albumUsers": [{"userId": str(member.user_id), "role": "viewer"}]}).status_code == 200
    b.sync(), a.sync()

    removed = a.http.request("DELETE", f"/api/albums/{album}/assets", json={"ids": [out, elsewhere]})
    assert removed.status_code == 200, removed.text
    got = b.sync()
    assert sorted(x["assetId"] for x in _of(got, "AlbumToAssetDeleteV1")) == sorted([out, elsewhere])
    assert _ids(got, "AssetDeleteV1") == {out}  # the other is still in an album shared with B
    kinds = _types(got)
    assert kinds.index("AlbumToAssetDeleteV1") < kinds.index("AssetDeleteV1")
    assert _quiet(b.sync())
    # The owner keeps its own photos.
    assert "AssetDeleteV1" not in _types(a.sync())


def test_a_deleted_accounts_albums_and_album_places_leave_the_other_phones(server, account, make_account):
    from app.db import engine as db
    from tests.conftest import run

    admin, member, host = make_account(), make_account(), make_account()
    run(db.execute("UPDATE users SET is_admin = true WHERE id = $1", admin.user_id))
    boss = SharingApp(server, session_token(admin, "admin-pw"))
    a = SharingApp(server, session_token(account))
    b = SharingApp(server, session_token(member, "member-pw"))
    h = SharingApp(server, session_token(host, "host-pw"))
    photo = a.upload(account, "theirs.png", png_bytes(5701, 40, 30))
    mine = a.http.post("/api/albums", json={"albumName": "Leaving", "assetIds": [photo]}).json()["id"]
    hosted = h.http.post("/api/albums", json={"albumName": "Staying"}).json()["id"]
    assert a.http.put(f"/api/albums/{mine}/users",
                      json={"albumUsers": [{"userId": str(member.user_id), "role": "viewer"}]}).status_code == 200
    assert h.http.put(f"/api/albums/{hosted}/users", json={"albumUsers": [
        {"userId": str(account.user_id), "role": "editor"},
        {"userId": str(member.user_id), "role": "viewer"}]}).status_code == 200
    b.sync(), h.sync()

    assert boss.http.delete(f"/api/admin/users/{account.user_id}").status_code == 200
    gone = {"albumId": hosted, "userId": str(account.user_id)}
    got = b.sync()
    assert _of(got, "AlbumDeleteV1") == [{"albumId": mine}]  # its album is shared no more
    assert _ids(got, "AssetDeleteV1") == {photo}
    assert gone in _of(got, "AlbumUserDeleteV1")  # and it left the host's album
    assert _quiet(b.sync())
    got = h.sync()
    assert _of(got, "AlbumUserDeleteV1") == [gone] and "AlbumDeleteV1" not in _types(got)
    assert b.http.get(f"/api/albums/{mine}").status_code == 400


def test_a_purged_librarys_shared_albums_leave_the_phones(server, account, make_account):
    a = SharingApp(server, session_token(account))
    member = make_account()
    b = SharingApp(server, session_token(member, "member-pw"))
    photo = a.upload(account, "purged.png", png_bytes(5801, 40, 30))
    album = a.http.post("/api/albums", json={"albumName": "Purged", "assetIds": [photo]}).json()["id"]
    assert a.http.put(f"/api/albums/{album}/users",
                      json={"albumUsers": [{"userId": str(member.user_id), "role": "viewer"}]}).status_code == 200
    assert _ids(b.sync(), "AlbumAssetCreateV2", "AlbumAssetBackfillV2") == {photo}

    # The owner moves to another library and purges the first before B syncs again.
    library = account.client.libraries.list()[0].id
    account.client.libraries.create(name="Next")
    account.client.libraries.trash(library)
    account.client.libraries.delete(library)
    got = b.sync()
    assert _of(got, "AlbumDeleteV1") == [{"albumId": album}]
    assert _ids(got, "AssetDeleteV1") == {photo}
    assert _quiet(b.sync())
