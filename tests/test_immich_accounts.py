"""Immich accounts: an admin adds family members; sessions, passwords, preferences, server stats."""

from __future__ import annotations

import json
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
        wrong = app.post("/api/auth/change-password", json={"password": "nope", "newPassword": "new-password"})
        assert wrong.status_code == 400
        ok = app.post("/api/auth/change-password", json={"password": "old", "newPassword": "new-password"})
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
    _login(server, account.email, "new-password")


def _member(server, admin: httpx.Client, **fields) -> tuple[str, str]:
    """(id, session token) of a new account the admin creates."""
    email = f"m-{uuid.uuid4().hex[:8]}@example.com"
    created = admin.post("/api/admin/users", json={"email": email, "password": "pw", "name": "Member", **fields})
    assert created.status_code == 201, created.text
    validate("/admin/users", "post", 201, created.json())
    return created.json()["id"], _login(server, email, "pw")


@needs_spec
def test_my_account_and_onboarding(server):
    _, admin_token = _admin(server)
    with _as(server, admin_token) as admin:
        member_id, token = _member(server, admin, shouldChangePassword=True, avatarColor="green")
        other_email = admin.get(f"/api/admin/users/{admin.get('/api/users/me').json()['id']}").json()["email"]
    login = httpx.post(f"{server.immich_url}/api/auth/login", json={"email": other_email, "password": "admin-pw"})
    validate("/auth/login", "post", 201, login.json())
    with _as(server, token) as me:
        assert me.get("/api/users/me").json()["avatarColor"] == "green"
        renamed = me.put("/api/users/me", json={"name": "Renamed", "avatarColor": "red"})
        assert renamed.status_code == 200, renamed.text
        validate("/users/me", "put", 200, renamed.json())
        assert (renamed.json()["name"], renamed.json()["avatarColor"], renamed.json()["shouldChangePassword"]) == (
            "Renamed", "red", True)
        assert me.get(f"/api/users/{member_id}").json()["avatarColor"] == "red"
        for bad in ({"email": "not-an-email"}, {"email": other_email}, {"avatarColor": "chartreuse"},
                    {"name": 7}):
            refused = me.put("/api/users/me", json=bad)
            assert refused.status_code == 400, (bad, refused.text)
        # The deprecated password change, as Immich does it: no old password, and the forced change is done.
        changed = me.put("/api/users/me", json={"password": "brand new"})
        validate("/users/me", "put", 200, changed.json())
        assert changed.json()["shouldChangePassword"] is False
        assert me.get("/api/users/me/onboarding").json() == {"isOnboarded": False}
        done = me.put("/api/users/me/onboarding", json={"isOnboarded": True})
        assert done.status_code == 200
        validate("/users/me/onboarding", "put", 200, done.json())
        got = me.get("/api/users/me/onboarding")
        validate("/users/me/onboarding", "get", 200, got.json())
        assert got.json() == {"isOnboarded": True}
        assert me.put("/api/users/me/onboarding", json={"isOnboarded": "yes"}).status_code == 400
    email = httpx.get(f"{server.immich_url}/api/users/me", cookies={"immich_access_token": token}).json()["email"]
    assert _login_body(server, email, "brand new")["isOnboarded"] is True
    with _as(server, token) as me:
        assert me.delete("/api/users/me/onboarding").status_code == 204
        assert me.get("/api/users/me/onboarding").json() == {"isOnboarded": False}


def _login_body(server, email: str, password: str) -> dict:
    r = httpx.post(f"{server.immich_url}/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    validate("/auth/login", "post", 201, r.json())
    return r.json()


@needs_spec
def test_profile_image(server):
    from tests.media import png_bytes

    _, admin_token = _admin(server)
    with _as(server, admin_token) as admin:
        member_id, token = _member(server, admin)
    with _as(server, token) as me:
        before = me.get("/api/users/me").json()
        assert before["profileImagePath"] == ""
        assert me.get(f"/api/users/{member_id}/profile-image").status_code == 404
        assert me.delete("/api/users/profile-image").status_code == 400
        not_a_picture = me.post("/api/users/profile-image", files={"file": ("me.png", b"hello", "image/png")})
        assert not_a_picture.status_code == 400, not_a_picture.text
        assert me.post("/api/users/profile-image", files={"other": ("me.png", png_bytes(3), "image/png")}).status_code == 400
        uploaded = me.post("/api/users/profile-image", files={"file": ("me.png", png_bytes(3), "image/png")})
        assert uploaded.status_code == 201, uploaded.text
        validate("/users/profile-image", "post", 201, uploaded.json())
        assert uploaded.json()["userId"] == member_id and uploaded.json()["profileImagePath"]
        shown = me.get("/api/users/me").json()
        assert shown["profileImagePath"] and shown["profileChangedAt"] > before["profileChangedAt"]
        synced = me.post("/api/sync/stream", json={"types": ["AuthUsersV1", "UsersV1"]})
        lines = [json.loads(raw) for raw in synced.text.splitlines() if raw]
        mine = [line["data"] for line in lines if line["type"] in ("AuthUserV1", "UserV1")
                and line["data"]["id"] == member_id]
        assert len(mine) == 2 and all(d["hasProfileImage"] for d in mine)
    with _as(server, admin_token) as admin:
        picture = admin.get(f"/api/users/{member_id}/profile-image")
        assert picture.status_code == 200 and picture.content == png_bytes(3)
        assert picture.headers["content-type"].startswith("image/png")
        assert admin.get(f"/api/users/{uuid.uuid4()}/profile-image").json()["message"] == "User not found"
        nobody = admin.get(f"/api/users/{uuid.uuid4()}")
        assert nobody.status_code == 400 and nobody.json()["message"] == "User not found"
        assert [u for u in admin.get("/api/users").json() if u["id"] == member_id][0]["profileImagePath"]
    with _as(server, token) as me:
        assert me.delete("/api/users/profile-image").status_code == 204
        assert me.get("/api/users/me").json()["profileImagePath"] == ""
        assert me.get(f"/api/users/{member_id}/profile-image").status_code == 404


@needs_spec
def test_admin_user_lifecycle(server):
    admin_email, admin_token = _admin(server)
    with _as(server, admin_token) as admin:
        member_id, token = _member(server, admin, notify=None, storageLabel="kid", quotaSizeInBytes=5000)
        shown = admin.get(f"/api/admin/users/{member_id}").json()
        assert (shown["storageLabel"], shown["quotaSizeInBytes"]) == ("kid", 5000)
        again = admin.post("/api/admin/users", json={"email": shown["email"], "password": "pw", "name": "x"})
        assert again.status_code == 400 and again.json()["message"] == "User exists"
        label = admin.put(f"/api/admin/users/{member_id}", json={"storageLabel": ""})
        validate("/admin/users/{id}", "put", 200, label.json())
        assert label.json()["storageLabel"] is None
        unknown = uuid.uuid4()
        missing = admin.put(f"/api/admin/users/{unknown}", json={"name": "x"})
        assert missing.status_code == 400 and missing.json()["message"] == "User not found"
        assert admin.get(f"/api/admin/users/{unknown}").status_code == 400
        dup = admin.put(f"/api/admin/users/{member_id}", json={"email": admin_email})
        assert dup.status_code == 400 and dup.json()["message"] == "Email already in use by another account"
        # Preferences: read and changed by the admin, Immich's rules enforced and nothing stored on refusal.
        prefs = admin.get(f"/api/admin/users/{member_id}/preferences")
        validate("/admin/users/{id}/preferences", "get", 200, prefs.json())
        changed = admin.put(f"/api/admin/users/{member_id}/preferences", json={"memories": {"duration": 9}})
        validate("/admin/users/{id}/preferences", "put", 200, changed.json())
        for bad in ({"download": {"archiveSize": 0}}, {"memories": {"duration": -1}},
                    {"people": {"minimumFaces": 0}}, {"purchase": {"hideBuyButtonUntil": "someday"}},
                    {"memories": {"enabled": "maybe"}}):
            refused = admin.put(f"/api/admin/users/{member_id}/preferences", json=bad)
            assert refused.status_code == 400 and refused.json()["message"], (bad, refused.text)
        assert admin.get(f"/api/admin/users/{member_id}/preferences").json()["memories"]["duration"] == 9
        assert admin.put(f"/api/admin/users/{unknown}/preferences", json={}).status_code == 400
        sessions = admin.get(f"/api/admin/users/{member_id}/sessions")
        validate("/admin/users/{id}/sessions", "get", 200, sessions.json())
        assert len(sessions.json()) == 1 and sessions.json()[0]["current"] is False
        stats = admin.get(f"/api/admin/users/{member_id}/statistics", params={"isTrashed": "false"})
        validate("/admin/users/{id}/statistics", "get", 200, stats.json())
        assert stats.json() == {"images": 0, "videos": 0, "total": 0}
    with _as(server, token) as member:
        assert member.get("/api/users/me/preferences").json()["memories"]["duration"] == 9
        refused = member.put("/api/users/me/preferences", json={"download": {"archiveSize": -5}})
        assert refused.status_code == 400
        assert member.get(f"/api/admin/users/{member_id}/sessions").status_code == 403
    with _as(server, admin_token) as admin:
        deleted = admin.request("DELETE", f"/api/admin/users/{member_id}", json={"force": False})
        validate("/admin/users/{id}", "delete", 200, deleted.json())
        assert deleted.json()["status"] == "deleted"
        seen = admin.get(f"/api/admin/users/{member_id}")
        validate("/admin/users/{id}", "get", 200, seen.json())
        assert seen.json()["deletedAt"] is not None
        restored = admin.post(f"/api/admin/users/{member_id}/restore")
        assert restored.status_code == 200, restored.text
        validate("/admin/users/{id}/restore", "post", 200, restored.json())
        assert restored.json()["status"] == "active" and restored.json()["deletedAt"] is None
        assert admin.post(f"/api/admin/users/{unknown}/restore").status_code == 400
        me = admin.get("/api/users/me").json()["id"]
        assert admin.delete(f"/api/admin/users/{me}").status_code == 403
    _login(server, shown["email"], "pw")  # the restored account signs in again
