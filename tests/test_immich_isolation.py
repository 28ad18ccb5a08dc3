"""Cross-user isolation on the Immich surface, through each way a client can authenticate."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import session_token
from tests.media import png_bytes
from tests.test_immich_upload import FIELDS

NOBODY = "00000000-0000-4000-8000-000000000000"


def _auth(kind: str, account) -> dict:
    if kind == "api-key":
        return {"headers": {"x-api-key": account.api_key}}
    token = session_token(account)
    if kind == "cookie":
        return {"cookies": {"immich_access_token": token}}
    return {"headers": {"Authorization": f"Bearer {token}"}}


@pytest.mark.parametrize("kind", ["cookie", "bearer", "api-key"])
def test_second_user_never_reaches_the_first_users_things(server, account, make_account, kind):
    base = server.immich_url
    owner = {"headers": {"x-api-key": account.api_key}}
    asset = httpx.post(f"{base}/api/assets", files={"assetData": ("p.png", png_bytes(2500), "image/png")},
                       data=FIELDS, **owner).json()["id"]
    album = httpx.post(f"{base}/api/albums", json={"albumName": f"Private {kind}", "assetIds": [asset]},
                       **owner).json()["id"]
    person = httpx.post(f"{base}/api/people", json={"name": f"Owner's friend {kind}"}, **owner).json()["id"]
    stranger = _auth(kind, make_account())
    with httpx.Client(base_url=base, timeout=30, **stranger) as http:
        attempts = [
            ("GET", f"/api/assets/{asset}", None),
            ("PUT", f"/api/assets/{asset}", {"isFavorite": True, "description": "mine now"}),
            ("GET", f"/api/assets/{asset}/thumbnail", None),
            ("GET", f"/api/assets/{asset}/original", None),
            ("GET", f"/api/assets/{asset}/video/playback", None),
            ("DELETE", "/api/assets", {"ids": [asset], "force": True}),
            ("POST", "/api/trash/restore/assets", {"ids": [asset]}),
            ("PUT", "/api/assets", {"ids": [asset], "isFavorite": True}),
            ("GET", f"/api/albums/{album}", None),
            ("PATCH", f"/api/albums/{album}", {"albumName": "stolen"}),
            ("PUT", f"/api/albums/{album}/assets", {"ids": [asset]}),
            ("DELETE", f"/api/albums/{album}/assets", {"ids": [asset]}),
            ("DELETE", f"/api/albums/{album}", None),
            ("POST", "/api/stacks", {"assetIds": [asset, NOBODY]}),
            ("GET", f"/api/people/{person}", None),
            ("PUT", f"/api/people/{person}", {"name": "stolen"}),
            ("GET", f"/api/people/{person}/thumbnail", None),
            ("GET", f"/api/people/{person}/statistics", None),
            ("POST", f"/api/people/{person}/merge", {"ids": [NOBODY]}),
            ("PUT", f"/api/people/{person}/reassign", {"data": []}),
            ("DELETE", f"/api/people/{person}", None),
            ("GET", f"/api/faces?id={asset}", None),
            ("POST", "/api/faces", {"assetId": asset, "personId": person, "imageWidth": 8, "imageHeight": 8,
                                    "x": 0, "y": 0, "width": 4, "height": 4}),
        ]
        for method, path, body in attempts:
            r = http.request(method, path, json=body)
            assert r.status_code in (400, 403, 404), (kind, method, path, r.status_code, r.text)
            assert asset not in r.text or method == "POST", (method, path, r.text)
        # Listings show nothing of the first user's.
        assert http.get("/api/albums").json() == []
        assert http.get("/api/people").json()["total"] == 0
        assert http.get("/api/assets/statistics").json()["total"] == 0
        assert http.get("/api/timeline/buckets").json() == []
        assert http.get("/api/map/markers").json() == []
        dup = http.post("/api/assets/bulk-upload-check", json={"assets": [{"id": "x", "checksum": "0" * 40}]})
        assert dup.json()["results"][0]["action"] == "accept"
    with httpx.Client(base_url=base, **owner) as http:
        mine = http.get(f"/api/assets/{asset}").json()
        assert (mine["isFavorite"], mine["isTrashed"], mine["exifInfo"]["description"]) == (False, False, "")
        got = http.get(f"/api/albums/{album}").json()
        assert got["albumName"] == f"Private {kind}" and got["assetCount"] == 1
        assert http.get(f"/api/people/{person}").json()["name"] == f"Owner's friend {kind}"
