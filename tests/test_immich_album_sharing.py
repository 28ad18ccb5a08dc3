"""Immich album sharing: album users with a role, over the Immich listener, two users and a stranger."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.api import ids
from tests.immich_contract import SPEC_PATH, validate
from tests.media import png_bytes
from tests.test_immich_media import _upload

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _client(server, account) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=30)


def _refused(response: httpx.Response, message: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["message"] == message, response.text


@needs_spec
def test_an_album_shared_with_a_viewer_then_an_editor_then_nobody(server, account, make_account):
    bob, stranger = make_account(), make_account()
    photo = _upload(server, account, "shared.png", png_bytes(2600))
    bobs_photo = _upload(server, bob, "bobs.png", png_bytes(2601))
    with _client(server, account) as alice, _client(server, bob) as b, _client(server, stranger) as s:
        created = alice.post("/api/albums", json={"albumName": "Holiday", "assetIds": [photo]})
        validate("/albums", "post", 201, created.json())
        album = created.json()["id"]
        assert created.json()["shared"] is False and [u["role"] for u in created.json()["albumUsers"]] == ["owner"]

        shared = alice.put(f"/api/albums/{album}/users",
                           json={"albumUsers": [{"userId": str(bob.user_id), "role": "viewer"}]})
        assert shared.status_code == 200, shared.text
        validate("/albums/{id}/users", "put", 200, shared.json())
        assert shared.json()["shared"] is True
        assert [(u["user"]["id"], u["role"]) for u in shared.json()["albumUsers"]] == [
            (str(account.user_id), "owner"), (str(bob.user_id), "viewer")]

        # The owner's lists: shared, not "not shared"; statistics agree.
        mine = alice.get("/api/albums", params={"isShared": "true"}).json()
        validate("/albums", "get", 200, mine)
        assert [a["id"] for a in mine] == [album]
        assert alice.get("/api/albums", params={"isShared": "false"}).json() == []
        stats = alice.get("/api/albums/statistics").json()
        validate("/albums/statistics", "get", 200, stats)
        assert stats == {"owned": 1, "shared": 1, "notShared": 0}

        # The viewer sees it among shared albums, reads it and its photo, adds nothing.
        theirs = b.get("/api/albums", params={"isShared": "true"}).json()
        validate("/albums", "get", 200, theirs)
        assert [a["id"] for a in theirs] == [album]
        assert b.get("/api/albums", params={"isOwned": "true"}).json() == []
        assert [a["id"] for a in b.get("/api/albums").json()] == [album]
        got = b.get(f"/api/albums/{album}")
        assert got.status_code == 200, got.text
        validate("/albums/{id}", "get", 200, got.json())
        assert got.json()["assetCount"] == 1 and got.json()["albumUsers"][1]["user"]["id"] == str(bob.user_id)
        assert b.get(f"/api/assets/{photo}").status_code == 200
        # Natively, what an Immich share reaches is readable by id too (never listed as a library of Bob's).
        native = bob.client.albums.retrieve(ids.encode(ids.ALBUM, uuid.UUID(album)))
        assert native.name == "Holiday"
        assert bob.client.assets.retrieve(ids.encode(ids.ASSET, uuid.UUID(photo))).id == ids.encode(
            ids.ASSET, uuid.UUID(photo))
        thumb = b.get(f"/api/assets/{photo}/thumbnail")
        assert thumb.status_code == 200 and thumb.content
        # The web client shows an album through the timeline, named by albumId.
        buckets = b.get("/api/timeline/buckets", params={"albumId": album})
        assert buckets.status_code == 200, buckets.text
        validate("/timeline/buckets", "get", 200, buckets.json())
        assert sum(x["count"] for x in buckets.json()) == 1
        _refused(b.request("DELETE", f"/api/albums/{album}/assets", json={"ids": [photo]}),
                 "Not found or no albumAsset.delete access")
        _refused(b.put(f"/api/albums/{album}/assets", json={"ids": [bobs_photo]}), "Not found or no albumAsset.create access")
        # Nothing of the owner's is writable through the share, nor is the album.
        assert b.put(f"/api/assets/{photo}", json={"isFavorite": True}).status_code in (400, 403, 404)
        _refused(b.patch(f"/api/albums/{album}", json={"albumName": "Mine"}), "Not found or no album.update access")
        _refused(b.delete(f"/api/albums/{album}"), "Not found or no album.delete access")
        _refused(b.put(f"/api/albums/{album}/users", json={"albumUsers": [{"userId": str(stranger.user_id)}]}),
                 "Not found or no album.share access")

        # Promoted to editor, Bob adds a photo of his own; the owner's album (and the owner) show it.
        promoted = alice.put(f"/api/albums/{album}/user/{bob.user_id}", json={"role": "editor"})
        assert promoted.status_code == 204, promoted.text
        added = b.put(f"/api/albums/{album}/assets", json={"ids": [bobs_photo, photo]})
        assert added.status_code == 200, added.text
        validate("/albums/{id}/assets", "put", 200, added.json())
        assert [(r["id"], r["success"]) for r in added.json()] == [(bobs_photo, True), (photo, False)]
        assert alice.get(f"/api/albums/{album}").json()["assetCount"] == 2
        # An editor may take out what it put in, not the owner's photos.
        kept = b.request("DELETE", f"/api/albums/{album}/assets", json={"ids": [photo]})
        assert kept.status_code == 200, kept.text
        validate("/albums/{id}/assets", "delete", 200, kept.json())
        assert kept.json()[0]["success"] is False and alice.get(f"/api/albums/{album}").json()["assetCount"] == 2
        assert alice.get(f"/api/assets/{bobs_photo}").status_code == 200
        assert [u["role"] for u in alice.get(f"/api/albums/{album}").json()["albumUsers"]] == ["owner", "editor"]

        # A stranger sees nothing, and may not share what it cannot see.
        assert s.get("/api/albums", params={"isShared": "true"}).json() == []
        assert s.get(f"/api/albums/{album}").status_code in (400, 404)
        assert s.get(f"/api/assets/{photo}").status_code in (400, 404)
        _refused(s.put(f"/api/albums/{album}/users", json={"albumUsers": [{"userId": str(stranger.user_id)}]}),
                 "Not found or no album.share access")

        # Removing Bob ends his access on the next request.
        assert alice.delete(f"/api/albums/{album}/user/{bob.user_id}").status_code == 204
        assert b.get(f"/api/albums/{album}").status_code in (400, 404)
        assert b.get(f"/api/assets/{photo}").status_code in (400, 404)
        assert b.get(f"/api/assets/{photo}/thumbnail").status_code in (400, 404)
        assert b.get("/api/albums", params={"isShared": "true"}).json() == []
        assert b.get("/api/timeline/buckets", params={"albumId": album}).status_code in (400, 404)
        assert alice.get(f"/api/albums/{album}").json()["shared"] is False
        _refused(alice.delete(f"/api/albums/{album}/user/{bob.user_id}"), "Album not shared with user")


@needs_spec
def test_sharing_refusals_and_leaving(server, account, make_account):
    bob = make_account()
    with _client(server, account) as alice, _client(server, bob) as b:
        album = alice.post("/api/albums", json={"albumName": "Refusals",
                                                "albumUsers": [{"userId": str(bob.user_id), "role": "viewer"}]})
        assert album.status_code == 201, album.text
        validate("/albums", "post", 201, album.json())
        album_id = album.json()["id"]
        assert [u["role"] for u in album.json()["albumUsers"]] == ["owner", "viewer"]

        def share(user_id, role="editor"):
            return alice.put(f"/api/albums/{album_id}/users", json={"albumUsers": [{"userId": str(user_id), "role": role}]})

        _refused(share(account.user_id), "Cannot be shared with owner")
        _refused(share(bob.user_id), "User already added")
        _refused(share(uuid.uuid4()), "User not found")
        _refused(share(bob.user_id, "owner"), "Cannot add another owner")
        _refused(alice.put(f"/api/albums/{album_id}/user/{account.user_id}", json={"role": "viewer"}), "User is owner")
        # An album user leaves by itself ("me"), which only it may do for itself.
        _refused(b.delete(f"/api/albums/{album_id}/user/{account.user_id}"), "Cannot remove the album owner")
        assert b.delete(f"/api/albums/{album_id}/user/me").status_code == 204
        assert b.get(f"/api/albums/{album_id}").status_code in (400, 404)
        assert alice.get(f"/api/albums/{album_id}").json()["albumUsers"][1:] == []


@needs_spec
def test_the_owners_sync_stream_lists_the_album_users(server, account, make_account):
    from tests.helpers import session_token
    from tests.test_immich_sync import App

    bob = make_account()
    app = App(server, session_token(account))
    album = app.http.post("/api/albums", json={"albumName": "Synced",
                                               "albumUsers": [{"userId": str(bob.user_id), "role": "viewer"}]})
    assert album.status_code == 201, album.text
    lines = [x["data"] for x in app.stream(["AlbumsV2", "AlbumUsersV1"]) if x["type"] == "AlbumUserV1"]
    assert {(x["userId"], x["role"]) for x in lines if x["albumId"] == album.json()["id"]} == {
        (str(account.user_id), "owner"), (str(bob.user_id), "viewer")}
