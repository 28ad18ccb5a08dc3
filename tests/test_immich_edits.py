"""Immich 3.x edits (`/api/assets/{id}/edits`): a crop re-renders the variants, the original stays."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pyvips
import shortuuid

from tests.helpers import wait_processed
from tests.immich_contract import checked_client
from tests.test_immich_upload import FIELDS

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "test-assets" / "formats" / "jpg" / "el_torcal_rocks.jpg"


def _native(immich_id: str) -> str:
    return "asset_" + shortuuid.encode(uuid.UUID(immich_id))


def wait_rendered(account, asset_id: str, renders: int, timeout: float = 60.0) -> None:
    """Until `renders` variant runs of the asset have ended (the upload's, then one per new rendering)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [t for t in account.client.tasks.list_for_asset(asset_id) if t.task_type == "thumbnail_generation"]
        if len(found) >= renders and all(t.status in ("success", "failure") for t in found):
            assert all(t.status == "success" for t in found), found
            return
        time.sleep(0.2)
    raise AssertionError(f"{asset_id}: {renders} renders not done in {timeout}s")


def _size(data: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(data, "")
    return image.width, image.height


def test_crop_and_rotate_rerender_the_preview_and_keep_the_original(server, account):
    original = PHOTO.read_bytes()
    assert _size(original) == (512, 341)
    with checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        r = http.post("/api/assets", files={"assetData": ("rocks.jpg", original, "image/jpeg")}, data=FIELDS)
        assert r.status_code == 201, r.text
        asset_id = r.json()["id"]
        native_id = _native(asset_id)
        wait_processed(account, native_id)
        assert http.get(f"/api/assets/{asset_id}/edits").json() == {"assetId": asset_id, "edits": []}

        edits = [{"action": "crop", "parameters": {"x": 12, "y": 21, "width": 300, "height": 200}},
                 {"action": "rotate", "parameters": {"angle": 90}},
                 {"action": "mirror", "parameters": {"axis": "horizontal"}}]
        r = http.put(f"/api/assets/{asset_id}/edits", json={"edits": edits})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["assetId"] == asset_id
        assert [(e["action"], e["parameters"]) for e in body["edits"]] == [(e["action"], e["parameters"]) for e in edits]
        assert http.get(f"/api/assets/{asset_id}/edits").json() == body
        wait_rendered(account, native_id, 2)

        # A quarter turn of a 300 x 200 crop: 200 x 300, in the preview, the asset and the edited original.
        preview = http.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "preview"})
        assert preview.status_code == 200 and _size(preview.content) == (200, 300)
        thumb = http.get(f"/api/assets/{asset_id}/thumbnail")
        assert _size(thumb.content)[0] < _size(thumb.content)[1]  # portrait now
        asset = http.get(f"/api/assets/{asset_id}").json()
        assert (asset["width"], asset["height"], asset["isEdited"]) == (200, 300, True)
        edited = http.get(f"/api/assets/{asset_id}/original", params={"edited": "true"})
        assert edited.status_code == 200 and _size(edited.content) == (200, 300)
        full = http.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "fullsize", "edited": "true"})
        assert full.content == edited.content
        assert http.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "fullsize"}).content == original
        # The crop's top-left corner, turned and mirrored, is the edited picture's top-left corner.
        source = pyvips.Image.new_from_buffer(original, "")
        corner = pyvips.Image.new_from_buffer(edited.content, "")(2, 2)
        expected = source(12 + 2, 21 + 199 - 2)
        assert max(abs(a - b) for a, b in zip(corner, expected)) < 40
        # The upload is untouched: on disk and through the plain original.
        assert http.get(f"/api/assets/{asset_id}/original").content == original
        [row] = [p for p in (server.data_dir / "library").rglob("originals/*/*") if asset_id.replace("-", "") in p.name]
        assert row.read_bytes() == original

        # DELETE goes back to the original's renderings.
        assert http.delete(f"/api/assets/{asset_id}/edits").status_code == 204
        wait_rendered(account, native_id, 3)
        assert http.get(f"/api/assets/{asset_id}/edits").json() == {"assetId": asset_id, "edits": []}
        asset = http.get(f"/api/assets/{asset_id}").json()
        assert (asset["width"], asset["height"], asset["isEdited"]) == (512, 341, False)
        preview = http.get(f"/api/assets/{asset_id}/thumbnail", params={"size": "preview"})
        assert _size(preview.content) == (512, 341)


def test_edits_are_checked_as_immich_checks_them(server, account):
    with checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        r = http.post("/api/assets", files={"assetData": ("rocks2.jpg", PHOTO.read_bytes(), "image/jpeg")},
                      data={**FIELDS, "deviceAssetId": "rocks2"})
        asset_id = r.json()["id"]
        wait_processed(account, _native(asset_id))

        def put(edits):
            return http.put(f"/api/assets/{asset_id}/edits", json={"edits": edits})

        crop = {"action": "crop", "parameters": {"x": 300, "y": 0, "width": 300, "height": 100}}
        r = put([crop])
        assert (r.status_code, r.json()["message"]) == (400, "Crop parameters are out of bounds")
        r = put([{"action": "rotate", "parameters": {"angle": 90}}, {**crop, "parameters": {**crop["parameters"], "x": 0}}])
        assert (r.status_code, r.json()["message"]) == (400, "Crop action must be the first edit action")
        r = put([{"action": "blur", "parameters": {}}])
        assert r.status_code == 400 and r.json()["message"] == "Validation failed"
        assert r.json()["errors"][0]["path"] == ["edits", 0, "action"]
        r = put([{"action": "crop", "parameters": {"x": 0, "y": 0, "width": 0, "height": 10}}])
        assert r.status_code == 400 and r.json()["errors"][0]["path"] == ["edits", 0, "parameters", "width"]
        r = put([])
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "too_small"
        r = http.put(f"/api/assets/{asset_id}/edits")
        assert r.status_code == 400 and r.json()["errors"][0]["message"] == "Invalid input: expected object, received undefined"
        r = put([{"action": "rotate", "parameters": {"angle": 45}}])
        assert r.status_code == 400
        missing = str(uuid.uuid4())
        assert http.get(f"/api/assets/{missing}/edits").status_code == 400
        assert http.get(f"/api/assets/{asset_id}/edits").json()["edits"] == []


def test_edits_reach_the_app_through_sync(server, account):
    from tests.helpers import session_token
    from tests.test_immich_sync import App

    app = App(server, session_token(account))
    asset_id = app.upload(account, "rocks3.jpg", PHOTO.read_bytes())
    app.sync()
    edits = [{"action": "rotate", "parameters": {"angle": 180}}, {"action": "mirror", "parameters": {"axis": "vertical"}}]
    applied = app.http.put(f"/api/assets/{asset_id}/edits", json={"edits": edits}).json()["edits"]
    lines = app.sync()
    asset_lines = [line["data"] for line in lines if line["type"] == "AssetV2"]
    assert asset_lines and asset_lines[-1]["isEdited"] is True and asset_lines[-1]["width"] == 512
    edit_lines = [line["data"] for line in lines if line["type"] == "AssetEditV1"]
    assert [(e["id"], e["assetId"], e["action"], e["parameters"], e["sequence"]) for e in edit_lines] == [
        (e["id"], asset_id, e["action"], e["parameters"], n) for n, e in enumerate(applied)]
    assert [line["type"] for line in lines].index("AssetV2") < [line["type"] for line in lines].index("AssetEditV1")

    # Undone: each edit is deleted (before any asset line), and the asset is no longer edited.
    assert app.http.delete(f"/api/assets/{asset_id}/edits").status_code == 204
    lines = app.sync()
    assert sorted(line["data"]["editId"] for line in lines if line["type"] == "AssetEditDeleteV1") == sorted(
        e["id"] for e in applied)
    assert [line["data"]["isEdited"] for line in lines if line["type"] == "AssetV2"] == [False]
