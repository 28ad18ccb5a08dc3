"""Immich shared links over the Immich listener: the owner's operations, and an anonymous visitor
holding a key, a slug or the password cookie. Bodies are checked against the 3.1.0 spec."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.immich_contract import SPEC_PATH, validate
from tests.media import png_bytes
from tests.test_immich_media import _upload
from tests.test_immich_upload import FIELDS

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _client(server, account) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=30)


def _anonymous(server) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, timeout=30)


def _refused(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["message"] == message, response.text


def _album_with_photo(server, account, http: httpx.Client, name: str, seed: int) -> tuple[str, str]:
    photo = _upload(server, account, f"{name}.png", png_bytes(seed))
    changed = http.put(f"/api/assets/{photo}", json={"description": "behind the shed", "latitude": 59.9,
                                                     "longitude": 10.7})
    assert changed.status_code == 200, changed.text
    album = http.post("/api/albums", json={"albumName": name, "assetIds": [photo]}).json()["id"]
    return album, photo


@needs_spec
def test_an_album_link_by_key_and_slug_then_hiding_metadata_then_deleted(server, account, make_account):
    stranger = make_account()
    with _client(server, account) as alice, _client(server, stranger) as s, _anonymous(server) as visitor:
        album, photo = _album_with_photo(server, account, alice, "Link album", 4100)
        other_album, other_photo = _album_with_photo(server, account, alice, "Private album", 4101)

        created = alice.post("/api/shared-links", json={"type": "ALBUM", "albumId": album, "slug": "cabin-2024",
                                                        "description": "Cabin", "allowUpload": False})
        assert created.status_code == 201, created.text
        validate("/shared-links", "post", 201, created.json())
        link = created.json()
        assert (link["type"], link["album"]["id"], link["showMetadata"], link["allowDownload"]) == (
            "ALBUM", album, True, True)
        assert len(link["key"]) >= 43 and link["password"] is None and link["assets"] == []
        key = {"key": link["key"]}
        assert alice.get(f"/api/albums/{album}").json()["hasSharedLink"] is True
        assert alice.get(f"/api/albums/{other_album}").json()["hasSharedLink"] is False

        me = visitor.get("/api/shared-links/me", params=key)
        assert me.status_code == 200, me.text
        validate("/shared-links/me", "get", 200, me.json())
        assert me.json()["id"] == link["id"]
        assert visitor.get("/api/shared-links/me", params={"slug": "cabin-2024"}).json()["id"] == link["id"]
        got = visitor.get(f"/api/albums/{album}", params=key)
        assert got.status_code == 200, got.text
        validate("/albums/{id}", "get", 200, got.json())
        asset = visitor.get(f"/api/assets/{photo}", params={"slug": "cabin-2024"})
        assert asset.status_code == 200, asset.text
        validate("/assets/{id}", "get", 200, asset.json())
        assert asset.json()["exifInfo"]["description"] == "behind the shed"
        assert visitor.get(f"/api/assets/{photo}/thumbnail", params=key).status_code == 200
        assert visitor.get(f"/api/assets/{photo}/original", params=key).content == png_bytes(4100)
        buckets = visitor.get("/api/timeline/buckets", params={**key, "albumId": album})
        assert buckets.status_code == 200, buckets.text
        validate("/timeline/buckets", "get", 200, buckets.json())
        [bucket] = buckets.json()
        columns = visitor.get("/api/timeline/bucket", params={**key, "albumId": album,
                                                             "timeBucket": bucket["timeBucket"], "withCoordinates": "true"})
        assert columns.status_code == 200, columns.text
        validate("/timeline/bucket", "get", 200, columns.json())
        assert columns.json()["id"] == [photo] and columns.json()["latitude"] == [pytest.approx(59.9)]

        # Nothing else: the owner's other album and photo, a library timeline, routes that take no link.
        _refused(visitor.get(f"/api/albums/{other_album}", params=key), 400, "Not found or no album.read access")
        _refused(visitor.get(f"/api/assets/{other_photo}", params=key), 400, "Not found or no asset.read access")
        assert visitor.get(f"/api/assets/{other_photo}/thumbnail", params=key).status_code == 400
        _refused(visitor.get("/api/timeline/buckets", params=key), 400, "Not found or no timeline.read access")
        for path in ("/api/albums", "/api/users/me", "/api/shared-links", f"/api/shared-links/{link['id']}"):
            _refused(visitor.get(path, params=key), 401, "Authentication required")
        _refused(visitor.put(f"/api/assets/{photo}", params=key, json={"description": "mine now"}), 401,
                 "Authentication required")
        # Nor the routes that could carry metadata another way: search, map, the sync stream.
        for method, path, body in (("POST", "/api/search/metadata", {"albumIds": [album]}),
                                   ("GET", "/api/map/markers", None),
                                   ("POST", "/api/sync/stream", {"types": ["AlbumAssetExifsV1"]})):
            _refused(visitor.request(method, path, params=key, json=body), 401, "Authentication required")
        # A guess says nothing; a session caller has no link of its own.
        _refused(visitor.get("/api/shared-links/me", params={"key": "A" * 67}), 401, "Invalid share key")
        _refused(visitor.get("/api/shared-links/me", params={"slug": "cabin-2025"}), 401, "Invalid share slug")
        _refused(alice.get("/api/shared-links/me"), 403, "Forbidden")
        # No upload through a link that does not allow it.
        refused = visitor.post("/api/assets", params=key, data=FIELDS,
                               files={"assetData": ("x.png", png_bytes(4102), "application/octet-stream")})
        assert refused.status_code == 401, refused.text

        # The owner's list, filters and the link itself; another user's view of it.
        listed = alice.get("/api/shared-links")
        validate("/shared-links", "get", 200, listed.json())
        assert [x["id"] for x in listed.json()] == [link["id"]]
        assert alice.get("/api/shared-links", params={"albumId": other_album}).json() == []
        assert [x["id"] for x in alice.get("/api/shared-links", params={"id": link["id"]}).json()] == [link["id"]]
        one = alice.get(f"/api/shared-links/{link['id']}")
        validate("/shared-links/{id}", "get", 200, one.json())
        assert s.get("/api/shared-links").json() == []
        _refused(s.get(f"/api/shared-links/{link['id']}"), 400, "Shared link not found")
        _refused(s.patch(f"/api/shared-links/{link['id']}", json={"description": "x"}), 400, "Shared link not found")
        _refused(s.delete(f"/api/shared-links/{link['id']}"), 400, "Shared link not found")
        _refused(s.post("/api/shared-links", json={"type": "ALBUM", "albumId": album}), 400,
                 "Not found or no album.share access")
        _refused(alice.post("/api/shared-links", json={"type": "ALBUM", "slug": "x"}), 400, "Invalid albumId")
        _refused(alice.post("/api/shared-links", json={"type": "ALBUM", "albumId": other_album, "slug": "cabin-2024"}),
                 400, "Failed to save shared link")

        # Hide metadata and downloads: the next request sees it, in every route the link reaches.
        hidden = alice.patch(f"/api/shared-links/{link['id']}", json={"showMetadata": False, "allowDownload": False,
                                                                       "slug": "cabin-2024"})
        assert hidden.status_code == 200, hidden.text
        validate("/shared-links/{id}", "patch", 200, hidden.json())
        assert (hidden.json()["showMetadata"], hidden.json()["allowDownload"]) == (False, False)
        stripped = visitor.get(f"/api/assets/{photo}", params=key)
        validate("/assets/{id}", "get", 200, stripped.json())
        body = stripped.json()
        assert "exifInfo" not in body and "people" not in body and body["hasMetadata"] is False
        assert body["originalFileName"] == f"{photo}.png" and "behind the shed" not in stripped.text
        columns = visitor.get("/api/timeline/bucket", params={**key, "albumId": album,
                                                             "timeBucket": bucket["timeBucket"], "withCoordinates": "true"})
        validate("/timeline/bucket", "get", 200, columns.json())
        assert columns.json()["latitude"] == [None] and columns.json()["city"] == [None]
        album_body = visitor.get(f"/api/albums/{album}", params=key)
        validate("/albums/{id}", "get", 200, album_body.json())
        assert "behind the shed" not in album_body.text
        _refused(visitor.get(f"/api/assets/{photo}/original", params=key), 400, "Not found or no asset.download access")
        assert visitor.get(f"/api/assets/{photo}/thumbnail", params=key).status_code == 200
        # A PNG has no full-size rendition, its original is shown as it is: not to this link, which gets
        # the preview (the original's bytes are a download and carry its metadata).
        full = visitor.get(f"/api/assets/{photo}/thumbnail", params={**key, "size": "fullsize"}, follow_redirects=True)
        assert full.status_code == 200 and full.content != png_bytes(4100), full.status_code
        assert alice.get(f"/api/assets/{photo}/thumbnail", params={"size": "fullsize"}).content == png_bytes(4100)
        # The owner still sees everything of its own photo.
        assert alice.get(f"/api/assets/{photo}").json()["exifInfo"]["description"] == "behind the shed"

        gone = alice.delete(f"/api/shared-links/{link['id']}")
        assert gone.status_code == 204, gone.text
        _refused(visitor.get(f"/api/assets/{photo}", params=key), 401, "Invalid share key")
        _refused(visitor.get("/api/shared-links/me", params={"slug": "cabin-2024"}), 401, "Invalid share slug")


@needs_spec
def test_a_password_protected_link_and_one_that_expires(server, account):
    with _client(server, account) as alice, _anonymous(server) as visitor:
        album, photo = _album_with_photo(server, account, alice, "Locked album", 4200)
        link = alice.post("/api/shared-links", json={"type": "ALBUM", "albumId": album, "password": "hunter2"}).json()
        assert link["password"] == "hunter2"  # Immich shows the owner its link's password
        key = {"key": link["key"]}
        _refused(visitor.get("/api/shared-links/me", params=key), 401, "Password required")
        _refused(visitor.get(f"/api/assets/{photo}", params=key), 401, "Password required")
        _refused(visitor.post("/api/shared-links/login", params=key, json={"password": "guess"}), 401,
                 "Invalid password")
        logged_in = visitor.post("/api/shared-links/login", params=key, json={"password": "hunter2"})
        assert logged_in.status_code == 201, logged_in.text
        validate("/shared-links/login", "post", 201, logged_in.json())
        assert "immich_shared_link_token" in logged_in.cookies
        # The client keeps the cookie: the link now opens.
        me = visitor.get("/api/shared-links/me", params=key)
        assert me.status_code == 200, me.text
        assert visitor.get(f"/api/assets/{photo}", params=key).status_code == 200
        assert visitor.get(f"/api/assets/{photo}/thumbnail", params=key).status_code == 200
        _refused(alice.post("/api/shared-links/login", json={"password": "hunter2"}), 403, "Forbidden")
        # A new password locks the cookie out again.
        alice.patch(f"/api/shared-links/{link['id']}", json={"password": "correct horse"})
        _refused(visitor.get(f"/api/assets/{photo}", params=key), 401, "Password required")

        soon = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()
        brief = alice.post("/api/shared-links", json={"type": "ALBUM", "albumId": album, "expiresAt": soon})
        assert brief.status_code == 201, brief.text
        validate("/shared-links", "post", 201, brief.json())
        brief_key = {"key": brief.json()["key"]}
        assert visitor.get(f"/api/albums/{album}", params=brief_key).status_code == 200
        time.sleep(2.5)
        _refused(visitor.get(f"/api/albums/{album}", params=brief_key), 401, "Invalid share key")
        _refused(visitor.get("/api/shared-links/me", params=brief_key), 401, "Invalid share key")
        # changeExpiryTime without expiresAt means "never": the link opens again.
        revived = alice.patch(f"/api/shared-links/{brief.json()['id']}", json={"changeExpiryTime": True})
        assert revived.status_code == 200 and revived.json()["expiresAt"] is None, revived.text
        assert visitor.get(f"/api/albums/{album}", params=brief_key).status_code == 200


@needs_spec
def test_an_individual_link_and_its_assets(server, account, make_account):
    stranger = make_account()
    first = _upload(server, account, "first.png", png_bytes(4300))
    second = _upload(server, account, "second.png", png_bytes(4301))
    theirs = _upload(server, stranger, "theirs.png", png_bytes(4302))
    with _client(server, account) as alice, _anonymous(server) as visitor:
        _refused(alice.post("/api/shared-links", json={"type": "INDIVIDUAL", "assetIds": [first, theirs]}), 400,
                 "Not found or no asset.share access")
        _refused(alice.post("/api/shared-links", json={"type": "INDIVIDUAL", "assetIds": []}), 400, "Invalid assetIds")
        created = alice.post("/api/shared-links", json={"type": "INDIVIDUAL", "assetIds": [first],
                                                        "showMetadata": False})
        assert created.status_code == 201, created.text
        validate("/shared-links", "post", 201, created.json())
        link = created.json()
        assert link["allowDownload"] is False  # Immich: hiding metadata forbids downloads
        assert [a["id"] for a in link["assets"]] == [first] and "album" not in link
        key = {"key": link["key"]}

        me = visitor.get("/api/shared-links/me", params=key)
        validate("/shared-links/me", "get", 200, me.json())
        assert [a["originalFileName"] for a in me.json()["assets"]] == [f"{first}.png"]  # stripped for a visitor
        assert visitor.get(f"/api/assets/{first}", params=key).status_code == 200
        assert visitor.get(f"/api/assets/{second}", params=key).status_code == 400

        added = alice.put(f"/api/shared-links/{link['id']}/assets", json={"assetIds": [second, first, theirs]})
        assert added.status_code == 200, added.text
        validate("/shared-links/{id}/assets", "put", 200, added.json())
        assert added.json() == [{"assetId": second, "success": True},
                                {"assetId": first, "success": False, "error": "duplicate"},
                                {"assetId": theirs, "success": False, "error": "no_permission"}]
        assert visitor.get(f"/api/assets/{second}", params=key).status_code == 200
        removed = alice.request("DELETE", f"/api/shared-links/{link['id']}/assets", json={"assetIds": [first, theirs]})
        assert removed.status_code == 200, removed.text
        validate("/shared-links/{id}/assets", "delete", 200, removed.json())
        assert removed.json() == [{"assetId": first, "success": True},
                                  {"assetId": theirs, "success": False, "error": "not_found"}]
        assert visitor.get(f"/api/assets/{first}", params=key).status_code == 400
        # Changing a link's assets is the owner's: a link credential there is no credential.
        _refused(visitor.put(f"/api/shared-links/{link['id']}/assets", params=key, json={"assetIds": [first]}), 401,
                 "Authentication required")


@needs_spec
def test_an_upload_through_a_link_lands_in_the_owners_album(server, account):
    with _client(server, account) as alice, _anonymous(server) as visitor:
        album, _ = _album_with_photo(server, account, alice, "Drop box", 4400)
        elsewhere, other = _album_with_photo(server, account, alice, "Not the drop box", 4402)
        link = alice.post("/api/shared-links", json={"type": "ALBUM", "albumId": album, "allowUpload": True}).json()
        assert link["allowUpload"] is True
        uploaded = visitor.post("/api/assets", params={"key": link["key"]}, data=FIELDS,
                                files={"assetData": ("guest.png", png_bytes(4401), "application/octet-stream")})
        assert uploaded.status_code == 201, uploaded.text
        validate("/assets", "post", 201, uploaded.json())
        asset_id = uploaded.json()["id"]
        # The owner's photo, in the album's library and in the album; the visitor sees it through the link.
        mine = alice.get(f"/api/assets/{asset_id}")
        assert mine.status_code == 200 and mine.json()["ownerId"] == str(account.user_id), mine.text
        assert alice.get(f"/api/albums/{album}").json()["assetCount"] == 2
        assert visitor.get(f"/api/assets/{asset_id}", params={"key": link["key"]}).status_code == 200
        # Immich's web then adds the upload to the album itself: it is there already, nothing else goes in.
        confirmed = visitor.put(f"/api/albums/{album}/assets", params={"key": link["key"]},
                                json={"ids": [asset_id, other]})
        assert confirmed.status_code == 200, confirmed.text
        validate("/albums/{id}/assets", "put", 200, confirmed.json())
        assert confirmed.json() == [{"id": asset_id, "success": False, "error": "duplicate"},
                                    {"id": other, "success": False, "error": "no_permission"}]
        _refused(visitor.put(f"/api/albums/{elsewhere}/assets", params={"key": link["key"]}, json={"ids": [other]}),
                 400, "Not found or no albumAsset.create access")
        again = visitor.post("/api/assets", params={"key": link["key"]}, data=FIELDS,
                             files={"assetData": ("guest.png", png_bytes(4401), "application/octet-stream")})
        assert again.status_code == 200 and again.json() == {"id": asset_id, "status": "duplicate"}, again.text
        assert alice.get(f"/api/albums/{album}").json()["assetCount"] == 2
