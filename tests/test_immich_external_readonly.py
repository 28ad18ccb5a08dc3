"""An external library's file over Immich's HTTP surface: its original, a zip download and the folder
view read the file in place, and once the file is gone the original is Immich's 404, not a 500."""

from __future__ import annotations

import io
import shutil
import uuid
import zipfile

import pytest

from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import SHARED_ASSETS
from tests.test_immich_upload import FIELDS

pytestmark = pytest.mark.skipif(not (SPEC_PATH.exists() and SHARED_ASSETS.exists()),
                                reason="the Immich spec or ../shared/test-assets is absent")
PHOTO = "formats/jpg/el_torcal_rocks.jpg"


def test_an_external_original_is_read_in_place(server, account, tmp_path):
    from app.db import engine as db
    from tests.conftest import run

    folder = tmp_path / "photos"
    folder.mkdir()
    file = folder / "rocks.jpg"
    shutil.copyfile(SHARED_ASSETS / PHOTO, file)
    with checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        r = http.post("/api/assets", files={"assetData": ("upload.jpg", file.read_bytes(), "image/jpeg")}, data=FIELDS)
        assert r.status_code == 201, r.text
        asset_id = uuid.UUID(r.json()["id"])
        # Made an external library's asset, as a scan makes them: the file in place, a key naming nothing.
        row = run(db.fetchrow("SELECT owner_id, library_id FROM assets WHERE id = $1", asset_id))
        external_id = run(db.fetchval(
            "INSERT INTO external_libraries (owner_id, library_id, name, import_paths) VALUES ($1, $2, 'Photos', $3)"
            " RETURNING id", row["owner_id"], row["library_id"], [str(folder)]))
        run(db.execute("UPDATE assets SET external_library_id = $2, original_path = $3, storage_key = $4,"
                       " original_file_name = 'rocks.jpg' WHERE id = $1",
                       asset_id, external_id, str(file), f"external/{asset_id}"))

        original = http.get(f"/api/assets/{asset_id}/original")
        assert original.status_code == 200 and original.content == file.read_bytes()
        archive = http.post("/api/download/archive", json={"assetIds": [str(asset_id)]})
        assert archive.status_code == 200
        assert zipfile.ZipFile(io.BytesIO(archive.content)).read("rocks.jpg") == file.read_bytes()
        assert str(folder) in http.get("/api/view/folder/unique-paths").json()
        shown = http.get("/api/view/folder", params={"path": str(folder)}).json()
        assert [a["id"] for a in shown] == [str(asset_id)]

        file.unlink()  # gone since the last scan
        gone = http.get(f"/api/assets/{asset_id}/original")
        assert gone.status_code == 404 and "message" in gone.json()
