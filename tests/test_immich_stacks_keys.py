"""Immich stacks and API key management."""

from __future__ import annotations

import httpx
import pytest

from tests.immich_contract import SPEC_PATH, validate
from tests.media import png_bytes
from tests.test_immich_upload import FIELDS

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


@needs_spec
def test_stacks(server, account):
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
        ids_ = [http.post("/api/assets", files={"assetData": (f"s{i}.png", png_bytes(1800 + i), "image/png")},
                          data=FIELDS).json()["id"] for i in range(3)]
        created = http.post("/api/stacks", json={"assetIds": ids_})
        assert created.status_code == 201, created.text
        validate("/stacks", "post", 201, created.json())
        stack = created.json()
        assert stack["primaryAssetId"] == ids_[0] and {a["id"] for a in stack["assets"]} == set(ids_)
        moved = http.put(f"/api/stacks/{stack['id']}", json={"primaryAssetId": ids_[2]})
        validate("/stacks/{id}", "put", 200, moved.json())
        assert moved.json()["primaryAssetId"] == ids_[2]
        validate("/stacks/{id}", "get", 200, http.get(f"/api/stacks/{stack['id']}").json())
        assert http.request("DELETE", "/api/stacks", json={"ids": [stack["id"]]}).status_code == 204
        assert http.get(f"/api/stacks/{stack['id']}").status_code == 400  # Immich: not found or no access


@needs_spec
def test_api_keys_from_a_session(server, account):
    from tests.helpers import session_token

    token = session_token(account)
    with httpx.Client(base_url=server.immich_url, cookies={"immich_access_token": token}) as web:
        created = web.post("/api/api-keys", json={"name": "cli", "permissions": ["all"]})
        assert created.status_code == 201, created.text
        validate("/api-keys", "post", 201, created.json())
        secret, key_id = created.json()["secret"], created.json()["apiKey"]["id"]
        listed = web.get("/api/api-keys").json()
        validate("/api-keys", "get", 200, listed)
        assert key_id in {k["id"] for k in listed}
        renamed = web.put(f"/api/api-keys/{key_id}", json={"name": "laptop"})
        validate("/api-keys/{id}", "put", 200, renamed.json())
        # The new key works against both APIs.
        assert httpx.get(f"{server.immich_url}/api/users/me", headers={"x-api-key": secret}).status_code == 200
        assert httpx.get(f"{server.base_url}/api/users/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert web.delete(f"/api/api-keys/{key_id}").status_code == 204
        assert httpx.get(f"{server.immich_url}/api/users/me", headers={"x-api-key": secret}).status_code == 401
    # An API key cannot mint keys.
    denied = httpx.post(f"{server.immich_url}/api/api-keys", headers={"x-api-key": account.api_key},
                        json={"name": "x", "permissions": ["all"]})
    assert denied.status_code == 403
