"""A fresh server set up and administered only through the Immich API, every 2xx body checked
against the spec: the path an administrator (and Immich's own clients) take on a new server.

Admin sign-up and onboarding, the system config round trip with a setting taking effect (the next
thumbnail's size), jobs paused, counted and resumed, a user created, updated, deleted, restored and
removed for good, a license, a profile image, the PIN-locked folder (a locked photo leaves the
timeline and the sync stream), and a notification plus a test e-mail received over SMTP."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import pyvips

from tests.conftest import ServerProcess
from tests.domain.test_licenses import CLIENT_ACTIVATION, CLIENT_KEY
from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import SHARED_ASSETS, png_bytes
from tests.smtp import loopback_smtp, smtp_config

PHOTO = SHARED_ASSETS / "formats" / "jpeg" / "el_torcal_rocks.jpeg"  # 512 x 341

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists() or not PHOTO.exists(),
                                reason="the Immich OpenAPI spec or ../shared/test-assets is absent")


@pytest.fixture(scope="module")
def fresh(workdir):
    # IMMICH_ENV as Immich's own e2e runs: the staging license keys are accepted.
    srv = ServerProcess(workdir / "fresh-flow", extra_env={"IMMICH_ENV": "testing"}).start()
    yield srv
    srv.stop()


def _signed_in(base: str, email: str, password: str) -> httpx.Client:
    r = httpx.post(f"{base}/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return checked_client(base_url=base, cookies={"immich_access_token": r.json()["accessToken"]}, timeout=60)


def _wait(what: str, check, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _upload(client: httpx.Client, name: str, data: bytes, mime: str) -> str:
    taken = "2024-05-04T10:00:00Z"
    r = client.post("/api/assets", files={"assetData": (name, data, mime)},
                    data={"fileCreatedAt": taken, "fileModifiedAt": taken})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _thumbnail(client: httpx.Client, asset_id: str) -> pyvips.Image | None:
    r = client.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "thumbnail"})
    return pyvips.Image.new_from_buffer(r.content, "") if r.status_code == 200 else None


def _jobs(client: httpx.Client, queue: str) -> dict:
    r = client.get("/api/jobs")
    assert r.status_code == 200, r.text
    return r.json()[queue]


def _timeline(client: httpx.Client) -> set[str]:
    found: set[str] = set()
    for bucket in client.get("/api/timeline/buckets").json():
        found |= set(client.get("/api/timeline/bucket", params={"timeBucket": bucket["timeBucket"]}).json()["id"])
    return found


def _synced(client: httpx.Client) -> set[str]:
    client.delete("/api/sync/ack")  # the whole stream again
    r = client.post("/api/sync/stream", json={"types": ["AssetsV2"]})
    assert r.status_code == 200, r.text
    return {line["data"]["id"] for line in map(json.loads, r.text.splitlines()) if line["type"] == "AssetV2"}


def test_a_fresh_server_set_up_and_run_through_the_immich_api(fresh):
    base = fresh.immich_url
    signed_up = httpx.post(f"{base}/api/auth/admin-sign-up",
                           json={"email": "admin@example.com", "password": "admin-password", "name": "Admin"})
    assert signed_up.status_code == 201, signed_up.text
    with _signed_in(base, "admin@example.com", "admin-password") as admin:
        # Onboarding, as the web app does it right after sign-up.
        assert admin.get("/api/server/config").json()["isOnboarded"] is False
        assert admin.post("/api/system-metadata/admin-onboarding", json={"isOnboarded": True}).status_code == 204
        assert admin.get("/api/server/config").json()["isOnboarded"] is True

        # The system config round trip, and a setting that takes effect on the next thumbnail.
        config = admin.get("/api/system-config").json()
        assert config == admin.get("/api/system-config/defaults").json()
        assert admin.put("/api/system-config", json=config).json() == config
        assert admin.get("/api/system-config/storage-template-options").status_code == 200
        config["image"]["thumbnail"]["size"] = 160
        assert admin.put("/api/system-config", json=config).status_code == 200
        assert admin.get("/api/system-config").json()["image"]["thumbnail"]["size"] == 160
        photo = _upload(admin, PHOTO.name, PHOTO.read_bytes(), "image/jpeg")
        thumb = _wait("the first thumbnail", lambda: _thumbnail(admin, photo))
        assert min(thumb.width, thumb.height) == 160

        # Jobs: a paused queue holds its work and counts it; resume runs it.
        assert admin.put("/api/jobs/thumbnailGeneration", json={"command": "pause", "force": False}).status_code == 200
        held = _upload(admin, "held.png", png_bytes(7001, 40, 30), "image/png")
        counts = _wait("a paused thumbnail job", lambda: (q := _jobs(admin, "thumbnailGeneration"))["jobCounts"]["paused"]
                       and q)
        assert counts["queueStatus"]["isPaused"] is True
        assert _thumbnail(admin, held) is None
        assert admin.put("/api/jobs/thumbnailGeneration", json={"command": "resume", "force": False}).status_code == 200
        _wait("the held thumbnail", lambda: _thumbnail(admin, held))
        _wait("an idle queue", lambda: not any(_jobs(admin, "thumbnailGeneration")["jobCounts"].values()))
        assert admin.put("/api/jobs/thumbnailGeneration", json={"command": "start", "force": True}).status_code == 200
        _wait("the forced run to end", lambda: not any(_jobs(admin, "thumbnailGeneration")["jobCounts"].values()))

        # A user: created, updated, deleted, restored, then removed for good.
        created = admin.post("/api/admin/users", json={"email": "member@example.com", "password": "member-password",
                                                       "name": "Member"})
        assert created.status_code == 201, created.text
        member_id = created.json()["id"]
        assert admin.put(f"/api/admin/users/{member_id}", json={"name": "Renamed"}).json()["name"] == "Renamed"
        assert admin.request("DELETE", f"/api/admin/users/{member_id}", json={}).json()["status"] == "deleted"
        assert admin.post(f"/api/admin/users/{member_id}/restore").json()["status"] == "active"

        with _signed_in(base, "member@example.com", "member-password") as member:
            # A license with a real (staging) key.
            licensed = member.put("/api/users/me/license",
                                  json={"licenseKey": CLIENT_KEY, "activationKey": CLIENT_ACTIVATION})
            assert licensed.status_code == 200, licensed.text
            assert member.get("/api/users/me/license").json()["licenseKey"] == CLIENT_KEY
            assert member.delete("/api/users/me/license").status_code == 204
            assert member.get("/api/users/me/license").status_code == 404

            # A profile image.
            image = member.post("/api/users/profile-image",
                                files={"file": ("me.png", png_bytes(7002, 64, 64), "image/png")})
            assert image.status_code == 201, image.text
            assert member.get(f"/api/users/{member_id}/profile-image").status_code == 200

            # The locked folder: a PIN, a photo moved in while unlocked, gone once locked.
            shown, secret = (_upload(member, f"m{i}.png", png_bytes(7010 + i, 40, 30), "image/png") for i in range(2))
            assert member.post("/api/auth/pin-code", json={"pinCode": "246810"}).status_code == 204
            assert member.post("/api/auth/session/unlock", json={"pinCode": "246810"}).status_code == 204
            assert member.put(f"/api/assets/{secret}", json={"visibility": "locked"}).status_code == 200
            assert member.post("/api/auth/session/lock").status_code == 204
            assert _timeline(member) == {shown} and secret not in _synced(member)
            assert member.post("/api/auth/session/unlock", json={"pinCode": "246810"}).status_code == 204
            assert secret in _synced(member)

            # A notification from the administrator, and the test e-mail over a real SMTP server.
            sent = admin.post("/api/admin/notifications", json={"userId": member_id, "title": "Welcome aboard"})
            assert sent.status_code == 201, sent.text
            assert [n["title"] for n in member.get("/api/notifications").json()] == ["Welcome aboard"]
            with loopback_smtp() as inbox:
                mailed = admin.post("/api/admin/notifications/test-email", json=smtp_config(inbox.port))
                assert mailed.status_code == 200, mailed.text
                [(recipients, message)] = inbox.wait_for(1)
                assert recipients == ["admin@example.com"] and message["Message-ID"] == mailed.json()["messageId"]

        forced = admin.request("DELETE", f"/api/admin/users/{member_id}", json={"force": True})
        assert forced.status_code == 200, forced.text
        _wait("the account's removal", lambda: admin.get(f"/api/admin/users/{member_id}").status_code == 400)
        assert httpx.post(f"{base}/api/auth/login", json={"email": "member@example.com",
                                                          "password": "member-password"}).status_code == 401
