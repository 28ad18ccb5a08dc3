"""Sharing between two people as the Immich clients do it, start to end, over real HTTP.

Alice (A) and Bob (B) each use a signed-in session; a third, anonymous client only holds a
shared link. Every 2xx JSON body on the way is checked against the Immich 3.1.0 spec as it
arrives (immich_contract.checked_client), and every sync line against its entity's schema.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers import session_token
from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import png_bytes
from tests.test_immich_sync import _of
from tests.test_immich_sync_sharing import SharingApp

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")
PARTNER_ASSETS = ("PartnerAssetV2", "PartnerAssetBackfillV2")
PARTNER_EXIFS = ("PartnerAssetExifV1", "PartnerAssetExifBackfillV1")
ALBUM_ASSETS = ("AlbumAssetCreateV2", "AlbumAssetUpdateV2", "AlbumAssetBackfillV2")


class Person(SharingApp):
    """One signed-in user: the mobile app's calls (SharingApp checks each sync line), every other
    response checked against the spec as it arrives."""

    def __init__(self, server, account):
        self.account = account
        self.id = str(account.user_id)
        self.http = checked_client(base_url=server.immich_url, timeout=60,
                                   headers={"Authorization": f"Bearer {session_token(account)}"})


def _album_assets(http, album: str, **credential) -> set[str]:
    """The album's photos as the web app reads them: its timeline buckets, then each bucket."""
    params = {"albumId": album, **credential}
    buckets = http.get("/api/timeline/buckets", params=params)
    assert buckets.status_code == 200, buckets.text
    found: set[str] = set()
    for bucket in buckets.json():
        listed = http.get("/api/timeline/bucket", params={**params, "timeBucket": bucket["timeBucket"]})
        assert listed.status_code == 200, listed.text
        found.update(listed.json()["id"])
    return found


def _ids(lines, types) -> set[str]:
    return {line["data"].get("id") or line["data"].get("assetId") for line in lines if line["type"] in types}


def test_two_people_share_an_album_their_photos_and_a_link(server, account, make_account):
    alice, bob = Person(server, account), Person(server, make_account())
    photo = alice.upload(alice.account, "alice-1.png", png_bytes(7101))
    bob.sync()  # Bob's phone is set up: from here on, it hears only changes

    # A shares an album with B as a viewer: B reads it, adds nothing.
    album = alice.http.post("/api/albums", json={"albumName": "Summer", "assetIds": [photo]}).json()["id"]
    shared = alice.http.put(f"/api/albums/{album}/users",
                            json={"albumUsers": [{"userId": bob.id, "role": "viewer"}]})
    assert shared.status_code == 200, shared.text
    assert bob.http.get(f"/api/albums/{album}").json()["assetCount"] == 1
    assert _album_assets(bob.http, album) == {photo}
    bobs_photo = bob.upload(bob.account, "bob-1.png", png_bytes(7102))
    refused = bob.http.put(f"/api/albums/{album}/assets", json={"ids": [bobs_photo]})
    assert refused.status_code == 400, refused.text

    # ... then promotes B to editor, and B adds a photo.
    promoted = alice.http.put(f"/api/albums/{album}/user/{bob.id}", json={"role": "editor"})
    assert promoted.status_code == 204, promoted.text
    added = bob.http.put(f"/api/albums/{album}/assets", json={"ids": [bobs_photo]})
    assert added.status_code == 200 and added.json() == [{"id": bobs_photo, "success": True}], added.text
    assert _album_assets(alice.http, album) == {photo, bobs_photo}

    # B's phone gets the album shared with it: the album, its users, links and A's photo.
    lines = bob.sync()
    assert album in {a["id"] for a in _of(lines, "AlbumV2")}
    assert {(u["userId"], u["role"]) for u in _of(lines, "AlbumUserV1") if u["albumId"] == album} == {
        (alice.id, "owner"), (bob.id, "editor")}
    assert {(link["albumId"], link["assetId"]) for link in _of(lines, "AlbumToAssetV1")} >= {
        (album, photo), (album, bobs_photo)}
    assert photo in _ids(lines, ALBUM_ASSETS)

    # B comments and likes.
    comment = bob.http.post("/api/activities", json={"albumId": album, "type": "comment", "comment": "Great day"})
    assert comment.status_code == 201, comment.text
    like = bob.http.post("/api/activities", json={"albumId": album, "assetId": photo, "type": "like"})
    assert like.status_code == 201, like.text
    stats = alice.http.get("/api/activities/statistics", params={"albumId": album})
    assert stats.json() == {"comments": 1, "likes": 1}
    assert [a["user"]["id"] for a in alice.http.get("/api/activities", params={"albumId": album}).json()] == [
        bob.id, bob.id]

    # A makes B a partner: B's next stream carries A's photos and their EXIF.
    assert alice.http.post("/api/partners", json={"sharedWithId": bob.id}).status_code == 201
    later = alice.upload(alice.account, "alice-2.png", png_bytes(7103))
    lines = bob.sync()
    assert [(p["sharedById"], p["sharedWithId"]) for p in _of(lines, "PartnerV1")] == [(alice.id, bob.id)]
    assert {photo, later} <= _ids(lines, PARTNER_ASSETS)
    assert {photo, later} <= _ids(lines, PARTNER_EXIFS)
    assert bob.id not in {line["data"]["ownerId"] for line in lines if line["type"] in PARTNER_ASSETS}

    # A removes B, as a partner and from the album: B's next stream carries the deletes, in an order
    # that keeps the phone's foreign keys valid, and the stream after that carries nothing of A's.
    assert alice.http.delete(f"/api/partners/{bob.id}").status_code == 204
    assert alice.http.delete(f"/api/albums/{album}/user/{bob.id}").status_code == 204
    lines = bob.sync()
    assert [(p["sharedById"], p["sharedWithId"]) for p in _of(lines, "PartnerDeleteV1")] == [(alice.id, bob.id)]
    assert {photo, later} <= {d["assetId"] for d in _of(lines, "PartnerAssetDeleteV1")}
    assert album in {d["albumId"] for d in _of(lines, "AlbumDeleteV1")}
    types = [line["type"] for line in lines]
    assert all(t.endswith("DeleteV1") for t in types[:types.index("SyncCompleteV1")] if "Delete" in t)
    assert bob.http.get(f"/api/albums/{album}").status_code == 400
    again = bob.sync()
    assert not _ids(again, PARTNER_ASSETS + ALBUM_ASSETS) & {photo, later}

    # A password-protected link that expires in 2 s: an anonymous client sees the album, then not.
    expires = datetime.now(timezone.utc) + timedelta(seconds=2)
    link = alice.http.post("/api/shared-links", json={
        "type": "ALBUM", "albumId": album, "password": "open sesame",
        "expiresAt": expires.isoformat().replace("+00:00", "Z")})
    assert link.status_code == 201, link.text
    key = link.json()["key"]
    with checked_client(base_url=alice.http.base_url, timeout=30) as anonymous:
        locked = anonymous.get(f"/api/albums/{album}", params={"key": key})
        assert locked.status_code == 401, locked.text
        logged_in = anonymous.post("/api/shared-links/login", params={"key": key}, json={"password": "open sesame"})
        assert logged_in.status_code == 201, logged_in.text
        assert anonymous.get("/api/shared-links/me", params={"key": key}).json()["album"]["id"] == album
        seen = anonymous.get(f"/api/albums/{album}", params={"key": key})
        assert seen.status_code == 200, seen.text
        assert _album_assets(anonymous, album, key=key) == {photo, bobs_photo}
        time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.3)
        expired = anonymous.get(f"/api/albums/{album}", params={"key": key})
        assert expired.status_code == 401, expired.text
        assert anonymous.get(f"/api/assets/{photo}/thumbnail", params={"key": key}).status_code == 401
