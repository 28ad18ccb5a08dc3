"""Native content search (GET /api/search): ranking by another asset's embedding (put in with SQL),
with the typed filters; the text path needs the CLIP model (see tests/test_immich_smart_search.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np

from app.api import ids as api_ids
from tests.media import png_bytes
from tests.test_immich_smart_search import _store


def test_search_by_asset_similarity(account):
    from tests.helpers import wait_processed

    now = dt.datetime(2022, 3, 1, tzinfo=dt.timezone.utc)
    made = []
    for i in range(4):
        raw = account.client.assets.with_raw_response.create(
            asset_data=(f"n{i}.png", png_bytes(5200 + i, 32, 24), "image/png"), device_asset_id=f"n{i}",
            device_id="t", file_created_at=now, file_modified_at=now)
        made.append(raw.parse().id)
    for asset_id in made:
        wait_processed(account, asset_id)
    rng = np.random.default_rng(23)
    vectors = rng.standard_normal((4, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    _store({str(api_ids.decode(api_ids.ASSET, a)): v for a, v in zip(made, vectors)})
    distances = 1.0 - vectors.astype(np.float64) @ vectors[1].astype(np.float64)
    want = [made[i] for i in np.argsort(distances, kind="stable")]

    found = account.client.search.search(extra_query={"asset_id": made[1]}, limit=3)
    assert [r.asset.id for r in found.data] == want[:3] and found.has_more
    assert found.data[0].distance == 0.0 or abs(found.data[0].distance) < 1e-6
    rest = account.client.search.search(extra_query={"asset_id": made[1]}, limit=3, page=2)
    assert [r.asset.id for r in rest.data] == want[3:] and not rest.has_more
    narrowed = account.client.search.search(extra_query={"asset_id": made[1]}, media_type="video")
    assert narrowed.data == []
    with account.http() as http:
        missing = http.get("/api/search", params={"asset_id": "asset_" + "2" * 22})
        assert missing.status_code == 404, missing.text
    assert uuid.UUID(str(api_ids.decode(api_ids.ASSET, made[0])))
