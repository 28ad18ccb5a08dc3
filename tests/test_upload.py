"""POST /api/assets: the upload contract, driven through gumnut-sdk."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading

import httpx
import pytest

from tests.helpers import asset_rows, event_rows, originals, temp_files, upload
from tests.media import SHARED_ASSETS, mp4_bytes, png_bytes

ASSET_FIELDS = {
    "id": str, "created_at": str, "updated_at": str, "current_version_id": str, "kind": str, "mime_type": str,
    "original_file_name": str, "file_size_bytes": int, "local_datetime": str, "width": (int, type(None)),
    "height": (int, type(None)), "duration": (float, type(None)), "thumbhash": (str, type(None)),
    "description": (str, type(None)), "quality_score": (float, type(None)), "stack_id": (str, type(None)),
    "trashed_at": (str, type(None)), "asset_urls": dict, "metadata": (dict, type(None)), "faces": (list, type(None)),
    "people": (list, type(None)), "file_data": dict, "checksum": str, "checksum_sha1": str, "device_asset_id": str,
    "device_id": str, "file_created_at": str, "file_modified_at": str,
}
FILE_DATA_FIELDS = {"checksum", "checksum_sha1", "device_asset_id", "device_id", "file_created_at",
                    "file_modified_at", "file_size_bytes"}


def test_ping_needs_no_auth_and_tolerates_a_header(server):
    assert httpx.get(f"{server.base_url}/api/server/ping").text == "pong"
    r = httpx.get(f"{server.base_url}/api/server/ping", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 200 and r.text == "pong" and r.headers["content-type"].startswith("text/plain")


def test_new_upload_is_201_with_the_full_asset_shape(account, server):
    data = png_bytes(1)
    raw = upload(account, "IMG_0001.png", data, created=dt.datetime(2026, 5, 4, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=10))))
    assert raw.status_code == 201
    body = raw.http_response.json()
    for name, kind in ASSET_FIELDS.items():
        assert name in body, name
        assert isinstance(body[name], kind), (name, body[name])
    assert set(body["file_data"]) == FILE_DATA_FIELDS
    assert body["id"].startswith("asset_") and len(body["id"]) == len("asset_") + 22
    assert body["current_version_id"].startswith("asset_version_")
    assert body["kind"] == "original"
    assert body["mime_type"] == "image/png"
    assert body["original_file_name"] == "IMG_0001.png"
    assert body["file_size_bytes"] == len(data) == body["file_data"]["file_size_bytes"]
    assert body["checksum"] == base64.b64encode(hashlib.sha256(data).digest()).decode() == body["file_data"]["checksum"]
    assert body["checksum_sha1"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert body["local_datetime"] == "2026-05-04T10:30:00+10:00"
    assert body["file_data"]["file_created_at"] == "2026-05-04T10:30:00+10:00"
    assert body["metadata"] is None and body["thumbhash"] is None and body["width"] is None
    original = body["asset_urls"]["original"]
    assert original["url"].startswith(server.base_url + "/media/assets/" + body["id"])
    assert original["mimetype"] == "image/png"
    # The id is a version-4 UUID underneath, as Immich requires.
    import shortuuid, uuid as _uuid
    assert _uuid.UUID(str(shortuuid.decode(body["id"][6:]))).version == 4


def test_same_bytes_again_is_200_with_the_same_asset(account, server):
    data = png_bytes(2)
    first = upload(account, "a.png", data)
    again = upload(account, "renamed.png", data, device_asset_id="other")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.parse().id == first.parse().id
    assert again.parse().original_file_name == "a.png"
    assert len(asset_rows(account.user_id)) == 1


def test_concurrent_uploads_of_the_same_bytes_make_one_asset(account, server):
    data = png_bytes(3, 64, 64)
    results = []

    def go(i):
        raw = upload(account, f"same-{i}.png", data)
        results.append((raw.status_code, raw.parse().id))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    codes = sorted(code for code, _ in results)
    assert codes == [200] * 7 + [201]
    assert len({asset_id for _, asset_id in results}) == 1
    rows = asset_rows(account.user_id)
    assert len(rows) == 1
    assert sum(1 for p in originals(server.data_dir) if rows[0]["id"].hex in p.name) == 1


def test_upload_writes_its_change_event_in_the_same_transaction(account):
    upload(account, "evt.png", png_bytes(4))
    events = [e for e in event_rows(account.user_id) if e["entity_type"] == "asset"]
    assert [(e["event_type"]) for e in events] == ["asset_created"]
    assert events[0]["txid"] > 0


@pytest.mark.parametrize(
    "relative, mime",
    [
        ("formats/jpg/el_torcal_rocks.jpg", "image/jpeg"),
        ("formats/heic/IMG_2682.heic", "image/heic"),
        ("formats/avif/8bit-sRGB.avif", "image/avif"),
        ("formats/webp/denali.webp", "image/webp"),
        ("formats/png/density_plot.png", "image/png"),
        ("formats/jxl/8bit-sRGB.jxl", "image/jxl"),
    ],
)
def test_real_photo_formats_are_accepted(account, relative, mime):
    path = SHARED_ASSETS / relative
    if not SHARED_ASSETS.exists():
        pytest.skip("shared test assets are not present")
    raw = upload(account, path.name, path.read_bytes())
    assert raw.status_code == 201
    assert raw.parse().mime_type == mime


def test_jpeg_under_two_extensions_is_one_asset(account):
    if not SHARED_ASSETS.exists():
        pytest.skip("shared test assets are not present")
    a = upload(account, "el.jpeg", (SHARED_ASSETS / "formats/jpeg/el_torcal_rocks.jpeg").read_bytes())
    b = upload(account, "el.jpg", (SHARED_ASSETS / "formats/jpg/el_torcal_rocks.jpg").read_bytes())
    assert (a.status_code, b.status_code) == (201, 200)
    assert b.parse().file_data.checksum_sha1 == base64.b64encode(bytes.fromhex("b69964e7c968e737ef35b7b30cf7d79640a48637")).decode()


def test_video_upload(account):
    raw = upload(account, "clip.mp4", mp4_bytes(7))
    assert raw.status_code == 201
    assert raw.parse().mime_type == "video/mp4"


def _raw_multipart(account, files=None, data=None):
    with account.http() as http:
        return http.post("/api/assets", files=files, data=data)


GOOD_FIELDS = {
    "device_asset_id": "x", "device_id": "pytest",
    "file_created_at": "2024-01-01T00:00:00Z", "file_modified_at": "2024-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    "case, files, fields",
    [
        ("missing asset_data", None, GOOD_FIELDS),
        ("empty file", {"asset_data": ("e.png", b"", "image/png")}, GOOD_FIELDS),
        ("text pretending to be a jpeg", {"asset_data": ("notes.jpg", b"just some text\n" * 100, "image/jpeg")}, GOOD_FIELDS),
        ("non-media extension", {"asset_data": ("doc.txt", png_bytes(9), "text/plain")}, GOOD_FIELDS),
        ("no extension", {"asset_data": ("noext", png_bytes(10), "image/png")}, GOOD_FIELDS),
        ("malformed date", {"asset_data": ("d.png", png_bytes(11), "image/png")}, {**GOOD_FIELDS, "file_created_at": "yesterday"}),
        ("missing device id", {"asset_data": ("d.png", png_bytes(12), "image/png")}, {k: v for k, v in GOOD_FIELDS.items() if k != "device_id"}),
    ],
)
def test_bad_uploads_are_422_and_store_nothing(account, server, case, files, fields):
    r = _raw_multipart(account, files=files, data=fields)
    assert r.status_code == 422, (case, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["msg"]
    assert asset_rows(account.user_id) == []
    assert event_rows(account.user_id) == [e for e in event_rows(account.user_id) if e["entity_type"] != "asset"]
    assert temp_files(server.data_dir) == []


def test_non_multipart_body_is_rejected(account):
    with account.http() as http:
        r = http.post("/api/assets", json={"asset_data": "x"})
    assert r.status_code == 422


def test_truncated_body_leaves_no_temp_file(account, server):
    body = (b"--b\r\nContent-Disposition: form-data; name=\"asset_data\"; filename=\"t.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + png_bytes(13))  # no closing boundary
    with account.http() as http:
        r = http.post("/api/assets", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 422
    assert temp_files(server.data_dir) == []
    assert asset_rows(account.user_id) == []


def test_database_failure_after_the_file_landed_removes_the_file(account, server):
    """A real failure inside the insert transaction (a trigger raises) must leave no file, row or event."""
    from app.db import engine as db
    from tests.conftest import run

    run(db.execute("""
        CREATE OR REPLACE FUNCTION pytest_fail_insert() RETURNS trigger AS $$
        BEGIN IF NEW.original_file_name = 'fail-db.png' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END
        $$ LANGUAGE plpgsql;
        DROP TRIGGER IF EXISTS pytest_fail_insert ON assets;
        CREATE TRIGGER pytest_fail_insert BEFORE INSERT ON assets FOR EACH ROW EXECUTE FUNCTION pytest_fail_insert();
    """))
    try:
        before = set(originals(server.data_dir))
        r = _raw_multipart(account, files={"asset_data": ("fail-db.png", png_bytes(14), "image/png")}, data=GOOD_FIELDS)
        assert r.status_code == 500 and r.json() == {"detail": "Internal server error"}
        assert set(originals(server.data_dir)) == before
        assert temp_files(server.data_dir) == []
        assert asset_rows(account.user_id) == []
        assert [e for e in event_rows(account.user_id) if e["entity_type"] == "asset"] == []
    finally:
        run(db.execute("DROP TRIGGER IF EXISTS pytest_fail_insert ON assets; DROP FUNCTION IF EXISTS pytest_fail_insert();"))


def test_library_choice(make_account, server):
    from app.domain import access, libraries
    from tests.conftest import run

    owner = make_account()
    other = make_account()
    # With one library, library_id may be omitted.
    assert upload(owner, "one.png", png_bytes(20)).status_code == 201
    principal = access.Principal(owner.user_id, False, None, access.ALL_ACTIONS, None)
    second, created = run(libraries.create_library(principal, "Second", None))
    assert created
    # With two, it is required ...
    with pytest.raises(Exception) as err:
        upload(owner, "two.png", png_bytes(21))
    assert err.value.status_code == 400
    # ... and naming one works.
    from app.api import ids
    lib = ids.encode(ids.LIBRARY, second)
    assert upload(owner, "two.png", png_bytes(21), library_id=lib).status_code == 201
    # Another user's library is not found, exactly like a missing one.
    with pytest.raises(Exception) as err:
        upload(other, "three.png", png_bytes(22), library_id=lib)
    assert err.value.status_code == 404
    with pytest.raises(Exception) as missing:
        upload(other, "three.png", png_bytes(22), library_id="lib_" + "2" * 22)
    assert missing.value.status_code == 404 and missing.value.body == err.value.body


def test_storage_cap_is_507_even_for_a_duplicate(account):
    from app.db import engine as db
    from tests.conftest import run

    data = png_bytes(30)
    assert upload(account, "cap.png", data).status_code == 201
    run(db.execute("UPDATE users SET storage_limit_bytes = $2 WHERE id = $1", account.user_id, len(data)))
    with pytest.raises(Exception) as err:
        upload(account, "cap.png", data)
    assert err.value.status_code == 507
    assert err.value.body == {"detail": "User storage limit exceeded"}
