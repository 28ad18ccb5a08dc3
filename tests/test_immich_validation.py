"""Malformed input on the Immich listener answers as Immich 3.1 does (part of issue #14).

Immich 3.x validates with zod: a bad request is 400 {"message": "Validation failed", "errors": [...]}, each
error a zod issue with its `path` and English `message` (NestJS's `error`/`statusCode` are gone from its
bodies). Unknown fields are stripped, not refused: zod objects are not strict. The expected issues below
are written from Immich's DTO schemas (the spec's rules: types, enums, ranges, UUID v4 ids, ISO dates).

One table, one account, objects created once. To cover a new route, add rows to CASES.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.helpers import session_token
from tests.media import png_bytes
from tests.test_immich_upload import FIELDS

UNKNOWN = str(uuid.uuid4())
NOT_V4 = "00000000-0000-0000-0000-000000000000"  # a UUID, but not the v4 Immich's ids are
ROLES = 'Invalid option: expected one of "editor"|"owner"|"viewer"'
VISIBILITY = 'Invalid option: expected one of "archive"|"timeline"|"hidden"|"locked"'
BOOL_QUERY = 'Invalid option: expected one of "true"|"false"'
DATETIME = "Invalid input: expected ISO 8601 datetime string, received string"
AVATAR_COLORS = ('Invalid option: expected one of "primary"|"pink"|"red"|"yellow"|"blue"|"green"|"purple"|"orange"|'
                 '"gray"|"amber"')
SUGGESTION_TYPES = ('Invalid option: expected one of "country"|"state"|"city"|"camera-make"|"camera-model"|'
                    '"camera-lens-model"')


def expected(kind: str, received: str) -> str:
    return f"Invalid input: expected {kind}, received {received}"


@dataclass
class Case:
    method: str
    path: str  # {asset}, {album}, {person}, {user} are filled in
    body: Any = None
    params: dict | None = None
    status: int = 400
    errors: list[tuple[list, str]] = field(default_factory=list)  # (path, message) each present
    admin: bool = False  # asked by an administrator
    form: dict | None = None  # an upload: these form fields with a small PNG as assetData

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.body if self.body is not None else self.params or ''}"


def bad(method: str, path: str, *errors: tuple[list, str], body: Any = None, params: dict | None = None,
        admin: bool = False) -> Case:
    return Case(method, path, body, params, 400, list(errors), admin)


def ok(method: str, path: str, status: int, body: Any = None, params: dict | None = None) -> Case:
    return Case(method, path, body, params, status)


def bad_upload(form: dict, *errors: tuple[list, str]) -> Case:
    return Case("POST", "/api/assets", None, None, 400, list(errors), form={**FIELDS, **form})


CASES = [
    # --- albums ---
    bad("POST", "/api/albums", (["albumName"], expected("string", "undefined")), body={}),
    bad("POST", "/api/albums", (["albumName"], expected("string", "null")), body={"albumName": None}),
    bad("POST", "/api/albums", (["albumName"], expected("string", "number")), body={"albumName": 5}),
    bad("POST", "/api/albums", (["assetIds", 1], "Invalid UUID"), body={"albumName": "a", "assetIds": [UNKNOWN, "x"]}),
    bad("POST", "/api/albums", (["albumUsers", 0, "role"], ROLES),
        body={"albumName": "a", "albumUsers": [{"userId": UNKNOWN, "role": "boss"}]}),
    bad("POST", "/api/albums", (["albumUsers", 0, "userId"], expected("string", "number")),
        body={"albumName": "a", "albumUsers": [{"userId": 7, "role": "viewer"}]}),
    ok("POST", "/api/albums", 201, body={"albumName": "extra", "colour": "red"}),
    bad("GET", "/api/albums/nope", (["id"], "Invalid UUID")),
    bad("GET", f"/api/albums/{NOT_V4}", (["id"], "Invalid UUID")),
    bad("GET", "/api/albums", (["assetId"], "Invalid UUID"), params={"assetId": "nope"}),
    bad("GET", "/api/albums", (["shared"], BOOL_QUERY), params={"shared": "yes"}),
    bad("PATCH", "/api/albums/{album}", (["order"], 'Invalid option: expected one of "asc"|"desc"'),
        body={"order": "sideways"}),
    bad("PATCH", "/api/albums/{album}", (["isActivityEnabled"], expected("boolean", "string")),
        body={"isActivityEnabled": "yes"}),
    bad("PATCH", "/api/albums/{album}", (["albumThumbnailAssetId"], "Invalid UUID"),
        body={"albumThumbnailAssetId": "cover"}),
    bad("PATCH", "/api/albums/nope", (["id"], "Invalid UUID"), body={"albumName": "x"}),
    ok("PATCH", "/api/albums/{album}", 200, body={"albumName": "Trip", "unknown": [1]}),
    bad("PUT", "/api/albums/{album}/assets", (["ids"], expected("array", "undefined")), body={}),
    bad("PUT", "/api/albums/{album}/assets", (["ids", 0], "Invalid UUID"), body={"ids": ["x"]}),
    bad("DELETE", "/api/albums/{album}/assets", (["ids"], expected("array", "string")), body={"ids": "x"}),
    bad("PUT", "/api/albums/{album}/users", (["albumUsers", 0, "role"], ROLES),
        body={"albumUsers": [{"userId": UNKNOWN, "role": "boss"}]}),
    bad("PUT", "/api/albums/{album}/user/nope", (["userId"], 'Must be a UUID v4 or "me"'), body={"role": "viewer"}),
    bad("PUT", "/api/albums/{album}/user/me", (["role"], ROLES), body={"role": "boss"}),
    bad("PUT", "/api/albums/{album}/user/me", (["role"], ROLES), body={}),
    # --- assets ---
    bad("GET", "/api/assets/nope", (["id"], "Invalid UUID")),
    bad("PUT", "/api/assets/{asset}", (["rating"], "Too big: expected number to be <=5"), body={"rating": 6}),
    bad("PUT", "/api/assets/{asset}", (["rating"], "Too small: expected number to be >=-1"), body={"rating": -2}),
    bad("PUT", "/api/assets/{asset}", (["rating"], expected("int", "number")), body={"rating": 2.5}),
    bad("PUT", "/api/assets/{asset}", (["rating"], expected("number", "string")), body={"rating": "3"}),
    bad("PUT", "/api/assets/{asset}", (["latitude"], "Too big: expected number to be <=90"), body={"latitude": 91}),
    bad("PUT", "/api/assets/{asset}", (["longitude"], "Too small: expected number to be >=-180"),
        body={"longitude": -181}),
    bad("PUT", "/api/assets/{asset}", (["visibility"], VISIBILITY), body={"visibility": "secret"}),
    bad("PUT", "/api/assets/{asset}", (["isFavorite"], expected("boolean", "null")), body={"isFavorite": None}),
    bad("PUT", "/api/assets/{asset}", (["isFavorite"], expected("boolean", "null")),  # every issue, as zod lists them
        (["rating"], expected("int", "number")), (["visibility"], VISIBILITY),
        body={"isFavorite": None, "rating": 0.5, "visibility": 1}),
    bad("PUT", "/api/assets/{asset}", (["livePhotoVideoId"], "Invalid UUID"), body={"livePhotoVideoId": "v"}),
    bad("PUT", "/api/assets/{asset}", (["dateTimeOriginal"], expected("string", "number")),
        body={"dateTimeOriginal": 5}),
    bad("PUT", "/api/assets/nope", (["id"], "Invalid UUID"), body={"rating": 3}),
    ok("PUT", "/api/assets/{asset}", 200, body={"rating": 3, "sparkles": True}),
    bad("PUT", "/api/assets", (["ids"], expected("array", "string")), body={"ids": "x"}),
    bad("PUT", "/api/assets", (["ids", 0], "Invalid UUID"), body={"ids": ["x"], "isFavorite": True}),
    bad("DELETE", "/api/assets", (["ids", 0], "Invalid UUID"), body={"ids": ["x"]}),
    bad("DELETE", "/api/assets", (["force"], expected("boolean", "string")), body={"ids": [UNKNOWN], "force": "1"}),
    bad("POST", "/api/assets/bulk-upload-check", (["assets"], expected("array", "undefined")), body={}),
    bad("POST", "/api/download/info", (["archiveSize"], "Too small: expected number to be >=1"),
        body={"userId": UNKNOWN, "archiveSize": 0}),
    bad("POST", "/api/download/info", (["albumId"], "Invalid UUID"), body={"albumId": "a"}),
    bad("POST", "/api/download/archive", (["assetIds"], expected("array", "undefined")), body={}),
    bad("POST", "/api/download/archive", (["assetIds", 0], "Invalid UUID"), body={"assetIds": [NOT_V4]}),
    bad("POST", "/api/trash/restore/assets", (["ids", 0], expected("string", "number")), body={"ids": [1]}),
    bad_upload({"fileCreatedAt": "sometime"}, (["fileCreatedAt"], DATETIME)),
    bad_upload({"livePhotoVideoId": "v"}, (["livePhotoVideoId"], "Invalid UUID")),
    bad_upload({"visibility": "secret"}, (["visibility"], VISIBILITY)),
    bad("GET", "/api/assets/nope/thumbnail", (["id"], "Invalid UUID")),
    bad("GET", "/api/assets/nope/original", (["id"], "Invalid UUID")),
    # --- search ---
    bad("POST", "/api/search/metadata", (["size"], "Too small: expected number to be >=1"), body={"size": 0}),
    bad("POST", "/api/search/metadata", (["size"], "Too big: expected number to be <=1000"), body={"size": 1001}),
    bad("POST", "/api/search/metadata", (["page"], "Too small: expected number to be >=1"), body={"page": 0}),
    bad("POST", "/api/search/metadata", (["takenAfter"], DATETIME), body={"takenAfter": "yesterday"}),
    bad("POST", "/api/search/metadata", (["type"], 'Invalid option: expected one of "IMAGE"|"VIDEO"|"AUDIO"|"OTHER"'),
        body={"type": "PHOTO"}),
    bad("POST", "/api/search/metadata", (["personIds", 0], "Invalid UUID"), body={"personIds": ["p"]}),
    bad("POST", "/api/search/metadata", (["withDeleted"], expected("boolean", "number")), body={"withDeleted": 1}),
    ok("POST", "/api/search/metadata", 200, body={"size": 1, "whatever": 1}),
    bad("GET", "/api/search/suggestions", (["type"], SUGGESTION_TYPES), params={"type": "colour"}),
    bad("GET", "/api/search/suggestions", (["includeNull"], BOOL_QUERY), params={"type": "country", "includeNull": "1"}),
    # --- people and faces ---
    bad("POST", "/api/people", (["name"], expected("string", "array")), body={"name": ["x"]}),
    bad("POST", "/api/people", (["birthDate"], "Invalid input: expected ISO date string (YYYY-MM-DD), received string"),
        body={"birthDate": "last year"}),
    bad("POST", "/api/people", (["isHidden"], expected("boolean", "string")), body={"isHidden": "no"}),
    bad("GET", "/api/people/nope", (["id"], "Invalid UUID")),
    bad("PUT", "/api/people/{person}", (["featureFaceAssetId"], "Invalid UUID"), body={"featureFaceAssetId": "f"}),
    bad("PUT", "/api/people", (["people", 0, "id"], "Invalid UUID"), body={"people": [{"id": "p"}]}),
    bad("PUT", "/api/people", (["people"], expected("array", "undefined")), body={}),
    bad("DELETE", "/api/people", (["ids", 0], "Invalid UUID"), body={"ids": ["p"]}),
    bad("POST", "/api/people/{person}/merge", (["ids", 0], "Invalid UUID"), body={"ids": ["p"]}),
    bad("PUT", "/api/people/{person}/reassign", (["data"], expected("array", "undefined")), body={}),
    bad("GET", "/api/faces", (["id"], "Invalid UUID"), params={"id": "nope"}),
    bad("GET", "/api/faces", (["id"], expected("string", "undefined"))),
    bad("GET", "/api/people", (["size"], "Too big: expected number to be <=1000"), params={"size": 1001}),
    bad("GET", "/api/people", (["page"], "Too small: expected number to be >=1"), params={"page": 0}),
    bad("GET", "/api/people", (["page"], expected("number", "NaN")), params={"page": "first"}),
    bad("GET", "/api/people", (["withHidden"], BOOL_QUERY), params={"withHidden": "True"}),
    bad("GET", "/api/people", (["closestPersonId"], "Invalid UUID"), params={"closestPersonId": "p"}),
    bad("POST", "/api/faces", (["assetId"], expected("string", "undefined")),
        body={"personId": UNKNOWN, "x": 1, "y": 0, "width": 1, "height": 1, "imageWidth": 1, "imageHeight": 1}),
    bad("POST", "/api/faces", (["x"], expected("number", "string")),
        (["assetId"], expected("string", "undefined")),
        body={"personId": UNKNOWN, "x": "1", "y": 0, "width": 1, "height": 1, "imageWidth": 1, "imageHeight": 1}),
    bad("PUT", "/api/faces/nope", (["id"], "Invalid UUID"), body={"id": UNKNOWN}),
    bad("PUT", "/api/faces/{person}", (["id"], "Invalid UUID"), body={"id": "x"}),
    # --- stacks, api keys, partners, activities ---
    bad("POST", "/api/stacks", (["assetIds"], "Too small: expected array to have >=2 items"),
        body={"assetIds": [UNKNOWN]}),
    bad("POST", "/api/stacks", (["assetIds", 0], "Invalid UUID"), body={"assetIds": ["a", UNKNOWN]}),
    bad("GET", "/api/stacks/nope", (["id"], "Invalid UUID")),
    bad("PUT", "/api/stacks/{album}", (["primaryAssetId"], "Invalid UUID"), body={"primaryAssetId": "p"}),
    bad("DELETE", "/api/stacks", (["ids", 0], "Invalid UUID"), body={"ids": ["s"]}),
    bad("POST", "/api/api-keys", (["permissions"], "Too small: expected array to have >=1 items"),
        body={"name": "k", "permissions": []}),
    bad("POST", "/api/api-keys", (["permissions", 0], None), body={"name": "k", "permissions": ["everything"]}),
    bad("GET", "/api/api-keys/nope", (["id"], "Invalid UUID")),
    bad("PUT", "/api/api-keys/{album}", (["name"], expected("string", "number")), body={"name": 1}),
    bad("POST", "/api/partners", (["sharedWithId"], "Invalid UUID"), body={"sharedWithId": "u"}),
    bad("GET", "/api/partners", (["direction"], 'Invalid option: expected one of "shared-by"|"shared-with"'),
        params={"direction": "sideways"}),
    bad("POST", "/api/partners/nope", (["id"], "Invalid UUID")),
    bad("PUT", "/api/partners/{user}", (["inTimeline"], expected("boolean", "undefined")), body={}),
    bad("DELETE", "/api/partners/nope", (["id"], "Invalid UUID")),
    bad("POST", "/api/activities", (["type"], 'Invalid option: expected one of "comment"|"like"'),
        body={"albumId": UNKNOWN, "type": "love"}),
    bad("POST", "/api/activities", (["albumId"], "Invalid UUID"), body={"albumId": "a", "type": "like"}),
    bad("GET", "/api/activities", (["albumId"], "Invalid UUID"), params={"albumId": "a"}),
    bad("GET", "/api/activities", (["type"], 'Invalid option: expected one of "comment"|"like"'),
        params={"albumId": UNKNOWN, "type": "love"}),
    bad("DELETE", "/api/activities/nope", (["id"], "Invalid UUID")),
    # --- shared links ---
    bad("POST", "/api/shared-links", (["type"], 'Invalid option: expected one of "ALBUM"|"INDIVIDUAL"'),
        body={"type": "FOLDER"}),
    bad("POST", "/api/shared-links", (["expiresAt"], DATETIME), body={"type": "ALBUM", "albumId": UNKNOWN,
                                                                      "expiresAt": "tomorrow"}),
    bad("POST", "/api/shared-links", (["assetIds", 0], "Invalid UUID"), body={"type": "INDIVIDUAL", "assetIds": ["a"]}),
    bad("GET", "/api/shared-links/nope", (["id"], "Invalid UUID")),
    bad("PATCH", "/api/shared-links/{album}", (["allowUpload"], expected("boolean", "string")),
        body={"allowUpload": "yes"}),
    bad("PUT", "/api/shared-links/{album}/assets", (["assetIds", 0], "Invalid UUID"), body={"assetIds": ["a"]}),
    # --- sessions, PIN code, auth ---
    bad("PUT", "/api/sessions/nope", (["id"], "Invalid UUID"), body={"isPendingSyncReset": True}),
    bad("PUT", "/api/sessions/{album}", (["isPendingSyncReset"], expected("boolean", "string")),
        body={"isPendingSyncReset": "y"}),
    bad("DELETE", "/api/sessions/nope", (["id"], "Invalid UUID")),
    bad("POST", "/api/sessions/nope/lock", (["id"], "Invalid UUID")),
    bad("POST", "/api/sessions", (["duration"], "Too small: expected number to be >=1"), body={"duration": 0}),
    bad("POST", "/api/auth/pin-code", (["pinCode"], None), body={"pinCode": "12ab"}),
    bad("POST", "/api/auth/pin-code", (["pinCode"], expected("string", "number")), body={"pinCode": 123456}),
    bad("POST", "/api/auth/session/unlock", (["pinCode"], None), body={"pinCode": "1"}),
    bad("POST", "/api/auth/change-password", (["password"], expected("string", "undefined")),
        body={"newPassword": "long-enough"}),
    bad("POST", "/api/auth/change-password", (["newPassword"], "Too small: expected string to have >=8 characters"),
        body={"password": "x", "newPassword": "short"}),
    # --- timeline and map ---
    bad("GET", "/api/timeline/buckets", (["visibility"], VISIBILITY), params={"visibility": "secret"}),
    bad("GET", "/api/timeline/buckets", (["albumId"], "Invalid UUID"), params={"albumId": "a"}),
    bad("GET", "/api/timeline/buckets", (["isFavorite"], BOOL_QUERY), params={"isFavorite": "1"}),
    bad("GET", "/api/timeline/buckets", (["order"], 'Invalid option: expected one of "asc"|"desc"'),
        params={"order": "up"}),
    bad("GET", "/api/timeline/bucket", (["timeBucket"], expected("string", "undefined"))),
    bad("GET", "/api/map/markers", (["isFavorite"], BOOL_QUERY), params={"isFavorite": "maybe"}),
    # --- users, admin users, sign-in ---
    bad("GET", "/api/users/nope", (["id"], "Invalid UUID")),
    bad("PUT", "/api/users/me", (["avatarColor"], AVATAR_COLORS), body={"avatarColor": "teal"}),
    bad("PUT", "/api/users/me", (["email"], "Invalid input: expected email, received string"), body={"email": "nope"}),
    bad("PUT", "/api/users/me", (["name"], expected("string", "boolean")), body={"name": True}),
    bad("POST", "/api/auth/login", (["password"], expected("string", "undefined")), body={"email": "a@b.c"}),
    bad("POST", "/api/auth/login", (["email"], "Invalid input: expected email, received string"),
        body={"email": "nope", "password": "x"}),
    bad("POST", "/api/admin/users", (["email"], expected("string", "undefined")), body={"name": "n", "password": "p"},
        admin=True),
    bad("POST", "/api/admin/users", (["quotaSizeInBytes"], "Too small: expected number to be >=0"),
        body={"email": "q@example.com", "name": "n", "password": "p", "quotaSizeInBytes": -1}, admin=True),
    bad("POST", "/api/admin/users", (["pinCode"], None),
        body={"email": "q@example.com", "name": "n", "password": "p", "pinCode": "12"}, admin=True),
    bad("GET", "/api/admin/users/nope", (["id"], "Invalid UUID"), admin=True),
    bad("PUT", "/api/admin/users/{user}", (["isAdmin"], expected("boolean", "string")), body={"isAdmin": "no"},
        admin=True),
    bad("DELETE", "/api/admin/users/{user}", (["force"], expected("boolean", "string")), body={"force": "yes"},
        admin=True),
    # --- sync (a session, not an API key) ---
    bad("POST", "/api/sync/stream", (["types", 0], None), body={"types": ["EverythingV9"]}),
    bad("POST", "/api/sync/stream", (["types"], expected("array", "undefined")), body={}),
    bad("POST", "/api/sync/ack", (["acks"], expected("array", "string")), body={"acks": "a"}),
    bad("DELETE", "/api/sync/ack", (["types", 0], None), body={"types": ["EverythingV9"]}),
]


def _signed_in(server, account) -> httpx.Client:
    return httpx.Client(base_url=server.immich_url, timeout=60,
                        headers={"authorization": f"Bearer {session_token(account)}"})


@pytest.fixture(scope="module")
def world(server):
    """One account signed in with a session (sync refuses API keys), one asset, album and person;
    and an administrator."""
    from app.db import engine as db
    from tests.conftest import run
    from tests.helpers import create_account

    account, admin = create_account(server), create_account(server)
    run(db.execute("UPDATE users SET is_admin = true WHERE id = $1", admin.user_id))
    http, admin_http = _signed_in(server, account), _signed_in(server, admin)
    asset = http.post("/api/assets", files={"assetData": ("v.png", png_bytes(9100), "image/png")}, data=FIELDS)
    album = http.post("/api/albums", json={"albumName": "Validation"})
    person = http.post("/api/people", json={"name": "Val"})
    assert (asset.status_code, album.status_code, person.status_code) == (201, 201, 201)
    ids = {"asset": asset.json()["id"], "album": album.json()["id"], "person": person.json()["id"],
           "user": str(account.user_id)}
    yield {False: http, True: admin_http}, ids
    http.close()
    admin_http.close()


def _answer(clients: dict, ids: dict, case: Case) -> httpx.Response:
    extra = {"json": case.body} if case.body is not None else {}
    if case.form is not None:
        extra = {"data": case.form, "files": {"assetData": ("bad.png", png_bytes(9101), "image/png")}}
    return clients[case.admin].request(case.method, case.path.format(**ids), params=case.params, **extra)


def _mismatch(case: Case, r: httpx.Response) -> str | None:
    if r.status_code != case.status:
        return f"{case}: {r.status_code} {r.text[:300]}"
    if case.status != 400:
        return None
    body = r.json()
    if body.get("message") != "Validation failed" or "error" in body or "statusCode" in body:
        return f"{case}: body {body}"
    found = [(e.get("path"), e.get("message")) for e in body.get("errors", [])]
    for path, message in case.errors:
        if not any(p == path and (message is None or m == message) for p, m in found):
            return f"{case}: no {path} {message!r} in {found}"
    return None


def test_malformed_input_answers_as_immich(world):
    clients, ids = world
    mismatches = [m for case in CASES if (m := _mismatch(case, _answer(clients, ids, case)))]
    assert not mismatches, "\n".join(mismatches)
