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
    # Switched off until implemented, so clients hide them; faces are on because the test server has models.
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
    memories = httpx.get(f"{server.immich_url}/api/memories", headers=headers)
    assert memories.status_code == 501
    assert memories.json() == {"message": "GET /api/memories is not supported by this server"}
    tag = httpx.get(f"{server.immich_url}/api/tags/00000000-0000-4000-8000-000000000000", headers=headers)
    assert tag.status_code == 501
    smart = httpx.post(f"{server.immich_url}/api/search/smart", headers=headers, json={"query": "dog"})
    assert smart.status_code == 400 and "embedding model" in smart.json()["message"]
    assert httpx.get(f"{server.immich_url}/api/server/features").json()["smartSearch"] is False


PUBLIC = {"/.well-known/immich", "/api/server/ping", "/api/server/version", "/api/server/version-history",
          "/api/server/features", "/api/server/config", "/api/server/media-types", "/api/auth/login",
          "/api/auth/admin-sign-up"}


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
