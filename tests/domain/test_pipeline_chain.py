"""An asset's pipeline steps run one after another in the job of the first (app/jobs/worker.py),
each under its own queue's gate with its own task row and outcome; a step that stops between two
steps (a crash) leaves the next one's task pending, for the stalled-task sweep."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import pyvips
import pytest

from app.db import engine as db
from app.domain import processing, tasks
from app.jobs import worker
from app.jobs.queue import JobQueue
from app.storage.blobstore import BlobStore
from tests.domain import factories as f

PIPELINE = ("metadata_extract", "thumbnail_generation", "face_detection", "smart_search")


@pytest.fixture
def job_queue(domain):
    queue = domain.run(JobQueue.connect(domain.redis_url))
    yield queue
    domain.run(queue.close())


def context(store: BlobStore, queue, model_dir) -> dict:
    shared = SimpleNamespace(store=store, queue=queue, settings=SimpleNamespace(model_dir=model_dir))
    return {"shared": shared, "gates": worker.QueueGates(), "worker_id": None, "job_try": 1}


async def uploaded_photo(store: BlobStore, user) -> tuple[dict, uuid.UUID]:
    """A small JPEG in the store and its upload's first task, as ingest leaves them."""
    data = (pyvips.Image.black(320, 240, bands=3) + [40, 120, 200]).cast("uchar").jpegsave_buffer(Q=85)
    asset_id = uuid.uuid4()
    key = store.original_key(user["default_library_id"], asset_id, ".jpg")
    store.path(key).parent.mkdir(parents=True, exist_ok=True)
    store.path(key).write_bytes(data)
    asset = await f.new_asset(user, id=asset_id, storage_key=key, file_size_bytes=len(data),
                              taken=datetime(2024, 7, 14, 12, 0, tzinfo=timezone.utc))
    return asset, await processing.new_task(asset, "metadata")


async def pipeline_tasks(asset_id: uuid.UUID) -> dict[str, str]:
    rows = await db.fetch("SELECT task_type, status FROM tasks WHERE asset_id = $1", asset_id)
    return {r["task_type"]: r["status"] for r in rows}


async def queued(job_queue) -> set[str]:
    return {j.job_id for j in await job_queue.snapshot()}


async def test_the_first_steps_job_runs_every_following_step_each_with_its_own_task(user, job_queue, tmp_path):
    store = BlobStore(tmp_path)
    asset, task_id = await uploaded_photo(store, user)
    before = await queued(job_queue)

    assert await worker.extract_metadata(context(store, job_queue, tmp_path), str(task_id)) == "ok"

    assert await pipeline_tasks(asset["id"]) == dict.fromkeys(PIPELINE, "success")
    assert await db.fetchval("SELECT thumbhash IS NOT NULL FROM assets WHERE id = $1", asset["id"])
    kinds = {r["kind"] for r in await db.fetch("SELECT kind FROM asset_files WHERE asset_id = $1", asset["id"])}
    assert {"preview", "thumbnail"} <= kinds
    # Each step's outcome is its own (no model here: faces and CLIP say so on their rows).
    outcomes = {r["task_type"]: r["outcome"] for r in await db.fetch(
        "SELECT task_type, outcome FROM tasks WHERE asset_id = $1", asset["id"])}
    assert outcomes["face_detection"] == outcomes["smart_search"] == "skipped_no_model"
    # Known not to run before their tasks were made: recorded ended, never claimed by a job.
    skipped = await db.fetch("SELECT attempts, result FROM tasks WHERE asset_id = $1"
                             " AND task_type IN ('face_detection', 'smart_search')", asset["id"])
    assert [r["attempts"] for r in skipped] == [0, 0] and all(r["result"] for r in skipped)
    # No job was queued for the steps this job ran.
    assert await queued(job_queue) == before


async def test_a_face_model_that_fails_to_load_fails_face_detection_not_the_thumbnails(user, job_queue, tmp_path):
    from app.faces import models as face_models

    store = BlobStore(tmp_path / "store")
    asset, task_id = await uploaded_photo(store, user)
    broken = tmp_path / "models"
    (broken / face_models.BUFFALO_L).mkdir(parents=True)
    for name in face_models.BUFFALO_L_FILES:  # present, so not "missing": a damaged install
        (broken / face_models.BUFFALO_L / name).write_bytes(b"not an onnx file")

    assert await worker.extract_metadata(context(store, job_queue, broken), str(task_id)) == "ok"

    statuses = await pipeline_tasks(asset["id"])
    assert statuses["thumbnail_generation"] == "success"
    assert statuses["face_detection"] == "failure"  # its own job met the error and recorded it
    assert statuses["smart_search"] == "success"  # no CLIP model: skipped, as without the face pack


async def test_the_steps_statements_run_on_the_step_connections(user, job_queue, tmp_path, step_connections):
    store = BlobStore(tmp_path)
    asset, task_id = await uploaded_photo(store, user)

    assert await worker.extract_metadata(context(store, job_queue, tmp_path), str(task_id)) == "ok"

    assert await pipeline_tasks(asset["id"]) == dict.fromkeys(PIPELINE, "success")
    # Each connection's prepared statements are its own: the steps' claims (tasks.start) were
    # prepared on the step connections, which keep plans, and not on the pool's.
    def claims(statements: list[str]) -> int:
        return sum("SET status = 'started'" in text for text in statements)

    async def prepared(pool) -> list[str]:
        conns = [await pool.acquire(timeout=10) for _ in range(pool.get_size())]
        try:
            return [r["statement"] for c in conns
                    for r in await c.fetch("SELECT statement FROM pg_prepared_statements")]
        finally:
            for c in conns:
                await pool.release(c)

    assert claims(await prepared(db._step_pool)) >= 1
    assert claims(await prepared(db.engine().pool)) == 0


async def test_a_stop_between_two_steps_leaves_the_next_task_pending_for_the_sweep(user, job_queue, tmp_path):
    store = BlobStore(tmp_path)
    asset, task_id = await uploaded_photo(store, user)
    ctx = context(store, job_queue, tmp_path)
    # The metadata step as the chain runs it, then the job stops before the next step (a crash).
    following = worker.HeldSteps(job_queue, worker._STEPS)
    await worker._run_step(ctx, str(task_id), lambda t, a: worker._metadata(ctx, t, a, following))
    [(function, variants_task, job_id)] = following.held
    assert function == processing.VARIANTS_JOB
    assert await pipeline_tasks(asset["id"]) == {"metadata_extract": "success", "thumbnail_generation": "pending"}
    assert job_id not in await queued(job_queue)

    await db.execute("UPDATE tasks SET created_at = now() - interval '1 minute' WHERE id = $1", variants_task)
    try:
        await worker.requeue_stalled_tasks(ctx)
        assert job_id in await queued(job_queue)
    finally:
        await job_queue.remove([job_id])
    # Whoever takes it (here, its own job) runs it and the rest of the chain.
    assert await worker.generate_variants(ctx, str(variants_task)) == "ok"
    assert await pipeline_tasks(asset["id"]) == dict.fromkeys(PIPELINE, "success")


async def test_a_following_step_that_must_retry_gets_its_own_delayed_job(user, job_queue, tmp_path, monkeypatch):
    store = BlobStore(tmp_path)
    asset, task_id = await uploaded_photo(store, user)
    ctx = context(store, job_queue, tmp_path)

    async def disk_hiccup(store, task_id, attempt, queue, chain=None, settings=None):
        await tasks.start(task_id, attempt)  # claimed, then the file could not be read
        raise OSError("disk went away for a moment")

    monkeypatch.setattr(processing, "run_variants", disk_hiccup)
    job_id = tasks.job_id("thumbnail_generation", asset["id"])
    try:
        # The metadata job itself ends well: arq must not retry it for its successor's sake.
        assert await worker.extract_metadata(ctx, str(task_id)) == "ok"
        waiting = {j.job_id: j for j in await job_queue.snapshot()}
        assert job_id in waiting and waiting[job_id].delayed
    finally:
        await job_queue.remove([job_id])
    variants = await db.fetchrow("SELECT * FROM tasks WHERE asset_id = $1 AND task_type = 'thumbnail_generation'",
                                 asset["id"])
    assert variants["status"] == "pending" and "disk went away" in variants["error_message"]
    assert variants["attempts"] == 1 and variants["retry_count"] == 0  # its first try, not the metadata job's



async def test_a_small_picture_is_rendered_without_trimming_the_heap(user, job_queue, tmp_path, monkeypatch):
    # The trim cost more CPU than rendering a 2 MP photo; only large or unknown sizes pay for it.
    from app.media import memory

    trims = []
    monkeypatch.setattr(memory, "release", lambda: trims.append(1))
    store = BlobStore(tmp_path)
    asset, task_id = await uploaded_photo(store, user)
    assert await worker.extract_metadata(context(store, job_queue, tmp_path), str(task_id)) == "ok"
    assert await db.fetchval("SELECT width * height FROM assets WHERE id = $1", asset["id"]) == 320 * 240
    assert trims == []
    await db.execute("UPDATE assets SET width = 4000, height = 3000 WHERE id = $1", asset["id"])
    variants = await processing.new_task(asset, "variants")
    assert await processing.run_variants(store, variants, chain=False) == "ok"
    assert trims == [1]
