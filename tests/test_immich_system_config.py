"""Immich's System config tag over HTTP: the round trip with every 2xx body checked against the
3.1.0 spec, Immich's 400 bodies for bad documents, admins only, and settings taking effect without
a restart (thumbnail size, password sign-in). The rules themselves are tested in
tests/domain/test_system_config.py."""

from __future__ import annotations

import copy
import json
import time
import uuid
from contextlib import contextmanager

import httpx
import pytest
import pyvips

from app.domain.system_config import CACHE_SECONDS
from tests.conftest import ServerProcess, run
from tests.immich_contract import SPEC_PATH, checked_client
from tests.test_immich_media import _upload
from tests.test_immich_socket import Listener

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _token(server, *, admin: bool) -> str:
    from app.domain import users

    email = f"cfg-{uuid.uuid4().hex[:8]}@example.com"
    run(users.create_user(email, "cfg-pw", is_admin=admin))
    r = httpx.post(f"{server.immich_url}/api/auth/login", json={"email": email, "password": "cfg-pw"})
    assert r.status_code == 201, r.text
    return r.json()["accessToken"]


def _client(base_url: str, token: str) -> httpx.Client:
    return checked_client(base_url=f"{base_url}/api", headers={"Authorization": f"Bearer {token}"}, timeout=60)


@contextmanager
def _admin(server):
    """An admin's client; whatever the test changes, the server's config is its defaults again after."""
    with _client(server.immich_url, _token(server, admin=True)) as admin:
        try:
            yield admin
        finally:
            assert admin.put("/system-config", json=admin.get("/system-config/defaults").json()).status_code == 200


@needs_spec
def test_round_trip_and_immich_validation(server):
    with _admin(server) as admin:
        defaults = admin.get("/system-config/defaults").json()
        assert admin.get("/system-config").json() == defaults
        options = admin.get("/system-config/storage-template-options").json()
        assert options["yearOptions"] == ["y", "yy"] and defaults["storageTemplate"]["template"] in options[
            "presetOptions"]

        wanted = copy.deepcopy(defaults)
        wanted["trash"]["days"] = 12
        wanted["server"]["loginPageMessage"] = "Welcome home"
        wanted["map"]["darkStyle"] = "https://tiles.example.com/dark.json"
        listener = Listener(server.immich_url, headers={"Authorization": admin.headers["Authorization"]})
        try:
            saved = admin.put("/system-config", json=wanted)
            listener.wait_for("on_config_update")  # Immich clients reload the server config
        finally:
            listener.client.disconnect()
        assert saved.status_code == 200 and saved.json() == wanted
        assert admin.get("/system-config").json() == wanted
        config = httpx.get(f"{server.immich_url}/api/server/config").json()
        assert (config["trashDays"], config["loginPageMessage"], config["mapDarkStyleUrl"]) == \
            (12, "Welcome home", "https://tiles.example.com/dark.json")

        bad = copy.deepcopy(wanted)
        bad["image"]["thumbnail"]["quality"] = 101
        bad["user"]["deleteDelay"] = None
        del bad["passwordLogin"]
        refused = admin.put("/system-config", json=bad)
        assert refused.status_code == 400
        body = refused.json()
        assert body["message"] == "Validation failed"
        assert {(".".join(map(str, e["path"])), e["message"]) for e in body["errors"]} == {
            ("image.thumbnail.quality", "Too big: expected number to be <=100"),
            ("passwordLogin", "Invalid input: expected object, received undefined"),
            ("user.deleteDelay", "Invalid input: expected int, received null"),
        }
        not_an_object = admin.put("/system-config", json=[1])
        assert not_an_object.status_code == 400 and not_an_object.json()["errors"][0]["path"] == []
        template = copy.deepcopy(wanted)
        template["storageTemplate"]["template"] = "{{foo}}"
        refused = admin.put("/system-config", json=template)
        assert refused.status_code == 400 and refused.json()["message"].startswith("Invalid storage template: ")
        assert admin.get("/system-config").json() == wanted  # nothing refused was kept


def test_only_admins_see_or_change_the_config(server):
    with _client(server.immich_url, _token(server, admin=False)) as member:
        for method, path in (("GET", "/system-config"), ("GET", "/system-config/defaults"),
                             ("GET", "/system-config/storage-template-options"), ("PUT", "/system-config")):
            r = member.request(method, path, json={} if method == "PUT" else None)
            assert r.status_code == 403, (path, r.text)
    assert httpx.get(f"{server.immich_url}/api/system-config").status_code == 401


@needs_spec
def test_the_next_thumbnail_has_the_new_size_and_format(server, account):
    with _admin(server) as admin:
        config = admin.get("/system-config").json()
        config["image"]["thumbnail"].update(size=120, format="jpeg")
        assert admin.put("/system-config", json=config).status_code == 200
        # The worker runs in the server's process: its cache is the server's, dropped by the PUT.
        image = pyvips.Image.black(900, 600).add([200, 80, 20]).cast("uchar").copy(interpretation="srgb")
        asset_id = _upload(server, account, "resized.jpg", image.jpegsave_buffer())
        thumb = httpx.get(f"{server.immich_url}/api/assets/{asset_id}/thumbnail",
                          headers={"x-api-key": account.api_key})
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        decoded = pyvips.Image.new_from_buffer(thumb.content, "")
        assert (decoded.width, decoded.height) == (180, 120)


@needs_spec
def test_password_sign_in_switched_off_and_on(server):
    email = f"cfg-{uuid.uuid4().hex[:8]}@example.com"
    with _admin(server) as admin:
        from app.domain import users

        run(users.create_user(email, "pw-123"))
        config = admin.get("/system-config").json()
        config["passwordLogin"]["enabled"] = False
        assert admin.put("/system-config", json=config).status_code == 200
        assert httpx.get(f"{server.immich_url}/api/server/features").json()["passwordLogin"] is False
        refused = httpx.post(f"{server.immich_url}/api/auth/login", json={"email": email, "password": "pw-123"})
        assert refused.status_code == 401 and refused.json()["message"] == "Password login has been disabled"
        config["passwordLogin"]["enabled"] = True
        assert admin.put("/system-config", json=config).status_code == 200
    assert httpx.post(f"{server.immich_url}/api/auth/login",
                      json={"email": email, "password": "pw-123"}).status_code == 201


@needs_spec
def test_a_config_file_is_the_config_and_the_api_cannot_change_it(server, workdir):
    path = workdir / "immich-config.json"
    path.write_text(json.dumps({"trash": {"days": 5}, "server": {"loginPageMessage": "From the file"}}))
    services = server.services()
    # A second API process over the same database and Redis (no worker: it must not take the
    # shared queue's jobs), reading its config from the file.
    second = ServerProcess(workdir / "config-file-data", extra_env={
        "IMMICH_CONFIG_FILE": str(path), "DATABASE_URL": services["database_url"],
        "REDIS_URL": services["redis_url"]}).start("--no-worker")
    try:
        with _client(second.immich_url, _token(server, admin=True)) as admin:
            config = admin.get("/system-config").json()
            assert config["trash"]["days"] == 5 and config["server"]["loginPageMessage"] == "From the file"
            refused = admin.put("/system-config", json=config)
            assert refused.status_code == 400
            assert refused.json() == {"message": "Cannot update configuration while IMMICH_CONFIG_FILE is in use"}
            assert admin.get("/server/features").json()["configFile"] is True
            assert admin.get("/server/config").json()["trashDays"] == 5
    finally:
        second.stop()
    time.sleep(CACHE_SECONDS)
    assert httpx.get(f"{server.immich_url}/api/server/features").json()["configFile"] is False


@needs_spec
def test_map_styles_are_immichs_by_default_and_follow_the_config_at_once(server):
    """The web app draws its map from /api/server/config's style URLs and shows it when
    /api/server/features says map; both follow the system config's map section."""
    with checked_client(base_url=f"{server.immich_url}/api", timeout=30) as public, _admin(server) as admin:
        config = public.get("/server/config").json()
        assert (config["mapLightStyleUrl"], config["mapDarkStyleUrl"]) == (
            "https://tiles.immich.cloud/v1/style/light.json", "https://tiles.immich.cloud/v1/style/dark.json")
        assert public.get("/server/features").json()["map"] is True

        wanted = admin.get("/system-config").json()
        wanted["map"] = {"enabled": False, "lightStyle": "https://tiles.example.com/light.json",
                         "darkStyle": "https://tiles.example.com/dark.json"}
        assert admin.put("/system-config", json=wanted).status_code == 200
        config = public.get("/server/config").json()
        assert (config["mapLightStyleUrl"], config["mapDarkStyleUrl"]) == (
            "https://tiles.example.com/light.json", "https://tiles.example.com/dark.json")
        assert public.get("/server/features").json()["map"] is False
