"""Immich media routes: thumbnails, previews, originals, video playback, after Immich auth."""

from __future__ import annotations

import httpx
import pyvips

from tests.helpers import wait_processed
from tests.media import mp4_bytes, png_bytes
from tests.test_immich_upload import FIELDS


def _upload(server, account, name, data):
    r = httpx.post(f"{server.immich_url}/api/assets", headers={"x-api-key": account.api_key},
                   files={"assetData": (name, data, "application/octet-stream")}, data=FIELDS)
    assert r.status_code == 201, r.text
    immich_id = r.json()["id"]
    import uuid

    import shortuuid

    wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(immich_id)))
    return immich_id


def test_thumbnail_preview_original_and_range(server, account):
    image = pyvips.Image.black(900, 600).add([20, 80, 160]).cast("uchar").copy(interpretation="srgb")
    data = image.jpegsave_buffer()
    asset_id = _upload(server, account, "view.jpg", data)
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
        thumb = http.get(f"/api/assets/{asset_id}/thumbnail", params={"c": "ignored"})
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
        decoded = pyvips.Image.new_from_buffer(thumb.content, "")
        assert (decoded.width, decoded.height) == (375, 250) and "max-age=86400" in thumb.headers["cache-control"]
        preview = http.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "preview", "edited": "true"})
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
        full = http.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "fullsize"})
        assert full.status_code == 200 and full.content == data  # a JPEG original is its own full size
        original = http.get(f"/api/assets/{asset_id}/original")
        assert original.content == data and original.headers["content-disposition"].startswith("inline;")
        part = http.get(f"/api/assets/{asset_id}/original", headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and part.content == data[:10]
        assert http.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "huge"}).status_code == 400


def test_video_playback_streams_with_range(server, account):
    data = mp4_bytes(777)
    r = httpx.post(f"{server.immich_url}/api/assets", headers={"x-api-key": account.api_key},
                   files={"assetData": ("v.mp4", data, "video/mp4")}, data=FIELDS)
    asset_id = r.json()["id"]
    with httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
        part = http.get(f"/api/assets/{asset_id}/video/playback", headers={"Range": "bytes=4-11"})
        assert part.status_code == 206 and part.content == data[4:12] and part.headers["content-type"] == "video/mp4"


def test_media_of_another_user_is_not_found(server, account, make_account):
    asset_id = _upload(server, account, "mine.png", png_bytes(778))
    other = make_account()
    for path in (f"/api/assets/{asset_id}/thumbnail", f"/api/assets/{asset_id}/original",
                 f"/api/assets/{asset_id}/video/playback"):
        r = httpx.get(f"{server.immich_url}{path}", headers={"x-api-key": other.api_key})
        assert r.status_code == 400 and r.json() == {"message": "Not found or no asset.read access"}
    assert httpx.get(f"{server.immich_url}/api/assets/{asset_id}/original").status_code == 401
