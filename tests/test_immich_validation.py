"""Malformed input on the Immich listener answers as Immich 3.1 does (part of issue #14).

Immich 3.x validates with zod: a bad request is 400 {"message": "Validation failed", "errors": [...]}, each
error a zod issue with its `path` and English `message` (NestJS's `error`/`statusCode` are gone from its
bodies). Unknown fields are stripped, not refused: zod objects are not strict. The expected issues below
are written from Immich's DTO schemas (the spec's rules: types, enums, ranges, UUID v4 ids, ISO dates).

One table, one account, objects created once. To cover a new route, add rows to CASES.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
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
DATE = "Invalid input: expected ISO date string (YYYY-MM-DD), received string"
LICENSE = r"Invalid string: must match pattern /^IM(SV|CL)(-[\dA-Za-z]{4}){8}$/"
NOT_EMPTY = "Too small: expected array to have >=1 items"
SUGGESTION_TYPES = ('Invalid option: expected one of "country"|"state"|"city"|"camera-make"|"camera-model"|'
                    '"camera-lens-model"')


def expected(kind: str, received: str) -> str:
    return f"Invalid input: expected {kind}, received {received}"


def one_of(*values: str) -> str:
    return "Invalid option: expected one of " + "|".join(f'"{v}"' for v in values)


QUEUES = one_of("thumbnailGeneration", "metadataExtraction", "videoConversion", "faceDetection", "facialRecognition",
                "smartSearch", "duplicateDetection", "backgroundTask", "storageTemplateMigration", "migration",
                "search", "sidecar", "library", "notifications", "backupDatabase", "ocr", "workflow",
                "integrityCheck", "editor")
COMMANDS = one_of("start", "pause", "resume", "empty", "clear-failed")
MANUAL_JOBS = one_of("person-cleanup", "tag-cleanup", "user-cleanup", "memory-cleanup", "memory-create",
                     "backup-database", "integrity-missing-files", "integrity-untracked-files",
                     "integrity-checksum-mismatch", "integrity-missing-files-refresh",
                     "integrity-untracked-files-refresh", "integrity-checksum-mismatch-refresh",
                     "integrity-missing-files-delete-all", "integrity-untracked-files-delete-all",
                     "integrity-checksum-mismatch-delete-all")
LEVELS = one_of("success", "error", "warning", "info")
NOTIFICATION_TYPES = one_of("JobFailed", "BackupFailed", "SystemMessage", "AlbumInvite", "AlbumUpdate", "Custom")
SMTP = {"enabled": True, "from": "a@example.com", "replyTo": "a@example.com",
        "transport": {"host": "smtp.example.com", "ignoreCert": False, "password": "", "port": 70000,
                      "secure": False, "username": ""}}


def config_with(path: str, value: Any = None, *, drop: bool = False) -> Callable[[dict], dict]:
    """The current system config with one field at a dotted path changed (or removed)."""
    *parents, leaf = path.split(".")

    def edit(config: dict) -> dict:
        changed = copy.deepcopy(config)
        node = changed
        for part in parents:
            node = node[part]
        if drop:
            del node[leaf]
        else:
            node[leaf] = value
        return changed
    edit.__qualname__ = f"config_with({path!r}, {'drop' if drop else repr(value)})"  # names the row when it fails
    return edit


@dataclass
class Case:
    method: str
    path: str  # {asset}, {album}, {person}, {user} are filled in
    body: Any = None  # or a function of the current system config giving the body
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


def ok(method: str, path: str, status: int, body: Any = None, params: dict | None = None,
       admin: bool = False) -> Case:
    return Case(method, path, body, params, status, admin=admin)


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
    bad("PUT", "/api/albums/assets", (["albumIds"], expected("array", "undefined")), body={"assetIds": []}),
    bad("PUT", "/api/albums/assets", (["assetIds", 0], "Invalid UUID"), body={"albumIds": [], "assetIds": ["x"]}),
    ok("PUT", "/api/albums/assets", 200, body={"albumIds": [], "assetIds": []}),
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
    bad("POST", "/api/download/archive", (["edited"], expected("boolean", "string")),
        body={"assetIds": [], "edited": "yes"}),
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
    bad("POST", "/api/search/random", (["size"], "Too small: expected number to be >=1"), body={"size": 0}),
    bad("POST", "/api/search/statistics", (["isFavorite"], expected("boolean", "string")), body={"isFavorite": "yes"}),
    bad("POST", "/api/search/large-assets", (["size"], "Too big: expected number to be <=1000"), params={"size": 1001}),
    bad("POST", "/api/search/large-assets", (["minFileSize"], "Too small: expected number to be >=0"),
        params={"minFileSize": -1}),
    bad("GET", "/api/search/places", (["name"], expected("string", "undefined"))),
    bad("GET", "/api/map/reverse-geocode", (["lat"], "Too big: expected number to be <=90"), params={"lat": 91, "lon": 0}),
    bad("GET", "/api/map/reverse-geocode", (["lon"], expected("number", "undefined")), params={"lat": 1}),
    bad("GET", "/api/view/folder", (["path"], expected("string", "undefined"))),
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
    # --- memories ---
    bad("GET", "/api/memories", (["for"], "Invalid input: expected ISO date string (YYYY-MM-DD), received string"),
        params={"for": "2024-02-30"}),
    bad("GET", "/api/memories", (["size"], "Too small: expected number to be >=1"), params={"size": 0}),
    bad("GET", "/api/memories", (["order"], 'Invalid option: expected one of "asc"|"desc"|"random"'),
        params={"order": "up"}),
    bad("GET", "/api/memories/statistics", (["isSaved"], BOOL_QUERY), params={"isSaved": "yes"}),
    bad("POST", "/api/memories", (["memoryAt"], None), body={"type": "on_this_day", "data": {"year": 2020}}),
    bad("POST", "/api/memories", (["data", "year"], "Too small: expected number to be >=1000"),
        body={"type": "on_this_day", "memoryAt": "2020-01-01T00:00:00.000Z", "data": {"year": 99}}),
    bad("PUT", f"/api/memories/{UNKNOWN}", (["isSaved"], expected("boolean", "string")), body={"isSaved": "yes"}),
    bad("PUT", "/api/memories/nope", (["id"], "Invalid UUID"), body={}),
    bad("PUT", f"/api/memories/{UNKNOWN}/assets", (["ids", 0], "Invalid UUID"), body={"ids": ["nope"]}),
    # --- end memories ---
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
    # --- tags ---
    bad("GET", "/api/tags/nope", (["id"], "Invalid UUID")),
    bad("POST", "/api/tags", (["name"], expected("string", "undefined")), body={}),
    bad("POST", "/api/tags", (["parentId"], "Invalid UUID"), body={"name": "t", "parentId": "p"}),
    bad("PUT", "/api/tags", (["tags"], expected("array", "undefined")), body={}),
    bad("PUT", "/api/tags/assets", (["tagIds", 0], "Invalid UUID"), body={"tagIds": ["t"], "assetIds": []}),
    bad("PUT", "/api/tags/{album}/assets", (["ids"], expected("array", "undefined")), body={}),
    # --- stacks, api keys, partners, activities ---
    bad("POST", "/api/stacks", (["assetIds"], "Too small: expected array to have >=2 items"),
        body={"assetIds": [UNKNOWN]}),
    bad("POST", "/api/stacks", (["assetIds", 0], "Invalid UUID"), body={"assetIds": ["a", UNKNOWN]}),
    bad("GET", "/api/stacks/nope", (["id"], "Invalid UUID")),
    bad("PUT", "/api/stacks/{album}", (["primaryAssetId"], "Invalid UUID"), body={"primaryAssetId": "p"}),
    bad("DELETE", "/api/stacks", (["ids", 0], "Invalid UUID"), body={"ids": ["s"]}),
    # --- duplicates ---
    bad("DELETE", "/api/duplicates/nope", (["id"], "Invalid UUID")),
    bad("DELETE", "/api/duplicates", (["ids"], expected("array", "undefined")), body={}),
    bad("DELETE", "/api/duplicates", (["ids", 0], "Invalid UUID"), body={"ids": ["d"]}),
    bad("POST", "/api/duplicates/resolve", (["groups"], NOT_EMPTY), body={"groups": []}),
    bad("POST", "/api/duplicates/resolve", (["groups", 0, "duplicateId"], "Invalid UUID"),
        body={"groups": [{"duplicateId": "d", "keepAssetIds": [], "trashAssetIds": []}]}),
    bad("POST", "/api/duplicates/resolve", (["groups", 0, "keepAssetIds"], expected("array", "undefined")),
        body={"groups": [{"duplicateId": UNKNOWN, "trashAssetIds": []}]}),
    bad("POST", "/api/duplicates/resolve", (["groups", 0, "trashAssetIds", 0], "Invalid UUID"),
        body={"groups": [{"duplicateId": UNKNOWN, "keepAssetIds": [], "trashAssetIds": ["t"]}]}),
    # --- asset extras: copy, jobs, metadata, stack search and member removal ---
    bad("PUT", "/api/assets/copy", (["targetId"], expected("string", "undefined")), body={"sourceId": "{asset}"}),
    bad("PUT", "/api/assets/copy", (["sourceId"], "Invalid UUID"), body={"sourceId": NOT_V4, "targetId": UNKNOWN}),
    bad("PUT", "/api/assets/copy", (["albums"], expected("boolean", "string")),
        body={"sourceId": UNKNOWN, "targetId": UNKNOWN, "albums": "yes"}),
    bad("POST", "/api/assets/jobs", (["name"], None), body={"assetIds": [UNKNOWN], "name": "transcode"}),
    bad("POST", "/api/assets/jobs", (["assetIds", 0], "Invalid UUID"),
        body={"assetIds": ["a"], "name": "refresh-faces"}),
    bad("PUT", "/api/assets/{asset}/metadata", (["items", 0, "value"], expected("record", "string")),
        body={"items": [{"key": "k", "value": "v"}]}),
    bad("PUT", "/api/assets/metadata", (["items", 0, "assetId"], "Invalid UUID"),
        body={"items": [{"assetId": "a", "key": "k", "value": {}}]}),
    bad("DELETE", "/api/assets/metadata", (["items", 0, "key"], expected("string", "undefined")),
        body={"items": [{"assetId": UNKNOWN}]}),
    bad("GET", "/api/assets/nope/metadata", (["id"], "Invalid UUID")),
    bad("GET", "/api/assets/nope/ocr", (["id"], "Invalid UUID")),
    bad("GET", "/api/stacks", (["primaryAssetId"], "Invalid UUID"), params={"primaryAssetId": "p"}),
    bad("DELETE", "/api/stacks/{album}/assets/nope", (["assetId"], "Invalid UUID")),
    ok("GET", "/api/assets/{asset}/metadata", 200),
    ok("GET", "/api/assets/{asset}/ocr", 200),
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
    bad("POST", "/api/sessions", (["duration"], "Too big: expected number to be <=9007199254740991"),
        body={"duration": 9007199254740992}),
    bad("POST", "/api/sessions", (["duration"], expected("int", "number")), body={"duration": 1.5}),
    bad("POST", "/api/sessions", (["deviceOS"], expected("string", "number")), body={"deviceOS": 1}),
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
    # --- system config (the body is the whole document) ---
    bad("PUT", "/api/system-config", (["ffmpeg", "crf"], expected("number", "NaN")),  # z.coerce.number()
        body=config_with("ffmpeg.crf", "high"), admin=True),
    ok("PUT", "/api/system-config", 200, body=config_with("ffmpeg.crf", "23"), admin=True),
    bad("PUT", "/api/system-config", (["ffmpeg", "preset"], expected("string", "number")),
        body=config_with("ffmpeg.preset", 5), admin=True),
    bad("PUT", "/api/system-config", (["ffmpeg", "temporalAQ"], expected("boolean", "string")),
        body=config_with("ffmpeg.temporalAQ", "yes"), admin=True),
    bad("PUT", "/api/system-config", (["image", "thumbnail", "quality"], "Too big: expected number to be <=100"),
        body=config_with("image.thumbnail.quality", 101), admin=True),
    bad("PUT", "/api/system-config", (["image", "preview", "quality"], "Too small: expected number to be >=1"),
        body=config_with("image.preview.quality", 0), admin=True),
    bad("PUT", "/api/system-config", (["image", "thumbnail", "format"], one_of("jpeg", "webp")),
        body=config_with("image.thumbnail.format", "png"), admin=True),
    bad("PUT", "/api/system-config", (["image"], expected("object", "undefined")),
        body=config_with("image", drop=True), admin=True),
    bad("PUT", "/api/system-config", (["trash", "enabled"], expected("boolean", "undefined")),
        body=config_with("trash.enabled", drop=True), admin=True),
    # --- jobs and queues ---
    bad("PUT", "/api/jobs/nope", (["name"], QUEUES), body={"command": "start"}, admin=True),
    bad("PUT", "/api/jobs/thumbnailGeneration", (["command"], COMMANDS), body={"command": "go"}, admin=True),
    bad("PUT", "/api/jobs/thumbnailGeneration", (["command"], COMMANDS), body={}, admin=True),
    bad("PUT", "/api/jobs/thumbnailGeneration", (["force"], expected("boolean", "string")),
        body={"command": "empty", "force": "yes"}, admin=True),
    bad("POST", "/api/jobs", (["name"], MANUAL_JOBS), body={"name": "everything"}, admin=True),
    bad("POST", "/api/jobs", (["name"], MANUAL_JOBS), body={}, admin=True),
    bad("GET", "/api/queues/nope", (["name"], QUEUES), admin=True),
    bad("PUT", "/api/queues/nope", (["name"], QUEUES), body={"isPaused": True}, admin=True),
    bad("PUT", "/api/queues/thumbnailGeneration", (["isPaused"], expected("boolean", "string")),
        body={"isPaused": "yes"}, admin=True),
    bad("GET", "/api/queues/thumbnailGeneration/jobs", (["status"], "Invalid input"), params={"status": "running"},
        admin=True),
    bad("GET", "/api/queues/thumbnailGeneration/jobs", (["status"], "Invalid input"),
        params={"status": ["active", "running"]}, admin=True),
    ok("GET", "/api/queues/thumbnailGeneration/jobs", 200, params={"status": ["active", "failed"]}, admin=True),
    bad("DELETE", "/api/queues/thumbnailGeneration/jobs", (["failed"], expected("boolean", "string")),
        body={"failed": "yes"}, admin=True),
    # --- notifications ---
    bad("GET", "/api/notifications", (["id"], "Invalid UUID"), params={"id": "n"}),
    bad("GET", "/api/notifications", (["level"], LEVELS), params={"level": "loud"}),
    bad("GET", "/api/notifications", (["type"], NOTIFICATION_TYPES), params={"type": "Gossip"}),
    bad("GET", "/api/notifications", (["unread"], BOOL_QUERY), params={"unread": "1"}),
    bad("PUT", "/api/notifications", (["ids"], expected("array", "string")), body={"ids": "n"}),
    bad("PUT", "/api/notifications", (["ids"], NOT_EMPTY), body={"ids": []}),
    bad("PUT", "/api/notifications", (["ids", 0], "Invalid UUID"), body={"ids": ["n"]}),
    bad("PUT", "/api/notifications", (["readAt"], DATETIME), body={"ids": [UNKNOWN], "readAt": "now"}),
    bad("DELETE", "/api/notifications", (["ids"], expected("array", "undefined")), body={}),
    bad("DELETE", "/api/notifications", (["ids", 0], "Invalid UUID"), body={"ids": ["n"]}),
    bad("GET", "/api/notifications/nope", (["id"], "Invalid UUID")),
    bad("PUT", "/api/notifications/nope", (["id"], "Invalid UUID"), body={"readAt": None}),
    bad("DELETE", "/api/notifications/nope", (["id"], "Invalid UUID")),
    bad("POST", "/api/admin/notifications", (["userId"], expected("string", "undefined")), body={"title": "t"},
        admin=True),
    bad("POST", "/api/admin/notifications", (["level"], LEVELS),
        body={"title": "t", "userId": "{user}", "level": "loud"}, admin=True),
    bad("POST", "/api/admin/notifications", (["type"], NOTIFICATION_TYPES),
        body={"title": "t", "userId": "{user}", "type": "Gossip"}, admin=True),
    bad("POST", "/api/admin/notifications/templates/welcome", (["template"], expected("string", "undefined")),
        body={}, admin=True),
    ok("POST", "/api/admin/notifications/templates/nope", 200, body={"template": ""}, admin=True),  # an empty preview
    bad("POST", "/api/admin/notifications/test-email",
        (["transport", "port"], "Too big: expected number to be <=65535"),
        body=SMTP, admin=True),
    bad("POST", "/api/admin/notifications/test-email", (["transport"], expected("object", "undefined")),
        body={k: v for k, v in SMTP.items() if k != "transport"}, admin=True),
    # --- licenses ---
    bad("PUT", "/api/users/me/license", (["licenseKey"], LICENSE), body={"licenseKey": "IMSV-1", "activationKey": "a"}),
    bad("PUT", "/api/users/me/license", (["activationKey"], expected("string", "undefined")),
        body={"licenseKey": "IMCL" + "-AAAA" * 8}),
    bad("PUT", "/api/server/license", (["licenseKey"], LICENSE), body={"licenseKey": "x", "activationKey": "a"},
        admin=True),
    # --- calendar heatmaps ---
    bad("GET", "/api/users/me/calendar-heatmap", (["from"], DATE), params={"from": "yesterday"}),
    bad("GET", "/api/users/me/calendar-heatmap", (["to"], DATE), params={"to": "2024-02-30"}),
    bad("GET", "/api/users/me/calendar-heatmap", (["type"], one_of("Upload", "Taken")), params={"type": "Edited"}),
    bad("GET", "/api/admin/users/{user}/calendar-heatmap", (["from"], DATE), params={"from": "2024-1-1"}, admin=True),
    bad("GET", "/api/admin/users/nope/calendar-heatmap", (["id"], "Invalid UUID"), admin=True),
    # --- users, admin users, sign-in ---
    bad("GET", "/api/users/nope", (["id"], "Invalid UUID")),
    bad("PUT", "/api/users/me", (["avatarColor"], AVATAR_COLORS), body={"avatarColor": "teal"}),
    bad("PUT", "/api/users/me", (["email"], "Invalid input: expected email, received string"), body={"email": "nope"}),
    bad("PUT", "/api/users/me", (["name"], expected("string", "boolean")), body={"name": True}),
    bad("PUT", "/api/users/me", (["email"], "Invalid input: expected email, received string"),
        body={"email": "a@example.com\n"}),  # JavaScript's `$` is the very end
    bad("PUT", "/api/users/me/preferences", (["download", "archiveSize"], "Too small: expected number to be >=1"),
        body={"download": {"archiveSize": 0}}),
    bad("PUT", "/api/users/me/preferences", (["memories", "duration"], expected("int", "number")),
        body={"memories": {"duration": 1.5}}),
    bad("PUT", "/api/users/me/preferences", (["purchase", "hideBuyButtonUntil"], DATETIME),
        body={"purchase": {"hideBuyButtonUntil": "later"}}),  # stricter than Immich 3.1's any string
    Case("POST", "/api/users/profile-image", status=400, errors=[(["file"], expected("file", "undefined"))], form={}),
    bad("POST", "/api/auth/login", (["password"], expected("string", "undefined")), body={"email": "a@b.c"}),
    bad("POST", "/api/auth/login", (["email"], "Invalid input: expected email, received string"),
        body={"email": "nope", "password": "x"}),
    bad("POST", "/api/admin/users", (["email"], expected("string", "undefined")), body={"name": "n", "password": "p"},
        admin=True),
    bad("POST", "/api/admin/users", (["quotaSizeInBytes"], "Too small: expected number to be >=0"),
        body={"email": "q@example.com", "name": "n", "password": "p", "quotaSizeInBytes": -1}, admin=True),
    bad("POST", "/api/admin/users", (["pinCode"], None),
        body={"email": "q@example.com", "name": "n", "password": "p", "pinCode": "12"}, admin=True),
    bad("POST", "/api/admin/users", (["pinCode"], r"Invalid string: must match pattern /^\d{6}$/"),
        body={"email": "q@example.com", "name": "n", "password": "p", "pinCode": "١٢٣٤٥٦"}, admin=True),
    bad("PUT", "/api/admin/users/{user}", (["email"], "Invalid input: expected email, received string"),
        body={"email": "x"}, admin=True),
    bad("GET", "/api/admin/users/nope", (["id"], "Invalid UUID"), admin=True),
    bad("PUT", "/api/admin/users/{user}", (["isAdmin"], expected("boolean", "string")), body={"isAdmin": "no"},
        admin=True),
    bad("DELETE", "/api/admin/users/{user}", (["force"], expected("boolean", "string")), body={"force": "yes"},
        admin=True),
    bad("DELETE", "/api/admin/users/nope", (["id"], "Invalid UUID"), body={}, admin=True),
    bad("POST", "/api/admin/users/nope/restore", (["id"], "Invalid UUID"), admin=True),
    ok("POST", "/api/admin/auth/unlink-all", 403),
    ok("POST", "/api/admin/auth/unlink-all", 204, body={"ignored": True}, admin=True),
    # --- external libraries (admin) ---
    bad("POST", "/api/libraries", (["ownerId"], expected("string", "undefined")), body={}, admin=True),
    bad("POST", "/api/libraries", (["ownerId"], "Invalid UUID"), body={"ownerId": "me"}, admin=True),
    bad("POST", "/api/libraries", (["name"], "Too small: expected string to have >=1 characters"),
        body={"ownerId": "{user}", "name": ""}, admin=True),
    bad("POST", "/api/libraries", (["importPaths"], "Array must have unique items"),
        body={"ownerId": "{user}", "importPaths": ["/a", "/a"]}, admin=True),
    bad("POST", "/api/libraries", (["exclusionPatterns"], "Array items must not be empty"),
        body={"ownerId": "{user}", "exclusionPatterns": ["**/x", " "]}, admin=True),
    bad("POST", "/api/libraries", (["importPaths"], "Too big: expected array to have <=128 items"),
        body={"ownerId": "{user}", "importPaths": [f"/p{i}" for i in range(129)]}, admin=True),
    bad("POST", "/api/libraries", (["importPaths", 0], expected("string", "number")),
        body={"ownerId": "{user}", "importPaths": [1]}, admin=True),
    ok("POST", "/api/libraries", 403, body={"ownerId": "{user}"}),
    bad("PUT", "/api/libraries/{asset}", (["exclusionPatterns"], "Array must have unique items"),
        body={"exclusionPatterns": ["**/a", "**/a"]}, admin=True),
    bad("PUT", "/api/libraries/{asset}", (["importPaths"], "Array items must not be empty"),
        body={"importPaths": [""]}, admin=True),
    bad("PUT", "/api/libraries/nope", (["id"], "Invalid UUID"), body={"name": "x"}, admin=True),
    bad("GET", "/api/libraries/nope", (["id"], "Invalid UUID"), admin=True),
    bad("GET", "/api/libraries/nope/statistics", (["id"], "Invalid UUID"), admin=True),
    bad("POST", "/api/libraries/nope/scan", (["id"], "Invalid UUID"), admin=True),
    bad("DELETE", "/api/libraries/nope", (["id"], "Invalid UUID"), admin=True),
    bad("POST", "/api/libraries/{asset}/validate", (["importPaths"], expected("array", "string")),
        body={"importPaths": "/a"}, admin=True),
    ok("POST", "/api/libraries/{asset}/validate", 200, body={}, admin=True),
    bad("POST", "/api/search/metadata", (["libraryId"], "Invalid UUID"), body={"libraryId": "x"}),
    bad("POST", "/api/search/metadata", (["isOffline"], expected("boolean", "string")), body={"isOffline": "no"}),
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


def _filled(value: Any, ids: dict) -> Any:
    return value.format(**ids) if isinstance(value, str) and value.startswith("{") else value


def _answer(clients: dict, ids: dict, case: Case) -> httpx.Response:
    body = case.body
    if callable(body):
        body = body(clients[True].get("/api/system-config").json())
    elif isinstance(body, dict):
        body = {key: _filled(value, ids) for key, value in body.items()}
    extra = {"json": body} if body is not None else {}
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
