"""Immich's licenses, calendar heatmaps, admin delete (forced, and after the delete delay) and
unlink-all over HTTP, every 2xx body checked against the spec."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.conftest import run
from tests.domain.test_licenses import CLIENT_ACTIVATION, CLIENT_KEY, SERVER_ACTIVATION, SERVER_KEY
from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import png_bytes

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _client(server, token: str) -> httpx.Client:
    return checked_client(base_url=server.immich_url, cookies={"immich_access_token": token}, timeout=60)


def _login(server, email: str, password: str) -> str:
    r = httpx.post(f"{server.immich_url}/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return r.json()["accessToken"]


@pytest.fixture
def admin(server):
    from app.domain import users

    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    run(users.create_user(email, "admin-pw", name="Admin", is_admin=True))
    with _client(server, _login(server, email, "admin-pw")) as client:
        yield client


def _member(server, admin: httpx.Client, **fields) -> tuple[str, httpx.Client]:
    email = f"member-{uuid.uuid4().hex[:8]}@example.com"
    r = admin.post("/api/admin/users", json={"email": email, "password": "pw", "name": "Member", **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"], _client(server, _login(server, email, "pw"))


def _upload(client: httpx.Client, seed: int, taken: str = "2024-03-01T10:00:00Z") -> str:
    r = client.post("/api/assets", files={"assetData": (f"p{seed}.png", png_bytes(seed), "image/png")},
                    data={"fileCreatedAt": taken, "fileModifiedAt": taken})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _original_path(server, asset_id: str):
    from app.db import engine as db
    from app.storage.blobstore import BlobStore

    key = run(db.fetchval("SELECT storage_key FROM assets WHERE id = $1", uuid.UUID(asset_id)))
    return BlobStore(server.data_dir).path(key)


@needs_spec
def test_server_and_user_licenses(server, admin):
    member_id, member = _member(server, admin)
    with member:
        try:
            assert admin.get("/api/server/license").status_code == 404
            set_ = admin.put("/api/server/license", json={"licenseKey": SERVER_KEY, "activationKey": SERVER_ACTIVATION})
            assert set_.status_code == 200, set_.text
            assert set_.json()["licenseKey"] == SERVER_KEY and set_.json()["activationKey"] == SERVER_ACTIVATION
            assert admin.get("/api/server/license").json() == set_.json()
            assert admin.get("/api/server/about").json()["licensed"] is True
            assert member.get("/api/server/license").status_code == 403
            for body in ({"licenseKey": CLIENT_KEY, "activationKey": CLIENT_ACTIVATION},
                         {"licenseKey": SERVER_KEY, "activationKey": "invalid" + SERVER_ACTIVATION}):
                refused = admin.put("/api/server/license", json=body)
                assert refused.status_code == 400 and refused.json()["message"] == "Invalid license key"
            malformed = admin.put("/api/server/license", json={"licenseKey": "IMSV-1", "activationKey": ""})
            assert malformed.status_code == 400 and malformed.json()["message"] == "Validation failed"
            assert [e["path"] for e in malformed.json()["errors"]] == [["licenseKey"]]
        finally:
            assert admin.delete("/api/server/license").status_code == 204
        assert admin.get("/api/server/license").status_code == 404
        assert admin.get("/api/server/about").json()["licensed"] is False

        assert member.get("/api/users/me/license").status_code == 404
        mine = member.put("/api/users/me/license", json={"licenseKey": CLIENT_KEY, "activationKey": CLIENT_ACTIVATION})
        assert mine.status_code == 200, mine.text
        assert member.get("/api/users/me/license").json() == mine.json()
        license_ = {k: mine.json()[k] for k in ("licenseKey", "activationKey")}
        assert {k: member.get("/api/users/me").json()["license"][k] for k in license_} == license_
        assert admin.get(f"/api/admin/users/{member_id}").json()["license"]["licenseKey"] == CLIENT_KEY
        bad = member.put("/api/users/me/license", json={"licenseKey": CLIENT_KEY, "activationKey": "x" + CLIENT_ACTIVATION})
        assert bad.status_code == 400 and bad.json()["message"] == "Invalid license key"
        assert member.delete("/api/users/me/license").status_code == 204
        assert member.get("/api/users/me/license").status_code == 404
        assert member.get("/api/users/me").json()["license"] is None


@needs_spec
def test_calendar_heatmaps_preferences_pin_and_unlink_all(server, admin):
    member_id, member = _member(server, admin, pinCode="123456")
    with member:
        assert member.get("/api/auth/status").json()["pinCode"] is True
        _upload(member, 701)
        today = member.get("/api/users/me/calendar-heatmap")
        assert today.status_code == 200, today.text
        body = today.json()
        assert len(body["series"]) == 364 and body["to"] == body["series"][-1]["date"]
        assert body["totalCount"] == 1 and body["series"][-1]["count"] == 1
        taken = member.get("/api/users/me/calendar-heatmap",
                           params={"type": "Taken", "from": "2024-02-28", "to": "2024-03-02"}).json()
        assert taken == {"from": "2024-02-28", "to": "2024-03-02", "totalCount": 1,
                         "series": [{"date": "2024-02-28", "count": 0}, {"date": "2024-02-29", "count": 0},
                                    {"date": "2024-03-01", "count": 1}, {"date": "2024-03-02", "count": 0}]}
        seen = admin.get(f"/api/admin/users/{member_id}/calendar-heatmap",
                         params={"type": "Taken", "from": "2024-02-28", "to": "2024-03-02"})
        assert seen.json() == taken
        for params in ({"type": "Sometime"}, {"from": "2024-02-30"}):
            refused = member.get("/api/users/me/calendar-heatmap", params=params)
            assert refused.status_code == 400 and refused.json()["message"] == "Validation failed", params
        assert admin.get(f"/api/admin/users/{uuid.uuid4()}/calendar-heatmap").status_code == 400
        assert member.get(f"/api/admin/users/{member_id}/calendar-heatmap").status_code == 403

        assert member.put("/api/users/me/preferences", json={"avatar": {"color": "blue"}}).status_code == 200
        assert member.get("/api/users/me").json()["avatarColor"] == "blue"
        for bad in ("12345", "12a456", ""):
            refused = admin.put(f"/api/admin/users/{member_id}", json={"pinCode": bad})
            assert refused.status_code == 400 and refused.json()["errors"][0]["path"] == ["pinCode"], bad
        assert member.get("/api/auth/status").json()["pinCode"] is True
        assert admin.put(f"/api/admin/users/{member_id}", json={"pinCode": None}).status_code == 200
        assert member.get("/api/auth/status").json()["pinCode"] is False

        assert member.post("/api/admin/auth/unlink-all").status_code == 403
        assert admin.post("/api/admin/auth/unlink-all").status_code == 204


@needs_spec
def test_forced_delete_removes_the_account_and_its_files_and_the_delay_holds_the_rest(server, admin):
    from app.db import engine as db
    from app.domain import users
    from app.storage.blobstore import BlobStore

    forced_id, forced = _member(server, admin)
    waiting_id, waiting = _member(server, admin)
    with forced, waiting:
        forced_file = _original_path(server, _upload(forced, 702))
        waiting_file = _original_path(server, _upload(waiting, 703))
    assert forced_file.exists() and waiting_file.exists()

    r = admin.request("DELETE", f"/api/admin/users/{forced_id}", json={"force": True})
    assert r.status_code == 200 and r.json()["status"] == "removing"
    deadline = time.time() + 60
    while admin.get(f"/api/admin/users/{forced_id}").status_code != 400:  # the worker removes it
        assert time.time() < deadline, "the forced removal did not run"
        time.sleep(0.5)
    assert not forced_file.exists()

    r = admin.request("DELETE", f"/api/admin/users/{waiting_id}", json={})
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    store = BlobStore(server.data_dir)
    run(users.remove_deleted_users(store, 7))  # the daily sweep, within the delay: it stays
    assert admin.get(f"/api/admin/users/{waiting_id}").json()["status"] == "deleted" and waiting_file.exists()
    run(db.execute("UPDATE users SET deleted_at = now() - interval '8 days' WHERE id = $1", uuid.UUID(waiting_id)))
    run(users.remove_deleted_users(store, 7))
    assert admin.get(f"/api/admin/users/{waiting_id}").status_code == 400 and not waiting_file.exists()
