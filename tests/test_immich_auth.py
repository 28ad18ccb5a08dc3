"""Immich sign-in: admin sign-up, password login with cookies, every token source, logout."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.immich_contract import SPEC_PATH, validate

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


@pytest.fixture(scope="module")
def fresh_server(workdir):
    srv = ServerProcess(workdir / "immich-fresh").start()
    yield srv
    srv.stop()


@needs_spec
def test_first_start_admin_sign_up_then_login(fresh_server):
    base = fresh_server.immich_url
    assert httpx.get(f"{base}/api/server/config").json()["isInitialized"] is False
    r = httpx.post(f"{base}/api/auth/admin-sign-up",
                   json={"email": "admin@example.com", "password": "pw-admin", "name": "Admin"})
    assert r.status_code == 201, r.text
    validate("/auth/admin-sign-up", "post", 201, r.json())
    assert r.json()["isAdmin"] is True and r.json()["storageLabel"] == "admin"
    assert httpx.get(f"{base}/api/server/config").json()["isInitialized"] is True
    again = httpx.post(f"{base}/api/auth/admin-sign-up", json={"email": "b@example.com", "password": "x", "name": "B"})
    assert again.status_code == 400 and again.json()["message"] == "Admin setup is not available"


@needs_spec
def test_login_sets_the_cookies_the_mobile_app_needs(server, account):
    from app.db import engine as db
    from app.domain import users
    from tests.conftest import run

    run(db.execute("UPDATE users SET password_hash = $2 WHERE id = $1", account.user_id, users.hash_password("pw-1")))
    base = server.immich_url
    bad = httpx.post(f"{base}/api/auth/login", json={"email": account.email, "password": "wrong"})
    assert bad.status_code == 401 and bad.json() == {"message": "Incorrect email or password"}
    unknown = httpx.post(f"{base}/api/auth/login", json={"email": "nobody@example.com", "password": "wrong"})
    assert unknown.status_code == 401 and unknown.json() == bad.json()

    r = httpx.post(f"{base}/api/auth/login", json={"email": account.email.upper(), "password": "pw-1"},
                   headers={"deviceType": "Android", "deviceModel": "Pixel"})
    assert r.status_code == 201
    validate("/auth/login", "post", 201, r.json())
    token = r.json()["accessToken"]
    set_cookies = r.headers.get_list("set-cookie")
    access_cookie = next(c for c in set_cookies if c.startswith("immich_access_token="))
    assert token in access_cookie and "HttpOnly" in access_cookie and "Path=/" in access_cookie
    assert "SameSite=lax" in access_cookie.replace("Lax", "lax") and "Secure" not in access_cookie
    assert any(c.startswith("immich_is_authenticated=true") for c in set_cookies)
    assert any(c.startswith("immich_auth_type=password") for c in set_cookies)

    # The 3.x app sends only the cookie.
    with httpx.Client(base_url=base, cookies={"immich_access_token": token}) as app:
        me = app.get("/api/users/me")
        assert me.status_code == 200 and me.json()["email"] == account.email
        validate("/users/me", "get", 200, me.json())
        prefs = app.get("/api/users/me/preferences")
        validate("/users/me/preferences", "get", 200, prefs.json())
        assert prefs.json()["people"]["minimumFaces"] == 3
        assert app.post("/api/auth/validateToken").json() == {"authStatus": True}

    # Every other token source works too.
    for kwargs in ({"headers": {"Authorization": f"Bearer {token}"}},
                   {"headers": {"x-immich-user-token": token}},
                   {"params": {"sessionKey": token}}):
        assert httpx.get(f"{base}/api/users/me", **kwargs).status_code == 200

    with httpx.Client(base_url=base, cookies={"immich_access_token": token}) as app:
        out = app.post("/api/auth/logout")
        assert out.status_code == 200 and out.json()["successful"] is True
        validate("/auth/logout", "post", 200, out.json())
    after = httpx.get(f"{base}/api/users/me", cookies={"immich_access_token": token})
    assert after.status_code == 401 and after.json() == {"message": "Invalid user token"}


def test_api_keys_and_missing_credentials(server, account):
    base = server.immich_url
    me = httpx.get(f"{base}/api/users/me", headers={"x-api-key": account.api_key})
    assert me.status_code == 200 and me.json()["id"] == str(account.user_id)
    assert httpx.get(f"{base}/api/users/me", params={"apiKey": account.api_key}).status_code == 200
    wrong = httpx.get(f"{base}/api/users/me", headers={"x-api-key": "apikey_nope"})
    assert wrong.status_code == 401 and wrong.json() == {"message": "Invalid API key"}
    none = httpx.get(f"{base}/api/users/me")
    assert none.status_code == 401 and none.json() == {"message": "Authentication required"}
    assert none.headers.get("x-correlation-id")
