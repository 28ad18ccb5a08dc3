"""Native content search (GET and multipart POST /api/search) through the gumnut-sdk client: by
another asset's embedding (put in with SQL), by text and by an uploaded image (the pipeline embeds
uploads with the CLIP test model test-clip-64, as in tests/test_immich_smart_search.py), with the
typed filters, and the top-200 bound on a content search's pages."""

from __future__ import annotations

import datetime as dt
import uuid

import gumnut
import numpy as np
import pytest

from app.api import ids as api_ids
from tests.conftest import run
from tests.helpers import UTC, upload, wait_processed
from tests.media import SHARED_ASSETS, png_bytes
from tests.test_immich_smart_search import _store, admin  # noqa: F401 (admin: the config fixture)
from tests.test_pagination import _seed

PHOTOS = {  # real photos, distinct pictures; three carry an EXIF capture date
    "rocks": SHARED_ASSETS / "formats" / "jpg" / "el_torcal_rocks.jpg",
    "denali": SHARED_ASSETS / "formats" / "webp" / "denali.webp",
    "portrait": SHARED_ASSETS / "metadata" / "faces" / "portrait.jpg",
    "picasa": SHARED_ASSETS / "metadata" / "tags" / "picasa.jpg",
}


def _clip_test_model() -> str:
    import fetch_clip_models as fetch  # tools/ is on sys.path (tests/conftest.py)

    from app.clip import models as clip
    from tests.conftest import MODEL_DIR

    name = fetch.ensure_test_clip_model(MODEL_DIR)  # the test server's MODEL_DIR
    assert clip.clip_available(MODEL_DIR, name)
    return name


def _embeddings(asset_ids: list[str], model: str) -> dict[str, np.ndarray]:
    from app.domain import smart_search

    async def read():
        return {a: await smart_search.embedding_of(api_ids.decode(api_ids.ASSET, a), model) for a in asset_ids}

    return run(read())


def _assert_ranked(found) -> None:
    """Every item is an asset with a float distance, nearest first."""
    assert all(isinstance(r.asset.id, str) and r.asset.id.startswith("asset_") for r in found.data)
    distances = [r.distance for r in found.data]
    assert all(isinstance(d, float) for d in distances), distances
    assert distances == sorted(distances)


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


def test_search_by_text_with_a_date_bound(account, admin):
    from app.clip import models as clip
    from tests.conftest import MODEL_DIR

    name = _clip_test_model()
    text = "rocks in the mountains"
    with admin(modelName=name):  # uploads made now are embedded with the test model
        made = [upload(account, f"t{i}.png", png_bytes(5300 + 17 * i, 48, 32),
                       created=dt.datetime(2021, 6, 1 + i, 12, tzinfo=UTC)).parse().id for i in range(4)]
        for asset_id in made:
            wait_processed(account, asset_id)
        s = account.client.search

        everything = s.search(query=text, limit=10)
        assert {r.asset.id for r in everything.data} == set(made) and not everything.has_more
        _assert_ranked(everything)
        # Each distance is the cosine distance between the text's and the stored embedding.
        query = clip.load_clip_model(MODEL_DIR, name).encode_text(text).astype(np.float64)
        stored = _embeddings(made, name)
        for r in everything.data:
            assert abs(r.distance - (1.0 - stored[r.asset.id].astype(np.float64) @ query)) < 1e-5
        ranking = [r.asset.id for r in everything.data]

        # The bound is exclusive: the first asset (June 1st, noon) is left out, the others keep their order.
        bounded = s.search(query=text, local_datetime_after=dt.datetime(2021, 6, 2))
        assert [r.asset.id for r in bounded.data] == [a for a in ranking if a != made[0]]
        assert not bounded.has_more
        _assert_ranked(bounded)
        first = s.search(query=text, local_datetime_after=dt.datetime(2021, 6, 2), limit=2, page=1)
        second = s.search(query=text, local_datetime_after=dt.datetime(2021, 6, 2), limit=2, page=2)
        assert first.has_more and not second.has_more
        assert [r.asset.id for r in first.data + second.data] == [r.asset.id for r in bounded.data]
        assert s.search(query=text, media_type="video").data == []


def test_search_by_uploaded_image_with_a_date_bound(account, admin):
    if not all(path.exists() for path in PHOTOS.values()):
        pytest.skip("../shared/test-assets is absent")
    with admin(modelName=_clip_test_model()):
        made = {key: upload(account, path.name, path.read_bytes()).parse().id for key, path in PHOTOS.items()}
        for asset_id in made.values():
            wait_processed(account, asset_id)
        s = account.client.search
        rocks = PHOTOS["rocks"].read_bytes()

        # The asset's embedding comes from its preview, the query's from the original file: nearly equal.
        found = s.search_assets(image=("q.jpg", rocks, "image/jpeg"), limit=10)
        assert {r.asset.id for r in found.data} == set(made.values()) and not found.has_more
        _assert_ranked(found)
        assert found.data[0].asset.id == made["rocks"] and abs(found.data[0].distance) < 0.01
        assert found.data[1].distance > found.data[0].distance

        bound = dt.datetime(2012, 1, 1)
        captured = {a: account.client.assets.retrieve(a).local_datetime.replace(tzinfo=None) for a in made.values()}
        before = {a for a, when in captured.items() if when < bound}
        assert made["rocks"] not in before and before  # EXIF 2012-08-05; denali and picasa are from 2010
        bounded = s.search_assets(image=("q.jpg", rocks, "image/jpeg"), local_datetime_before=bound,
                                  media_type="image")
        assert [r.asset.id for r in bounded.data] == [r.asset.id for r in found.data if r.asset.id in before]
        assert not bounded.has_more
        _assert_ranked(bounded)
        with pytest.raises(gumnut.UnprocessableEntityError):
            s.search_assets(image=("q.jpg", b"not an image", "image/jpeg"))


def test_content_search_pages_stop_at_the_top_200(account):
    """205 assets with embeddings: the ranked pages hold the nearest 200 and stop there, whatever
    the page size; a filter-only search pages through all 205."""
    made = [api_ids.encode(api_ids.ASSET, a) for a in _seed(account, 205)]
    rng = np.random.default_rng(41)
    vectors = rng.standard_normal((len(made), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    _store({str(api_ids.decode(api_ids.ASSET, a)): v for a, v in zip(made, vectors)})
    distances = 1.0 - vectors.astype(np.float64) @ vectors[0].astype(np.float64)
    want = [made[i] for i in np.argsort(distances, kind="stable")][:200]
    s = account.client.search

    def page(number: int, limit: int):
        found = s.search(extra_query={"asset_id": made[0]}, limit=limit, page=number)
        return [r.asset.id for r in found.data], found.has_more

    assert [page(n, 50) for n in (1, 2, 3, 4, 5)] == [
        (want[:50], True), (want[50:100], True), (want[100:150], True), (want[150:], False), ([], False)]
    assert page(7, 30) == (want[180:], False)  # the page that reaches the 200th is cut short
    assert page(8, 30) == ([], False)
    assert page(1, 200) == (want, False)
    assert page(2, 200) == ([], False)
    assert page(1_000, 200) == ([], False)
    with pytest.raises(gumnut.NotFoundError):  # past the set, a wrong album is still 404
        s.search(extra_query={"asset_id": made[0]}, album_id="album_" + "2" * 22, limit=200, page=2)

    full, rest = s.search(media_type="image", limit=200, page=1), s.search(media_type="image", limit=200, page=2)
    assert full.has_more and len(rest.data) == 5 and not rest.has_more
    assert {r.asset.id for r in full.data + rest.data} == set(made)
