"""Immich downloads over the Immich listener: an album's download info, then its archive streamed as a
zip whose files equal the originals; a shared link with and without downloads allowed; a stranger's
asset refused with Immich's error. Every 2xx JSON body is checked against the 3.1.0 spec."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from tests.helpers import wait_processed
from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import mp4_bytes, png_bytes
from tests.test_immich_edits import PHOTO, _native, _size
from tests.test_immich_upload import FIELDS

needs_spec = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


def _client(server, account=None):
    headers = {"x-api-key": account.api_key} if account is not None else {}
    return checked_client(base_url=server.immich_url, headers=headers, timeout=60)


def _upload(http, name: str, data: bytes, **fields) -> str:
    r = http.post("/api/assets", files={"assetData": (name, data, "application/octet-stream")},
                  data={**FIELDS, "deviceAssetId": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _unzip(response) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert int(response.headers["content-length"]) == len(response.content)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None  # every CRC-32 checks out
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
        return {i.filename: archive.read(i) for i in archive.infolist()}


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _refused(response, message: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["message"] == message


@needs_spec
def test_an_album_downloads_as_a_zip_of_its_originals_with_live_photo_parts(server, account):
    originals = {"beach.png": png_bytes(7100, 40, 30), "beach.png+": png_bytes(7101, 30, 40),
                 "dunes.png": png_bytes(7102), "live.mov": mp4_bytes(7103), "live.png": png_bytes(7104)}
    with _client(server, account) as http:
        beach = _upload(http, "beach.png", originals["beach.png"])
        beach_again = _upload(http, "beach.png", originals["beach.png+"])
        dunes = _upload(http, "dunes.png", originals["dunes.png"])
        motion = _upload(http, "live.mov", originals["live.mov"], visibility="hidden")
        live = _upload(http, "live.png", originals["live.png"], livePhotoVideoId=motion)
        _upload(http, "elsewhere.png", png_bytes(7105))  # not in the album
        album = http.post("/api/albums", json={"albumName": "Coast", "assetIds": [beach, beach_again, dunes, live]})
        assert album.status_code == 201, album.text

        info = http.post("/api/download/info", json={"albumId": album.json()["id"]})
        assert info.status_code == 201, info.text
        [part] = info.json()["archives"]
        # The motion part of the live photo comes after the album's own assets.
        assert sorted(part["assetIds"][:4]) == sorted([beach, beach_again, dunes, live])
        assert part["assetIds"][4] == motion
        assert part["size"] == info.json()["totalSize"] == sum(len(b) for b in originals.values())

        # A small target size splits the parts: each closes once it grows past the target.
        small = http.post("/api/download/info", json={"albumId": album.json()["id"], "archiveSize": 1})
        assert [len(a["assetIds"]) for a in small.json()["archives"]] == [1, 1, 1, 1, 1]

        files = _unzip(http.post("/api/download/archive", json={"assetIds": part["assetIds"]}))
        assert sorted(files) == ["beach+1.png", "beach.png", "dunes.png", "live.mov", "live.png"]
        expected = {_sha1(b) for b in originals.values()}
        assert {_sha1(b) for b in files.values()} == expected
        assert {files["beach.png"], files["beach+1.png"]} == {originals["beach.png"], originals["beach.png+"]}

        # The caller's own timeline: everything but the hidden motion part, which follows its photo.
        mine = http.post("/api/download/info", json={"userId": str(account.user_id)})
        assert mine.status_code == 201, mine.text
        assert mine.json()["archives"][0]["assetIds"][-1] == motion and len(mine.json()["archives"][0]["assetIds"]) == 6

        assert http.post("/api/download/info", json={"assetIds": []}).json() == {"archives": [], "totalSize": 0}
        _refused(http.post("/api/download/info", json={}), "assetIds, albumId, or userId is required")


@needs_spec
def test_shared_links_download_only_when_allowed_and_strangers_are_refused(server, account, make_account):
    stranger = make_account()
    with _client(server, account) as alice, _client(server, stranger) as s, _client(server) as visitor:
        photo = _upload(alice, "cabin.png", png_bytes(7200))
        other = _upload(alice, "private.png", png_bytes(7201))
        album = alice.post("/api/albums", json={"albumName": "Cabin", "assetIds": [photo]}).json()["id"]

        allowed = alice.post("/api/shared-links", json={"type": "ALBUM", "albumId": album})
        assert allowed.status_code == 201, allowed.text
        key = {"key": allowed.json()["key"]}
        info = visitor.post("/api/download/info", params=key, json={"albumId": album})
        assert info.status_code == 201, info.text
        assert info.json()["archives"][0]["assetIds"] == [photo]
        files = _unzip(visitor.post("/api/download/archive", params=key, json={"assetIds": [photo]}))
        assert files == {"cabin.png": png_bytes(7200)}
        # Only what the link shows: not the owner's other photos, nor the owner's timeline.
        _refused(visitor.post("/api/download/archive", params=key, json={"assetIds": [photo, other]}),
                 "Not found or no asset.download access")
        _refused(visitor.post("/api/download/info", params=key, json={"userId": str(account.user_id)}),
                 "Not found or no timeline.download access")

        closed = alice.post("/api/shared-links", json={"type": "ALBUM", "albumId": album, "allowDownload": False})
        assert closed.status_code == 201 and closed.json()["allowDownload"] is False
        closed_key = {"key": closed.json()["key"]}
        assert visitor.get(f"/api/albums/{album}", params=closed_key).status_code == 200  # it still shows the album
        _refused(visitor.post("/api/download/info", params=closed_key, json={"albumId": album}),
                 "Not found or no album.download access")
        _refused(visitor.post("/api/download/archive", params=closed_key, json={"assetIds": [photo]}),
                 "Not found or no asset.download access")

        # Another user's asset, album or timeline: Immich's 400, the same as for one that does not exist.
        _refused(s.post("/api/download/archive", json={"assetIds": [photo]}), "Not found or no asset.download access")
        _refused(s.post("/api/download/info", json={"assetIds": [photo]}), "Not found or no asset.download access")
        _refused(s.post("/api/download/info", json={"albumId": album}), "Not found or no album.download access")
        _refused(s.post("/api/download/info", json={"userId": str(account.user_id)}),
                 "Not found or no timeline.download access")
        bad = s.post("/api/download/archive", json={"assetIds": ["not-a-uuid"]})
        assert bad.status_code == 400 and bad.json()["message"] == "Validation failed"


@needs_spec
def test_an_edited_archive_holds_the_current_rendering_under_the_original_name(server, account):
    original = PHOTO.read_bytes()
    with _client(server, account) as http:
        photo = _upload(http, "rocks.jpg", original)
        plain = _upload(http, "plain.png", png_bytes(7300))
        wait_processed(account, _native(photo))
        crop = [{"action": "crop", "parameters": {"x": 12, "y": 21, "width": 300, "height": 200}}]
        r = http.put(f"/api/assets/{photo}/edits", json={"edits": crop})
        assert r.status_code == 200, r.text

        edited = _unzip(http.post("/api/download/archive", json={"assetIds": [photo, plain], "edited": True}))
        assert sorted(edited) == ["plain.png", "rocks.jpg"]
        assert edited["rocks.jpg"] != original and _size(edited["rocks.jpg"]) == (300, 200)
        assert edited["plain.png"] == png_bytes(7300)  # an unedited asset: its original
        for body in ({"assetIds": [photo]}, {"assetIds": [photo], "edited": False}):
            assert _unzip(http.post("/api/download/archive", json=body)) == {"rocks.jpg": original}
        # Immich's download info has no `edited`: it sizes the originals.
        info = http.post("/api/download/info", json={"assetIds": [photo]})
        assert info.status_code == 201 and info.json()["totalSize"] == len(original)
