"""External libraries driven through the Immich API on real folders (issue #16's "done when"), every
2xx body checked against the Immich 3.1 spec.

A tree under a temp dir with nested folders, exclusions, hidden folders, sidecars of both names, an
unsupported file and a file that only claims to be a photo is scanned in place; then a file is added,
one changed, one removed and brought back, one renamed; the watcher picks up a new file within 5 s;
the library is deleted and every file of the folders is still there, byte for byte. A 10,000-file tree
is indexed on a server of its own. The rules behind each step have fast tests in tests/domain."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, run
from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import SHARED_ASSETS

ROCKS = SHARED_ASSETS / "formats" / "jpg" / "el_torcal_rocks.jpg"  # 512 x 341
CEDAR = SHARED_ASSETS / "metadata" / "dates" / "datetimeoriginal-gps.jpg"  # near Cedaredge, Colorado
PLOT = SHARED_ASSETS / "formats" / "png" / "density_plot.png"
DENALI = SHARED_ASSETS / "formats" / "webp" / "denali.webp"

pytestmark = pytest.mark.skipif(not (SPEC_PATH.exists() and ROCKS.exists()),
                                reason="the Immich spec or ../shared/test-assets is absent")

XMP = """<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/">
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{text}</rdf:li></rdf:Alt></dc:description>
   <xmp:Rating>{rating}</xmp:Rating>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end='w'?>"""


def _client(server, token: str) -> httpx.Client:
    return checked_client(base_url=server.immich_url, cookies={"immich_access_token": token}, timeout=60)


def _login(base: str, email: str, password: str) -> str:
    r = httpx.post(f"{base}/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return r.json()["accessToken"]


@pytest.fixture
def admin(server):
    from app.domain import users

    email = f"extlib-{uuid.uuid4().hex[:8]}@example.com"
    run(users.create_user(email, "admin-pw", name="Library Admin", is_admin=True))
    with _client(server, _login(server.immich_url, email, "admin-pw")) as client:
        yield client


def _wait(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _library_assets(http: httpx.Client, library_id: str) -> dict[str, dict]:
    """The library's live assets by their path in place."""
    found: dict[str, dict] = {}
    page: str | None = "1"
    while page:
        r = http.post("/api/search/metadata", json={"libraryId": library_id, "size": 1000, "page": int(page)})
        assert r.status_code == 200, r.text
        body = r.json()["assets"]
        found.update({a["originalPath"]: a for a in body["items"]})
        page = body["nextPage"]
    return found


def _processed(http: httpx.Client, asset_id: str) -> bool:
    return http.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "thumbnail"}).status_code == 200


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under root (hidden and excluded ones included) with its SHA-1: the folders' state."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _tree(root: Path) -> None:
    (root / "2024" / "trip").mkdir(parents=True)
    (root / "2023").mkdir()
    (root / "directoryA").mkdir()
    (root / "@eaDir").mkdir()
    (root / ".hidden").mkdir()
    shutil.copy(ROCKS, root / "2024" / "rocks.jpg")
    shutil.copy(CEDAR, root / "2024" / "trip" / "cedar.jpg")
    (root / "2024" / "trip" / "cedar.jpg.xmp").write_text(XMP.format(text="from photo.jpg.xmp", rating=4))
    shutil.copy(PLOT, root / "2023" / "plot.png")
    (root / "2023" / "plot.xmp").write_text(XMP.format(text="from photo.xmp", rating=2))
    shutil.copy(ROCKS, root / "directoryA" / "excluded.jpg")
    shutil.copy(ROCKS, root / "@eaDir" / "synology-thumb.jpg")
    shutil.copy(ROCKS, root / ".hidden" / "hidden.jpg")
    (root / "notes.txt").write_text("not a photo")
    (root / "2023" / "pretend.jpg").write_text("this is text with a photo's name")


def test_an_external_library_indexes_folders_in_place_and_follows_them(server, admin, tmp_path):
    root = tmp_path / "photos"
    _tree(root)
    before = _snapshot(root)
    me = admin.get("/api/users/me").json()

    # --- create, validate ------------------------------------------------------------------------
    missing = str(tmp_path / "no-such-folder")
    r = admin.post("/api/libraries", json={"ownerId": me["id"], "name": "NAS", "importPaths": [str(root), missing],
                                           "exclusionPatterns": ["**/directoryA", "**/@eaDir/**"]})
    assert r.status_code == 201, r.text
    library = r.json()
    assert (library["name"], library["assetCount"], library["refreshedAt"]) == ("NAS", 0, None)
    library_id = library["id"]
    r = admin.post(f"/api/libraries/{library_id}/validate",
                   json={"importPaths": [str(root), missing, str(root / "notes.txt"), "relative/path"]})
    assert r.status_code == 200, r.text
    checks = r.json()["importPaths"]
    assert [c["isValid"] for c in checks] == [True, False, False, False]
    assert "message" not in checks[0]
    assert checks[1]["message"] == "Path does not exist (ENOENT)"
    assert checks[2]["message"] == "Not a directory"
    assert checks[3]["message"].startswith("Import path must be absolute")

    # --- the first scan: the missing import path is skipped, the rest indexed in place -------------
    assert admin.post(f"/api/libraries/{library_id}/scan").status_code == 204
    expected = {str(root / "2024" / "rocks.jpg"), str(root / "2024" / "trip" / "cedar.jpg"),
                str(root / "2023" / "plot.png")}
    found = _wait("the first scan", lambda: (f := _library_assets(admin, library_id)) and expected <= set(f) and f)
    # excluded, hidden, unsupported: never assets; a text file named .jpg fails its own job only
    assert not {p for p in found if "directoryA" in p or "@eaDir" in p or ".hidden" in p or p.endswith(".txt")}
    rocks = found[str(root / "2024" / "rocks.jpg")]
    assert rocks["libraryId"] == library_id and rocks["isOffline"] is False and rocks["ownerId"] == me["id"]
    for path in expected:
        _wait(f"{path} processed", lambda: _processed(admin, found[path]["id"]))
    cedar = admin.get(f"/api/assets/{found[str(root / '2024' / 'trip' / 'cedar.jpg')]['id']}").json()
    plot = admin.get(f"/api/assets/{found[str(root / '2023' / 'plot.png')]['id']}").json()
    assert cedar["exifInfo"]["description"] == "from photo.jpg.xmp" and cedar["exifInfo"]["rating"] == 4
    assert plot["exifInfo"]["description"] == "from photo.xmp" and plot["exifInfo"]["rating"] == 2
    assert cedar["exifInfo"]["city"] == "Cedaredge"
    with_rocks = hashlib.sha1(ROCKS.read_bytes()).digest()
    _wait("rocks hashed", lambda: admin.get(f"/api/assets/{rocks['id']}").json()["checksum"]
          == base64.b64encode(with_rocks).decode())
    original = admin.get(f"/api/assets/{rocks['id']}/original")
    assert original.status_code == 200 and original.content == ROCKS.read_bytes()
    stats = admin.get(f"/api/libraries/{library_id}/statistics").json()
    assert stats["photos"] == stats["total"] >= 3 and stats["videos"] == 0
    assert stats["usage"] >= sum(f.stat().st_size for f in (ROCKS, CEDAR, PLOT))
    # the owner's timeline shows them like uploads
    buckets = admin.get("/api/timeline/buckets", params={}).json()
    assert sum(b["count"] for b in buckets) >= 3
    listed = {lib["id"]: lib for lib in admin.get("/api/libraries").json()}
    assert listed[library_id]["assetCount"] >= 3 and listed[library_id]["refreshedAt"] is not None

    # --- added, changed, removed, renamed; then the removed one comes back -----------------------
    shutil.copy(DENALI, root / "2024" / "added.webp")
    shutil.copy(PLOT, root / "2024" / "rocks.jpg.tmp")
    os.replace(root / "2024" / "rocks.jpg.tmp", root / "2024" / "rocks.jpg")  # new content, same name
    os.utime(root / "2024" / "rocks.jpg", (time.time() + 5, time.time() + 5))
    cedar_id = cedar["id"]
    moved_away = tmp_path / "away.jpg"
    os.replace(root / "2024" / "trip" / "cedar.jpg", moved_away)
    os.replace(root / "2023" / "plot.png", root / "2023" / "plot-renamed.png")
    assert admin.post(f"/api/libraries/{library_id}/scan").status_code == 204

    def settled():
        f = _library_assets(admin, library_id)
        renamed = f.get(str(root / "2023" / "plot-renamed.png"))
        return (str(root / "2024" / "added.webp") in f and renamed is not None and renamed["id"] == plot["id"]
                and str(root / "2024" / "trip" / "cedar.jpg") not in f and f)

    found = _wait("the re-scan", settled)
    offline = admin.get(f"/api/assets/{cedar_id}").json()
    assert offline["isOffline"] is True and offline["isTrashed"] is True
    _wait("the changed file re-read", lambda: admin.get(f"/api/assets/{rocks['id']}").json()["width"] != 512)
    os.replace(moved_away, root / "2024" / "trip" / "cedar.jpg")
    assert admin.post(f"/api/libraries/{library_id}/scan").status_code == 204
    back = _wait("the file back online", lambda: (a := admin.get(f"/api/assets/{cedar_id}").json())
                 and not a["isOffline"] and a)
    assert back["isTrashed"] is False and back["id"] == cedar_id

    # --- the watcher: a new file appears within 5 s ------------------------------------------------
    config = admin.get("/api/system-config").json()
    watched = {**config, "library": {**config["library"], "watch": {"enabled": True}}}
    assert admin.put("/api/system-config", json=watched).status_code == 200
    try:
        time.sleep(1.0)  # the watcher starts on the config change
        shutil.copy(CEDAR, root / "2023" / "watched.jpg")
        _wait("the watcher", lambda: str(root / "2023" / "watched.jpg") in _library_assets(admin, library_id),
              timeout=5.0)
    finally:
        assert admin.put("/api/system-config", json=config).status_code == 200

    # --- the folders were never written: every file the test did not change is byte-identical -----
    after = _snapshot(root)
    untouched = {k: v for k, v in before.items() if not k.startswith(("2024/rocks", "2023/plot"))}
    assert {k: after.get(k) for k in untouched} == untouched
    assert not [k for k in after if k.endswith(".xmp") and k not in before]

    # --- trash and delete never touch the file; deleting the library keeps every file -------------
    r = admin.request("DELETE", "/api/assets", json={"ids": [cedar_id], "force": True})
    assert r.status_code == 204, r.text
    assert (root / "2024" / "trip" / "cedar.jpg").exists()
    assert admin.delete(f"/api/libraries/{library_id}").status_code == 204
    assert library_id not in {lib["id"] for lib in admin.get("/api/libraries").json()}
    assert admin.get(f"/api/libraries/{library_id}").status_code == 400
    _wait("the library's assets removed", lambda: not _library_assets(admin, library_id), timeout=120)
    assert _snapshot(root) == after


def _tiny_jpeg() -> bytes:
    import pyvips

    return pyvips.Image.black(8, 8).jpegsave_buffer(Q=50)


def test_a_tree_of_ten_thousand_files_is_indexed(workdir, tmp_path):
    """On a server of its own, so its ten thousand pipelines don't slow the other tests down."""
    root = tmp_path / "big"
    data = _tiny_jpeg()
    for i in range(10_000):
        folder = root / f"{i // 1000:02d}" / f"{(i // 100) % 10:02d}"
        if i % 100 == 0:
            folder.mkdir(parents=True)
        (folder / f"img{i:05d}.jpg").write_bytes(data)
    srv = ServerProcess(workdir / "extlib-10k").start()
    try:
        r = httpx.post(f"{srv.immich_url}/api/auth/admin-sign-up",
                       json={"email": "big@example.com", "password": "pw", "name": "Big"})
        assert r.status_code == 201, r.text
        with checked_client(base_url=srv.immich_url, timeout=60,
                            cookies={"immich_access_token": _login(srv.immich_url, "big@example.com", "pw")}) as http:
            me = http.get("/api/users/me").json()
            library = http.post("/api/libraries", json={"ownerId": me["id"], "importPaths": [str(root)]}).json()
            started = time.monotonic()
            assert http.post(f"/api/libraries/{library['id']}/scan").status_code == 204
            stats = _wait("10,000 files indexed", lambda: (s := http.get(
                f"/api/libraries/{library['id']}/statistics").json()) and s["total"] == 10_000 and s, timeout=120)
            indexed_s = time.monotonic() - started
            assert stats["photos"] == 10_000 and stats["videos"] == 0 and stats["usage"] == 10_000 * len(data)
            assert http.get(f"/api/libraries/{library['id']}").json()["assetCount"] == 10_000
            print(f"10,000 files indexed in {indexed_s:.1f} s")
    finally:
        srv.stop()
