"""Immich notifications and e-mail over the Immich listener, every 2xx body checked against the spec."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.conftest import run
from tests.immich_contract import SPEC_PATH, checked_client, validate_component
from tests.smtp import closed_port, loopback_smtp, smtp_config
from tests.test_immich_accounts import _admin
from tests.test_immich_socket import Listener

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _client(server, *, token: str | None = None, api_key: str | None = None):
    return checked_client(base_url=server.immich_url, timeout=30,
                          cookies={"immich_access_token": token} if token else None,
                          headers={"x-api-key": api_key} if api_key else None)


def _refused(response, message: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["message"] == message, response.text


@needs_spec
def test_an_admin_notifies_a_user_who_reads_and_removes_it(server, account, make_account):
    stranger = make_account()
    _, admin_token = _admin(server)
    listener = Listener(server.immich_url, {"x-api-key": account.api_key})
    try:
        with _client(server, token=admin_token) as admin, _client(server, api_key=account.api_key) as me, \
                _client(server, api_key=stranger.api_key) as other:
            sent = admin.post("/api/admin/notifications", json={
                "userId": str(account.user_id), "title": "Disk almost full", "level": "warning",
                "description": "90% used", "data": {"percent": 90}, "readAt": "2025-01-01T00:00:00Z"})
            assert sent.status_code == 201, sent.text
            item = sent.json()
            assert (item["level"], item["type"], item["data"], "readAt" in item) == ("warning", "Custom",
                                                                                     {"percent": 90}, False)
            live = listener.wait_for("on_notification", lambda data: data["id"] == item["id"])
            validate_component("NotificationDto", live)
            plain = admin.post("/api/admin/notifications", json={"userId": str(account.user_id), "title": "Hi",
                                                                 "data": None, "description": None})
            assert (plain.json()["level"], plain.json()["type"]) == ("info", "Custom")

            assert [n["id"] for n in me.get("/api/notifications").json()] == [plain.json()["id"], item["id"]]
            assert [n["id"] for n in me.get("/api/notifications", params={"level": "warning"}).json()] == [item["id"]]
            assert me.get("/api/notifications", params={"type": "JobFailed"}).json() == []
            read = me.put(f"/api/notifications/{item['id']}", json={"readAt": "2025-03-01T12:00:00Z"})
            assert read.status_code == 200, read.text
            assert read.json()["readAt"].startswith("2025-03-01T12:00:00")
            unread = me.get("/api/notifications", params={"unread": "true"}).json()
            assert [n["id"] for n in unread] == [plain.json()["id"]]
            assert me.put("/api/notifications", json={"ids": [item["id"]], "readAt": None}).status_code == 204
            assert "readAt" not in me.get(f"/api/notifications/{item['id']}").json()

            # Someone else's notification is refused like a missing one, the whole batch with it.
            _refused(other.get(f"/api/notifications/{item['id']}"), "Not found or no notification.read access")
            _refused(other.put(f"/api/notifications/{item['id']}", json={}),
                     "Not found or no notification.update access")
            _refused(me.request("DELETE", "/api/notifications", json={"ids": [item["id"], str(uuid.uuid4())]}),
                     "Not found or no notification.delete access")
            assert other.get("/api/notifications").json() == []
            assert other.post("/api/admin/notifications",
                              json={"userId": str(account.user_id), "title": "x"}).status_code == 403

            # Bad input answers 400, never 500.
            for bad in (me.put("/api/notifications", json={"ids": []}),
                        me.put("/api/notifications", json={"ids": ["nope"]}),
                        me.get("/api/notifications/not-a-uuid"),
                        me.get("/api/notifications", params={"level": "loud"}),
                        admin.post("/api/admin/notifications", json={"userId": str(account.user_id), "title": "x",
                                                                     "type": "Spam"}),
                        admin.post("/api/admin/notifications", json={"title": "no user"})):
                assert bad.status_code == 400, bad.text
            _refused(admin.post("/api/admin/notifications", json={"userId": str(uuid.uuid4()), "title": "x"}),
                     "User not found")

            assert me.delete(f"/api/notifications/{item['id']}").status_code == 204
            _refused(me.get(f"/api/notifications/{item['id']}"), "Not found or no notification.read access")
            assert me.request("DELETE", "/api/notifications", json={"ids": [plain.json()["id"]]}).status_code == 204
            assert me.get("/api/notifications").json() == []
    finally:
        listener.client.disconnect()


@needs_spec
def test_templates_and_a_test_email_received_over_smtp(server):
    admin_email, admin_token = _admin(server)
    with _client(server, token=admin_token) as admin, loopback_smtp() as inbox:
        welcome = admin.post("/api/admin/notifications/templates/welcome", json={"template": ""})
        assert welcome.status_code == 200, welcome.text
        assert welcome.json()["name"] == "welcome" and "john@doe.com" in welcome.json()["html"]
        custom = admin.post("/api/admin/notifications/templates/album-invite", json={"template": "<p>{albumName}</p>"})
        assert custom.json()["html"] == "<p>John Doe&#x27;s Favorites</p>"
        assert admin.post("/api/admin/notifications/templates/nope", json={"template": ""}).json()["html"] == ""

        sent = admin.post("/api/admin/notifications/test-email", json=smtp_config(inbox.port, enabled=False))
        assert sent.status_code == 200, sent.text
        [(recipients, message)] = inbox.wait_for(1)
        assert recipients == [admin_email] and message["Subject"] == "Test email from Immich"
        assert message["Message-ID"] == sent.json()["messageId"]
        assert "Admin" in message.get_body(("plain",)).get_content()

        _refused(admin.post("/api/admin/notifications/test-email", json=smtp_config(closed_port())),
                 "Failed to verify SMTP configuration")
        too_far = smtp_config(inbox.port)
        too_far["transport"]["port"] = 70000
        assert admin.post("/api/admin/notifications/test-email", json=too_far).status_code == 400


@needs_spec
def test_a_new_user_gets_the_welcome_email_when_smtp_is_enabled(server):
    from app.db import engine as db
    from app.domain import system_config

    _, admin_token = _admin(server)
    email = f"welcome-{uuid.uuid4().hex[:8]}@example.com"
    with loopback_smtp() as inbox, _client(server, token=admin_token) as admin:
        run(db.execute("INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key)"
                       " DO UPDATE SET value = excluded.value", system_config.KEY,
                       json.dumps({"notifications": {"smtp": smtp_config(inbox.port)}})))
        try:
            time.sleep(system_config.CACHE_SECONDS + 0.2)  # the server's cached config expires
            created = admin.post("/api/admin/users", json={"email": email, "password": "temp-pw", "name": "New",
                                                           "notify": True, "shouldChangePassword": True})
            assert created.status_code == 201, created.text
            [(recipients, message)] = inbox.wait_for(1)
        finally:
            run(db.execute("DELETE FROM system_metadata WHERE key = $1", system_config.KEY))
    assert recipients == [email] and message["Subject"] == "Welcome to Immich"
    assert "temp-pw" in message.get_body(("plain",)).get_content()
