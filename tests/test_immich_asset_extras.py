"""Immich asset extras over HTTP, every 2xx body checked against the 3.1 spec: key/value metadata
(and its sync lines), copy with a real sidecar, asset jobs running the real steps, OCR's empty answer,
the stack search and member removal."""

from __future__ import annotations

import uuid

import pytest
import shortuuid

from tests.helpers import session_token, wait_processed
from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import png_bytes
from tests.test_immich_sync import App, _of
from tests.test_immich_upload import FIELDS

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")

XMP = b"""<?xml version="1.0"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""
 xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description><rdf:Alt>
<rdf:li xml:lang="x-default">from the sidecar</rdf:li>
</rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta>"""


def _client(server, account):
    return checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60)


def _upload(http, account, name: str, seed: int, **files) -> str:
    r = http.post("/api/assets", files={"assetData": (name, png_bytes(seed), "image/png"), **files},
                  data={**FIELDS, "deviceAssetId": name})
    assert r.status_code == 201, r.text
    wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(r.json()["id"])))
    return r.json()["id"]


def test_metadata_routes_and_their_sync_lines(server, account):
    app = App(server, session_token(account))
    with _client(server, account) as http:
        asset = _upload(http, account, "m.png", 2301)
        app.sync()
        put = http.put(f"/api/assets/{asset}/metadata", json={"items": [{"key": "mobile-app", "value": {"id": "x"}}]})
        assert put.status_code == 200 and put.json()[0]["value"] == {"id": "x"}
        bulk = http.put("/api/assets/metadata", json={"items": [{"assetId": asset, "key": "other", "value": {}}]})
        assert bulk.status_code == 200 and bulk.json()[0]["assetId"] == asset
        assert [m["key"] for m in http.get(f"/api/assets/{asset}/metadata").json()] == ["mobile-app", "other"]
        assert http.get(f"/api/assets/{asset}/metadata/other").json()["key"] == "other"
        lines = app.sync()
        assert sorted(d["key"] for d in _of(lines, "AssetMetadataV1")) == ["mobile-app", "other"]

        assert http.delete(f"/api/assets/{asset}/metadata/other").status_code == 204
        gone = http.request("DELETE", "/api/assets/metadata", json={"items": [{"assetId": asset, "key": "mobile-app"}]})
        assert gone.status_code == 204
        missing = http.get(f"/api/assets/{asset}/metadata/other")
        assert missing.status_code == 400
        assert missing.json()["message"] == f'Metadata with key "other" not found for asset with id "{asset}"'
        lines = app.sync()
        assert sorted(d["key"] for d in _of(lines, "AssetMetadataDeleteV1")) == ["mobile-app", "other"]
        assert lines.index(next(x for x in lines if x["type"] == "AssetMetadataDeleteV1")) < len(lines) - 1

        dup = http.put(f"/api/assets/{asset}/metadata", json={"items": [{"key": "k", "value": {}}] * 2})
        assert dup.status_code == 400 and dup.json()["message"] == 'Duplicate items are not allowed: "k"'
        foreign = http.get(f"/api/assets/{uuid.uuid4()}/metadata")
        assert foreign.status_code == 400 and foreign.json()["message"] == "Not found or no asset.read access"
        assert http.get(f"/api/assets/{asset}/ocr").json() == []
        assert http.get("/api/server/features").json()["ocr"] is False


def test_copy_with_a_sidecar_and_asset_jobs(server, account):
    with _client(server, account) as http:
        source = _upload(http, account, "src.png", 2302, sidecarData=("src.png.xmp", XMP, "application/xml"))
        target = _upload(http, account, "dst.png", 2303)
        album = http.post("/api/albums", json={"albumName": "copied", "assetIds": [source]}).json()
        assert http.put("/api/assets", json={"ids": [source], "isFavorite": True}).status_code == 204
        r = http.put("/api/assets/copy", json={"sourceId": source, "targetId": target})
        assert r.status_code == 204, r.text
        assert [a["id"] for a in http.get("/api/albums", params={"assetId": target}).json()] == [album["id"]]
        assert http.get(f"/api/assets/{target}").json()["isFavorite"] is True
        # The copied sidecar is read by the metadata job the copy queued.
        wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(target)))
        assert http.get(f"/api/assets/{target}").json()["exifInfo"]["description"] == "from the sidecar"

        foreign = http.put("/api/assets/copy", json={"sourceId": source, "targetId": str(uuid.uuid4())})
        assert foreign.status_code == 400 and foreign.json()["message"] == "Not found or no asset.copy access"
        same = http.put("/api/assets/copy", json={"sourceId": source, "targetId": source})
        assert same.status_code == 400 and same.json()["message"] == "Source and target id must be distinct"

        for name in ("regenerate-thumbnail", "refresh-metadata", "refresh-faces"):
            assert http.post("/api/assets/jobs", json={"assetIds": [target], "name": name}).status_code == 204
        wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(target)))
        transcode = http.post("/api/assets/jobs", json={"assetIds": [target], "name": "transcode-video"})
        assert transcode.status_code == 400
        bad = http.post("/api/assets/jobs", json={"assetIds": [target], "name": "nope"})
        assert bad.status_code == 400 and bad.json()["message"] == "Validation failed"


def test_stack_search_and_member_removal(server, account):
    with _client(server, account) as http:
        ids = [_upload(http, account, f"st{i}.png", 2310 + i) for i in range(3)]
        stack = http.post("/api/stacks", json={"assetIds": ids}).json()
        assert [s["id"] for s in http.get("/api/stacks").json()] == [stack["id"]]
        assert [s["id"] for s in http.get("/api/stacks", params={"primaryAssetId": ids[0]}).json()] == [stack["id"]]
        assert http.get("/api/stacks", params={"primaryAssetId": ids[1]}).json() == []
        primary = http.delete(f"/api/stacks/{stack['id']}/assets/{ids[0]}")
        assert primary.status_code == 400 and primary.json()["message"] == "Cannot remove stack's primary asset"
        assert http.delete(f"/api/stacks/{stack['id']}/assets/{ids[2]}").status_code == 204
        assert {a["id"] for a in http.get(f"/api/stacks/{stack['id']}").json()["assets"]} == set(ids[:2])
        outside = http.delete(f"/api/stacks/{stack['id']}/assets/{ids[2]}")
        assert outside.status_code == 400 and outside.json()["message"] == "Asset not in stack"
