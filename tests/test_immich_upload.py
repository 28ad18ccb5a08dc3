"""Immich upload contract: fields, statuses, checksum short-circuit, live photos, errors."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from tests.immich_contract import SPEC_PATH, validate
from tests.media import mp4_bytes, png_bytes

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")
FIELDS = {"fileCreatedAt": "2024-03-04T05:06:07.000Z", "fileModifiedAt": "2024-03-04T05:06:07.000Z",
          "deviceAssetId": "ignored", "deviceId": "ignored", "fileSize": "123", "isFavorite": "false"}


def _client(server, account) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60)


@needs_spec
def test_upload_created_then_duplicate(server, account):
    data = png_bytes(501)
    with _client(server, account) as http:
        first = http.post("/api/assets", files={"assetData": ("a.png", data, "image/png")}, data=FIELDS)
        assert first.status_code == 201, first.text
        validate("/assets", "post", 201, first.json())
        assert first.json()["status"] == "created"
        again = http.post("/api/assets", files={"assetData": ("b.png", data, "image/png")}, data=FIELDS)
        assert again.status_code == 200 and again.json() == {"id": first.json()["id"], "status": "duplicate"}
        validate("/assets", "post", 200, again.json())
    # The same asset through the native API: the Immich id is the native id's UUID.
    native = account.client.assets.list().data[0]
    import shortuuid

    assert str(shortuuid.decode(native.id[len("asset_"):])) == first.json()["id"]


def test_checksum_header_answers_before_the_body(server, account):
    data = png_bytes(502)
    sha1_hex = hashlib.sha1(data).hexdigest()
    with _client(server, account) as http:
        created = http.post("/api/assets", files={"assetData": ("c.png", data, "image/png")}, data=FIELDS).json()
        # A body that is not even multipart: only the header can have answered.
        for checksum in (sha1_hex, base64.b64encode(bytes.fromhex(sha1_hex)).decode()):
            r = http.post("/api/assets", content=b"never read", headers={"x-immich-checksum": checksum,
                                                                        "content-type": "text/plain"})
            assert r.status_code == 200 and r.json() == {"id": created["id"], "status": "duplicate"}


@needs_spec
def test_bulk_upload_check(server, account):
    data = png_bytes(503)
    sha1 = hashlib.sha1(data)
    with _client(server, account) as http:
        created = http.post("/api/assets", files={"assetData": ("d.png", data, "image/png")}, data=FIELDS).json()
        r = http.post("/api/assets/bulk-upload-check", json={"assets": [
            {"id": "x1", "checksum": sha1.hexdigest()},
            {"id": "x2", "checksum": base64.b64encode(sha1.digest()).decode()},
            {"id": "x3", "checksum": hashlib.sha1(b"new").hexdigest()},
        ]})
    assert r.status_code == 200
    validate("/assets/bulk-upload-check", "post", 200, r.json())
    results = {x["id"]: x for x in r.json()["results"]}
    assert results["x1"] == {"id": "x1", "action": "reject", "reason": "duplicate", "assetId": created["id"],
                             "isTrashed": False}
    assert results["x2"]["assetId"] == created["id"]
    assert results["x3"] == {"id": "x3", "action": "accept"}


def test_live_photo_favorite_and_hidden_motion_part(server, account):
    with _client(server, account) as http:
        motion = http.post("/api/assets", files={"assetData": ("live.mov", mp4_bytes(504), "video/quicktime")},
                           data={**FIELDS, "visibility": "hidden"}).json()
        still = http.post("/api/assets", files={"assetData": ("live.png", png_bytes(504), "image/png")},
                          data={**FIELDS, "livePhotoVideoId": motion["id"], "isFavorite": "true"})
        assert still.status_code == 201
        bad = http.post("/api/assets", files={"assetData": ("x.png", png_bytes(505), "image/png")},
                        data={**FIELDS, "livePhotoVideoId": "00000000-0000-4000-8000-000000000000"})
        assert bad.status_code == 400 and "livePhotoVideoId" in bad.json()["message"]
    from app.db import engine as db
    from tests.conftest import run

    rows = {r["original_file_name"]: r for r in run(db.fetch("SELECT * FROM assets WHERE owner_id = $1", account.user_id))}
    assert rows["live.mov"]["visibility"] == "hidden"
    assert str(rows["live.png"]["live_photo_video_id"]) == motion["id"] and rows["live.png"]["rating"] == 5


def test_errors_in_immichs_shape(server, account):
    from app.db import engine as db
    from tests.conftest import run

    with _client(server, account) as http:
        empty = http.post("/api/assets", files={"assetData": ("e.png", b"", "image/png")}, data=FIELDS)
        assert empty.status_code == 400 and empty.json() == {"message": "File is empty"}
        missing = http.post("/api/assets", files={"assetData": ("e.png", png_bytes(506), "image/png")},
                            data={"fileCreatedAt": FIELDS["fileCreatedAt"]})
        assert missing.status_code == 400 and missing.json()["message"] == "Validation failed"
        assert [e["path"] for e in missing.json()["errors"]] == [["fileModifiedAt"]]
        run(db.execute("UPDATE users SET storage_limit_bytes = 1 WHERE id = $1", account.user_id))
        full = http.post("/api/assets", files={"assetData": ("q.png", png_bytes(507), "image/png")}, data=FIELDS)
        assert full.status_code == 400 and full.json() == {"message": "Quota has been exceeded!"}
