"""The Immich listener's discovery and server-info routes, validated against the 3.1.0 spec."""

from __future__ import annotations

import httpx
import pytest

from tests.immich_contract import SPEC_PATH, validate

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def test_well_known(server):
    r = httpx.get(f"{server.immich_url}/.well-known/immich")
    assert r.status_code == 200 and r.json() == {"api": {"endpoint": "/api"}}


@needs_spec
@pytest.mark.parametrize("path", ["/server/ping", "/server/version", "/server/features", "/server/config",
                                  "/server/media-types", "/server/version-history"])
def test_public_server_routes_match_the_spec(server, path):
    r = httpx.get(f"{server.immich_url}/api{path}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    validate(path, "get", 200, r.json())


def test_version_and_honest_features(server):
    assert httpx.get(f"{server.immich_url}/api/server/version").json() == {
        "major": 3, "minor": 1, "patch": 0, "prerelease": None}
    features = httpx.get(f"{server.immich_url}/api/server/features").json()
    # Switched off until implemented (or, for smart search, while the configured CLIP model is absent),
    # so clients hide them; faces are on because the test server has models.
    assert features["smartSearch"] is False and features["oauth"] is False
    assert features["facialRecognition"] is True
    types = httpx.get(f"{server.immich_url}/api/server/media-types").json()
    assert {".jpg", ".heic", ".dng"} <= set(types["image"]) and {".mp4", ".mov"} <= set(types["video"])


def test_unknown_route_uses_immichs_error_body(server):
    r = httpx.get(f"{server.immich_url}/api/definitely-not-here")
    body = r.json()
    assert r.status_code == 404 and body == {"message": "Not Found"} and r.headers["x-correlation-id"]


def test_dtos_are_generated_from_the_current_spec():
    import subprocess
    import sys

    from tests.conftest import ROOT

    if not SPEC_PATH.exists():
        pytest.skip("the Immich OpenAPI spec is not present")
    done = subprocess.run([sys.executable, "tools/gen_immich_dtos.py", "--check", "--spec", str(SPEC_PATH)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_unimplemented_operations_answer_501_with_a_message(server, account):
    headers = {"x-api-key": account.api_key}
    plugins = httpx.get(f"{server.immich_url}/api/plugins", headers=headers)
    assert plugins.status_code == 501
    assert plugins.json() == {"message": "GET /api/plugins is not supported by this server"}
    tag = httpx.get(f"{server.immich_url}/api/tags/00000000-0000-4000-8000-000000000000", headers=headers)
    assert tag.status_code == 400  # tags are served: an unknown one is Immich's "not found or no access"
    smart = httpx.post(f"{server.immich_url}/api/search/smart", headers=headers, json={"query": "dog"})
    # Smart search is on in the config, but the configured CLIP model is not on this server.
    assert smart.status_code == 400 and "CLIP model" in smart.json()["message"]
    assert httpx.get(f"{server.immich_url}/api/server/features").json()["smartSearch"] is False


PUBLIC = {"/.well-known/immich", "/api/server/ping", "/api/server/version", "/api/server/version-history",
          "/api/server/features", "/api/server/config", "/api/server/media-types", "/api/auth/login",
          "/api/auth/admin-sign-up",
          "/", "/{web_path:path}", "/custom.css"}  # the web app's pages and files (tests/test_immich_web_app.py)


def test_every_private_immich_route_needs_credentials(server):
    import re

    from app.api.state import Shared
    from app.settings import load_settings
    from compat.app import create_immich_app
    from tests.test_immich_socket import Listener

    app = create_immich_app(Shared.build(load_settings()))
    checked = 0
    for route in app.routes:
        if route.path == "/api/socket.io":  # no REST methods: its socket.io handshake is refused
            refused = Listener(server.immich_url)
            assert refused.wait_for("error", timeout=10) == "unauthorized" and refused.disconnected.wait(10)
            refused.close()
            checked += 1
        for method in sorted(getattr(route, "methods", [])):
            if method in ("HEAD", "OPTIONS") or route.path in PUBLIC:
                continue
            path = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", route.path)
            r = httpx.request(method, server.immich_url + path, json={} if method != "GET" else None,
                              params={"timeBucket": "2024-01-01", "type": "country"})
            assert r.status_code == 401, (method, route.path, r.status_code, r.text)
            assert r.json() == {"message": "Authentication required"}
            checked += 1
    assert checked >= 40


def _signed_in(server, *, admin: bool) -> httpx.Client:
    """An Immich client with an API key of a new account (an administrator when asked)."""
    import uuid

    from app.domain import users
    from tests.conftest import run

    async def create():
        user = await users.create_user(f"srv-{uuid.uuid4().hex[:10]}@example.com", "pw", is_admin=admin)
        return (await users.create_api_key(user["id"], "tests"))[1]

    return httpx.Client(base_url=f"{server.immich_url}/api", headers={"x-api-key": run(create())}, timeout=30)


@needs_spec
def test_admin_onboarding_is_stored_and_reported_by_the_server_config(server):
    def onboarded_in_config() -> bool:
        config = httpx.get(f"{server.immich_url}/api/server/config").json()
        validate("/server/config", "get", 200, config)
        return config["isOnboarded"]

    from app.db import engine as db
    from tests.conftest import run

    # As on a fresh server: the state was never written.
    run(db.execute("DELETE FROM system_metadata WHERE key = 'admin-onboarding'"))
    assert onboarded_in_config() is False
    with _signed_in(server, admin=True) as admin:
        state = admin.get("/system-metadata/admin-onboarding")
        assert state.status_code == 200 and state.json() == {"isOnboarded": False}
        validate("/system-metadata/admin-onboarding", "get", 200, state.json())
        for value in (True, False, True):
            done = admin.post("/system-metadata/admin-onboarding", json={"isOnboarded": value})
            assert done.status_code == 204 and done.content == b""
            assert admin.get("/system-metadata/admin-onboarding").json() == {"isOnboarded": value}
            assert onboarded_in_config() is value
        bad = admin.post("/system-metadata/admin-onboarding", json={"isOnboarded": "yes"})
        assert bad.status_code == 400
        geocoding = admin.get("/system-metadata/reverse-geocoding-state")
        assert geocoding.status_code == 200 and geocoding.json() == {"lastUpdate": None, "lastImportFileName": None}
        validate("/system-metadata/reverse-geocoding-state", "get", 200, geocoding.json())
        checked = admin.get("/system-metadata/version-check-state")
        assert checked.status_code == 200 and checked.json() == {"checkedAt": None, "releaseVersion": None}
        validate("/system-metadata/version-check-state", "get", 200, checked.json())
    with _signed_in(server, admin=False) as member:
        for method, path in (("GET", "/system-metadata/admin-onboarding"), ("POST", "/system-metadata/admin-onboarding"),
                             ("GET", "/system-metadata/reverse-geocoding-state"),
                             ("GET", "/system-metadata/version-check-state")):
            refused = member.request(method, path, json={"isOnboarded": False} if method == "POST" else None)
            assert refused.status_code == 403, (method, path)
        assert onboarded_in_config() is True  # the refused POST changed nothing


@needs_spec
def test_signed_in_server_info_matches_the_spec(server):
    with _signed_in(server, admin=False) as member:
        about = member.get("/server/about")
        assert about.status_code == 200
        validate("/server/about", "get", 200, about.json())
        assert about.json()["version"] == "v3.1.0" and about.json()["licensed"] is False
        assert about.json()["versionUrl"] == "https://github.com/immich-app/immich/releases/tag/v3.1.0"
        # The test server runs without the build variables: their fields are left out, as Immich does.
        assert not {"build", "buildUrl", "sourceCommit", "repository"} & set(about.json())
        check = member.get("/server/version-check")
        assert check.status_code == 200 and check.json() == {"checkedAt": None, "releaseVersion": None}
        validate("/server/version-check", "get", 200, check.json())
        links = member.get("/server/apk-links")
        assert links.status_code == 200
        validate("/server/apk-links", "get", 200, links.json())
        assert links.json()["universal"] == (
            "https://github.com/immich-app/immich/releases/download/v3.1.0/app-release.apk")
        storage = member.get("/server/storage")
        assert storage.status_code == 200
        validate("/server/storage", "get", 200, storage.json())
        assert member.get("/server/statistics").status_code == 403
    with _signed_in(server, admin=True) as admin:
        stats = admin.get("/server/statistics")
        assert stats.status_code == 200
        validate("/server/statistics", "get", 200, stats.json())


def test_build_fields_come_from_immichs_variables():
    from compat.routes.server import build_metadata

    environ = {"IMMICH_BUILD": "1234", "IMMICH_BUILD_URL": "https://ci.example/1234",
               "IMMICH_BUILD_IMAGE": "v3.1.0", "IMMICH_BUILD_IMAGE_URL": "https://registry.example/photos",
               "IMMICH_REPOSITORY": "example/photos", "IMMICH_REPOSITORY_URL": "https://git.example/photos",
               "IMMICH_SOURCE_REF": "main", "IMMICH_SOURCE_COMMIT": "abc123",
               "IMMICH_SOURCE_URL": "https://git.example/photos/commit/abc123", "PATH": "/usr/bin"}
    assert build_metadata(environ) == {
        "build": "1234", "buildUrl": "https://ci.example/1234", "buildImage": "v3.1.0",
        "buildImageUrl": "https://registry.example/photos", "repository": "example/photos",
        "repositoryUrl": "https://git.example/photos", "sourceRef": "main", "sourceCommit": "abc123",
        "sourceUrl": "https://git.example/photos/commit/abc123"}
    assert build_metadata({"IMMICH_SOURCE_REF": "main"}) == {"sourceRef": "main"}
    assert build_metadata({}) == {}
