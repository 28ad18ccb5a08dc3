"""Every route of both listeners declares the action it needs, and one guard enforces it.

The enumeration fails when a new route lacks a declaration, and proves over real HTTP that a
read-only key can do no write (an administrator's read-only key no administrative write either).
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from app.api.route_access import Declaration
from app.domain import access
from tests.conftest import run

ZERO_UUID = "00000000-0000-4000-8000-000000000000"

# POST routes that only read: a search with a body, an existence check, token checks, the sync
# stream (its acknowledgements are separate routes), and signing one's own session out.
READING_POSTS = {
    ("native", "/api/assets/exist"), ("native", "/api/search"),
    ("native", "/api/libraries/invitations/{invitation_id:str}/preview"),  # the secret travels in a body
    ("immich", "/api/search/metadata"), ("immich", "/api/search/smart"), ("immich", "/api/auth/validateToken"),
    ("immich", "/api/auth/logout"), ("immich", "/api/sync/stream"),
    ("immich", "/api/shared-links/login"),  # a shared link's password travels in a body
    ("immich", "/api/admin/notifications/templates/{name:str}"),  # a preview rendered from the body
    ("immich", "/api/search/random"), ("immich", "/api/search/large-assets"), ("immich", "/api/search/statistics"),
    ("immich", "/api/download/info"), ("immich", "/api/download/archive"),  # the selection travels in a body
    ("immich", "/api/libraries/{library_id:str}/validate"),  # checks folders, changes nothing
}


def _handlers():
    from app.api.app import create_native_app
    from app.api.state import Shared
    from app.settings import load_settings
    from compat.app import create_immich_app

    shared = Shared.build(load_settings())
    for listener, app in (("native", create_native_app(shared)), ("immich", create_immich_app(shared))):
        for route in app.routes:
            for handler in getattr(route, "route_handlers", None) or [route.route_handler]:
                methods = sorted(getattr(handler, "http_methods", None) or ["*"])
                for method in methods:
                    if method in ("HEAD", "OPTIONS"):
                        continue
                    yield listener, method, route.path, Declaration(handler)


def test_every_route_declares_a_valid_access_rule():
    missing = [(listener, method, path) for listener, method, path, d in _handlers() if not d.valid]
    assert missing == []


def test_reads_are_gets_and_a_short_list_of_reading_posts():
    for listener, method, path, declared in _handlers():
        if declared.public:
            continue
        if method == "GET":
            assert declared.action == access.READ, (listener, path)
        elif declared.action == access.READ:
            assert (listener, path) in READING_POSTS, f"{method} {path} on {listener} declares only READ"


def test_public_routes_are_the_known_few():
    public = {(listener, path) for listener, _, path, d in _handlers() if d.public}
    assert public == {
        ("native", "/api/server/ping"), ("native", "/media/assets/{asset_id:str}/{variant:str}"),
        ("native", "/media/faces/{face_id:str}/thumbnail"),
        ("native", "/media/assets/{asset_id:str}/versions/{version_id:str}/original"),  # signed URLs
        # The OpenAPI document and its page (Litestar's docs router adds a not-found page and a copy).
        ("native", "/api/openapi.json"), ("native", "/api/docs"), ("native", "/api/docs/openapi.json"),
        ("native", "/api/docs/{path:str}"),
        ("immich", "/.well-known/immich"), ("immich", "/api/socket.io"), ("immich", "/api/auth/login"),
        ("immich", "/api/auth/admin-sign-up"), ("immich", "/api/server/ping"), ("immich", "/api/server/version"),
        ("immich", "/api/server/version-history"), ("immich", "/api/server/features"),
        ("immich", "/api/server/config"), ("immich", "/api/server/media-types"),
        # The web app's files and pages (never /api/...), and the theme's CSS it links.
        ("immich", "/"), ("immich", "/{web_path:path}"), ("immich", "/custom.css"),
    }


def test_routes_that_accept_a_shared_link_are_the_known_few():
    # Immich's `sharedLink: true` routes that exist here; every other route ignores a key or slug.
    # (Immich also lets a link add and remove its own assets; here only the owner changes a link.)
    accepting = {(method, path) for listener, method, path, d in _handlers() if d.shared_link}
    assert accepting == {
        ("GET", "/api/assets/{asset_id:str}"), ("GET", "/api/assets/{asset_id:str}/thumbnail"),
        ("GET", "/api/assets/{asset_id:str}/original"), ("GET", "/api/assets/{asset_id:str}/video/playback"),
        ("POST", "/api/assets"), ("GET", "/api/albums/{album_id:str}"), ("PUT", "/api/albums/{album_id:str}/assets"),
        ("GET", "/api/timeline/buckets"), ("GET", "/api/timeline/bucket"),
        ("GET", "/api/shared-links/me"), ("POST", "/api/shared-links/login"),
        ("GET", "/api/albums/{album_id:str}/map-markers"), ("POST", "/api/download/info"),
        ("POST", "/api/download/archive"),
    }


@pytest.fixture
def admin_keys(server):
    """An administrator with a read-only key, a full key, a session and a known password hash."""
    from app.db import engine as db
    from app.domain import sessions, users

    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"

    async def create():
        user = await users.create_user(email, "admin-password", is_admin=True)
        _, read_only = await users.create_api_key(user["id"], "ro", actions=frozenset({access.READ}))
        _, full = await users.create_api_key(user["id"], "full")
        await sessions.login(email, "admin-password")
        return user["id"], read_only, full

    user_id, read_only, full = run(create())

    async def state():
        return (await db.fetchval("SELECT count(*) FROM users"),
                await db.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", user_id),
                await db.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id))

    return {"user_id": user_id, "read_only": read_only, "full": full, "state": lambda: run(state())}


def _request(server, listener: str, method: str, path: str, key: str) -> httpx.Response:
    if listener == "native":
        url, headers = server.base_url, {"Authorization": f"Bearer {key}"}
        concrete = re.sub(r"\{[^}]+\}", "asset_" + "2" * 22, path)
    else:
        url, headers = server.immich_url, {"x-api-key": key}
        concrete = re.sub(r"\{[^}]+\}", ZERO_UUID, path)
    # A body that would be valid enough to act on, were the guard not there.
    body = {"ids": [ZERO_UUID], "name": "x", "email": "new-admin@example.com", "password": "pw-123456",
            "newPassword": "taken-over", "isAdmin": True}
    return httpx.request(method, url + concrete, headers=headers, json=None if method == "GET" else body,
                         timeout=30)


def test_read_only_key_of_an_admin_can_do_no_write_on_either_listener(server, admin_keys):
    before = admin_keys["state"]()
    checked = 0
    for listener, method, path, declared in _handlers():
        if declared.public or declared.action == access.READ:
            continue
        r = _request(server, listener, method, path, admin_keys["read_only"])
        assert r.status_code == 403, (listener, method, path, r.status_code, r.text)
        checked += 1
    assert checked >= 60
    # Nothing was created, no session deleted, no password changed.
    assert admin_keys["state"]() == before


def test_admin_routes_refuse_a_full_key_of_a_non_admin(server, make_account):
    account = make_account()
    checked = 0
    for listener, method, path, declared in _handlers():
        if not declared.admin:
            continue
        r = _request(server, listener, method, path, account.api_key)
        assert r.status_code == 403, (listener, method, path, r.status_code, r.text)
        checked += 1
    assert checked >= 6


def test_findings_admin_user_takeover_and_session_wipe_are_refused(server, admin_keys):
    """Issue #11 findings 1 and 2, as the tester sent them."""
    base, ro = server.immich_url, {"x-api-key": admin_keys["read_only"]}
    user_id = str(admin_keys["user_id"])
    before = admin_keys["state"]()
    attempts = [
        ("POST", "/api/admin/users", {"email": "evil@example.com", "password": "pw", "name": "evil", "isAdmin": True}),
        ("PUT", f"/api/admin/users/{user_id}", {"password": "taken-over"}),
        ("DELETE", f"/api/admin/users/{user_id}", {}),
        ("DELETE", "/api/sessions", None),
        ("POST", "/api/auth/change-password", {"password": "admin-password", "newPassword": "taken-over"}),
    ]
    for method, path, body in attempts:
        r = httpx.request(method, base + path, headers=ro, json=body, timeout=30)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert "does not allow" in r.json()["message"]
    assert admin_keys["state"]() == before
    # The read-only key still reads, and the full key still administers.
    assert httpx.get(f"{base}/api/admin/users", headers=ro).status_code == 200
    full = {"x-api-key": admin_keys["full"]}
    made = httpx.post(f"{base}/api/admin/users", headers=full, timeout=30,
                      json={"email": f"ok-{uuid.uuid4().hex[:6]}@example.com", "password": "pw-1", "name": "ok"})
    assert made.status_code == 201, made.text


def test_api_keys_are_managed_from_a_session_only(server, account):
    """The README's rule: an API key cannot list, create, rename or revoke keys, on either listener."""
    native = httpx.post(f"{server.base_url}/api/api-keys", headers={"Authorization": f"Bearer {account.api_key}"},
                        json={"name": "second", "actions": ["read"], "library_scope_mode": "all_libraries"})
    assert native.status_code == 403, native.text
    immich = httpx.post(f"{server.immich_url}/api/api-keys", headers={"x-api-key": account.api_key},
                        json={"name": "second", "permissions": ["all"]})
    assert immich.status_code == 403, immich.text
    assert httpx.get(f"{server.immich_url}/api/api-keys/me", headers={"x-api-key": account.api_key}).status_code == 200
