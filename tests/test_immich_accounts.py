"""Immich accounts: an admin adds family members; sessions, passwords, preferences, server stats."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import run
from tests.immich_contract import SPEC_PATH, validate

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _admin(server) -> tuple[str, str]:
    from app.domain import users

    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    run(users.create_user(email, "admin-pw", name="Admin", is_admin=True))
    return email, _login(server, email, "admin-pw")


def _login(server, email: str, password: str, **headers) -> str:
    r = httpx.post(f"{server.immich_url}/api/auth/login", json={"email": email, "password": password},
                   headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["accessToken"]


def _as(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, cookies={"immich_access_token": token}, timeout=30)


@needs_spec
def test_admin_adds_a_family_member(server):
    _, admin_token = _admin(server)
    member_email = f"kid-{uuid.uuid4().hex[:8]}@example.com"
    with _as(server, admin_token) as admin:
        created = admin.post("/api/admin/users", json={"email": member_email, "password": "kid-pw", "name": "Kid",
                                                       "quotaSizeInBytes": 10})
        assert created.status_code == 201, created.text
        validate("/admin/users", "post", 201, created.json())
        member_id = created.json()["id"]
        listed = admin.get("/api/admin/users")
        validate("/admin/users", "get", 200, listed.json())
        assert member_id in {u["id"] for u in listed.json()}
        stats = admin.get("/api/server/statistics")
        validate("/server/statistics", "get", 200, stats.json())
    member_token = _login(server, member_email, "kid-pw")
    with _as(server, member_token) as member:
        assert member.get("/api/admin/users").status_code == 403
        assert member.get("/api/server/statistics").status_code == 403
        # The admin's quota holds.
        from tests.media import png_bytes

        full = member.post("/api/assets", files={"assetData": ("q.png", png_bytes(900), "image/png")},
                           data={"fileCreatedAt": "2024-01-01T00:00:00Z", "fileModifiedAt": "2024-01-01T00:00:00Z"})
        assert full.status_code == 400 and full.json()["message"] == "Quota has been exceeded!"
    with _as(server, admin_token) as admin:
        updated = admin.put(f"/api/admin/users/{member_id}", json={"quotaSizeInBytes": None, "name": "Kiddo"})
        validate("/admin/users/{id}", "put", 200, updated.json())
        assert updated.json()["name"] == "Kiddo" and updated.json()["quotaSizeInBytes"] is None
        removed = admin.delete(f"/api/admin/users/{member_id}")
        assert removed.status_code == 200 and removed.json()["status"] == "deleted"
    assert httpx.get(f"{server.immich_url}/api/users/me", cookies={"immich_access_token": member_token}).status_code == 401


@needs_spec
def test_sessions_password_and_preferences(server, account):
    from app.db import engine as db
    from app.domain import users

    run(db.execute("UPDATE users SET password_hash = $2 WHERE id = $1", account.user_id, users.hash_password("old")))
    phone = _login(server, account.email, "old", deviceType="Android", deviceModel="Pixel 9")
    laptop = _login(server, account.email, "old")
    with _as(server, phone) as app:
        listed = app.get("/api/sessions").json()
        validate("/sessions", "get", 200, listed)
        current = [s for s in listed if s["current"]]
        assert len(listed) == 2 and len(current) == 1 and current[0]["deviceType"] == "Android"
        updated = app.put(f"/api/sessions/{current[0]['id']}", json={"isPendingSyncReset": True})
        validate("/sessions/{id}", "put", 200, updated.json())
        assert updated.json()["isPendingSyncReset"] is True
        assert app.delete("/api/sessions").status_code == 204  # every other session
        assert [s["id"] for s in app.get("/api/sessions").json()] == [current[0]["id"]]
        wrong = app.post("/api/auth/change-password", json={"password": "nope", "newPassword": "new"})
        assert wrong.status_code == 400
        ok = app.post("/api/auth/change-password", json={"password": "old", "newPassword": "new"})
        validate("/auth/change-password", "post", 200, ok.json())
        prefs = app.put("/api/users/me/preferences", json={"ratings": {"enabled": True}, "bogus": {"x": 1}})
        assert prefs.status_code == 200 and prefs.json()["ratings"]["enabled"] is True
        validate("/users/me/preferences", "put", 200, prefs.json())
        assert app.get("/api/users/me/preferences").json()["ratings"]["enabled"] is True
        others = app.get("/api/users").json()
        validate("/users", "get", 200, others)
        validate("/users/{id}", "get", 200, app.get(f"/api/users/{account.user_id}").json())
        for path in ("/server/about", "/server/storage"):
            r = app.get(f"/api{path}")
            assert r.status_code == 200
            validate(path, "get", 200, r.json())
    assert httpx.get(f"{server.immich_url}/api/users/me", cookies={"immich_access_token": laptop}).status_code == 401
    _login(server, account.email, "new")
