"""The effective asset, one definition read everywhere: rating (the user's, else the file's), favorite
(a rating of 5) and the capture instant, as the native API, Immich's responses, Immich's sync stream
and both APIs' filters see them."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import run
from tests.helpers import session_token, wait_processed
from tests.immich_contract import SPEC_PATH
from tests.media import png_bytes

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _xmp(rating: int) -> bytes:
    return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="%d"/></rdf:RDF></x:xmpmeta>'
            % rating)


def _native_upload(account, name: str, seed: int, created: str, rating: int | None = None) -> str:
    files = {"asset_data": (name, png_bytes(seed), "image/png")}
    if rating is not None:
        files["sidecar_data"] = (name + ".xmp", _xmp(rating), "application/xml")
    with account.http() as http:
        r = http.post("/api/assets", files=files, data={"device_asset_id": name, "device_id": "pytest",
                                                        "file_created_at": created, "file_modified_at": created})
    assert r.status_code == 201, r.text
    wait_processed(account, r.json()["id"])
    return r.json()["id"]


def _bare(native_id: str) -> str:
    from app.api import ids

    return str(ids.decode(ids.ASSET, native_id))


def _native_id(bare: str) -> str:
    from app.api import ids

    return ids.encode(ids.ASSET, uuid.UUID(bare))


def _sync_assets(server, account) -> tuple[dict, dict]:
    """AssetV2 and AssetExifV1 lines of a first sync, by asset id."""
    with httpx.Client(base_url=server.immich_url, cookies={"immich_access_token": session_token(account)},
                      timeout=60) as http:
        r = http.post("/api/sync/stream", json={"types": ["AssetsV2", "AssetExifsV1"]})
    assert r.status_code == 200, r.text
    lines = [json.loads(raw) for raw in r.text.splitlines() if raw]
    assets = {line["data"]["id"]: line["data"] for line in lines if line["type"] == "AssetV2"}
    exifs = {line["data"]["assetId"]: line["data"] for line in lines if line["type"] == "AssetExifV1"}
    return assets, exifs


@needs_spec
def test_rating_and_favorite_have_one_definition(server, account):
    when = "2024-01-01T00:00:00Z"
    rated5 = _native_upload(account, "five.png", 8101, when, rating=5)
    rated3 = _native_upload(account, "three.png", 8102, when, rating=3)
    unrated = _native_upload(account, "none.png", 8103, when)
    rejected = _native_upload(account, "rejected.png", 8104, when, rating=-1)  # XMP's "rejected": unrated
    five, three, none, rej = (_bare(i) for i in (rated5, rated3, unrated, rejected))

    # The file's rating is stored once, on the asset.
    from app.db import engine as db

    columns = run(db.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 'asset_exif'"))
    assert "rating" not in {c["column_name"] for c in columns}

    c = account.client
    assert [c.assets.retrieve(i).metadata.rating for i in (rated5, rated3, rejected)] == [5, 3, 0]
    assert {r.asset.id for r in c.search.search(ratings=[5]).data} == {rated5}
    assert {r.asset.id for r in c.search.search(ratings=[0]).data} == {unrated, rejected}

    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        def shown(asset_id):
            body = http.get(f"/api/assets/{asset_id}").json()
            return body["isFavorite"], body["exifInfo"]["rating"]

        def favorites(flag):
            found = http.post("/api/search/metadata", json={"isFavorite": flag}).json()["assets"]["items"]
            return {x["id"] for x in found}

        def count(flag):
            return http.get("/api/assets/statistics", params={"isFavorite": flag}).json()["total"]

        assert [shown(i) for i in (five, three, none)] == [(True, 5), (False, 3), (False, None)]
        assert favorites(True) == {five} and favorites(False) == {three, none, rej}
        assert (count("true"), count("false")) == (1, 3)  # unrated assets are not favorites either
        buckets = http.get("/api/timeline/buckets", params={"isFavorite": "true"}).json()
        assert sum(b["count"] for b in buckets) == 1

        assets, exifs = _sync_assets(server, account)
        assert {i for i, a in assets.items() if a["isFavorite"]} == {five}
        assert (exifs[five]["rating"], exifs[three]["rating"], exifs[none]["rating"]) == (5, 3, None)

        # The user's rating wins over the file's; un-favoriting clears it, so the file's shows again.
        assert http.put(f"/api/assets/{five}", json={"rating": 2}).status_code == 200
        assert shown(five) == (False, 2) and c.assets.retrieve(rated5).metadata.rating == 2
        assert http.put(f"/api/assets/{three}", json={"isFavorite": True}).status_code == 200
        assert shown(three) == (True, 5) and c.assets.retrieve(rated3).metadata.rating == 5
        assert favorites(True) == {three} and count("true") == 1
        assert http.put("/api/assets", json={"ids": [three], "isFavorite": False}).status_code == 204
        assert shown(three) == (False, 3)
        assert http.put(f"/api/assets/{five}", json={"rating": None}).status_code == 200
        assert shown(five) == (True, 5)
        assets, exifs = _sync_assets(server, account)
        assert {i for i, a in assets.items() if a["isFavorite"]} == {five} and exifs[three]["rating"] == 3


@needs_spec
def test_capture_instant_has_one_definition(server, account):
    # A wall clock with its offset, and one without (read as UTC).
    aware = _bare(_native_upload(account, "aware.png", 8201, "2021-06-01T12:00:00+02:00"))
    naive = _bare(_native_upload(account, "naive.png", 8202, "2021-06-01T11:00:00"))
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        a, n = (http.get(f"/api/assets/{i}").json() for i in (aware, naive))
        assert (a["fileCreatedAt"], a["localDateTime"]) == ("2021-06-01T10:00:00Z", "2021-06-01T12:00:00Z")
        assert (n["fileCreatedAt"], n["localDateTime"]) == ("2021-06-01T11:00:00Z", "2021-06-01T11:00:00Z")

        def taken(after, before):
            body = {"takenAfter": after, "takenBefore": before}
            return {x["id"] for x in http.post("/api/search/metadata", json=body).json()["assets"]["items"]}

        assert taken("2021-06-01T09:59:00Z", "2021-06-01T10:01:00Z") == {aware}
        assert taken("2021-06-01T10:59:00Z", "2021-06-01T11:01:00Z") == {naive}
        # The user's capture time moves the instant with it, and clearing it moves it back.
        assert http.put(f"/api/assets/{aware}", json={"dateTimeOriginal": "2020-01-02T03:04:05Z"}).status_code == 200
        assert http.get(f"/api/assets/{aware}").json()["fileCreatedAt"] == "2020-01-02T03:04:05Z"
        assert taken("2020-01-02T03:00:00Z", "2020-01-02T03:10:00Z") == {aware}
        assets, _ = _sync_assets(server, account)
        assert assets[aware]["fileCreatedAt"] == "2020-01-02T03:04:05Z"
        assert assets[naive]["fileCreatedAt"] == "2021-06-01T11:00:00Z"
        # Immich's DTO has no null here (it answers 400), so the edit is cleared natively.
        assert http.put(f"/api/assets/{aware}", json={"dateTimeOriginal": None}).status_code == 400
        with account.http() as native:
            cleared = native.patch(f"/api/assets/{_native_id(aware)}", json={"original_datetime": None})
            assert cleared.status_code == 200, cleared.text
        assert http.get(f"/api/assets/{aware}").json()["fileCreatedAt"] == "2021-06-01T10:00:00Z"
