"""Malformed input answers 4xx with a message on both APIs, never 500 (issue #11, finding 12).

One test per input a fuzzer found reaching a 500; tests/test_fuzz.py is the generic sweep.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.helpers import upload
from tests.media import png_bytes
from tests.test_immich_upload import FIELDS

UNKNOWN = "00000000-0000-4000-8000-00000000abcd"


def _immich(server, account) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60)


def _immich_upload(http: httpx.Client, seed: int) -> str:
    r = http.post("/api/assets", files={"assetData": (f"b{seed}.png", png_bytes(seed), "image/png")}, data=FIELDS)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _immich_400(r: httpx.Response, mentions: str | None = None) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert body["message"], body
    if mentions is not None:  # in the message or in the path of one of the validation errors
        texts = [body["message"]] + [f"{e['message']} {'.'.join(map(str, e['path']))}" for e in body.get("errors", [])]
        assert any(mentions in t for t in texts), body


def _native_422(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, (r.status_code, r.text)
    locs = [item["loc"] for item in r.json()["detail"]]
    assert any(field in ".".join(map(str, loc)) for loc in locs), locs


# --- NUL characters (Postgres text cannot hold U+0000) ---------------------------------------------


def test_nul_in_an_immich_upload_filename_is_400(server, account):
    with _immich(server, account) as http:
        before = http.get("/api/assets/statistics").json()["total"]
        staged = set((server.data_dir / "tmp").iterdir())
        body, headers = _raw_form(FIELDS, "assetData", "a\x00b.png", png_bytes(4101))
        _immich_400(http.post("/api/assets", content=body, headers=headers), "assetData filename")
        r = http.post("/api/assets", files={"assetData": ("ok.png", png_bytes(4102), "image/png")},
                      data={**FIELDS, "filename": "x\x00.png"})
        _immich_400(r, "filename")
        assert http.get("/api/assets/statistics").json()["total"] == before
        # The staged upload was removed, not left in DATA_DIR/tmp.
        assert set((server.data_dir / "tmp").iterdir()) <= staged


def _raw_form(fields: dict, file_field: str, filename: str, data: bytes) -> tuple[bytes, dict]:
    """A multipart body written by hand: httpx would escape a NUL in a file name (%00), not every client does."""
    boundary = "fuzzboundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 "Content-Type: image/png\r\n\r\n".encode() + data + f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), {"content-type": f"multipart/form-data; boundary={boundary}"}


NATIVE_FIELDS = {"device_asset_id": "d1", "device_id": "pytest", "file_created_at": "2024-01-01T00:00:00Z",
                 "file_modified_at": "2024-01-01T00:00:00Z"}


def test_nul_in_a_native_upload_or_search_form_is_422_naming_the_field(server, account):
    with account.http() as http:
        body, headers = _raw_form(NATIVE_FIELDS, "asset_data", "a\x00b.png", png_bytes(4120))
        _native_422(http.post("/api/assets", content=body, headers=headers), "asset_data filename")
        body, headers = _raw_form({**NATIVE_FIELDS, "device_id": "p\x00"}, "asset_data", "ok.png", png_bytes(4121))
        _native_422(http.post("/api/assets", content=body, headers=headers), "device_id")
        assert http.get("/api/assets").json()["data"] == []
        r = http.post("/api/search", files={"image": ("q.png", png_bytes(4122), "image/png")},
                      data={"query": "x", "library_id": "lib\x00"})
        _native_422(r, "library_id")


def test_nul_in_an_immich_album_name_or_description_is_400(server, account):
    with _immich(server, account) as http:
        _immich_400(http.post("/api/albums", json={"albumName": "trip\x00"}), "albumName")
        album = http.post("/api/albums", json={"albumName": "trip"})
        assert album.status_code == 201, album.text
        r = http.patch(f"/api/albums/{album.json()['id']}", json={"description": "a\x00b"})
        _immich_400(r, "description")
        assert http.get(f"/api/albums/{album.json()['id']}").json()["description"] == ""


def test_nul_in_an_immich_person_name_is_400(server, account):
    with _immich(server, account) as http:
        _immich_400(http.post("/api/people", json={"name": "Ann\x00"}), "name")
        person = http.post("/api/people", json={"name": "Ann"}).json()
        _immich_400(http.put(f"/api/people/{person['id']}", json={"name": "\x00"}), "name")
        # A NUL in a key, or deep inside a list, is named too.
        _immich_400(http.put("/api/people", json={"people": [{"id": person["id"], "name": "a\x00"}]}), "people.0.name")
        _immich_400(http.post("/api/people", json={"na\x00me": "x"}), "na\\u0000me")


def test_nul_in_native_json_is_422_naming_the_field(server, account):
    with account.http() as http:
        _native_422(http.post("/api/albums", json={"name": "a\x00b"}), "name")
        _native_422(http.post("/api/people", json={"name": "a\x00b"}), "name")


def test_nul_in_a_query_parameter_or_path_is_4xx_on_both_apis(server, account):
    with account.http() as http:
        _native_422(http.get("/api/albums?name=a%00b"), "name")
        r = http.get("/api/albums/album_%00")
        assert r.status_code == 422 and r.json()["detail"], r.text
    with _immich(server, account) as http:
        _immich_400(http.get("/api/timeline/buckets?visibility=a%00b"), "visibility")
        _immich_400(http.get("/api/search/suggestions?type=country&country=%00"), "country")


@pytest.mark.parametrize("month", ["0001-01-01", "9999-12-01"])
def test_an_immich_time_bucket_at_the_calendars_ends_is_400(server, account, month):
    with _immich(server, account) as http:
        _immich_400(http.get(f"/api/timeline/bucket?timeBucket={month}"), "timeBucket")


# --- wrong types in plain-dict bodies -------------------------------------------------------------------


def test_immich_person_name_of_the_wrong_type_is_400(server, account):
    with _immich(server, account) as http:
        _immich_400(http.post("/api/people", json={"name": ["x"]}), "name")
        person = http.post("/api/people", json={"name": "Bea"}).json()
        _immich_400(http.put(f"/api/people/{person['id']}", json={"name": ["x"]}), "name")
        _immich_400(http.put(f"/api/people/{person['id']}", json={"name": {"a": 1}}), "name")
        assert http.get(f"/api/people/{person['id']}").json()["name"] == "Bea"


@pytest.mark.parametrize("rating", ["3", {"a": 1}, [3], 2.5, True])
def test_immich_asset_rating_of_the_wrong_type_is_400(server, account, rating):
    with _immich(server, account) as http:
        asset = _immich_upload(http, 4200 + len(repr(rating)))
        for target in (asset, UNKNOWN):  # an unknown id too: the body is checked before the lookup
            _immich_400(http.put(f"/api/assets/{target}", json={"rating": rating}), "rating")
        _immich_400(http.put("/api/assets", json={"ids": [asset, UNKNOWN], "rating": rating}), "rating")
        _immich_400(http.put(f"/api/assets/{asset}", json={"isFavorite": "yes"}), "isFavorite")
        # Good values still work.
        r = http.put(f"/api/assets/{asset}", json={"rating": 3})
        assert r.status_code == 200 and r.json()["exifInfo"]["rating"] == 3, r.text


# --- stacks: unknown ids answer like other users' ids ---------------------------------------------------


def test_native_stack_with_an_unknown_asset_is_404_like_a_foreign_one(server, make_account):
    owner, other = make_account(), make_account()
    mine = [upload(owner, f"s{i}.png", png_bytes(4300 + i)).parse().id for i in range(2)]
    foreign = upload(other, "f.png", png_bytes(4310)).parse().id
    unknown = "asset_" + "2" * 22
    with owner.http() as http:
        for extra in (foreign, unknown):
            for body in ({"asset_ids": [*mine, extra]}, {"asset_ids": [mine[0], extra], "primary_asset_id": extra}):
                r = http.post("/api/stacks", json=body)
                assert r.status_code == 404 and r.json()["detail"] == f"Asset {extra} not found", r.text
        assert http.get("/api/stacks").json()["data"] == []  # nothing half-made


def test_immich_stack_with_an_unknown_asset_is_400_like_a_foreign_one(server, make_account):
    owner, other = make_account(), make_account()
    with _immich(server, owner) as http, _immich(server, other) as other_http:
        mine = [_immich_upload(http, 4400 + i) for i in range(2)]
        foreign = _immich_upload(other_http, 4410)
        bodies = []
        for extra in (foreign, UNKNOWN):
            for order in ([extra, *mine], [*mine, extra]):  # first is the primary: the foreign key case
                r = http.post("/api/stacks", json={"assetIds": order})
                _immich_400(r)
                bodies.append(r.json()["message"])
        assert set(bodies) == {"Not found or no asset.update access"}


# --- the public signed-media route ---------------------------------------------------------------------


@pytest.mark.parametrize("sig", ["%C3%A9t%C3%A9", "%E2%98%83" * 8, "%FF"])
def test_signed_media_with_a_non_ascii_signature_is_403(server, account, sig):
    asset = upload(account, "m.png", png_bytes(4500)).parse().id
    for path in (f"/media/assets/{asset}/original", f"/media/faces/face_{'3' * 22}/thumbnail"):
        r = httpx.get(f"{server.base_url}{path}?exp=4102444800&sig={sig}")
        assert r.status_code == 403 and r.json() == {"detail": "Invalid or expired link"}, r.text


# --- deeply nested JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [40, 1000, 100_000])
def test_deep_json_is_4xx_on_both_apis(server, account, depth):
    deep = b"[" * depth + b"]" * depth
    nested = b'{"albumName": ' + deep + b"}"
    with account.http() as http:
        for body in (deep, b'{"name": ' + deep + b"}"):
            r = http.post("/api/albums", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 422 and "nested" in r.text, r.text
    with _immich(server, account) as http:
        for body in (deep, nested):
            r = http.post("/api/albums", content=body, headers={"content-type": "application/json"})
            _immich_400(r, "nested")


def test_ordinary_nesting_is_still_accepted(server, account):
    with _immich(server, account) as http:
        asset = _immich_upload(http, 4600)
        person = http.post("/api/people", json={"name": "Cy"}).json()
        # {"data": [{...}]} is three levels; the limit is far above what any client sends.
        r = http.put(f"/api/people/{person['id']}/reassign", json={"data": [{"assetId": asset, "personId": person["id"]}]})
        assert r.status_code == 200, r.text


# --- what is left for real server faults -----------------------------------------------------------------


def test_an_unexpected_error_is_logged_and_answers_a_generic_500():
    """Input never reaches this path; a server bug still must, with no internals in the body."""
    from litestar import get
    from litestar.testing import TestClient

    from app.api.app import create_native_app
    from app.api.state import Shared
    from app.settings import load_settings
    from compat.app import create_immich_app

    @get("/boom", sync_to_thread=False, public=True)
    def boom() -> None:
        raise RuntimeError("secret internals")

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__(logging.ERROR)
            self.records: list[logging.LogRecord] = []

        def emit(self, record):
            self.records.append(record)

    shared = Shared.build(load_settings())
    for app, key, logger in ((create_native_app(shared), "detail", "app.api.errors"),
                             (create_immich_app(shared), "message", "compat.errors")):
        app.register(boom)
        # Attached after the app exists: Litestar's logging setup replaces the root handlers.
        collect = Collect()
        logging.getLogger(logger).addHandler(collect)
        try:
            r = TestClient(app).get("/boom")
        finally:
            logging.getLogger(logger).removeHandler(collect)
        assert r.status_code == 500 and r.json()[key] == "Internal server error", r.text
        assert "secret internals" not in r.text
        assert any("unhandled error on GET /boom" in rec.getMessage() and rec.exc_info for rec in collect.records)


# --- found by tests/test_fuzz.py -------------------------------------------------------------------------


@pytest.mark.parametrize("library_id", [True, 7, ["lib_x"], {"a": 1}])
def test_native_id_of_the_wrong_type_is_not_found(server, account, library_id):
    with account.http() as http:
        r = http.post("/api/people", json={"name": "Dee", "library_id": library_id})
        assert r.status_code == 404 and r.json() == {"detail": "Library not found"}, r.text


@pytest.mark.parametrize("field,value", [("email", -1), ("name", 2**64), ("password", -1), ("storageLabel", 1.5),
                                         ("isAdmin", "yes"), ("avatarColor", {})])
def test_immich_admin_user_update_with_a_wrong_type_is_400(server, account, field, value):
    from app.db import engine as db
    from tests.conftest import run

    run(db.execute("UPDATE users SET is_admin = true WHERE id = $1", account.user_id))
    with _immich(server, account) as http:
        _immich_400(http.put(f"/api/admin/users/{account.user_id}", json={field: value}), field)
        assert http.get("/api/users/me").json()["email"] == account.email
