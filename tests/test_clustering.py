"""Clustering on synthetic embeddings: deterministic, no images, real Postgres and FAISS.

The worker's job body runs here in-process, twice at once, the way two workers would if
they ever raced: the result must be the same people, never duplicates.
"""

from __future__ import annotations

import asyncio

import numpy as np

from tests.conftest import run
from tests.helpers import upload, wait_processed
from tests.media import png_bytes

DIM = 192
MODEL = "synthetic-test"


def _near(centre: np.ndarray, count: int, rng) -> list[np.ndarray]:
    out = []
    for _ in range(count):
        v = centre + rng.normal(0, 0.03, DIM)
        out.append((v / np.linalg.norm(v)).astype(np.float32))
    return out


def _unit(rng) -> np.ndarray:
    v = rng.normal(0, 1, DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


async def _add_faces(asset_id, vectors) -> list:
    from app.db import engine as db

    rows = []
    for v in vectors:
        rows.append(await db.fetchval(
            "INSERT INTO faces (asset_id, library_id, owner_id, source, box_x, box_y, box_w, box_h, image_width,"
            " image_height, confidence, embedding, embedding_model)"
            " SELECT id, library_id, owner_id, 'automatic', 1, 1, 4, 4, 8, 8, 0.99, $2, $3 FROM assets WHERE id = $1"
            " RETURNING id", asset_id, v.tobytes(), MODEL))
    return rows


async def _people(library_id) -> dict:
    from app.db import engine as db

    rows = await db.fetch("SELECT person_id, array_agg(id) AS faces FROM faces WHERE library_id = $1"
                          " AND embedding_model = $2 GROUP BY person_id", library_id, MODEL)
    return {r["person_id"]: set(r["faces"]) for r in rows}


def test_incremental_clustering_with_racing_workers(account):
    from app.api import ids
    from app.domain import recognition
    from app.settings import load_settings

    settings = load_settings()
    response = upload(account, "holder.png", png_bytes(7001), content_type="image/png")
    asset_native = response.parse().id
    wait_processed(account, asset_native)
    asset_id = ids.decode(ids.ASSET, asset_native)
    library = ids.decode(ids.LIBRARY, account.client.libraries.list()[0].id)
    rng = np.random.default_rng(7)
    centres = [_unit(rng) for _ in range(4)]

    outlier_vectors = [_unit(rng) for _ in range(3)]

    async def first_round():
        groups = [await _add_faces(asset_id, _near(c, 5, rng)) for c in centres[:3]]
        outliers = await _add_faces(asset_id, outlier_vectors)
        await asyncio.gather(recognition.run_clustering(settings, library), recognition.run_clustering(settings, library))
        return groups, outliers, await _people(library)

    groups, outliers, people = run(first_round())
    named = {p: f for p, f in people.items() if p is not None}
    assert sorted(map(sorted, named.values())) == sorted(map(sorted, (set(g) for g in groups)))
    assert people[None] == set(outliers)

    async def second_round():
        more_a = await _add_faces(asset_id, _near(centres[0], 2, rng))
        new_d = await _add_faces(asset_id, _near(centres[3], 3, rng))
        # Two faces next to an earlier outlier make it dense enough: it joins their new person.
        near_outlier = await _add_faces(asset_id, _near(outlier_vectors[0], 2, rng))
        await recognition.run_clustering(settings, library)
        return more_a, new_d, near_outlier, await _people(library)

    more_a, new_d, near_outlier, people = run(second_round())
    person_a = next(p for p, f in people.items() if p is not None and set(groups[0]) <= f)
    assert people[person_a] == set(groups[0]) | set(more_a)
    assert set(new_d) in people.values()
    assert {outliers[0], *near_outlier} in people.values()
    assert people[None] == set(outliers[1:])
    assert len([p for p in people if p is not None]) == 5


def test_without_models_face_tasks_are_skipped_with_the_reason(account, tmp_path):
    import msgspec

    from app.db import engine as db
    from app.api import ids
    from app.domain import recognition, tasks
    from app.settings import load_settings
    from app.storage.blobstore import BlobStore

    settings = msgspec.structs.replace(load_settings(), model_dir=tmp_path / "no-models")
    native = upload(account, "nomodel.png", png_bytes(7002), content_type="image/png").parse().id
    wait_processed(account, native)

    async def go():
        asset = await db.fetchrow("SELECT * FROM assets WHERE id = $1", ids.decode(ids.ASSET, native))
        async with db.transaction() as conn:
            task_id = await tasks.create(conn, asset, recognition.DETECTION_TASK)
        await recognition.run_detection(settings, BlobStore(settings.data_dir), task_id, None)
        return await db.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)

    task = run(go())
    assert (task["status"], task["outcome"]) == ("success", "skipped_no_model")
    assert "python -m app models download" in task["result"]


def test_large_libraries_switch_to_an_inverted_file_index_that_finds_the_same_people():
    from app.faces.index import FaceIndex, nearest_person, normalise

    rng = np.random.default_rng(3)
    centres = normalise(rng.standard_normal((400, DIM)).astype(np.float32))
    who = rng.integers(0, 400, 12_000)
    vectors = normalise(centres[who] + rng.standard_normal((12_000, DIM)).astype(np.float32) * 0.03)
    seqs = np.arange(1, 12_001)
    exact, ivf = FaceIndex(DIM, exact_limit=10**9), FaceIndex(DIM, exact_limit=5_000)
    for start in range(0, 12_000, 4_000):  # in batches, as a worker loads them
        exact.add(seqs[start:start + 4_000], vectors[start:start + 4_000])
        ivf.add(seqs[start:start + 4_000], vectors[start:start + 4_000])
    assert exact.exact and not ivf.exact and ivf.ntotal == 12_000 and 11_999 in ivf
    person_of = {int(s): int(p) for s, p in zip(seqs, who)}
    queries = normalise(centres[who[:500]] + rng.standard_normal((500, DIM)).astype(np.float32) * 0.03)
    chosen = [[nearest_person(d, s, person_of, 0.5)[0] for d, s in zip(*index.search(queries, 3))]
              for index in (exact, ivf)]
    assert chosen[0] == chosen[1] == [int(p) for p in who[:500]]
