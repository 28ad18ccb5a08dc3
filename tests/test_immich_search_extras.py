"""Immich's search extras over HTTP with real photos (every 2xx body checked against the spec):
random, large-assets, statistics, places, explore, reverse-geocode, album map markers, folders."""

from __future__ import annotations

import time
import uuid

import pytest
import shortuuid

from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import SHARED_ASSETS, png_bytes
from tests.test_immich_upload import FIELDS

pytestmark = pytest.mark.skipif(not (SPEC_PATH.exists() and SHARED_ASSETS.exists()),
                                reason="the Immich spec or ../shared/test-assets is absent")
GPS_PHOTO = "metadata/dates/datetimeoriginal-gps.jpg"  # taken near Cedaredge, Colorado
NO_GPS_PHOTO = "metadata/gps-position/empty_gps.jpg"  # GPS tags with no position in them


def _upload(http, name: str, data: bytes, mime: str) -> str:
    r = http.post("/api/assets", files={"assetData": (name, data, mime)}, data=FIELDS)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _wait(account, http, ids: list[str], city: str | None = None) -> None:
    from tests.helpers import wait_processed

    for asset_id in ids:
        wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(asset_id)))
    deadline = time.time() + 60
    while city and time.time() < deadline:  # place names follow a position change in a job
        if all(http.get(f"/api/assets/{i}").json()["exifInfo"].get("city") == city for i in ids):
            return
        time.sleep(0.3)
    assert not city, f"no {city} for {ids}"


def test_search_map_and_folder_extras(server, account):
    from app.db import engine as db
    from tests.conftest import run

    with checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        gps = _upload(http, "cedaredge.jpg", (SHARED_ASSETS / GPS_PHOTO).read_bytes(), "image/jpeg")
        plain = _upload(http, "moto.jpg", (SHARED_ASSETS / NO_GPS_PHOTO).read_bytes(), "image/jpeg")
        pngs = [_upload(http, f"p{i}.png", png_bytes(3100 + i, 40 + 10 * i, 30), "image/png") for i in range(4)]
        _wait(account, http, [gps, plain, *pngs])
        for asset_id in pngs:  # four more photos in the same town, placed by hand
            assert http.put(f"/api/assets/{asset_id}", json={"latitude": 38.9, "longitude": -107.93}).status_code == 200
        _wait(account, http, [gps, *pngs], city="Cedaredge")
        everything = {gps, plain, *pngs}

        randoms = http.post("/api/search/random", json={})
        assert randoms.status_code == 200 and {a["id"] for a in randoms.json()} == everything
        assert len(http.post("/api/search/random", json={"size": 2}).json()) == 2
        assert [a["id"] for a in http.post("/api/search/random", json={"city": "Cedaredge", "type": "VIDEO"}).json()] == []
        assert http.post("/api/search/random", json={"size": 0}).status_code == 400

        large = http.post("/api/search/large-assets", params={"size": 3}).json()
        sizes = [a["exifInfo"]["fileSizeInByte"] for a in large]
        assert len(large) == 3 and sizes == sorted(sizes, reverse=True)
        above = http.post("/api/search/large-assets", params={"minFileSize": sizes[0] - 1}).json()
        assert [a["id"] for a in above] == [large[0]["id"]]
        refused = http.post("/api/search/large-assets", params={"ocr": "stop"})
        assert refused.status_code == 400 and "ocr" in refused.json()["message"]
        assert http.post("/api/search/large-assets", params={"isMotion": "true"}).json() == []
        assert http.post("/api/search/large-assets", params={"size": 3, "createdAfter": "2000-01-01T00:00:00Z"}).json() == large

        assert http.post("/api/search/statistics", json={}).json() == {"total": 6}
        assert http.post("/api/search/statistics", json={"city": "Cedaredge"}).json() == {"total": 5}

        places = http.get("/api/search/places", params={"name": "cedaredge"}).json()
        assert (places[0]["name"], places[0]["admin1name"]) == ("Cedaredge", "Colorado")
        assert http.get("/api/search/places").status_code == 400  # name is required

        here = http.get("/api/map/reverse-geocode", params={"lat": 39.0, "lon": -108.0}).json()
        assert here == [{"city": "Cedaredge", "state": "Colorado", "country": "United States"}]
        assert http.get("/api/map/reverse-geocode", params={"lat": 0, "lon": -30}).json() == []
        assert http.get("/api/map/reverse-geocode", params={"lat": 91, "lon": 0}).status_code == 400

        explore = http.get("/api/search/explore").json()
        assert [(i["value"], i["data"]["exifInfo"]["city"]) for i in explore[0]["items"]] == [("Cedaredge", "Cedaredge")]

        album = http.post("/api/albums", json={"albumName": "Colorado", "assetIds": [gps, plain]}).json()
        markers = http.get(f"/api/albums/{album['id']}/map-markers").json()
        assert [(m["id"], m["city"], m["state"]) for m in markers] == [(gps, "Cedaredge", "Colorado")]
        assert http.get(f"/api/albums/{uuid.uuid4()}/map-markers").status_code == 400
        with checked_client(base_url=server.immich_url, timeout=60) as visitor:  # album links
            for show, expected in ((True, [gps]), (False, [])):  # a link hiding metadata hides places
                link = http.post("/api/shared-links", json={"type": "ALBUM", "albumId": album["id"],
                                                            "showMetadata": show}).json()
                seen = visitor.get(f"/api/albums/{album['id']}/map-markers", params={"key": link["key"]})
                assert seen.status_code == 200 and [m["id"] for m in seen.json()] == expected
        in_album = http.post("/api/search/large-assets", params={"albumIds": album["id"]}).json()
        assert {a["id"] for a in in_album} == {gps, plain}
        assert http.post("/api/search/statistics", json={"albumIds": [album["id"]]}).json() == {"total": 2}

        paths = http.get("/api/view/folder/unique-paths").json()
        assert paths == sorted(paths) and all(not p.endswith("/") for p in paths)
        in_folders = [a["id"] for p in paths for a in http.get("/api/view/folder", params={"path": p}).json()]
        assert sorted(in_folders) == sorted(everything)

        # the trash and the locked folder leave every one of them
        run(db.execute("UPDATE assets SET visibility = 'locked' WHERE id = $1::uuid", pngs[0]))
        assert http.request("DELETE", "/api/assets", json={"ids": [pngs[1]]}).status_code == 204
        assert http.post("/api/search/statistics", json={}).json() == {"total": 4}
        assert {a["id"] for a in http.post("/api/search/random", json={}).json()} == everything - set(pngs[:2])
        assert http.get("/api/search/explore").json()[0]["items"] == []  # three photos left in Cedaredge
        assert http.post("/api/search/random", json={"visibility": "locked"}).status_code == 401
        in_folders = [a["id"] for p in http.get("/api/view/folder/unique-paths").json()
                      for a in http.get("/api/view/folder", params={"path": p}).json()]
        assert sorted(in_folders) == sorted(everything - set(pngs[:2]))
