"""Immich partners over HTTP: one user shares their photos with another, read-only.

Two signed-in users (sessions, as the web and mobile clients are) and a stranger; every 2xx body
is checked against the Immich spec.
"""

from __future__ import annotations

import uuid

import gumnut
import httpx
import pytest
import shortuuid

from tests.helpers import session_token, wait_processed
from tests.immich_contract import SPEC_PATH, validate
from tests.media import png_bytes
from tests.test_immich_upload import FIELDS

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")
MONTH = "2024-03-01"  # FIELDS' fileCreatedAt
IN_TIMELINE = {"withPartners": "true", "visibility": "timeline"}


def _session(server, account) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, timeout=60,
                        headers={"Authorization": f"Bearer {session_token(account)}"})


def _upload(http: httpx.Client, account, seed: int) -> str:
    r = http.post("/api/assets", files={"assetData": (f"p{seed}.png", png_bytes(seed), "image/png")}, data=FIELDS)
    assert r.status_code == 201, r.text
    asset_id = r.json()["id"]
    wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(asset_id)))  # its thumbnail exists
    return asset_id


def _native(asset_id: str) -> str:
    return "asset_" + shortuuid.encode(uuid.UUID(asset_id))


@needs_spec
def test_partner_shares_read_only_until_removed(server, account, make_account):
    receiver_account, stranger_account = make_account(), make_account()
    sharer_id, receiver_id = str(account.user_id), str(receiver_account.user_id)
    with (_session(server, account) as sharer, _session(server, receiver_account) as receiver,
          _session(server, stranger_account) as stranger):
        shared = _upload(sharer, account, 9101)
        hidden = _upload(stranger, stranger_account, 9102)

        created = sharer.post("/api/partners", json={"sharedWithId": receiver_id})
        assert created.status_code == 201, created.text
        validate("/partners", "post", 201, created.json())
        assert (created.json()["id"], created.json()["inTimeline"]) == (receiver_id, False)

        listed = receiver.get("/api/partners", params={"direction": "shared-with"})
        validate("/partners", "get", 200, listed.json())
        assert [p["id"] for p in listed.json()] == [sharer_id]
        assert receiver.get("/api/partners", params={"direction": "shared-by"}).json() == []
        assert [p["id"] for p in sharer.get("/api/partners", params={"direction": "shared-by"}).json()] == [receiver_id]

        # Not in the receiver's timeline until the receiver says so.
        assert receiver.get("/api/timeline/buckets", params=IN_TIMELINE).json() == []
        assert sharer.put(f"/api/partners/{receiver_id}", json={"inTimeline": True}).status_code == 400
        updated = receiver.put(f"/api/partners/{sharer_id}", json={"inTimeline": True})
        assert updated.status_code == 200, updated.text
        validate("/partners/{id}", "put", 200, updated.json())
        assert (updated.json()["id"], updated.json()["inTimeline"]) == (sharer_id, True)

        buckets = receiver.get("/api/timeline/buckets", params=IN_TIMELINE)
        validate("/timeline/buckets", "get", 200, buckets.json())
        assert buckets.json() == [{"timeBucket": MONTH, "count": 1}]
        bucket = receiver.get("/api/timeline/bucket", params={**IN_TIMELINE, "timeBucket": MONTH})
        validate("/timeline/bucket", "get", 200, bucket.json())
        assert (bucket.json()["id"], bucket.json()["ownerId"]) == ([shared], [sharer_id])
        assert receiver.get("/api/timeline/buckets", params={"visibility": "timeline"}).json() == []
        for refused in ({"withPartners": "true"}, {**IN_TIMELINE, "isFavorite": "false"},
                        {**IN_TIMELINE, "isTrashed": "true"}, {"withPartners": "true", "visibility": "archive"}):
            r = receiver.get("/api/timeline/buckets", params=refused)
            assert r.status_code == 400 and "withPartners" in r.json()["message"], (refused, r.text)

        # Read, never change.
        got = receiver.get(f"/api/assets/{shared}")
        assert got.status_code == 200, got.text
        validate("/assets/{id}", "get", 200, got.json())
        assert got.json()["ownerId"] == sharer_id
        assert receiver.get(f"/api/assets/{shared}/thumbnail").status_code == 200
        assert receiver.get(f"/api/assets/{shared}/original").content == png_bytes(9101)
        assert receiver.put(f"/api/assets/{shared}", json={"isFavorite": True}).status_code in (400, 403)
        receiver.request("DELETE", "/api/assets", json={"ids": [shared], "force": True})
        receiver.put("/api/assets", json={"ids": [shared], "isFavorite": True})
        after = sharer.get(f"/api/assets/{shared}").json()
        assert (after["isFavorite"], after["isTrashed"]) == (False, False)
        native = receiver_account.client
        assert native.assets.retrieve(_native(shared)).id == _native(shared)
        with pytest.raises(gumnut.PermissionDeniedError):
            native.assets.update_asset(_native(shared), rating=5)

        # A stranger's photos stay out of reach; the partnership is one-way.
        assert receiver.get(f"/api/assets/{hidden}").status_code in (400, 404)
        assert stranger.get(f"/api/assets/{shared}").status_code in (400, 404)
        mine = _upload(receiver, receiver_account, 9103)
        assert sharer.get(f"/api/assets/{mine}").status_code in (400, 404)

        # Only the sharer ends it, and the receiver's next request has lost the access.
        r = receiver.delete(f"/api/partners/{sharer_id}")
        assert (r.status_code, r.json()["message"]) == (400, "Partner not found")
        assert sharer.delete(f"/api/partners/{receiver_id}").status_code == 204
        assert receiver.get(f"/api/assets/{shared}").status_code in (400, 404)
        assert receiver.get(f"/api/assets/{shared}/thumbnail").status_code in (400, 404)
        assert receiver.get("/api/timeline/buckets", params=IN_TIMELINE).json() == [{"timeBucket": MONTH, "count": 1}]
        assert receiver.get("/api/partners", params={"direction": "shared-with"}).json() == []
        with pytest.raises(gumnut.NotFoundError):
            native.assets.retrieve(_native(shared))


@needs_spec
def test_create_refusals_and_the_older_spelling(server, account, make_account):
    other = make_account()
    with _session(server, account) as http:
        me, them = str(account.user_id), str(other.user_id)
        assert http.post("/api/partners", json={"sharedWithId": me}).status_code == 400
        missing = http.post("/api/partners", json={"sharedWithId": str(uuid.uuid4())})
        assert (missing.status_code, missing.json()["message"]) == (400, "Invalid user")
        created = http.post(f"/api/partners/{them}")
        assert created.status_code == 201, created.text
        validate("/partners/{id}", "post", 201, created.json())
        again = http.post("/api/partners", json={"sharedWithId": them})
        assert (again.status_code, again.json()["message"]) == (400, "Partner already exists")
        assert http.get("/api/partners", params={"direction": "sideways"}).status_code == 400
        assert http.delete(f"/api/partners/{uuid.uuid4()}").status_code == 400


@needs_spec
def test_a_partners_own_timeline_by_user_id(server, account, make_account):
    """Immich's partner page reads the sharer's timeline with userId: the receiver may, nobody else."""
    receiver_account, stranger_account = make_account(), make_account()
    sharer_id = str(account.user_id)
    with (_session(server, account) as sharer, _session(server, receiver_account) as receiver,
          _session(server, stranger_account) as stranger):
        photo = _upload(sharer, account, 9111)
        assert sharer.post("/api/partners", json={"sharedWithId": str(receiver_account.user_id)}).status_code == 201
        params = {"userId": sharer_id, "visibility": "timeline"}
        buckets = receiver.get("/api/timeline/buckets", params=params)
        assert buckets.status_code == 200, buckets.text
        validate("/timeline/buckets", "get", 200, buckets.json())
        assert buckets.json() == [{"timeBucket": MONTH, "count": 1}]  # in_timeline is not needed here
        bucket = receiver.get("/api/timeline/bucket", params={**params, "timeBucket": MONTH})
        validate("/timeline/bucket", "get", 200, bucket.json())
        assert bucket.json()["id"] == [photo]
        assert sharer.get("/api/timeline/buckets", params=params).json() == [{"timeBucket": MONTH, "count": 1}]
        for refused in (stranger.get("/api/timeline/buckets", params=params),
                        sharer.get("/api/timeline/buckets",
                                   params={"userId": str(receiver_account.user_id), "visibility": "timeline"}),
                        stranger.get("/api/timeline/buckets", params={"userId": str(uuid.uuid4())})):
            assert refused.status_code == 400, refused.text
            assert refused.json()["message"] == "Not found or no timeline.read access"
