"""Smart search ranking (app/domain/smart_search.py over app/vector_index.py): real assets and random
normalised embeddings in Postgres, each ranking compared with a brute-force numpy ranking of the
same filtered set."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np
import pytest

from app import vector_index
from app.db import engine as db
from app.domain import smart_search
from app.domain.asset_filters import AssetFilter, Sql, where
from app.domain.errors import Invalid, NotFound
from tests.domain import factories as f

MODEL = "test-model"
DIM = 32
BASE = datetime(2024, 1, 1)


@pytest.fixture(autouse=True)
def fresh_indexes(monkeypatch):
    """Each test with its own index cache (no state carried between tests)."""
    monkeypatch.setattr(vector_index, "indexes", vector_index.LibraryIndexes())


def unit(rng, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


async def populate(user, count: int, rng, library_id=None, vectors=None) -> list:
    """`count` assets a day apart from BASE, each with an embedding; returns the asset rows."""
    vectors = unit(rng, count) if vectors is None else vectors
    rows = []
    for i in range(count):
        asset = await f.new_asset(user, library_id=library_id, taken=BASE + timedelta(days=i))
        async with db.transaction() as conn:
            await smart_search.store(conn, asset["id"], asset["library_id"], MODEL, vectors[i])
        rows.append(asset)
    return rows


async def brute_force(filt: AssetFilter, query: np.ndarray) -> list[tuple[uuid.UUID, float]]:
    sql = Sql()
    clause = where(filt, sql)
    rows = await db.fetch(
        f"SELECT a.id, s.embedding FROM assets a JOIN smart_search s ON s.asset_id = a.id"
        f" AND s.model = {sql.arg(MODEL)} WHERE {clause}", *sql.args)
    if not rows:
        return []
    matrix = np.stack([np.frombuffer(r["embedding"], "<f4") for r in rows]).astype(np.float64)
    q = (query / np.linalg.norm(query)).astype(np.float32).astype(np.float64)
    distances = 1.0 - np.einsum("ij,j->i", matrix, q)  # each row alike: equal embeddings tie exactly
    return sorted(((r["id"], float(d)) for r, d in zip(rows, distances)), key=lambda x: (x[1], x[0]))


def ids(pairs) -> list:
    return [p[0] for p in pairs]


async def test_ranking_is_brute_force_order(user, library_id):
    rng = np.random.default_rng(1)
    await populate(user, 120, rng)
    filt = AssetFilter(library_id)
    for query in unit(rng, 3):
        got = await smart_search.rank([filt], MODEL, query, 0, 50)
        want = (await brute_force(filt, query))[:50]
        assert ids(got) == ids(want)
        assert np.allclose([d for _, d in got], [d for _, d in want], atol=1e-6)


async def test_store_replaces_and_embedding_of(user, library_id):
    rng = np.random.default_rng(2)
    [asset] = await populate(user, 1, rng)
    assert await smart_search.embedding_of(uuid.uuid4(), MODEL) is None
    first_seq = await db.fetchval("SELECT seq FROM smart_search WHERE asset_id = $1", asset["id"])
    new = unit(rng, 1)[0]
    async with db.transaction() as conn:
        await smart_search.store(conn, asset["id"], library_id, MODEL, new * 3)  # normalised on the way in
    stored = await smart_search.embedding_of(asset["id"], MODEL)
    assert np.allclose(stored, new, atol=1e-6)
    assert await db.fetchval("SELECT seq FROM smart_search WHERE asset_id = $1", asset["id"]) > first_seq
    with pytest.raises(Invalid):
        async with db.transaction() as conn:
            await smart_search.store(conn, asset["id"], library_id, MODEL, np.zeros(DIM))


async def test_replaced_embedding_ranks_by_its_new_vector(user, library_id):
    rng = np.random.default_rng(3)
    assets = await populate(user, 30, rng)
    filt = AssetFilter(library_id)
    query = unit(rng, 1)[0]
    await smart_search.rank([filt], MODEL, query, 0, 5)  # builds the index
    async with db.transaction() as conn:
        await smart_search.store(conn, assets[7]["id"], library_id, MODEL, query)
    got = await smart_search.rank([filt], MODEL, query, 0, 5)
    assert got[0][0] == assets[7]["id"] and got[0][1] == pytest.approx(0.0, abs=1e-6)
    assert ids(got) == ids((await brute_force(filt, query))[:5])
    assert len(got) == len(set(ids(got)))


async def test_date_range_filter(user, library_id):
    rng = np.random.default_rng(4)
    await populate(user, 150, rng)
    filt = AssetFilter(library_id, after=BASE + timedelta(days=20), before=BASE + timedelta(days=35))
    query = unit(rng, 1)[0]
    got = await smart_search.rank([filt], MODEL, query, 0, 100)
    want = await brute_force(filt, query)
    assert len(want) == 14  # days 21..34: a narrow filter (the exact fallback)
    assert ids(got) == ids(want)


async def test_album_filter(user, library_id):
    rng = np.random.default_rng(5)
    assets = await populate(user, 80, rng)
    album = await f.new_album(user)
    for asset in assets[::4]:
        await f.new_album_asset(album, asset)
    filt = AssetFilter(library_id, album_id=album["id"])
    query = unit(rng, 1)[0]
    got = await smart_search.rank([filt], MODEL, query, 0, 10)
    assert ids(got) == ids((await brute_force(filt, query))[:10])
    assert set(ids(got)) <= {a["id"] for a in assets[::4]}
    with pytest.raises(NotFound):
        await smart_search.rank([AssetFilter(library_id, album_id=uuid.uuid4())], MODEL, query, 0, 10)


async def test_album_ranking_keeps_ties_in_id_order_and_skips_members_without_an_embedding(user, library_id):
    """The album path scores its members in float32 first and in float64 only near the cut: equal
    embeddings (duplicates) straddling the cut still come out in id order, as a brute force has them."""
    rng = np.random.default_rng(15)
    vectors = unit(rng, 60)
    vectors[10:20] = vectors[9]  # eleven equal embeddings
    assets = await populate(user, 60, rng, vectors=vectors)
    bare = await f.new_asset(user, taken=BASE)
    album = await f.new_album(user)
    for asset in [*assets, bare]:
        await f.new_album_asset(album, asset)
    filt = AssetFilter(library_id, album_id=album["id"])
    near = vectors[9] + 0.3 * unit(rng, 1)[0]
    for query in (vectors[9], near, *unit(rng, 2)):
        want = await brute_force(filt, query)
        for count in (5, 11, 12, 30):
            got = await smart_search.rank([filt], MODEL, query, 0, count)
            assert ids(got) == ids(want[:count])
            assert np.allclose([d for _, d in got], [d for _, d in want[:count]], atol=1e-12)
    assert bare["id"] not in ids(await smart_search.rank([filt], MODEL, near, 0, 100))


async def test_trashed_and_other_libraries_stay_out(user, library_id):
    rng = np.random.default_rng(6)
    assets = await populate(user, 40, rng)
    other = await f.new_user()
    await populate(other, 40, rng)
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", assets[0]["id"])
    query = unit(rng, 1)[0]
    async with db.transaction() as conn:
        await smart_search.store(conn, assets[0]["id"], library_id, MODEL, query)
    got = await smart_search.rank([AssetFilter(library_id)], MODEL, query, 0, 100)
    assert assets[0]["id"] not in ids(got)
    assert set(ids(got)) == {a["id"] for a in assets[1:]}


async def test_paging(user, library_id):
    rng = np.random.default_rng(7)
    await populate(user, 60, rng)
    filt = AssetFilter(library_id)
    query = unit(rng, 1)[0]
    everything = await smart_search.rank([filt], MODEL, query, 0, 60)
    pages = [await smart_search.rank([filt], MODEL, query, offset, 25) for offset in (0, 25, 50)]
    assert [len(p) for p in pages] == [25, 25, 10]
    assert ids(pages[0] + pages[1] + pages[2]) == ids(everything)
    assert await smart_search.rank([filt], MODEL, query, 60, 25) == []
    with pytest.raises(Invalid):
        await smart_search.rank([filt], MODEL, query, -1, 25)


async def test_several_libraries_merge(user, library_id):
    rng = np.random.default_rng(8)
    second = (await f.new_library(user))["id"]
    await populate(user, 30, rng)
    await populate(user, 30, rng, library_id=second)
    query = unit(rng, 1)[0]
    filters = [AssetFilter(library_id), AssetFilter(second)]
    got = await smart_search.rank(filters, MODEL, query, 0, 20)
    want = sorted(await brute_force(filters[0], query) + await brute_force(filters[1], query),
                  key=lambda x: (x[1], x[0]))[:20]
    assert ids(got) == ids(want)


async def test_stable_after_the_cache_is_dropped(user, library_id):
    rng = np.random.default_rng(9)
    assets = await populate(user, 70, rng)
    filt = AssetFilter(library_id)
    query = unit(rng, 1)[0]
    before = await smart_search.rank([filt], MODEL, query, 0, 30)
    await db.execute("DELETE FROM assets WHERE id = $1", before[0][0])  # a dead index entry
    vector_index.indexes.forget()  # as after a restart: rebuilt from Postgres
    after = await smart_search.rank([filt], MODEL, query, 0, 29)
    assert ids(after) == ids(before[1:])
    assert vector_index.indexes.cached(library_id, MODEL).ntotal == len(assets) - 1


async def test_exact_then_ivf(monkeypatch, user, library_id):
    """Above the exact limit the index turns into IVF; on clustered data its ranking keeps the
    brute-force order for nearly all of the first page."""
    monkeypatch.setattr(vector_index, "indexes", vector_index.LibraryIndexes(exact_limit=100))
    rng = np.random.default_rng(10)
    centres = unit(rng, 8)
    noisy = centres[rng.integers(0, 8, 300)] + 0.15 * rng.standard_normal((300, DIM)).astype(np.float32)
    await populate(user, 60, rng, vectors=noisy[:60] / np.linalg.norm(noisy[:60], axis=1, keepdims=True))
    filt = AssetFilter(library_id)
    query = centres[3] + 0.05 * unit(rng, 1)[0]
    await smart_search.rank([filt], MODEL, query, 0, 10)
    assert vector_index.indexes.cached(library_id, MODEL).exact
    rest = noisy[60:] / np.linalg.norm(noisy[60:], axis=1, keepdims=True)
    await populate(user, 240, rng, vectors=rest)
    got = await smart_search.rank([filt], MODEL, query, 0, 20)
    index = vector_index.indexes.cached(library_id, MODEL)
    assert not index.exact and index.ntotal == 300
    want = await brute_force(filt, query)
    assert len(set(ids(got)) & set(ids(want[:20]))) >= 18
    assert [d for _, d in got] == sorted(d for _, d in got)


# --- the pipeline step and its queue ----------------------------------------------------------------


async def _task_row(task_id):
    return await db.fetchrow("SELECT status, outcome, result FROM tasks WHERE id = $1", task_id)


async def test_encoding_without_a_model_is_skipped(user, tmp_path):
    from types import SimpleNamespace

    asset = await f.new_asset(user)
    task = await f.new_task(asset, smart_search.ENCODE_TASK)
    settings = SimpleNamespace(model_dir=tmp_path)  # no CLIP model in it
    assert await smart_search.run_encoding(settings, None, task["id"], None) == "skipped"
    row = await _task_row(task["id"])
    assert (row["status"], row["outcome"]) == ("success", "skipped_no_model") and row["result"]
    assert await smart_search.embedding_of(asset["id"], (await smart_search.config()).model) is None


async def test_encoding_with_the_config_off_is_skipped(user, tmp_path):
    from tests.domain.test_system_config import _fresh_server

    async with _fresh_server() as admin:  # the config is server-wide: left unsaved, as found
        await _encoding_with_the_config_off(user, tmp_path, admin)


async def _encoding_with_the_config_off(user, tmp_path, admin):
    from types import SimpleNamespace

    from app.domain import system_config

    before = await system_config.current()
    off = {**before, "machineLearning": {**before["machineLearning"], "clip": {
        **before["machineLearning"]["clip"], "enabled": False}}}
    await system_config.update(admin, off)
    try:
        task = await f.new_task(await f.new_asset(user), smart_search.ENCODE_TASK)
        assert await smart_search.run_encoding(SimpleNamespace(model_dir=tmp_path), None, task["id"], None) == "skipped"
        assert (await _task_row(task["id"]))["outcome"] == "skipped_config_off"
        with pytest.raises(Exception, match="Smart search is not enabled"):
            await smart_search.enabled_config()
    finally:
        await system_config.update(admin, before)


async def test_variants_step_creates_the_encoding_task(user):
    asset = await f.new_asset(user)
    hidden = await f.new_asset(user, visibility="hidden")
    async with db.transaction() as conn:
        made = await smart_search.create_encoding(conn, asset)
        assert await smart_search.create_encoding(conn, hidden) is None
    assert await db.fetchval("SELECT task_type FROM tasks WHERE id = $1", made) == smart_search.ENCODE_TASK


async def test_smart_search_queue_starts_assets_without_an_embedding(domain, user):
    from app.domain import job_queues
    from app.jobs.queue import JobQueue

    admin = f.principal_for(await f.new_user(is_admin=True))
    queue = await JobQueue.connect(domain.redis_url)
    model = (await smart_search.config()).model
    bare = await f.new_asset(user)
    done = await f.new_asset(user)
    async with db.transaction() as conn:
        await smart_search.store(conn, done["id"], done["library_id"], model, unit(np.random.default_rng(11), 1)[0])
    try:
        await job_queues.start(admin, "smartSearch", False, queue)
        types = {r["asset_id"]: r["task_type"] for r in await db.fetch(
            "SELECT asset_id, task_type FROM tasks WHERE asset_id = ANY($1::uuid[]) AND status = 'pending'",
            [bare["id"], done["id"]])}
        assert types == {bare["id"]: smart_search.ENCODE_TASK}
        queued = {j.job_id for j in await queue.snapshot()}
        assert f"{smart_search.ENCODE_TASK}:{bare['id']}" in queued
    finally:
        await job_queues.empty(admin, "smartSearch", queue)
        await queue.close()


async def test_a_bound_on_the_ranking_cuts_pages_and_still_checks_the_filter(user, library_id):
    rng = np.random.default_rng(16)
    await populate(user, 30, rng)
    filt = AssetFilter(library_id)
    query = unit(rng, 1)[0]
    want = await brute_force(filt, query)
    assert ids(await smart_search.rank([filt], MODEL, query, 5, 10, at_most=12)) == ids(want[5:12])
    assert await smart_search.rank([filt], MODEL, query, 12, 10, at_most=12) == []
    with pytest.raises(NotFound):
        await smart_search.rank([AssetFilter(library_id, album_id=uuid.uuid4())], MODEL, query, 12, 10, at_most=12)
    with pytest.raises(Invalid):
        await smart_search.rank([AssetFilter(library_id, radius_m=5.0)], MODEL, query, 12, 10, at_most=12)
