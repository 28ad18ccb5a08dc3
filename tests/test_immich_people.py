"""Immich people and faces routes over the same clustered library the native tests use."""

from __future__ import annotations

import httpx
import pytest

from tests.immich_contract import SPEC_PATH, validate
from tests.test_faces import library  # noqa: F401  (module fixture: its own account and photos)

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _key(server, api_key: str) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, headers={"x-api-key": api_key}, timeout=30)


def test_people_and_faces_through_the_immich_api(server, library, make_account):  # noqa: F811
    from app.api import ids

    account, native_assets = library
    assets = {o: str(ids.decode(ids.ASSET, a)) for o, a in native_assets.items()}
    asset = assets[1]
    with _key(server, account.api_key) as http:
        assert http.get("/api/server/features").json()["facialRecognition"] is True
        listed = http.get("/api/people", params={"withHidden": "true"})
        assert listed.status_code == 200, listed.text
        validate("/people", "get", 200, listed.json())
        body = listed.json()
        assert (body["total"], body["hidden"], len(body["people"])) == (2, 0, 2)
        carol, dave = (p["id"] for p in body["people"])
        assert all(p["name"] == "" and p["thumbnailPath"] for p in body["people"])

        changed = http.put(f"/api/people/{carol}", json={"name": "Carol", "isFavorite": True, "color": "#ff0000",
                                                         "birthDate": "1990-04-01"})
        assert changed.status_code == 200, changed.text
        validate("/people/{id}", "put", 200, changed.json())
        assert (changed.json()["name"], changed.json()["isFavorite"], changed.json()["birthDate"]) == (
            "Carol", True, "1990-04-01")
        got = http.get(f"/api/people/{carol}")
        validate("/people/{id}", "get", 200, got.json())
        assert got.json()["color"] == "#ff0000"
        assert http.get(f"/api/people/{carol}/statistics").json() == {"assets": 8}
        thumb = http.get(f"/api/people/{carol}/thumbnail")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.headers["cache-control"] == "private, no-cache, no-transform"

        faces = http.get("/api/faces", params={"id": asset})
        assert faces.status_code == 200, faces.text
        validate("/faces", "get", 200, faces.json())
        assert len(faces.json()) == 2 and all(f["imageWidth"] == 840 and f["person"] for f in faces.json())
        detail = http.get(f"/api/assets/{asset}").json()
        validate("/assets/{id}", "get", 200, detail)
        assert sorted(p["id"] for p in detail["people"]) == sorted([carol, dave])
        found = http.post("/api/search/metadata", json={"personIds": [carol]}).json()
        assert sorted(a["id"] for a in found["assets"]["items"]) == sorted(assets.values())
        named = http.get("/api/search/person", params={"name": "car"})
        validate("/search/person", "get", 200, named.json())
        assert [p["id"] for p in named.json()] == [carol]

        # Reassign one of Carol's faces to Dave, then move it back with the bulk reassign.
        face = next(f for f in faces.json() if f["person"]["id"] == carol)
        moved = http.put(f"/api/faces/{face['id']}", json={"id": dave})
        assert moved.status_code == 200, moved.text
        validate("/faces/{id}", "put", 200, moved.json())
        assert http.get(f"/api/people/{carol}/statistics").json() == {"assets": 7}
        back = http.put(f"/api/people/{carol}/reassign", json={"data": [{"assetId": asset, "personId": dave}]})
        assert back.status_code == 200, back.text
        validate("/people/{id}/reassign", "put", 200, back.json())
        assert http.get(f"/api/people/{carol}/statistics").json() == {"assets": 8}

        # A hand-drawn face box, in the coordinates of a half-size image.
        created = http.post("/api/faces", json={"assetId": asset, "personId": carol, "imageWidth": 420,
                                                "imageHeight": 350, "x": 10, "y": 10, "width": 50, "height": 60})
        assert created.status_code == 201, created.text
        manual = [f for f in http.get("/api/faces", params={"id": asset}).json() if f["sourceType"] == "manual"]
        assert [(f["boundingBoxX1"], f["boundingBoxY1"], f["boundingBoxX2"], f["boundingBoxY2"]) for f in manual] == [
            (20, 20, 120, 140)]
        assert http.request("DELETE", f"/api/faces/{manual[0]['id']}", json={"force": False}).status_code == 204

        # Another user: nothing of Carol's is reachable, and nothing changes.
        other = make_account()
        with _key(server, other.api_key) as stranger:
            assert stranger.get("/api/people").json()["total"] == 0
            for method, path, kwargs in (
                ("GET", f"/api/people/{carol}", {}), ("GET", f"/api/people/{carol}/thumbnail", {}),
                ("GET", f"/api/people/{carol}/statistics", {}), ("GET", "/api/faces", {"params": {"id": asset}}),
                ("PUT", f"/api/people/{carol}", {"json": {"name": "Mallory"}}),
                ("PUT", f"/api/faces/{face['id']}", {"json": {"id": carol}}),
                ("DELETE", f"/api/people/{carol}", {}),
            ):
                response = stranger.request(method, path, **kwargs)
                assert response.status_code in (400, 403, 404), (method, path, response.status_code)
        assert http.get(f"/api/people/{carol}").json()["name"] == "Carol"

        merged = http.post(f"/api/people/{carol}/merge", json={"ids": [dave]})
        assert merged.status_code == 200, merged.text
        validate("/people/{id}/merge", "post", 200, merged.json())
        assert merged.json() == [{"id": dave, "success": True}]
        assert http.get(f"/api/people/{carol}/statistics").json() == {"assets": 8}
        assert http.delete(f"/api/people/{carol}").status_code == 204
        assert http.get(f"/api/people/{carol}").status_code in (400, 404)
