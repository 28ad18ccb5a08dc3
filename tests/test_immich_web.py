"""Immich routes the web client uses: albums by id, timeline buckets and bucket contents, map markers."""

from __future__ import annotations

import httpx
import pytest

from tests.immich_contract import SPEC_PATH, validate
from tests.media import png_bytes
from tests.test_immich_upload import FIELDS

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _processed(account, immich_ids):
    import uuid

    import shortuuid

    from tests.helpers import wait_processed

    for immich_id in immich_ids:
        wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(immich_id)))


def _up(http, name, seed, created):
    r = http.post("/api/assets", files={"assetData": (name, png_bytes(seed, 30, 20), "image/png")},
                  data={**FIELDS, "fileCreatedAt": created, "fileModifiedAt": created})
    assert r.status_code == 201
    return r.json()["id"]


@needs_spec
def test_albums_by_id(server, account):
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
        a = _up(http, "a.png", 1601, "2023-01-05T10:00:00Z")
        b = _up(http, "b.png", 1602, "2023-01-06T10:00:00Z")
        created = http.post("/api/albums", json={"albumName": "Trip", "assetIds": [a, b]})
        assert created.status_code == 201
        album_id = created.json()["id"]
        got = http.get(f"/api/albums/{album_id}")
        validate("/albums/{id}", "get", 200, got.json())
        assert got.json()["assetCount"] == 2
        patched = http.patch(f"/api/albums/{album_id}", json={"albumName": "Trip 2023", "albumThumbnailAssetId": a})
        validate("/albums/{id}", "patch", 200, patched.json())
        assert (patched.json()["albumName"], patched.json()["albumThumbnailAssetId"]) == ("Trip 2023", a)
        removed = http.request("DELETE", f"/api/albums/{album_id}/assets", json={"ids": [a, "00000000-0000-4000-8000-000000000001"]})
        validate("/albums/{id}/assets", "delete", 200, removed.json())
        assert [x["success"] for x in removed.json()] == [True, False]
        stats = http.get("/api/albums/statistics").json()
        validate("/albums/statistics", "get", 200, stats)
        assert stats == {"owned": 1, "shared": 0, "notShared": 1}
        assert http.delete(f"/api/albums/{album_id}").status_code == 204
        assert http.get(f"/api/albums/{album_id}").status_code == 400  # Immich: not found or no access


@needs_spec
def test_timeline_and_map(server, account):
    from app.db import engine as db
    from tests.conftest import run

    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
        jan = [_up(http, f"j{i}.png", 1700 + i, f"2022-01-{10 + i}T08:00:00Z") for i in range(3)]
        mar = _up(http, "m.png", 1710, "2022-03-02T08:00:00Z")
        hidden = http.post("/api/assets", files={"assetData": ("h.png", png_bytes(1711), "image/png")},
                           data={**FIELDS, "fileCreatedAt": "2022-03-03T08:00:00Z", "visibility": "hidden"})
        assert hidden.status_code == 201
        http.put(f"/api/assets/{jan[0]}", json={"isFavorite": True})
        _processed(account, [*jan, mar])  # dimensions (and so ratios) come from the metadata step
        buckets = http.get("/api/timeline/buckets")
        validate("/timeline/buckets", "get", 200, buckets.json())
        assert buckets.json() == [{"timeBucket": "2022-03-01", "count": 1}, {"timeBucket": "2022-01-01", "count": 3}]
        favorites = http.get("/api/timeline/buckets", params={"isFavorite": "true"}).json()
        assert favorites == [{"timeBucket": "2022-01-01", "count": 1}]
        bucket = http.get("/api/timeline/bucket", params={"timeBucket": "2022-01-01", "withCoordinates": "true"})
        validate("/timeline/bucket", "get", 200, bucket.json())
        body = bucket.json()
        assert body["id"] == list(reversed(jan)) and body["isFavorite"] == [False, False, True]
        assert body["ratio"] == [1.5, 1.5, 1.5] and all(body["isImage"])
        assert http.get("/api/timeline/bucket", params={"timeBucket": "2022-03-01"}).json()["id"] == [mar]
        run(db.execute("UPDATE assets SET latitude = 48.85, longitude = 2.35 WHERE id = $1::uuid", mar))
        markers = http.get("/api/map/markers").json()
        validate("/map/markers", "get", 200, markers)
        assert [(m["id"], m["lat"], m["lon"]) for m in markers] == [(mar, 48.85, 2.35)]


@needs_spec
def test_metadata_search(server, account):
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
        a = _up(http, "beach-day.png", 1901, "2021-07-01T10:00:00Z")
        b = _up(http, "city-night.png", 1902, "2021-08-01T22:00:00Z")
        http.put(f"/api/assets/{a}", json={"isFavorite": True, "description": "waves at dusk"})
        by_name = http.post("/api/search/metadata", json={"originalFileName": "beach"})
        validate("/search/metadata", "post", 200, by_name.json())
        assert [x["id"] for x in by_name.json()["assets"]["items"]] == [a]
        assert [x["id"] for x in http.post("/api/search/metadata", json={"isFavorite": True}).json()["assets"]["items"]] == [a]
        assert [x["id"] for x in http.post("/api/search/metadata", json={"description": "DUSK"}).json()["assets"]["items"]] == [a]
        taken = http.post("/api/search/metadata", json={"takenAfter": "2021-07-15T00:00:00.000Z"}).json()
        assert [x["id"] for x in taken["assets"]["items"]] == [b]
        paged = http.post("/api/search/metadata", json={"size": 1, "order": "asc"}).json()["assets"]
        assert paged["count"] == 1 and paged["nextPage"] == "2"
        refused = http.post("/api/search/metadata", json={"ocr": "text"})  # no OCR model: refused, not ignored
        assert refused.status_code == 400 and "ocr" in refused.json()["message"]


@needs_spec
def test_suggestions_cities_and_explore(server, account):
    from tests.helpers import wait_processed

    if not SPEC_PATH.exists():
        pytest.skip("spec absent")
    from tests.media import SHARED_ASSETS

    if not SHARED_ASSETS.exists():
        pytest.skip("shared test assets are not present")
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
        data = (SHARED_ASSETS / "metadata/dates/datetimeoriginal-gps.jpg").read_bytes()
        r = http.post("/api/assets", files={"assetData": ("co.jpg", data, "image/jpeg")}, data=FIELDS)
        import uuid as _uuid

        import shortuuid

        wait_processed(account, "asset_" + shortuuid.encode(_uuid.UUID(r.json()["id"])))
        countries = http.get("/api/search/suggestions", params={"type": "country"})
        validate("/search/suggestions", "get", 200, countries.json())
        assert countries.json() == ["United States"]
        assert http.get("/api/search/suggestions", params={"type": "state", "country": "United States"}).json() == ["Colorado"]
        cities = http.get("/api/search/cities").json()
        validate("/search/cities", "get", 200, cities)
        assert [c["exifInfo"]["city"] for c in cities] == ["Cedaredge"]
        explore = http.get("/api/search/explore").json()
        validate("/search/explore", "get", 200, explore)
        # Immich's explore strip names a city once it holds 5 photos (tests/test_immich_search_extras.py)
        assert explore == [{"fieldName": "exifInfo.city", "items": []}]
        assert http.get("/api/search/suggestions", params={"type": "planet"}).status_code == 400
