"""Immich tags over HTTP, every 2xx body checked against the 3.1 spec: a file's own tags on import,
tagging a photo Travel/2024 and finding it again by Travel through search and the timeline, the
per-id answers, the XMP sidecar written back, and the sync stream left as the spec defines it (the
3.1 spec has no tag sync types)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import shortuuid

from tests.conftest import run
from tests.helpers import session_token, wait_processed
from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import png_bytes
from tests.test_immich_sync import APP_TYPES, _validate_line
from tests.test_immich_upload import FIELDS

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")
PICASA = Path(__file__).resolve().parents[2] / "shared" / "test-assets" / "metadata" / "tags" / "picasa.jpg"


def _sidecar_tags(server, asset_id: str) -> list[str]:
    from app.db import engine as db
    from app.media.metadata import parse_tags, read_sidecar

    key = run(db.fetchval("SELECT storage_key FROM asset_files WHERE asset_id = $1 AND kind = 'sidecar'", asset_id))
    return parse_tags({}, read_sidecar((server.data_dir / key).read_bytes())).tags or []


def test_tags_end_to_end(server, account, make_account):
    token = session_token(account)
    with checked_client(base_url=server.immich_url, cookies={"immich_access_token": token}, timeout=60) as http:
        # IPTC Keywords of a Picasa export become the owner's tags
        keyworded = http.post("/api/assets", files={"assetData": ("picasa.jpg", PICASA.read_bytes(), "image/jpeg")},
                              data=FIELDS).json()["id"]
        wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(keyworded)))
        assert [t["value"] for t in http.get(f"/api/assets/{keyworded}").json()["tags"]] == ["Frost", "Yard"]

        # and so do a sidecar's XMP HierarchicalSubject levels
        from tests.domain.test_tags import HIERARCHICAL

        with_sidecar = http.post("/api/assets", data=FIELDS, files={
            "assetData": ("s.png", png_bytes(2025), "image/png"),
            "sidecarData": ("s.png.xmp", HIERARCHICAL, "application/xml")}).json()["id"]
        wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(with_sidecar)))
        assert [t["value"] for t in http.get(f"/api/assets/{with_sidecar}").json()["tags"]] == ["AC|DC", "Places/Rome"]

        photo = http.post("/api/assets", files={"assetData": ("t.png", png_bytes(2024), "image/png")},
                          data=FIELDS).json()["id"]
        wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(photo)))  # its file read: no tags
        [leaf] = http.put("/api/tags", json={"tags": ["Travel/2024"]}).json()
        assert (leaf["name"], leaf["value"]) == ("2024", "Travel/2024")
        travel = next(t for t in http.get("/api/tags").json() if t["value"] == "Travel")
        assert leaf["parentId"] == travel["id"]

        unknown = str(uuid.uuid4())
        answered = http.put(f"/api/tags/{leaf['id']}/assets", json={"ids": [photo, unknown]})
        assert answered.status_code == 200
        assert answered.json() == [{"id": photo, "success": True},
                                   {"id": unknown, "success": False, "error": "no_permission"}]
        again = http.put(f"/api/tags/{leaf['id']}/assets", json={"ids": [photo]}).json()
        assert again == [{"id": photo, "success": False, "error": "duplicate"}]
        assert _sidecar_tags(server, photo) == ["Travel/2024"]

        # the parent tag finds what its child tags
        found = http.post("/api/search/metadata", json={"tagIds": [travel["id"]]}).json()["assets"]["items"]
        assert [a["id"] for a in found] == [photo]
        untagged = http.post("/api/search/metadata", json={"tagIds": None}).json()["assets"]["items"]
        assert not {photo, keyworded, with_sidecar} & {a["id"] for a in untagged}
        buckets = http.get("/api/timeline/buckets", params={"tagId": travel["id"]}).json()
        assert buckets == [{"timeBucket": "2024-03-01", "count": 1}]
        bucket = http.get("/api/timeline/bucket", params={"tagId": travel["id"], "timeBucket": "2024-03-01"}).json()
        assert bucket["id"] == [photo]

        coloured = http.put(f"/api/tags/{travel['id']}", json={"color": "#00ff00"}).json()
        assert coloured["color"] == "#00ff00"
        assert http.post("/api/tags", json={"name": "2024", "parentId": travel["id"]}).status_code == 400
        created = http.post("/api/tags", json={"name": "2025", "parentId": travel["id"]})
        assert created.status_code == 201 and created.json()["value"] == "Travel/2025"
        bulk = http.put("/api/tags/assets", json={"tagIds": [created.json()["id"]], "assetIds": [photo, keyworded]})
        assert bulk.json() == {"count": 2}

        # tags are their user's own
        stranger = make_account()
        with checked_client(base_url=server.immich_url, headers={"x-api-key": stranger.api_key}) as other:
            refused = other.get(f"/api/tags/{travel['id']}")
            assert (refused.status_code, refused.json()["message"]) == (400, "Not found or no tag.read access")
            assert other.post("/api/search/metadata", json={"tagIds": [travel["id"]]}).status_code == 400
            assert other.put(f"/api/tags/{leaf['id']}/assets", json={"ids": [photo]}).status_code == 400

        # the 3.1 app's sync stream carries no tag types; tagging leaves its lines valid
        response = http.post("/api/sync/stream", json={"types": APP_TYPES})
        assert response.status_code == 200
        lines = [json.loads(raw) for raw in response.text.splitlines() if raw]
        for line in lines:
            _validate_line(line)
        assert {photo, keyworded} <= {line["data"].get("id") for line in lines if line["type"] == "AssetV2"}

        removed = http.request("DELETE", f"/api/tags/{leaf['id']}/assets", json={"ids": [photo]}).json()
        assert removed == [{"id": photo, "success": True}]
        assert http.delete(f"/api/tags/{travel['id']}").status_code == 204
        assert [t["value"] for t in http.get("/api/tags").json()] == ["AC|DC", "Frost", "Places", "Places/Rome", "Yard"]
        assert http.get(f"/api/assets/{photo}").json()["tags"] == []
        assert _sidecar_tags(server, photo) == []
