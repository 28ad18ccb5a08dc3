"""One Immich user's session, start to end, with real photos (issue #15's "done when"): tag a photo
Travel/2024 and filter by the tag, see a memory of a photo taken three years ago today, download an
album as a zip whose files equal the originals, crop a photo (new preview, same original), walk the
folder tree, then every other library route of the issue once. Every 2xx body is checked against the
Immich 3.1 spec as it arrives; the focused files (test_immich_tags, _memories, _download, _edits,
_search_extras, _asset_extras, _stacks_keys) hold the edge cases."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone

import pytest

from tests.conftest import run
from tests.helpers import session_token
from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import SHARED_ASSETS
from tests.test_immich_download import _unzip
from tests.test_immich_edits import _native, _size, wait_rendered
from tests.test_immich_memories import _three_years_ago
from tests.test_immich_search_extras import _wait
from tests.test_immich_upload import FIELDS

pytestmark = pytest.mark.skipif(not (SPEC_PATH.exists() and SHARED_ASSETS.exists()),
                                reason="the Immich spec or ../shared/test-assets is absent")

# name in the library -> file under ../shared/test-assets, read in place
PHOTOS = {
    "rocks.jpg": "formats/jpg/el_torcal_rocks.jpg",  # 512 x 341, taken 2012-08-05
    "cedaredge.jpg": "metadata/dates/datetimeoriginal-gps.jpg",  # taken near Cedaredge, Colorado
    "plot.png": "formats/png/density_plot.png",  # no date of its own: its fileCreatedAt counts
    "picasa.jpg": "metadata/tags/picasa.jpg",  # IPTC keywords Frost and Yard
    "denali.webp": "formats/webp/denali.webp",  # the largest of them
}
MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _tasks_done(account, asset_id: str, at_least: int, timeout: float = 60.0) -> None:
    """Until the asset has `at_least` pipeline tasks and none is still running."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = account.client.tasks.list_for_asset(_native(asset_id))
        if len(found) >= at_least and all(t.status in ("success", "failure") for t in found):
            return
        time.sleep(0.2)
    raise AssertionError(f"{asset_id}: {at_least} tasks not done in {timeout}s")


def test_one_users_library_session(server, account):
    from app.domain import memories

    today = datetime.now(timezone.utc).date()
    taken = _three_years_ago(today)
    when = f"{taken.isoformat()}T12:00:00.000Z"
    originals = {name: (SHARED_ASSETS / path).read_bytes() for name, path in PHOTOS.items()}
    token = session_token(account)
    with checked_client(base_url=server.immich_url, cookies={"immich_access_token": token}, timeout=60) as http:
        # --- upload five real photos; the plot is dated three years ago today ---------------------
        ids: dict[str, str] = {}
        for name, data in originals.items():
            dated = {"fileCreatedAt": when, "fileModifiedAt": when} if name == "plot.png" else {}
            r = http.post("/api/assets", files={"assetData": (name, data, MIME[name.rsplit(".", 1)[1]])},
                          data={**FIELDS, "deviceAssetId": name, **dated})
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        _wait(account, http, list(ids.values()), city=None)
        _wait(account, http, [ids["cedaredge.jpg"]], city="Cedaredge")
        rocks, cedar, plot, picasa, denali = (ids[n] for n in PHOTOS)
        assert http.get(f"/api/assets/{plot}").json()["localDateTime"].startswith(taken.isoformat())

        # --- tag a photo Travel/2024, then filter by the tag -----------------------------------------
        [leaf] = http.put("/api/tags", json={"tags": ["Travel/2024"]}).json()
        assert (leaf["name"], leaf["value"]) == ("2024", "Travel/2024")
        tree = {t["value"]: t for t in http.get("/api/tags").json()}
        assert {"Travel", "Travel/2024", "Frost", "Yard"} <= set(tree)  # picasa's keywords came in as tags
        travel = tree["Travel"]
        assert leaf["parentId"] == travel["id"] and "parentId" not in travel
        coloured = http.put(f"/api/tags/{travel['id']}", json={"color": "#3366ff"})
        assert coloured.status_code == 200 and coloured.json()["color"] == "#3366ff"
        tagged = http.put(f"/api/tags/{leaf['id']}/assets", json={"ids": [rocks, cedar]})
        assert tagged.json() == [{"id": rocks, "success": True}, {"id": cedar, "success": True}]
        assert http.put("/api/tags/assets", json={"tagIds": [leaf["id"]], "assetIds": [denali]}).json() == {"count": 1}
        untagged = http.request("DELETE", f"/api/tags/{leaf['id']}/assets", json={"ids": [denali]})
        assert untagged.json() == [{"id": denali, "success": True}]
        assert [t["value"] for t in http.get(f"/api/assets/{rocks}").json()["tags"]] == ["Travel/2024"]

        for tag in (leaf, travel):  # the parent finds what its child tags
            found = http.post("/api/search/metadata", json={"tagIds": [tag["id"]]}).json()["assets"]["items"]
            assert {a["id"] for a in found} == {rocks, cedar}
        buckets = http.get("/api/timeline/buckets", params={"tagId": travel["id"]}).json()
        assert sum(b["count"] for b in buckets) == 2
        in_buckets = {i for b in buckets for i in http.get("/api/timeline/bucket", params={
            "tagId": travel["id"], "timeBucket": b["timeBucket"]}).json()["id"]}
        assert in_buckets == {rocks, cedar}

        # --- an album, downloaded as a zip: its files are the originals, byte for byte ---------------
        album = http.post("/api/albums", json={"albumName": "Trip", "assetIds": [rocks, cedar, plot]})
        assert album.status_code == 201, album.text
        album_id = album.json()["id"]
        info = http.post("/api/download/info", json={"albumId": album_id})
        assert info.status_code == 201, info.text
        [part] = info.json()["archives"]
        assert sorted(part["assetIds"]) == sorted([rocks, cedar, plot])
        in_album = ("rocks.jpg", "cedaredge.jpg", "plot.png")
        assert info.json()["totalSize"] == part["size"] == sum(len(originals[n]) for n in in_album)
        files = _unzip(http.post("/api/download/archive", json={"assetIds": part["assetIds"]}))
        assert {n: _sha1(b) for n, b in files.items()} == {n: _sha1(originals[n]) for n in in_album}

        # --- crop a photo: a new preview, the original's bytes unchanged -----------------------------
        crop = [{"action": "crop", "parameters": {"x": 40, "y": 30, "width": 320, "height": 180}}]
        edited = http.put(f"/api/assets/{rocks}/edits", json={"edits": crop})
        assert edited.status_code == 200, edited.text
        assert http.get(f"/api/assets/{rocks}/edits").json() == edited.json()
        wait_rendered(account, _native(rocks), 2)
        preview = http.get(f"/api/assets/{rocks}/thumbnail", params={"size": "preview"})
        assert preview.status_code == 200 and _size(preview.content) == (320, 180)
        original = http.get(f"/api/assets/{rocks}/original")
        assert _sha1(original.content) == _sha1(originals["rocks.jpg"])
        asset = http.get(f"/api/assets/{rocks}").json()
        assert (asset["width"], asset["height"], asset["isEdited"]) == (320, 180, True)
        assert http.delete(f"/api/assets/{rocks}/edits").status_code == 204
        wait_rendered(account, _native(rocks), 3)
        back = http.get(f"/api/assets/{rocks}/thumbnail", params={"size": "preview"})
        assert _size(back.content) == (512, 341)

        # --- a memory of the photo taken three years ago today ---------------------------------------
        run(memories.generate_for_user(account.user_id, today))  # the daily job's work for this user
        shown_on = taken.replace(year=today.year).isoformat()
        [memory] = [m for m in http.get("/api/memories", params={"for": shown_on}).json()
                    if m["data"] == {"year": taken.year}]
        assert plot in [a["id"] for a in memory["assets"]] and memory["type"] == "on_this_day"
        assert http.get("/api/memories/statistics", params={"for": shown_on}).json()["total"] >= 1
        saved = http.put(f"/api/memories/{memory['id']}", json={"isSaved": True, "seenAt": f"{today}T08:00:00.000Z"})
        assert saved.json()["isSaved"] is True and saved.json()["seenAt"].startswith(f"{today}T08:00:00")
        added = http.put(f"/api/memories/{memory['id']}/assets", json={"ids": [rocks]})
        assert added.json() == [{"id": rocks, "success": True}]
        assert {plot, rocks} <= {a["id"] for a in http.get(f"/api/memories/{memory['id']}").json()["assets"]}
        removed = http.request("DELETE", f"/api/memories/{memory['id']}/assets", json={"ids": [rocks]})
        assert removed.json() == [{"id": rocks, "success": True}]
        made = http.post("/api/memories", json={"type": "on_this_day", "data": {"year": 2010},
                                                "memoryAt": "2010-02-13T00:00:00.000Z", "assetIds": [picasa]})
        assert made.status_code == 201, made.text
        assert [a["id"] for a in made.json()["assets"]] == [picasa]
        assert http.delete(f"/api/memories/{made.json()['id']}").status_code == 204
        assert http.get(f"/api/memories/{made.json()['id']}").status_code == 400

        # --- the folder tree ------------------------------------------------------------------------
        paths = http.get("/api/view/folder/unique-paths").json()
        assert paths and paths == sorted(paths)
        in_folders = [a["id"] for p in paths for a in http.get("/api/view/folder", params={"path": p}).json()]
        assert sorted(in_folders) == sorted(ids.values())

        # --- search extras, the map and explore ------------------------------------------------------
        assert {a["id"] for a in http.post("/api/search/random", json={"size": 10}).json()} == set(ids.values())
        [largest] = http.post("/api/search/large-assets", params={"size": 1}).json()
        assert largest["id"] == denali and largest["exifInfo"]["fileSizeInByte"] == len(originals["denali.webp"])
        assert http.post("/api/search/statistics", json={}).json() == {"total": 5}
        assert http.post("/api/search/statistics", json={"tagIds": [travel["id"]]}).json() == {"total": 2}
        [place] = [p for p in http.get("/api/search/places", params={"name": "cedaredge"}).json()
                   if p["name"] == "Cedaredge"][:1]
        assert place["admin1name"] == "Colorado"
        here = http.get("/api/map/reverse-geocode", params={"lat": 39.0, "lon": -108.0}).json()
        assert here == [{"city": "Cedaredge", "state": "Colorado", "country": "United States"}]
        markers = http.get(f"/api/albums/{album_id}/map-markers").json()
        assert [(m["id"], m["city"]) for m in markers] == [(cedar, "Cedaredge")]
        assert http.get("/api/search/explore").json()[0]["items"] == []  # one photo there: below Immich's 5
        moved = http.put("/api/assets", json={"ids": [rocks, plot, picasa, denali], "latitude": 38.9,
                                              "longitude": -107.93})
        assert moved.status_code == 204, moved.text
        _wait(account, http, [rocks, plot, picasa, denali], city="Cedaredge")
        [city] = http.get("/api/search/explore").json()[0]["items"]
        assert city["value"] == "Cedaredge" and city["data"]["id"] in ids.values()

        # --- asset metadata, OCR, copy and asset jobs ------------------------------------------------
        put = http.put(f"/api/assets/{picasa}/metadata", json={"items": [{"key": "mobile-app", "value": {"n": 1}}]})
        assert put.status_code == 200 and put.json()[0]["value"] == {"n": 1}
        bulk = http.put("/api/assets/metadata", json={"items": [{"assetId": denali, "key": "note", "value": {}}]})
        assert bulk.status_code == 200 and bulk.json()[0]["assetId"] == denali
        assert http.get(f"/api/assets/{picasa}/metadata/mobile-app").json()["value"] == {"n": 1}
        assert http.delete(f"/api/assets/{picasa}/metadata/mobile-app").status_code == 204
        gone = http.request("DELETE", "/api/assets/metadata", json={"items": [{"assetId": denali, "key": "note"}]})
        assert gone.status_code == 204
        assert http.get(f"/api/assets/{picasa}/metadata").json() == []
        assert http.get(f"/api/assets/{denali}/metadata").json() == []
        assert http.get(f"/api/assets/{rocks}/ocr").json() == []  # no OCR model here: nothing found

        assert http.put("/api/assets", json={"ids": [cedar], "isFavorite": True}).status_code == 204
        copied = http.put("/api/assets/copy", json={"sourceId": cedar, "targetId": denali})
        assert copied.status_code == 204, copied.text
        assert [a["id"] for a in http.get("/api/albums", params={"assetId": denali}).json()] == [album_id]
        assert http.get(f"/api/assets/{denali}").json()["isFavorite"] is True

        before = len(account.client.tasks.list_for_asset(_native(picasa)))
        assert http.post("/api/assets/jobs", json={"assetIds": [picasa], "name": "refresh-metadata"}).status_code == 204
        _tasks_done(account, picasa, before + 1)
        assert {t["value"] for t in http.get(f"/api/assets/{picasa}").json()["tags"]} == {"Frost", "Yard"}

        # --- stacks ----------------------------------------------------------------------------------
        stack = http.post("/api/stacks", json={"assetIds": [picasa, denali, plot]})
        assert stack.status_code == 201, stack.text
        stack_id = stack.json()["id"]
        assert [s["id"] for s in http.get("/api/stacks").json()] == [stack_id]
        assert http.delete(f"/api/stacks/{stack_id}/assets/{plot}").status_code == 204
        assert {a["id"] for a in http.get(f"/api/stacks/{stack_id}").json()["assets"]} == {picasa, denali}
        assert http.get(f"/api/assets/{plot}").json().get("stack") is None
