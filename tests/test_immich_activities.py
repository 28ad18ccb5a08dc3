"""Immich activities (comments and likes) over the Immich listener: an album shared with Bob, and a stranger."""

from __future__ import annotations

import uuid

import pytest

from tests.immich_contract import SPEC_PATH, validate, validate_component
from tests.media import png_bytes
from tests.test_immich_album_sharing import _client, _refused
from tests.test_immich_media import _upload

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


@needs_spec
def test_comments_and_likes_on_a_shared_album(server, account, make_account):
    bob, stranger = make_account(), make_account()
    photo = _upload(server, account, "activity.png", png_bytes(2700))
    with _client(server, account) as alice, _client(server, bob) as b, _client(server, stranger) as s:
        created = alice.post("/api/albums", json={"albumName": "Talk", "assetIds": [photo]})
        assert created.status_code == 201, created.text
        album = created.json()["id"]
        assert created.json()["isActivityEnabled"] is True
        shared = alice.put(f"/api/albums/{album}/users",
                           json={"albumUsers": [{"userId": str(bob.user_id), "role": "viewer"}]})
        assert shared.status_code == 200, shared.text

        # Bob comments on the album and likes the photo; a second like answers 200 with the first.
        said = b.post("/api/activities", json={"albumId": album, "type": "comment", "comment": "Lovely"})
        assert said.status_code == 201, said.text
        validate("/activities", "post", 201, said.json())
        assert (said.json()["type"], said.json()["comment"], said.json()["assetId"]) == ("comment", "Lovely", None)
        assert said.json()["user"]["id"] == str(bob.user_id)
        liked = b.post("/api/activities", json={"albumId": album, "type": "like", "assetId": photo})
        assert liked.status_code == 201, liked.text
        validate("/activities", "post", 201, liked.json())
        assert (liked.json()["type"], liked.json()["comment"], liked.json()["assetId"]) == ("like", None, photo)
        again = b.post("/api/activities", json={"albumId": album, "type": "like", "assetId": photo})
        assert again.status_code == 200, again.text
        validate_component("ActivityResponseDto", again.json())
        assert again.json()["id"] == liked.json()["id"]
        mine = alice.post("/api/activities", json={"albumId": album, "type": "comment", "comment": "Thanks"})
        assert mine.status_code == 201, mine.text

        listed = alice.get("/api/activities", params={"albumId": album})
        assert listed.status_code == 200, listed.text
        validate("/activities", "get", 200, listed.json())
        assert [a["id"] for a in listed.json()] == [said.json()["id"], liked.json()["id"], mine.json()["id"]]
        album_level = b.get("/api/activities", params={"albumId": album, "level": "album", "type": "comment"})
        validate("/activities", "get", 200, album_level.json())
        assert [a["id"] for a in album_level.json()] == [said.json()["id"], mine.json()["id"]]
        on_photo = b.get("/api/activities", params={"albumId": album, "assetId": photo})
        assert [a["id"] for a in on_photo.json()] == [liked.json()["id"]]
        by_bob = b.get("/api/activities", params={"albumId": album, "userId": str(bob.user_id), "type": "like"})
        assert [a["id"] for a in by_bob.json()] == [liked.json()["id"]]

        stats = b.get("/api/activities/statistics", params={"albumId": album})
        assert stats.status_code == 200, stats.text
        validate("/activities/statistics", "get", 200, stats.json())
        assert stats.json() == {"comments": 2, "likes": 1}
        photo_stats = b.get("/api/activities/statistics", params={"albumId": album, "assetId": photo})
        validate("/activities/statistics", "get", 200, photo_stats.json())
        assert photo_stats.json() == {"comments": 0, "likes": 1}

        # Bob cannot remove Alice's comment; Alice, the album's owner, removes Bob's; Bob his own like.
        _refused(b.delete(f"/api/activities/{mine.json()['id']}"), "Not found or no activity.delete access")
        removed = alice.delete(f"/api/activities/{said.json()['id']}")
        assert removed.status_code == 204, removed.text
        assert b.delete(f"/api/activities/{liked.json()['id']}").status_code == 204
        assert alice.get("/api/activities/statistics", params={"albumId": album}).json() == {"comments": 1, "likes": 0}

        # The stranger reaches nothing, and learns nothing of what exists.
        _refused(s.get("/api/activities", params={"albumId": album}), "Not found or no album.read access")
        _refused(s.get("/api/activities/statistics", params={"albumId": album}), "Not found or no album.read access")
        _refused(s.post("/api/activities", json={"albumId": album, "type": "like"}),
                 "Not found or no activity.create access")
        _refused(s.delete(f"/api/activities/{mine.json()['id']}"), "Not found or no activity.delete access")
        _refused(s.delete(f"/api/activities/{uuid.uuid4()}"), "Not found or no activity.delete access")
        _refused(b.post("/api/activities", json={"albumId": album, "type": "like", "assetId": str(uuid.uuid4())}),
                 "Not found or no activity.create access")

        # With activity turned off, the album takes no more; what was said stays readable.
        off = alice.patch(f"/api/albums/{album}", json={"isActivityEnabled": False})
        assert off.status_code == 200, off.text
        validate("/albums/{id}", "patch", 200, off.json())
        assert off.json()["isActivityEnabled"] is False
        _refused(b.post("/api/activities", json={"albumId": album, "type": "like"}),
                 "Not found or no activity.create access")
        assert [a["id"] for a in b.get("/api/activities", params={"albumId": album}).json()] == [mine.json()["id"]]


@needs_spec
def test_activity_input_is_validated_as_immich_does(server, account):
    with _client(server, account) as alice:
        album = alice.post("/api/albums", json={"albumName": "Checks"}).json()["id"]
        for body, field in (
            ({"albumId": album, "type": "comment"}, "comment"),
            ({"albumId": album, "type": "comment", "comment": "  "}, "comment"),
            ({"albumId": album, "type": "like", "comment": "text"}, "comment"),
            ({"albumId": album, "type": "asset_added"}, "type"),
            ({"albumId": "not-a-uuid", "type": "like"}, "albumId"),
            ({"type": "like"}, "albumId"),
        ):
            r = alice.post("/api/activities", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["message"] == "Validation failed", r.text
            assert any(field in e["path"] or field in e["message"] for e in r.json()["errors"]), (body, r.text)
        for params in ({}, {"albumId": "x"}, {"albumId": album, "level": "photo"}, {"albumId": album, "type": "x"}):
            r = alice.get("/api/activities", params=params)
            assert r.status_code == 400, (params, r.text)
        # a like with an empty comment is still a like
        liked = alice.post("/api/activities", json={"albumId": album, "type": "like", "comment": ""})
        assert liked.status_code == 201, liked.text
        assert liked.json()["comment"] is None
        assert alice.delete("/api/activities/not-a-uuid").status_code == 400
