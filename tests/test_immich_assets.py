"""Immich asset reads and changes, a scripted mobile-app session, and cross-user isolation."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from tests.immich_contract import SPEC_PATH, validate
from tests.media import png_bytes
from tests.test_immich_media import _upload
from tests.test_immich_upload import FIELDS

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _key(server, account) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=30)


@needs_spec
def test_get_and_update_an_asset(server, account):
    data = png_bytes(1234, 60, 40)
    asset_id = _upload(server, account, "edit.png", data)
    with _key(server, account) as http:
        got = http.get(f"/api/assets/{asset_id}")
        assert got.status_code == 200
        body = got.json()
        validate("/assets/{id}", "get", 200, body)
        assert body["checksum"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
        assert body["type"] == "IMAGE" and body["localDateTime"].endswith("Z") and body["exifInfo"] is not None
        assert (body["width"], body["height"]) == (60, 40) and body["thumbhash"]
        changed = http.put(f"/api/assets/{asset_id}", json={"isFavorite": True, "description": "sunset",
                                                            "visibility": "archive",
                                                            "dateTimeOriginal": "2020-05-06T07:08:09.000Z"})
        assert changed.status_code == 200, changed.text
        validate("/assets/{id}", "put", 200, changed.json())
        c = changed.json()
        assert (c["isFavorite"], c["isArchived"], c["exifInfo"]["description"]) == (True, True, "sunset")
        assert c["localDateTime"].startswith("2020-05-06T07:08:09")
        assert http.put("/api/assets", json={"ids": [asset_id], "isFavorite": False}).status_code == 204
        assert http.get(f"/api/assets/{asset_id}").json()["isFavorite"] is False
        # The same edit is visible through the native API.
    native = account.client.assets.list(state="all").data[0]
    assert native.metadata.description == "sunset"


def test_trash_restore_and_delete(server, account):
    ids_ = [_upload(server, account, f"t{i}.png", png_bytes(1300 + i)) for i in range(3)]
    with _key(server, account) as http:
        assert http.request("DELETE", "/api/assets", json={"ids": ids_}).status_code == 204
        assert all(http.get(f"/api/assets/{a}").json()["isTrashed"] for a in ids_)
        restored = http.post("/api/trash/restore/assets", json={"ids": [ids_[0]]}).json()
        assert restored == {"count": 1}
        assert http.post("/api/trash/restore").json() == {"count": 2}
        assert http.request("DELETE", "/api/assets", json={"ids": ids_[:2]}).status_code == 204
        assert http.post("/api/trash/empty").json() == {"count": 2}
        assert http.get(f"/api/assets/{ids_[0]}").status_code == 400  # Immich: "Not found or no asset.read access"
        assert http.request("DELETE", "/api/assets", json={"ids": [ids_[2]], "force": True}).status_code == 204
        assert http.get(f"/api/assets/{ids_[2]}").status_code == 400


def test_another_user_cannot_touch_anything(server, account, make_account):
    asset_id = _upload(server, account, "private.png", png_bytes(1400))
    other = make_account()
    with _key(server, other) as http:
        # Immich's requireAccess: missing and someone else's answer alike, naming the permission.
        read = http.get(f"/api/assets/{asset_id}")
        assert read.status_code == 400 and read.json()["message"] == "Not found or no asset.read access"
        update = http.put(f"/api/assets/{asset_id}", json={"isFavorite": True})
        assert update.status_code == 400 and update.json()["message"] == "Not found or no asset.update access"
        refused = http.request("DELETE", "/api/assets", json={"ids": [asset_id], "force": True})
        # The refusal names no id: it must not echo what the caller asked about (test_immich_isolation).
        assert refused.status_code == 400 and refused.json()["message"] == "Not found or no asset.delete access"
        assert http.post("/api/trash/restore/assets", json={"ids": [asset_id]}).status_code == 400
        assert http.get("/api/assets/statistics").json()["total"] == 0
        assert http.get("/api/albums").json() == []
    with _key(server, account) as http:
        mine = http.get(f"/api/assets/{asset_id}").json()
        assert mine["isFavorite"] is False and mine["isTrashed"] is False


@needs_spec
def test_scripted_mobile_session(server, account):
    """The 3.x app's calls in order (immich-compat.md section 1), minus the sync stream."""
    from app.db import engine as db
    from app.domain import users
    from tests.conftest import run

    run(db.execute("UPDATE users SET password_hash = $2 WHERE id = $1", account.user_id, users.hash_password("m-pw")))
    base = server.immich_url
    ua = {"User-Agent": "immich-android/3.1.0", "deviceModel": "Pixel 9", "deviceType": "Android"}
    assert httpx.get(f"{base}/.well-known/immich").json() == {"api": {"endpoint": "/api"}}
    for path in ("/server/ping", "/server/version", "/server/features", "/server/config"):
        r = httpx.get(f"{base}/api{path}", headers=ua)
        validate(path, "get", 200, r.json())
    login = httpx.post(f"{base}/api/auth/login", json={"email": account.email, "password": "m-pw"}, headers=ua)
    validate("/auth/login", "post", 201, login.json())
    with httpx.Client(base_url=base, headers=ua, timeout=60) as app:
        app.cookies.update(login.cookies)  # the app's cookie jar, nothing else
        validate("/users/me", "get", 200, app.get("/api/users/me").json())
        validate("/users/me/preferences", "get", 200, app.get("/api/users/me/preferences").json())
        validate("/auth/validateToken", "post", 200, app.post("/api/auth/validateToken").json())
        data = png_bytes(1500, 80, 60)
        up = app.post("/api/assets", files={"assetData": ("IMG_0001.png", data, "image/png")}, data=FIELDS)
        assert up.status_code == 201
        validate("/assets", "post", 201, up.json())
        asset_id = up.json()["id"]
        import time

        for _ in range(200):
            thumb = app.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "thumbnail", "edited": "true"})
            if thumb.status_code == 200:
                break
            time.sleep(0.1)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
        assert app.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "preview"}).status_code == 200
        assert app.get(f"/api/assets/{asset_id}/original", params={"edited": "true"}).content == data
        out = app.post("/api/auth/logout")
        validate("/auth/logout", "post", 200, out.json())
        assert app.post("/api/auth/validateToken").status_code == 401
