"""Immich's POST /api/search/metadata over HTTP (every 2xx body checked against the spec): an item
carries exifInfo only with withExif and never a stack, as Immich's search does; filters and the
page numbers (nextPage) still hold."""

from __future__ import annotations

import uuid

import pytest
import shortuuid

from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import png_bytes
from tests.test_immich_upload import FIELDS

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich spec is absent")


def test_exif_only_when_asked_and_pages_that_follow_on(server, account):
    from tests.helpers import wait_processed

    with checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        made = []
        for i in range(3):
            r = http.post("/api/assets", files={"assetData": (f"m{i}.png", png_bytes(7100 + i, 32, 24), "image/png")},
                          data=FIELDS)
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
        for asset_id in made:
            wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(asset_id)))

        def search(**body) -> dict:
            r = http.post("/api/search/metadata", json=body)
            assert r.status_code == 200, r.text
            return r.json()["assets"]

        lean = search()
        assert {a["id"] for a in lean["items"]} == set(made) and lean["nextPage"] is None
        for item in lean["items"]:
            assert "exifInfo" not in item and "stack" not in item and item["people"] == []
            assert item["hasMetadata"] is True
        assert all("exifInfo" not in a for a in search(withExif=False)["items"])

        full = search(withExif=True, withPeople=True)
        assert [a["id"] for a in full["items"]] == [a["id"] for a in lean["items"]]
        for with_exif, without in zip(full["items"], lean["items"]):
            assert with_exif["exifInfo"]["fileSizeInByte"] > 0 and with_exif["people"] == []
            assert {k: v for k, v in with_exif.items() if k != "exifInfo"} == without
        detail = http.get(f"/api/assets/{made[0]}").json()
        listed = next(a for a in full["items"] if a["id"] == made[0])
        assert listed["exifInfo"] == detail["exifInfo"]

        first, second = search(size=2), search(size=2, page=2)
        assert (first["count"], first["nextPage"], second["count"], second["nextPage"]) == (2, "2", 1, None)
        assert [a["id"] for a in first["items"] + second["items"]] == [a["id"] for a in lean["items"]]
        oldest_first = search(order="asc", withExif=True)["items"]
        assert [a["id"] for a in oldest_first] == [a["id"] for a in reversed(lean["items"])]
        assert search(type="VIDEO")["items"] == []
        assert search(originalFileName="m1")["items"][0]["id"] == made[1]

        # Row times (inclusive, as Immich), live photos, transcoded copies and several albums (an
        # asset in all of them); a trash bound looks at trashed assets without withDeleted.
        uploaded = http.get(f"/api/assets/{made[1]}").json()["createdAt"]
        assert {a["id"] for a in search(createdAfter=uploaded)["items"]} >= {made[1]}
        assert search(createdBefore="2000-01-01T00:00:00.000Z")["items"] == []
        assert search(updatedAfter="2999-01-01T00:00:00.000Z")["items"] == []
        assert search(isMotion=True)["items"] == [] and len(search(isMotion=False)["items"]) == 3
        assert search(isEncoded=True)["items"] == [] and len(search(isEncoded=False)["items"]) == 3
        albums = [http.post("/api/albums", json={"albumName": n, "assetIds": ids}).json()["id"]
                  for n, ids in (("a", made[:2]), ("b", made[1:]))]
        assert [a["id"] for a in search(albumIds=albums)["items"]] == [made[1]]
        missing = http.post("/api/search/metadata", json={"albumIds": [albums[0], str(uuid.uuid4())]})
        assert (missing.status_code, missing.json()["message"]) == (400, "Not found or no album.read access")
        assert http.request("DELETE", "/api/assets", json={"ids": [made[2]]}).status_code == 204
        assert [a["id"] for a in search(trashedAfter="2000-01-01T00:00:00.000Z")["items"]] == [made[2]]
        assert http.post("/api/search/metadata", json={"ocr": "text"}).status_code == 400
