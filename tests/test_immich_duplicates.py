"""Immich's duplicate routes over HTTP: list, dissolve, resolve, and duplicateId on assets
(groups made by the domain's detection over embeddings written straight to the database)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from tests.conftest import run
from tests.immich_contract import SPEC_PATH, checked_client
from tests.media import png_bytes
from tests.test_immich_upload import FIELDS

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Immich OpenAPI spec is not present")


async def _embed_and_detect(owner_id: uuid.UUID, asset_ids: list[str]) -> None:
    from app.db import engine as db
    from app.domain import duplicates, system_config

    model = (await system_config.current())["machineLearning"]["clip"]["modelName"]
    rng = np.random.default_rng(11)
    base = rng.standard_normal(64)
    for asset_id in asset_ids:
        vector = base + 0.001 * rng.standard_normal(64)
        vector = (vector / np.linalg.norm(vector)).astype("<f4")
        await db.execute("INSERT INTO smart_search (asset_id, model, library_id, embedding)"
                         " SELECT id, $2, library_id, $3 FROM assets WHERE id = $1",
                         uuid.UUID(asset_id), model, vector.tobytes())
    await duplicates.detect(owner_id)


def _client(server, account):
    return checked_client(base_url=server.immich_url, headers={"x-api-key": account.api_key}, timeout=60)


def _group(http, account, n: int, seed: int) -> list[str]:
    ids = [http.post("/api/assets", files={"assetData": (f"d{i}.png", png_bytes(seed + i), "image/png")},
                     data=FIELDS).json()["id"] for i in range(n)]
    run(_embed_and_detect(account.user_id, ids))
    return ids


def test_list_shows_the_group_with_a_suggested_keeper(server, account):
    with _client(server, account) as http:
        ids = _group(http, account, 3, 2100)
        listed = http.get("/api/duplicates")
        assert listed.status_code == 200, listed.text
        [group] = listed.json()
        assert sorted(a["id"] for a in group["assets"]) == sorted(ids)
        assert all(a["duplicateId"] == group["duplicateId"] for a in group["assets"])
        sizes = {a["id"]: a["exifInfo"]["fileSizeInByte"] for a in group["assets"]}
        [keep] = group["suggestedKeepAssetIds"]
        assert sizes[keep] == max(sizes.values())
        assert http.get(f"/api/assets/{ids[0]}").json()["duplicateId"] == group["duplicateId"]


def test_dissolve_one_group_and_unknown_ids(server, account):
    with _client(server, account) as http:
        ids = _group(http, account, 2, 2200)
        [group] = http.get("/api/duplicates").json()
        unknown = http.delete(f"/api/duplicates/{uuid.uuid4()}")
        assert unknown.status_code == 400
        assert http.delete(f"/api/duplicates/{group['duplicateId']}").status_code == 204
        assert http.get("/api/duplicates").json() == []
        assert http.get(f"/api/assets/{ids[0]}").json()["duplicateId"] is None
        # The bulk update puts assets in a group, and the bulk delete dissolves it.
        again = str(uuid.uuid4())
        assert http.put("/api/assets", json={"ids": ids, "duplicateId": again}).status_code == 204
        assert [g["duplicateId"] for g in http.get("/api/duplicates").json()] == [again]
        assert http.request("DELETE", "/api/duplicates", json={"ids": [again]}).status_code == 204
        assert http.get("/api/duplicates").json() == []


def test_bulk_update_refuses_another_users_asset(server, account, make_account):
    stranger = make_account()
    with _client(server, account) as http, checked_client(base_url=server.immich_url, headers={"x-api-key": stranger.api_key}) as other:
        ids = _group(http, account, 2, 2300)
        refused = other.put("/api/assets", json={"ids": ids, "duplicateId": None})
        assert refused.status_code == 400, refused.text
        assert other.request("DELETE", "/api/duplicates",
                             json={"ids": [http.get(f"/api/assets/{ids[0]}").json()["duplicateId"]]}).status_code == 400
        assert http.get(f"/api/assets/{ids[0]}").json()["duplicateId"] is not None


def test_resolve_per_group_results(server, account):
    with _client(server, account) as http:
        ids = _group(http, account, 3, 2400)
        [group] = http.get("/api/duplicates").json()
        gid = group["duplicateId"]
        invalid = http.post("/api/duplicates/resolve", json={"groups": [
            {"duplicateId": gid, "keepAssetIds": [ids[0]], "trashAssetIds": [ids[1]]}]})
        assert invalid.status_code == 200, invalid.text
        assert invalid.json() == [{"id": gid, "success": False, "error": "validation",
                                   "errorMessage": "Every asset must be in either keepAssetIds or trashAssetIds"}]
        http.put("/api/assets", json={"ids": [ids[1]], "isFavorite": True})
        done = http.post("/api/duplicates/resolve", json={"groups": [
            {"duplicateId": gid, "keepAssetIds": [ids[0]], "trashAssetIds": ids[1:]}]})
        assert done.json() == [{"id": gid, "success": True}]
        keeper = http.get(f"/api/assets/{ids[0]}").json()
        assert keeper["isFavorite"] and keeper["duplicateId"] is None and not keeper["isTrashed"]
        assert all(http.get(f"/api/assets/{i}").json()["isTrashed"] for i in ids[1:])
        assert http.get("/api/duplicates").json() == []
        empty = http.post("/api/duplicates/resolve", json={"groups": []})
        assert empty.status_code == 400
