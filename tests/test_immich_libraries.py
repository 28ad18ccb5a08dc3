"""Immich's /api/libraries over HTTP, after Immich's e2e library spec (CRUD, validate, statistics,
delete, who may call them), and what an external asset shows through the asset and search routes.
Every 2xx body is checked against the spec."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.conftest import run
from tests.immich_contract import SPEC_PATH, checked_client

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")

DEFAULT_PATTERNS = ["**/@eaDir/**", "**/._*", "**/#recycle/**", "**/#snapshot/**"]


def _client(server, token: str | None = None) -> httpx.Client:
    cookies = {"immich_access_token": token} if token else {}
    return checked_client(base_url=server.immich_url, cookies=cookies, timeout=60)


def _account(server, *, admin: bool) -> tuple[str, httpx.Client]:
    from app.domain import users

    email = f"lib-{uuid.uuid4().hex[:8]}@example.com"
    row = run(users.create_user(email, "lib-pw", name="Lib", is_admin=admin))
    r = httpx.post(f"{server.immich_url}/api/auth/login", json={"email": email, "password": "lib-pw"})
    assert r.status_code == 201, r.text
    return str(row["id"]), _client(server, r.json()["accessToken"])


@pytest.fixture(scope="module")
def people(server):
    admin_id, admin = _account(server, admin=True)
    user_id, user = _account(server, admin=False)
    with admin, user:
        yield {"admin_id": admin_id, "admin": admin, "user_id": user_id, "user": user}


def _create(admin: httpx.Client, owner: str, **fields) -> dict:
    r = admin.post("/api/libraries", json={"ownerId": owner, **fields})
    assert r.status_code == 201, r.text
    return r.json()


def test_every_route_needs_a_signed_in_administrator(server, people):
    library = _create(people["admin"], people["admin_id"])
    routes = [("GET", "/api/libraries", None), ("POST", "/api/libraries", {"ownerId": people["user_id"]}),
              ("GET", f"/api/libraries/{library['id']}", None), ("PUT", f"/api/libraries/{library['id']}", {"name": "x"}),
              ("DELETE", f"/api/libraries/{library['id']}", None), ("POST", f"/api/libraries/{library['id']}/scan", None),
              ("GET", f"/api/libraries/{library['id']}/statistics", None),
              ("POST", f"/api/libraries/{library['id']}/validate", {"importPaths": []})]
    with _client(server) as anonymous:
        for method, path, body in routes:
            r = anonymous.request(method, path, json=body)
            assert r.status_code == 401, (method, path, r.text)
            r = people["user"].request(method, path, json=body)
            assert r.status_code == 403, (method, path, r.text)
    assert people["admin"].get(f"/api/libraries/{library['id']}").status_code == 200  # still there


def test_create_with_defaults_and_with_options(people):
    admin, owner = people["admin"], people["user_id"]
    library = _create(admin, owner)
    assert library["ownerId"] == owner and library["name"] == "New External Library"
    assert library["importPaths"] == [] and library["exclusionPatterns"] == DEFAULT_PATTERNS
    assert library["refreshedAt"] is None and library["assetCount"] == 0
    # Paths are not checked on create, as in Immich.
    other = _create(admin, owner, name="My Awesome Library", importPaths=["/path/to/import"],
                    exclusionPatterns=["**/Raw/**"])
    assert (other["name"], other["importPaths"], other["exclusionPatterns"]) == (
        "My Awesome Library", ["/path/to/import"], ["**/Raw/**"])
    listed = [lib["id"] for lib in admin.get("/api/libraries").json()]
    assert library["id"] in listed and other["id"] in listed  # every owner's, to an administrator
    for field, value in (("importPaths", ["/path", "/path"]), ("exclusionPatterns", ["**/a", "**/a"])):
        r = admin.post("/api/libraries", json={"ownerId": owner, field: value})
        assert r.status_code == 400 and r.json()["errors"][0]["path"] == [field], r.text
    r = admin.post("/api/libraries", json={"ownerId": str(uuid.uuid4())})
    assert r.status_code == 400 and r.json()["message"] == "User not found"


def test_update_name_paths_and_patterns(people, tmp_path):
    admin = people["admin"]
    library = _create(admin, people["admin_id"])
    path = f"/api/libraries/{library['id']}"
    r = admin.put(path, json={"name": "New Library Name"})
    assert r.status_code == 200 and r.json()["name"] == "New Library Name", r.text
    assert admin.put(path, json={"name": ""}).status_code == 400
    r = admin.put(path, json={"importPaths": [str(tmp_path)]})
    assert r.status_code == 200 and r.json()["importPaths"] == [str(tmp_path)], r.text
    for bad in ([""], [str(tmp_path), str(tmp_path)]):
        assert admin.put(path, json={"importPaths": bad}).status_code == 400
    r = admin.put(path, json={"importPaths": [str(tmp_path / "missing")]})
    assert r.status_code == 400 and r.json()["message"] == "Invalid import path: Path does not exist (ENOENT)"
    r = admin.put(path, json={"exclusionPatterns": ["**/Raw/**"]})
    assert r.status_code == 200 and r.json()["exclusionPatterns"] == ["**/Raw/**"]
    for bad in ([""], ["**/Raw/**", "**/Raw/**"]):
        assert admin.put(path, json={"exclusionPatterns": bad}).status_code == 400
    got = admin.get(path)
    assert got.status_code == 200 and got.json()["name"] == "New Library Name"
    assert got.json()["importPaths"] == [str(tmp_path)]


def test_unknown_libraries_answer_400_library_not_found(people):
    admin, unknown = people["admin"], str(uuid.uuid4())
    for method, suffix, body in (("GET", "", None), ("PUT", "", {"name": "x"}), ("DELETE", "", None),
                                 ("POST", "/scan", None), ("GET", "/statistics", None)):
        r = admin.request(method, f"/api/libraries/{unknown}{suffix}", json=body)
        assert (r.status_code, r.json()["message"]) == (400, "Library not found"), (method, suffix, r.text)


def test_validate_each_path_in_order(server, people, tmp_path):
    admin = people["admin"]
    library = _create(admin, people["admin_id"])
    url = f"/api/libraries/{library['id']}/validate"
    r = admin.post(url, json={})
    assert r.status_code == 200 and r.json() == {"importPaths": []}, r.text
    a_file = tmp_path / "file.jpg"
    a_file.write_bytes(b"x")
    r = admin.post(url, json={"importPaths": [str(tmp_path / "nope"), str(a_file), str(tmp_path),
                                              str(server.data_dir), "relative"]})
    assert r.status_code == 200, r.text
    results = r.json()["importPaths"]
    assert [(x["importPath"], x["isValid"], x.get("message")) for x in results[:4]] == [
        (str(tmp_path / "nope"), False, "Path does not exist (ENOENT)"),
        (str(a_file), False, "Not a directory"),
        (str(tmp_path), True, None),
        (str(server.data_dir), False, "Cannot use media upload folder for external libraries"),
    ]
    assert results[4]["message"].startswith("Import path must be absolute, try /")
    # Any well-formed id validates: Immich does not look the library up.
    assert admin.post(f"/api/libraries/{uuid.uuid4()}/validate", json={"importPaths": []}).status_code == 200


def test_statistics_and_scan(people):
    admin = people["admin"]
    library = _create(admin, people["admin_id"])
    r = admin.get(f"/api/libraries/{library['id']}/statistics")
    assert r.status_code == 200 and r.json() == {"photos": 0, "videos": 0, "total": 0, "usage": 0}, r.text
    assert admin.post(f"/api/libraries/{library['id']}/scan").status_code == 204


def _external_asset(library: dict, path: str) -> str:
    """An asset of the library as a scan leaves it (the scan itself is app/domain/library_scan.py)."""
    from app.db import engine as db
    from app.domain.originals import external_key
    from tests.domain import factories

    async def make():
        owner = await db.fetchrow("SELECT * FROM users WHERE id = $1", uuid.UUID(library["ownerId"]))
        library_id = await db.fetchval("SELECT library_id FROM external_libraries WHERE id = $1",
                                       uuid.UUID(library["id"]))
        asset_id = uuid.uuid4()
        row = await factories.new_asset(owner, library_id=library_id, id=asset_id,
                                        external_library_id=uuid.UUID(library["id"]), original_path=path,
                                        storage_key=external_key(asset_id), original_file_name=path.rsplit("/", 1)[-1],
                                        event="asset_created")
        return str(row["id"])

    return run(make())


def test_external_assets_show_their_library_and_path_and_delete_keeps_the_files(server, people, tmp_path):
    admin, admin_id = people["admin"], people["admin_id"]
    photo = tmp_path / "folder" / "photo.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8 kept")
    library = _create(admin, admin_id, importPaths=[str(tmp_path)])
    asset_id = _external_asset(library, str(photo))

    shown = admin.get(f"/api/assets/{asset_id}")
    assert shown.status_code == 200, shown.text
    assert (shown.json()["libraryId"], shown.json()["originalPath"], shown.json()["isOffline"]) == (
        library["id"], str(photo), False)
    found = admin.post("/api/search/metadata", json={"originalPath": str(photo)}).json()["assets"]["items"]
    assert [a["id"] for a in found] == [asset_id]
    found = admin.post("/api/search/metadata", json={"libraryId": library["id"]}).json()["assets"]["items"]
    assert [a["id"] for a in found] == [asset_id]
    found = admin.post("/api/search/metadata", json={"libraryId": None}).json()["assets"]["items"]
    assert asset_id not in [a["id"] for a in found]
    found = admin.post("/api/search/metadata", json={"isOffline": True, "libraryId": library["id"]})
    assert found.json()["assets"]["items"] == []
    assert admin.get(f"/api/libraries/{library['id']}").json()["assetCount"] == 1

    assert admin.delete(f"/api/libraries/{library['id']}").status_code == 204
    assert library["id"] not in [lib["id"] for lib in admin.get("/api/libraries").json()]
    assert admin.get(f"/api/libraries/{library['id']}").status_code == 400
    deadline = time.monotonic() + 30
    while admin.get(f"/api/assets/{asset_id}").status_code != 400 and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker's library_delete job removes the rows
    assert admin.get(f"/api/assets/{asset_id}").status_code == 400
    assert photo.read_bytes() == b"\xff\xd8 kept"
