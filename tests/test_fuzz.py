"""Property test: no input makes either API answer 5xx.

Every route of both Litestar apps is enumerated from the apps themselves (so a new route is fuzzed
without touching this file) and fed, with a valid admin session, malformed path parameters, query
parameters, headers and bodies: wrong types, NUL characters, huge strings and numbers, JSON nested
1,000 levels deep, broken encodings. Any 5xx fails the test and prints the request that caused it.

The generator is a seeded `random.Random` per route, so a failure reproduces exactly; the case count
per route is fixed, so the run is bounded. The server is this module's own (fuzzing changes state).
"""

from __future__ import annotations

import inspect
import json
import logging
import random
import re
import time
import typing
import uuid
import zlib
from dataclasses import dataclass, field

import httpx
import msgspec
import pytest

from app.api import ids
from tests.conftest import ServerProcess
from tests.media import png_bytes

logging.getLogger("httpx").setLevel(logging.WARNING)  # thousands of request lines would bury the report
PASSWORD = "fuzz-password-1"
DEEP = 1000
QUERY_NAMES = ["ids", "include", "library_id", "limit", "page", "size", "order", "timeBucket", "type",
               "starting_after_id", "asset_id", "person_id", "album_id", "name", "q", "sig", "exp"]
# Keys for a dict-typed native body (no declared fields): the fields of both APIs' bodies.
BODY_NAMES = [
    "name", "description", "rating", "is_favorite", "ids", "asset_ids", "is_hidden", "birth_date", "color",
    "latitude", "longitude", "visibility", "primary_asset_id", "library_id", "caption", "order", "x", "y", "width",
    "height", "asset_id", "person_id", "thumbnail_face_id", "updates", "change", "source_person_ids", "email",
    "local_datetime", "album_id", "cover_asset_id", "timezone", "is_archived", "password", "box",
]
UNKNOWN_UUID = "00000000-0000-4000-8000-00000000f022"
# For each JSON kind a field declares: truthy values of other kinds, scalars and containers (a falsy
# one often skips the code that would choke on it), and odd values: edge cases of its own kind and
# falsy values of other kinds.
WRONG_SCALAR = {"str": [-1, 2**64, True, 1.5], "num": ["3", "x" * 70000, True], "bool": ["true", "false", 1],
                "list": ["x", 7, True], "obj": ["x", 1, True]}
WRONG_CONTAINER = {"str": [["x"], {"a": 1}], "num": [[3], {"a": 1}], "bool": [[True], {"a": 1}],
                   "list": [{"a": [1]}, [None], [1, 2], [[[]]], [{}]], "obj": [[1], [{}]]}
ODD = {
    "str": ["nul\u0000here", "\u0000", "x" * 70000, "é☃💥", "", " ", "../../etc/passwd", "2024-13-45T99:99:99Z",
            "00000000-0000-0000-0000-000000000000", "' OR 1=1 --", "%00", "-1", "NaN", 0, None, [], {}],
    "num": [2**64, -(2**63) - 1, 10**30, -1, 0, 1e308, -1e308, 0.5, 2**31, None, "", []],
    "bool": [None, 0, "", []],
    "list": [["nul\u0000here"], ["x"] * 5000, [], ["x" * 70000], None, "", 0],
    "obj": [{"\u0000": 1}, {"a": "\u0000"}, {}, {"a": {"b": {"c": [1]}}}, None, ""],
}
# Raw bodies that are not well-formed JSON, or JSON of a surprising top-level type.
RAW_BODIES = [b"", b"{", b"\xff\xfe\x00", b"null", b"[]", b'"x"', b"1e999", b"-", b'{"a":1e999}',
              b"[" * DEEP + b"]" * DEEP, b'{"a":' * DEEP + b"1" + b"}" * DEEP, b'{"a":"\\u0000"}',
              b'{"\\u0000":1}', b'["\\ud800"]', b"{" + b'"k":1,' * 5000 + b'"k":1}', b"[" * 40 + b"]" * 40]
# Path parameter values: malformed ids, non-ASCII, encoded NUL and invalid UTF-8, oversize.
PATH_VALUES = ["not-a-uuid", "00000000-0000-4000-8000-000000000000", "%C3%A9%E2%98%83", "%00", "a%00b", "%FF%FE",
               "x" * 3000, "..", "asset_", "asset_" + "z" * 22, "-1", "99999999999999999999999", "%20"]
# Each query parameter gets a NUL, a non-ASCII or invalid UTF-8 value, and one of the others.
NUL_QUERY = ["%00", "a%00b"]
NON_ASCII_QUERY = ["%FF", "%C3%A9", "%E2%98%83x"]
QUERY_VALUES = ["", "-1", "0", "99999999999999999999999", "1e999", "NaN",
                "true", "x" * 20000, "[]", "{}", "not-a-date", "2024-02-30", "00000000-0000-4000-8000-000000000000",
                "4102444800", "%E2%98%83"]
# Query values that let a request get past its first check (a link valid until 2100, a real bucket).
PLAUSIBLE_QUERY = {"exp": "4102444800", "sig": "AAAAAAAAAAAAAAAAAAAAAAAA", "timeBucket": "2024-01-01T00:00:00.000Z",
                   "type": "country", "size": "preview"}
PATH_CASES = 4  # of PATH_VALUES, per route with path parameters
# Request headers the handlers read (ranges and validators for media, Immich's checksum, content types).
HEADER_CASES = [
    {"range": "bytes=a-b"}, {"range": "bytes=99999999999999999999-"}, {"range": "bytes=5-1,0-0"}, {"range": "bytes=-0"},
    {"range": "items=0-1"}, {"if-none-match": '"x", *, W/'}, {"if-modified-since": "not a date"},
    {"if-range": "Mon, 99 Foo 2024"}, {"x-immich-checksum": "!!!not-base64"}, {"x-immich-checksum": "a" * 5000},
    {"accept": "*/*;q=abc"}, {"content-type": "application/json; charset=ebcdic"},
    {"content-type": "application/x-www-form-urlencoded"}, {"content-type": "multipart/form-data"},
]

# Routes that end the credential they are called with: fuzzed last, each with a fresh throwaway session.
SESSION_ENDING = {("immich", "POST", "/api/auth/logout"), ("immich", "POST", "/api/auth/change-password"),
                  ("immich", "DELETE", "/api/sessions"), ("immich", "DELETE", "/api/sessions/{session_id:str}")}
RESERVED = {"request", "data", "auth", "principal", "shared", "state", "headers", "scope", "socket", "body",
            "cookies", "query"}


@dataclass
class Op:
    app: str
    method: str
    path: str
    path_params: list[str]
    query: dict[str, typing.Any]
    body: typing.Any  # the `data` annotation, or None
    multipart: bool
    seed: int = field(init=False)

    def __post_init__(self):
        self.seed = zlib.crc32(f"{self.app} {self.method} {self.path}".encode())


def _operations() -> list[Op]:
    from app.api.app import create_native_app
    from app.api.state import Shared
    from app.settings import load_settings
    from compat.app import create_immich_app

    shared = Shared.build(load_settings())
    ops = []
    for name, app in (("native", create_native_app(shared)), ("immich", create_immich_app(shared))):
        for route in app.routes:
            for handler in getattr(route, "route_handlers", []):
                methods = sorted(set(getattr(handler, "http_methods", ())) - {"HEAD", "OPTIONS"})
                if not methods:
                    continue
                params = handler.parsed_fn_signature.parameters
                path_params = list(route.path_parameters)
                query = {}
                for pname, fd in params.items():
                    if pname in RESERVED or pname in path_params:
                        continue
                    alias = getattr(fd.kwarg_definition, "query", None)
                    query[alias or pname] = fd.annotation
                body = params["data"].annotation if "data" in params else None
                try:
                    source = inspect.getsource(handler.fn)
                except (OSError, TypeError):
                    source = ""
                multipart = "receive_multipart" in source
                for method in methods:
                    ops.append(Op(name, method, route.path, path_params, query, body, multipart))
    # Deletes after everything else (they remove the objects other routes are fed), session-ending last.
    ops.sort(key=lambda o: ((o.app, o.method, o.path) in SESSION_ENDING, o.method == "DELETE"))
    return ops


class World:
    """The live objects the fuzzer can point valid ids at, and the credentials."""

    def __init__(self, srv: ServerProcess):
        self.srv = srv
        self.native = httpx.Client(base_url=srv.base_url, timeout=60)
        self.immich = httpx.Client(base_url=srv.immich_url, timeout=60)
        admin = {"email": "fuzz-admin@example.com", "password": PASSWORD, "name": "Fuzz"}
        r = self.immich.post("/api/auth/admin-sign-up", json=admin)
        assert r.status_code == 201, r.text
        self.token = self.login(admin["email"])
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.victim_email = "fuzz-victim@example.com"
        self.create_user(self.victim_email)
        self.bystander = self.create_user("fuzz-bystander@example.com")
        victim_token = self.login(self.victim_email)
        sessions = self.immich.get("/api/sessions", headers={"Authorization": f"Bearer {victim_token}"}).json()
        self.victim_session = sessions[0]["id"]
        self.assets = [self.upload(i) for i in range(4)]
        self.album = self.post_native("/api/albums", {"name": "fuzz album"})["id"]
        self.post_native(f"/api/albums/{self.album}/assets", {"asset_ids": self.assets[:2]})
        self.album_asset = self.native.get("/api/album-assets", params={"album_id": self.album},
                                           headers=self.headers).json()["data"][0]["id"]
        self.stack = self.post_native("/api/stacks", {"asset_ids": self.assets[2:4]})["id"]
        self.person = self.post_native("/api/people", {"name": "Fuzz Person"})["id"]
        self.library = self.native.get("/api/libraries", headers=self.headers).json()[0]["id"]
        key = self.immich.post("/api/api-keys", json={"name": "fuzz", "permissions": ["all"]}, headers=self.headers)
        assert key.status_code == 201, key.text
        self.key = key.json()["apiKey"]["id"]

    def login(self, email: str) -> str:
        r = self.immich.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        return r.json()["accessToken"]

    def create_user(self, email: str) -> str:
        r = self.immich.post("/api/admin/users", headers=self.headers,
                             json={"email": email, "password": PASSWORD, "name": email.split("@")[0]})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def post_native(self, path: str, body: dict) -> dict:
        r = self.native.post(path, json=body, headers=self.headers)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    def upload(self, seed: int) -> str:
        r = self.native.post("/api/assets", headers=self.headers, files={"asset_data": ("f.png", png_bytes(900 + seed))},
                             data={"device_asset_id": f"fuzz-{seed}", "device_id": "fuzz",
                                   "file_created_at": "2024-01-01T00:00:00Z",
                                   "file_modified_at": "2024-01-01T00:00:00Z"})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def asset(self, app: str, index: int) -> str:
        return self.assets[index] if app == "native" else str(_bare(self.assets[index]))

    def unknown(self, app: str, name: str) -> str:
        """An id of the right form for `name` that names nothing."""
        real = self.valid(app, name)
        if app == "native" and real and "_" in real:
            return real.rpartition("_")[0] + "_" + "2" * 22
        return UNKNOWN_UUID

    def valid(self, app: str, name: str) -> str | None:
        """A real id for a parameter or field name, in the app's id format."""
        lowered = name.lower()
        for words, native_id in (
            (("album_asset",), self.album_asset), (("stack",), self.stack), (("album",), self.album),
            (("person", "people"), self.person), (("library",), self.library), (("asset",), self.assets[0]),
        ):
            if any(w in lowered for w in words):
                return native_id if app == "native" else str(_bare(native_id))
        if "user" in lowered:
            return self.bystander
        if "session" in lowered:
            return self.victim_session
        if "key" in lowered:
            return self.key
        return None


def _bare(native_id: str) -> uuid.UUID:
    prefix, _, _ = native_id.rpartition("_")
    return ids.decode(prefix, native_id)


@pytest.fixture(scope="module")
def world(workdir):
    srv = ServerProcess(workdir / "fuzz-data").start("--no-worker")
    try:
        yield World(srv)
    finally:
        srv.stop()


def _kind(annotation) -> str:
    text = str(annotation).lower()
    if typing.get_origin(annotation) is list or "list" in text:
        return "list"
    if annotation is bool or "bool" in text:
        return "bool"
    if annotation in (int, float) or "int" in text or "float" in text:
        return "num"
    if annotation is str or "str" in text:
        return "str"
    return "obj"


_SPEC_KINDS = {"string": "str", "integer": "num", "number": "num", "boolean": "bool", "array": "list",
               "object": "obj"}


def _spec_fields(op: Op) -> list[tuple[str, str]]:
    """The Immich spec's request-body fields for an operation whose handler takes a plain dict."""
    from tests.immich_contract import SPEC_PATH, spec

    if not SPEC_PATH.exists():
        return []
    template = re.sub(r"\{[^}]+\}", "{}", op.path.removeprefix("/api"))
    for path, item in spec()["paths"].items():
        if re.sub(r"\{[^}]+\}", "{}", path) != template or op.method.lower() not in item:
            continue
        body = item[op.method.lower()].get("requestBody", {}).get("content", {}).get("application/json", {})
        ref = body.get("schema", {}).get("$ref", "")
        schema = spec()["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
        return [(name, _SPEC_KINDS.get(prop.get("type"), "str" if "$ref" in prop else "obj"))
                for name, prop in schema.get("properties", {}).items()]
    return []


def _fields(rng: random.Random, op: Op) -> tuple[list[tuple[str, str]], bool]:
    """The body's fields and their kinds, and whether they are declared (else guessed names)."""
    if isinstance(op.body, type) and issubclass(op.body, msgspec.Struct):
        return [(f.encode_name, _kind(f.type)) for f in msgspec.structs.fields(op.body)], True
    if op.app == "immich" and (found := _spec_fields(op)):
        return found, True
    return [(name, "str") for name in rng.sample(BODY_NAMES, 10)], False


def _plausible(world: World, app: str, name: str, kind: str) -> typing.Any:
    """A value of the right kind, so fuzzing one field still lets the others pass their checks."""
    real = world.valid(app, name)
    if kind == "list":
        if "asset" in name.lower():  # two distinct assets, so a stack or album body is acceptable
            return [world.asset(app, 0), world.asset(app, 1)]
        return [real] if real else ["x"]
    return {"bool": True, "num": 1, "obj": {}}.get(kind, real or "x")


def _dump(value) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()


def _bodies(rng: random.Random, world: World, op: Op) -> list[bytes]:
    """The declared body with every field in turn given a wrong kind, then an edge value of its kind."""
    fields, declared = _fields(rng, op)
    base = {n: _plausible(world, op.app, n, k) for n, k in fields} if declared else {}
    out = [_dump(base)]
    for name, kind in fields:
        out.append(_dump({**base, name: rng.choice(WRONG_SCALAR[kind])}))
        out.append(_dump({**base, name: rng.choice(WRONG_CONTAINER[kind])}))
        out.append(_dump({**base, name: rng.choice(ODD[kind])}))
        if kind == "list" and world.valid(op.app, name):  # an id that names nothing, first and last
            real, unknown = world.valid(op.app, name), world.unknown(op.app, name)
            out.append(_dump({**base, name: [unknown, real]}))
            out.append(_dump({**base, name: [real, unknown]}))
    deep = rng.choice([n for n, _ in fields] or ["a"])
    out.append(_dump({**base, deep: "@@DEEP@@"}).replace(b'"@@DEEP@@"', b"[" * DEEP + b"]" * DEEP))
    out += rng.sample(RAW_BODIES, 4)
    return out


def _multipart(rng: random.Random, op: Op) -> list[tuple[dict, dict]]:
    """(fields, files) pairs for the multipart routes: NULs in names and values, bad dates, missing parts."""
    file_field = "assetData" if op.app == "immich" else ("asset_data" if op.path == "/api/assets" else "image")
    good = {"deviceAssetId": "d", "deviceId": "fuzz", "fileCreatedAt": "2024-01-01T00:00:00Z",
            "fileModifiedAt": "2024-01-01T00:00:00Z", "device_asset_id": "d", "device_id": "fuzz",
            "file_created_at": "2024-01-01T00:00:00Z", "file_modified_at": "2024-01-01T00:00:00Z"}
    out = []
    for i in range(10):
        fields = dict(good)
        name = rng.choice(list(good) + ["filename", "livePhotoVideoId", "visibility", "isFavorite", "library_id",
                                        "query", "limit"])
        fields[name] = rng.choice(["nul\u0000here", "", "x" * 60000, "é☃", "2024-13-45", "-1", "\u0000"])
        files = {file_field: ("é☃.png" if i % 2 else "a.png", png_bytes(5000 + i + zlib.crc32(op.path.encode()) % 1000))}
        out.append((fields, files if rng.random() < 0.9 else {}))
    out.append(({**good, "filename": "x\u0000.png"}, {file_field: ("ok.png", png_bytes(7777))}))
    return out


def _raw_multipart(op: Op) -> bytes:
    """A file part whose name carries a raw NUL (httpx would escape it to %00)."""
    file_field = "assetData" if op.app == "immich" else ("asset_data" if op.path == "/api/assets" else "image")
    return (b'--b0undary\r\nContent-Disposition: form-data; name="' + file_field.encode()
            + b'"; filename="a\x00b.png"\r\nContent-Type: image/png\r\n\r\n' + png_bytes(7779)
            + b"\r\n--b0undary--\r\n")


def _path(rng: random.Random, world: World, op: Op, fuzz: str | None) -> str:
    path = op.path
    for name in op.path_params:
        value = fuzz if fuzz is not None and (len(op.path_params) == 1 or rng.random() < 0.5) else None
        if value is None:
            value = world.valid(op.app, name) or ("original" if name == "variant" else "x")
        path = re.sub(r"\{" + re.escape(name) + r"(:[^}]*)?\}", value, path)
    return path


def _query(rng: random.Random, op: Op, fuzzed: list[str], values: list[str] = QUERY_VALUES) -> str:
    """Every declared parameter plausible (or absent) except those in `fuzzed`."""
    parts = []
    for name in op.query:
        if name in fuzzed:
            parts.append(f"{name}={rng.choice(values)}")
        elif name in PLAUSIBLE_QUERY:
            parts.append(f"{name}={PLAUSIBLE_QUERY[name]}")
    parts += [f"{name}={rng.choice(values)}" for name in fuzzed if name not in op.query]
    return "&".join(parts)


def _requests(world: World, op: Op) -> list[tuple[str, str, typing.Any]]:
    """The (path, query, body) cases for one operation; the same every run (seeded by the route)."""
    rng = random.Random(op.seed)
    cases = []
    if op.path_params:
        cases += [(_path(rng, world, op, v), _query(rng, op, []), None) for v in rng.sample(PATH_VALUES, PATH_CASES)]
    names = list(op.query) or rng.sample(QUERY_NAMES, 2)
    for values in (NUL_QUERY, NON_ASCII_QUERY, QUERY_VALUES):
        cases += [(_path(rng, world, op, None), _query(rng, op, [name], values), None) for name in names]
    if len(names) > 1:  # all at once, one of them twice
        cases.append((_path(rng, world, op, None), _query(rng, op, names + [rng.choice(names)]), None))
    for extra in rng.sample(HEADER_CASES, 3):
        cases.append((_path(rng, world, op, None), _query(rng, op, []), ("headers", extra)))
    if op.multipart:
        cases += [(_path(rng, world, op, None), "", form) for form in _multipart(rng, op)]
        cases.append((_path(rng, world, op, None), "", ("raw", _raw_multipart(op))))
    elif op.method != "GET":
        cases += [(_path(rng, world, op, None), "", body) for body in _bodies(rng, world, op)]
    return cases


def _send(client: httpx.Client, headers: dict, op: Op, path: str, query: str, payload):
    url = path + (f"?{query}" if query else "")
    if isinstance(payload, tuple) and payload[0] == "headers":  # a plausible body, hostile headers
        content = b"{}" if op.method != "GET" and not op.multipart else None
        return client.request(op.method, url, headers={**headers, **payload[1]}, content=content)
    if isinstance(payload, tuple) and payload[0] == "raw":
        return client.request(op.method, url, content=payload[1],
                              headers={**headers, "content-type": "multipart/form-data; boundary=b0undary"})
    if isinstance(payload, tuple):
        fields, files = payload
        return client.request(op.method, url, headers=headers, data=fields, files=files or {"_": ("", b"")})
    extra = {"content-type": "application/json"} if payload is not None else {}
    return client.request(op.method, url, headers={**headers, **extra}, content=payload)


def _short(text, keep: int = 160) -> str:
    text = repr(text)
    return text if len(text) <= 2 * keep else f"{text[:keep]}...({len(text)} chars)...{text[-40:]}"


def _describe(op: Op, path: str, query: str, payload) -> str:
    url = path + (f"?{query}" if query else "")
    return f"{op.app} {op.method} {_short(url)} body={_short(payload)}"


def test_no_input_makes_any_route_answer_5xx(world):
    operations = _operations()
    failures, sent = [], 0
    started = time.monotonic()
    for op in operations:
        client = world.native if op.app == "native" else world.immich
        headers = world.headers
        if (op.app, op.method, op.path) in SESSION_ENDING:  # a fresh throwaway session for each route
            headers = {"Authorization": f"Bearer {world.login(world.victim_email)}"}
        for path, query, payload in _requests(world, op):
            try:
                r = _send(client, headers, op, path, query, payload)
            except httpx.HTTPError as exc:  # a dropped connection is as bad as a 500
                failures.append(f"{_describe(op, path, query, payload)} -> {exc!r}")
                continue
            sent += 1
            if r.status_code >= 500 and r.status_code != 501:  # 501: an Immich operation this server lacks
                failures.append(f"{_describe(op, path, query, payload)} -> {r.status_code} {r.text[:300]}")
            elif 400 <= r.status_code < 500 and r.headers.get("content-type", "").startswith("application/json"):
                key = "detail" if op.app == "native" else "message"
                if key not in r.json():
                    failures.append(f"{_describe(op, path, query, payload)} -> {r.status_code} no {key}: {r.text[:200]}")
            if r.status_code == 401 and headers is not world.headers:  # the throwaway session ended: a new one
                headers = {"Authorization": f"Bearer {world.login(world.victim_email)}"}
    print(f"{sent} requests to {len(operations)} operations in {time.monotonic() - started:.0f} s")
    for failure in failures:
        print(failure)
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:60])
    assert len(operations) > 130 and sent > 1500  # every route of both apps was reached
    # The credential is still good: nothing along the way broke the server or the session.
    assert world.native.get("/api/users/me", headers=world.headers).status_code == 200
