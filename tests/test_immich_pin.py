"""Immich's PIN code and locked folder over HTTP: set a PIN, lock a photo away, and it leaves the
timeline, search, asset reads and the sync stream until the session is unlocked; API keys never
reach it. Child sessions (a TV cast) and locking a session by id."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import run
from tests.immich_contract import SPEC_PATH, validate
from tests.media import png_bytes

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _sign_in(server, account) -> httpx.Client:
    from app.db import engine as db
    from app.domain import users

    run(db.execute("UPDATE users SET password_hash = $2 WHERE id = $1", account.user_id, users.hash_password("pw")))
    r = httpx.post(f"{server.immich_url}/api/auth/login", json={"email": account.email, "password": "pw"})
    assert r.status_code == 201, r.text
    return httpx.Client(base_url=server.immich_url, cookies={"immich_access_token": r.json()["accessToken"]},
                        timeout=60)


def _upload(app: httpx.Client, seed: int) -> str:
    r = app.post("/api/assets", files={"assetData": (f"p{seed}.png", png_bytes(seed), "image/png")},
                 data={"fileCreatedAt": "2024-03-01T10:00:00Z", "fileModifiedAt": "2024-03-01T10:00:00Z"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _timeline_ids(app: httpx.Client, **params) -> set[str]:
    buckets = app.get("/api/timeline/buckets", params=params)
    assert buckets.status_code == 200, buckets.text
    validate("/timeline/buckets", "get", 200, buckets.json())
    found = set()
    for bucket in buckets.json():
        r = app.get("/api/timeline/bucket", params={**params, "timeBucket": bucket["timeBucket"]})
        validate("/timeline/bucket", "get", 200, r.json())
        found |= set(r.json()["id"])
    return found


def _search_ids(app: httpx.Client) -> set[str]:
    r = app.post("/api/search/metadata", json={})
    validate("/search/metadata", "post", 200, r.json())
    return {a["id"] for a in r.json()["assets"]["items"]}


def _synced_ids(app: httpx.Client) -> set[str]:
    app.delete("/api/sync/ack")  # a fresh copy each time
    r = app.post("/api/sync/stream", json={"types": ["AssetsV2"]})
    assert r.status_code == 200, r.text
    lines = [json.loads(raw) for raw in r.text.splitlines() if raw]
    return {line["data"]["id"] for line in lines if line["type"] == "AssetV2"}


def _status(app: httpx.Client) -> dict:
    r = app.get("/api/auth/status")
    assert r.status_code == 200, r.text
    validate("/auth/status", "get", 200, r.json())
    return r.json()


@needs_spec
def test_a_locked_photo_is_seen_only_from_an_unlocked_session(server, account):
    with _sign_in(server, account) as app, account.http() as native:
        open_photo, secret_photo = _upload(app, 301), _upload(app, 302)
        assert _status(app) == {"pinCode": False, "password": True, "isElevated": False}
        # No PIN yet: nothing unlocks, and nothing moves into the locked folder.
        assert app.post("/api/auth/session/unlock", json={"pinCode": "123456"}).json()["message"] == \
            "User does not have a PIN code"
        refused = app.put(f"/api/assets/{secret_photo}", json={"visibility": "locked"})
        assert refused.status_code == 401 and refused.json()["message"] == "Elevated permission is required"

        bad = app.post("/api/auth/pin-code", json={"pinCode": "12a456"})
        assert bad.status_code == 400 and bad.json()["message"] == "Validation failed"
        assert app.post("/api/auth/pin-code", json={"pinCode": "123456"}).status_code == 204
        assert app.post("/api/auth/pin-code", json={"pinCode": "123456"}).json()["message"] == \
            "User already has a PIN code"
        wrong = app.post("/api/auth/session/unlock", json={"pinCode": "000000"})
        assert wrong.status_code == 400 and wrong.json()["message"] == "Wrong PIN code"
        assert app.post("/api/auth/session/unlock", json={"pinCode": "123456"}).status_code == 204
        status = _status(app)
        assert status["isElevated"] is True and status["pinCode"] is True and "pinExpiresAt" in status

        moved = app.put(f"/api/assets/{secret_photo}", json={"visibility": "locked"})
        assert moved.status_code == 200, moved.text
        validate("/assets/{id}", "put", 200, moved.json())
        # Unlocked: the locked folder opens, the timeline still shows only timeline photos.
        assert _timeline_ids(app, visibility="locked") == {secret_photo}
        assert _timeline_ids(app) == {open_photo}
        assert app.get(f"/api/assets/{secret_photo}").status_code == 200
        assert {open_photo, secret_photo} <= _synced_ids(app)

        assert app.post("/api/auth/session/lock").status_code == 204
        assert _status(app)["isElevated"] is False
        for ids in (_timeline_ids(app), _search_ids(app), _synced_ids(app)):
            assert secret_photo not in ids and open_photo in ids
        gone = app.get(f"/api/assets/{secret_photo}")
        assert gone.status_code == 400 and gone.json()["message"] == "Not found or no asset.read access"
        assert app.get(f"/api/assets/{secret_photo}/thumbnail").status_code == 400
        asked = app.get("/api/timeline/buckets", params={"visibility": "locked"})
        assert asked.status_code == 401 and asked.json()["message"] == "Elevated permission is required"
        stats = app.get("/api/assets/statistics")
        validate("/assets/statistics", "get", 200, stats.json())
        assert stats.json()["total"] == 1

        # The same account's API key never reaches it, on either API.
        keyed = httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60)
        with keyed:
            assert keyed.get(f"/api/assets/{secret_photo}").status_code == 400
            assert _search_ids(keyed) == {open_photo}
            assert keyed.post("/api/auth/session/unlock", json={"pinCode": "123456"}).json()["message"] == \
                "This endpoint can only be used with a session token"
        native_ids = {a["id"] for a in native.get("/api/assets").json()["data"]}
        assert len(native_ids) == 1
        native_secret = native.get(f"/api/assets/{secret_photo}")
        assert native_secret.status_code in (400, 404)

        # Unlocked again: back.
        assert app.post("/api/auth/session/unlock", json={"pinCode": "123456"}).status_code == 204
        assert secret_photo in _synced_ids(app)
        assert app.get(f"/api/assets/{secret_photo}").status_code == 200


@needs_spec
def test_change_and_reset_the_pin(server, account):
    with _sign_in(server, account) as app:
        assert app.post("/api/auth/pin-code", json={"pinCode": "111111"}).status_code == 204
        wrong = app.put("/api/auth/pin-code", json={"pinCode": "999999", "newPinCode": "222222"})
        assert wrong.status_code == 400 and wrong.json()["message"] == "Wrong PIN code"
        assert app.put("/api/auth/pin-code", json={"pinCode": "111111", "newPinCode": "222222"}).status_code == 204
        assert app.post("/api/auth/session/unlock", json={"pinCode": "222222"}).status_code == 204
        neither = app.request("DELETE", "/api/auth/pin-code", json={})
        assert neither.status_code == 400 and neither.json()["message"] == "Either password or pinCode is required"
        assert app.request("DELETE", "/api/auth/pin-code", json={"password": "pw"}).status_code == 204
        assert _status(app) == {"pinCode": False, "password": True, "isElevated": False}


@needs_spec
def test_child_sessions_and_locking_a_session(server, account, make_account):
    with _sign_in(server, account) as app:
        created = app.post("/api/sessions", json={"duration": 3600, "deviceType": "TV", "deviceOS": "Cast"})
        assert created.status_code == 201, created.text
        validate("/sessions", "post", 201, created.json())
        child = created.json()
        assert child["deviceType"] == "TV" and "expiresAt" in child and child["current"] is False
        listed = app.get("/api/sessions").json()
        validate("/sessions", "get", 200, listed)
        assert child["id"] in {s["id"] for s in listed}
        with httpx.Client(base_url=server.immich_url, cookies={"immich_access_token": child["token"]}) as tv:
            assert tv.get("/api/users/me").status_code == 200
        bad = app.post("/api/sessions", json={"duration": 0})
        assert bad.status_code == 400 and bad.json()["message"] == "Validation failed"

        # Locking a session by id ends its unlock.
        assert app.post("/api/auth/pin-code", json={"pinCode": "123456"}).status_code == 204
        assert app.post("/api/auth/session/unlock", json={"pinCode": "123456"}).status_code == 204
        current = next(s["id"] for s in app.get("/api/sessions").json() if s["current"])
        assert app.post(f"/api/sessions/{current}/lock").status_code == 204
        assert _status(app)["isElevated"] is False

        # Another user's session, or none at all: Immich's 400.
        unknown = str(uuid.uuid4())
        for method, path, body, permission in (
                ("POST", f"/api/sessions/{unknown}/lock", None, "session.lock"),
                ("DELETE", f"/api/sessions/{unknown}", None, "authDevice.delete"),
                ("PUT", f"/api/sessions/{unknown}", {"isPendingSyncReset": True}, "session.update")):
            r = app.request(method, path, json=body)
            assert r.status_code == 400 and r.json()["message"] == f"Not found or no {permission} access", r.text
        empty = app.put(f"/api/sessions/{current}", json={})
        assert empty.status_code == 400 and empty.json()["message"] == "No fields to update"

        # Deleting the parent ends the child.
        assert app.delete("/api/sessions").status_code == 204
        assert child["id"] not in {s["id"] for s in app.get("/api/sessions").json()}

    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as keyed:
        r = keyed.post("/api/sessions", json={})
        assert r.status_code == 400 and r.json()["message"] == "This endpoint can only be used with a session token"
