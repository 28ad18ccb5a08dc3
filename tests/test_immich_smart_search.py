"""Immich's POST /api/search/smart over HTTP (2xx bodies checked against the spec). The
queryAssetId path runs on embeddings put in with SQL; the text path needs the CLIP test model
(app/clip, tools/fetch_clip_models.py) and is skipped without it."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import shortuuid

from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import png_bytes
from tests.test_immich_upload import FIELDS

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich spec is absent")
DEFAULT_MODEL = "ViT-B-32__openai"  # the config's default modelName


def _upload(http, seed: int) -> str:
    r = http.post("/api/assets", files={"assetData": (f"s{seed}.png", png_bytes(seed, 40, 30), "image/png")},
                  data=FIELDS)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _store(vectors: dict[str, np.ndarray], model: str = DEFAULT_MODEL) -> None:
    from app.db import engine as db
    from app.domain import smart_search
    from tests.conftest import run

    async def put():
        async with db.transaction() as conn:
            for asset_id, vector in vectors.items():
                library = await conn.fetchval("SELECT library_id FROM assets WHERE id = $1", uuid.UUID(asset_id))
                await smart_search.store(conn, uuid.UUID(asset_id), library, model, vector)

    run(put())


def test_smart_search_by_asset(server, account, make_account):
    from tests.helpers import wait_processed

    rng = np.random.default_rng(17)
    with checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
        ids = [_upload(http, 4100 + i) for i in range(5)]
        for asset_id in ids:
            wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(asset_id)))
        vectors = rng.standard_normal((5, 16)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        _store(dict(zip(ids, vectors)))
        order = np.argsort(1.0 - vectors @ vectors[2], kind="stable")
        want = [ids[i] for i in order]

        r = http.post("/api/search/smart", json={"queryAssetId": ids[2]})
        assert r.status_code == 200, r.text
        found = r.json()["assets"]
        assert [a["id"] for a in found["items"]] == want and found["nextPage"] is None
        assert found["total"] == found["count"] == 5
        # As Immich's search pages: exifInfo only with withExif, never a stack.
        assert all("exifInfo" not in a and "stack" not in a for a in found["items"])
        exif = http.post("/api/search/smart", json={"queryAssetId": ids[2], "withExif": True}).json()["assets"]
        assert [a["id"] for a in exif["items"]] == want and all("exifInfo" in a for a in exif["items"])
        # Filters added with this search: row times and several albums (in all of them).
        assert http.post("/api/search/smart", json={"queryAssetId": ids[2], "createdBefore": "2000-01-01T00:00:00Z"}
                         ).json()["assets"]["items"] == []

        first = http.post("/api/search/smart", json={"queryAssetId": ids[2], "size": 2}).json()["assets"]
        assert [a["id"] for a in first["items"]] == want[:2] and first["nextPage"] == "2"
        last = http.post("/api/search/smart", json={"queryAssetId": ids[2], "size": 2, "page": 3}).json()["assets"]
        assert [a["id"] for a in last["items"]] == want[4:] and last["nextPage"] is None and last["total"] == 1

        # The filters of the metadata search apply: an album narrows the set.
        album = http.post("/api/albums", json={"albumName": "smart", "assetIds": [ids[0], ids[4]]}).json()["id"]
        narrowed = http.post("/api/search/smart", json={"queryAssetId": ids[2], "albumIds": [album]}).json()
        assert [a["id"] for a in narrowed["assets"]["items"]] == [i for i in want if i in (ids[0], ids[4])]
        assert http.post("/api/search/smart", json={"queryAssetId": ids[2], "type": "VIDEO"}).json()[
            "assets"]["items"] == []
        other = http.post("/api/albums", json={"albumName": "smart 2", "assetIds": [ids[4], ids[1]]}).json()["id"]
        both = http.post("/api/search/smart", json={"queryAssetId": ids[2], "albumIds": [album, other]}).json()
        assert [a["id"] for a in both["assets"]["items"]] == [ids[4]]

        plain = _upload(http, 4199)
        wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(plain)))
        none = http.post("/api/search/smart", json={"queryAssetId": plain})
        assert (none.status_code, none.json()["message"]) == (400, f"Asset {plain} has no embedding")
        neither = http.post("/api/search/smart", json={})
        assert (neither.status_code, neither.json()["message"]) == (400, "Either `query` or `queryAssetId` must be set")
        assert http.post("/api/search/smart", json={"queryAssetId": ids[2], "size": 0}).status_code == 400
        assert http.post("/api/search/smart", json={"queryAssetId": ids[2], "ocr": "x"}).status_code == 400

    stranger = make_account()
    with checked_client(base_url=server.immich_url, headers={"x-api-key": stranger.api_key}, timeout=60) as other:
        refused = other.post("/api/search/smart", json={"queryAssetId": ids[2]})
        assert refused.status_code == 400  # someone else's asset: Immich's "not found or no access"


@pytest.fixture
def admin(server):
    import contextlib

    from app.domain import users
    from tests.conftest import run
    from tests.test_immich_external_libraries import _client, _login

    email = f"smart-{uuid.uuid4().hex[:8]}@example.com"
    run(users.create_user(email, "admin-pw", name="Smart Admin", is_admin=True))

    @contextlib.contextmanager
    def clip_config(**clip):
        """The system config's machineLearning.clip changed for the block, then put back."""
        with _client(server, _login(server.immich_url, email, "admin-pw")) as http:
            before = http.get("/api/system-config").json()
            learning = before["machineLearning"]
            changed = {**before, "machineLearning": {**learning, "clip": {**learning["clip"], **clip}}}
            assert http.put("/api/system-config", json=changed).status_code == 200
            try:
                yield
            finally:
                assert http.put("/api/system-config", json=before).status_code == 200

    return clip_config


def test_smart_search_off_in_the_config(server, account, admin):
    with admin(enabled=False):
        with checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}) as http:
            r = http.post("/api/search/smart", json={"query": "a dog"})
            assert (r.status_code, r.json()["message"]) == (400, "Smart search is not enabled")
            features = http.get("/api/server/features").json()
            assert features["smartSearch"] is False and features["duplicateDetection"] is False


def test_smart_search_by_text(server, account, admin, tmp_path):
    import fetch_clip_models as fetch  # tools/ is on sys.path (tests/conftest.py)

    from app.clip import models as clip
    from tests.conftest import MODEL_DIR
    from tests.helpers import wait_processed

    name = fetch.ensure_test_clip_model(MODEL_DIR)  # the test server's MODEL_DIR
    assert clip.clip_available(MODEL_DIR, name)
    with admin(modelName=name):
        with checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
            assert http.get("/api/server/features").json()["smartSearch"] is True
            ids = [_upload(http, 4300 + i) for i in range(3)]
            for asset_id in ids:
                wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(asset_id)))
            r = http.post("/api/search/smart", json={"query": "a photo of a dog"})
            assert r.status_code == 200, r.text
            assert set(ids) <= {a["id"] for a in r.json()["assets"]["items"]}

            # A video is embedded from its poster frame, and found by its own embedding first.
            from tests.test_media import _video

            clip = _video(tmp_path / "clip.mp4")
            v = http.post("/api/assets", files={"assetData": ("clip.mp4", clip, "video/mp4")},
                          data={**FIELDS, "deviceAssetId": f"video-{uuid.uuid4()}"})
            assert v.status_code == 201, v.text
            video = v.json()["id"]
            steps = wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(video)))
            assert all(t.status == "success" for t in steps), steps
            similar = http.post("/api/search/smart", json={"queryAssetId": video})
            assert similar.status_code == 200, similar.text
            assert similar.json()["assets"]["items"][0]["id"] == video
            videos = http.post("/api/search/smart", json={"query": "a dog", "type": "VIDEO"}).json()["assets"]
            assert [a["id"] for a in videos["items"]] == [video]


def test_a_reencoded_copy_is_found_as_a_duplicate_through_the_pipeline(server, account, admin):
    """Upload a real photo and the same picture saved again (other bytes): the pipeline embeds both
    with the CLIP test model, detection groups them, and Immich's /api/duplicates lists the pair."""
    import time

    import pyvips

    from tests.conftest import MODEL_DIR
    from tests.helpers import wait_processed
    from tests.media import SHARED_ASSETS

    import fetch_clip_models as fetch  # tools/ is on sys.path (tests/conftest.py)
    photo = SHARED_ASSETS / "formats" / "jpg" / "el_torcal_rocks.jpg"
    if not photo.exists():
        pytest.skip("../shared/test-assets is absent")
    original = photo.read_bytes()
    again = pyvips.Image.new_from_buffer(original, "").jpegsave_buffer(Q=80)
    assert again != original
    name = fetch.ensure_test_clip_model(MODEL_DIR)
    with admin(modelName=name):
        with checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60) as http:
            assert http.get("/api/server/features").json()["duplicateDetection"] is True
            ids = []
            for n, data in enumerate((original, again)):
                r = http.post("/api/assets", files={"assetData": (f"rocks-{n}.jpg", data, "image/jpeg")},
                              data={**FIELDS, "deviceAssetId": f"dup-{uuid.uuid4()}"})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            for asset_id in ids:
                wait_processed(account, "asset_" + shortuuid.encode(uuid.UUID(asset_id)))
            deadline = time.monotonic() + 90
            group = None
            while time.monotonic() < deadline and group is None:
                groups = http.get("/api/duplicates").json()
                group = next((g for g in groups if set(ids) <= {a["id"] for a in g["assets"]}), None)
                time.sleep(0.5)
            assert group is not None, "the re-encoded copy was not grouped with its original"
            assert all(a["duplicateId"] == group["duplicateId"] for a in group["assets"])
            assert set(group["suggestedKeepAssetIds"]) <= set(ids)
            # keep the original, trash the copy: the group is resolved
            r = http.post("/api/duplicates/resolve", json={"groups": [
                {"duplicateId": group["duplicateId"], "keepAssetIds": [ids[0]], "trashAssetIds": [ids[1]]}]})
            assert r.status_code == 200 and r.json()[0]["success"] is True, r.text
            assert http.get(f"/api/assets/{ids[1]}").json()["isTrashed"] is True
            assert http.get(f"/api/assets/{ids[0]}").json()["duplicateId"] is None
