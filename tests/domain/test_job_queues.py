"""Immich's job queues over arq and the task rows (app/domain/job_queues.py), and the worker's
per-queue gates (app/jobs/worker.py).

The package shares one database and one Redis, and no worker consumes arq's queue here, so the
tests compare counts before and after, and put back every pause they make.
"""

from __future__ import annotations

import asyncio
import uuid
import contextlib
from datetime import datetime, timezone

import pytest
from arq.constants import default_queue_name, in_progress_key_prefix

from app.db import engine as db
from app.domain import job_queues, processing, tasks
from app.domain.errors import BadRequest, Forbidden
from app.jobs.queue import JobQueue
from app.jobs.worker import QueueGates
from tests.domain import factories as f

META = "metadataExtraction"


@pytest.fixture
def job_queue(domain):
    queue = domain.run(JobQueue.connect(domain.redis_url))
    yield queue
    domain.run(queue.close())


@pytest.fixture
def admin(domain):
    return f.principal_for(domain.run(f.new_user(is_admin=True)))


async def stats(admin, job_queue, name=META) -> job_queues.Statistics:
    return (await job_queues.get_queue(admin, name, job_queue)).statistics


async def queued_ids(job_queue) -> set[str]:
    return {j.job_id for j in await job_queue.snapshot()}


@contextlib.asynccontextmanager
async def paused(admin, job_queue, name=META):
    await job_queues.pause(admin, name)
    try:
        yield
    finally:
        await job_queues.resume(admin, name, job_queue)


async def metadata_task(user, **overrides):
    return await f.new_task(await f.new_asset(user), "metadata_extract", **overrides)


async def test_counts_come_from_arq_and_the_task_rows(user, admin, job_queue):
    before = await stats(admin, job_queue)
    unqueued = await metadata_task(user)  # pending, its job not in arq yet: waiting for the sweep
    queued = await metadata_task(user)
    await job_queue.enqueue(processing.METADATA_JOB, queued["id"], queued["job_id"])
    running = await metadata_task(user, status="started")
    await job_queue.enqueue(processing.METADATA_JOB, running["id"], running["job_id"])
    await job_queue.pool.set(in_progress_key_prefix + running["job_id"], b"1")
    retrying = await metadata_task(user)
    await job_queue.pool.enqueue_job(processing.METADATA_JOB, str(retrying["id"]), _job_id=retrying["job_id"],
                                     _defer_by=600)
    await metadata_task(user, status="failure", completed_at=datetime.now(timezone.utc))
    try:
        after = await stats(admin, job_queue)
        # The queued job and its pending row count once; the deferred retry is delayed, not waiting.
        assert (after.waiting - before.waiting, after.active - before.active, after.delayed - before.delayed,
                after.failed - before.failed, after.completed) == (2, 1, 1, 1, 0)
        legacy = {s.name: s for s in await job_queues.list_queues(admin, job_queue)}
        assert legacy[META].statistics == after and set(legacy) == set(job_queues.QUEUE_NAMES)
        listed = {j.id: j for j in await job_queues.list_jobs(admin, META, ["waiting"], job_queue)}
        assert {unqueued["job_id"], queued["job_id"]} <= set(listed)
        assert listed[queued["job_id"]].name == "AssetExtractMetadata"
        assert listed[queued["job_id"]].data == {"id": str(queued["asset_id"])}
        assert running["job_id"] in {j.id for j in await job_queues.list_jobs(admin, META, ["active"], job_queue)}
    finally:
        await job_queue.pool.delete(in_progress_key_prefix + running["job_id"])
        await job_queues.empty(admin, META, job_queue)

    await job_queues.clear_failed(admin, META)
    assert (await stats(admin, job_queue)).failed == 0


async def test_a_paused_queue_keeps_its_state_and_resume_enqueues_its_tasks(user, admin, job_queue):
    task = await metadata_task(user)
    async with paused(admin, job_queue):
        status = await job_queues.get_queue(admin, META, job_queue)
        assert status.is_paused and status.statistics.waiting == 0 and status.statistics.paused >= 1
        # Stored in the database: another process (or a restarted one) sees it.
        assert META in await job_queues.paused_queues()
        # The sweep leaves the paused queue's tasks alone, however old.
        await db.execute("UPDATE tasks SET created_at = now() - interval '1 hour' WHERE id = $1", task["id"])
        stalled = await tasks.stalled(10, 60, exclude_types=job_queues.paused_task_types({META}))
        assert task["id"] not in {r["id"] for r in stalled}
        assert task["job_id"] not in await queued_ids(job_queue)
    assert META not in await job_queues.paused_queues()
    assert task["job_id"] in await queued_ids(job_queue)  # resume handed it to arq at once
    await job_queues.empty(admin, META, job_queue)


async def test_empty_removes_waiting_jobs_and_ends_their_tasks(user, admin, job_queue):
    task = await metadata_task(user)
    await job_queue.enqueue(processing.METADATA_JOB, task["id"], task["job_id"])
    failed_before = (await stats(admin, job_queue)).failed
    await job_queues.empty(admin, META, job_queue)
    row = await db.fetchrow("SELECT * FROM tasks WHERE id = $1", task["id"])
    assert (row["status"], row["outcome"]) == ("failure", job_queues.CLEANED_UP)
    assert task["job_id"] not in await queued_ids(job_queue)
    assert not await job_queue.pool.exists(f"arq:job:{task['job_id']}")
    after = await stats(admin, job_queue)
    assert after.failed == failed_before and after.waiting == 0  # removed work is not a failure
    assert task["id"] not in {r["id"] for r in await tasks.stalled(0, 60)}


async def test_start_runs_missing_assets_or_all_with_force(user, admin, job_queue):
    done = await f.new_asset(user)
    await f.new_task(done, "metadata_extract", status="success")
    missing = await f.new_asset(user)
    video = await f.new_asset(user, media_type="video")
    await job_queues.start(admin, META, False, job_queue)
    mine = {a["id"]: a for a in (done, missing, video)}

    async def open_tasks():
        rows = await db.fetch("SELECT asset_id, task_type, job_id FROM tasks WHERE status = 'pending'"
                              " AND asset_id = ANY($1::uuid[])", list(mine))
        return {r["asset_id"]: r for r in rows}

    try:
        opened = await open_tasks()
        assert set(opened) == {missing["id"], video["id"]}
        assert opened[video["id"]]["task_type"] == "video_metadata_extract"
        assert opened[missing["id"]]["job_id"] in await queued_ids(job_queue)
        await job_queues.start(admin, META, True, job_queue)
        assert set(await open_tasks()) == set(mine)  # force adds the done asset, never a second open task
        count = await db.fetchval("SELECT count(*) FROM tasks WHERE asset_id = $1 AND status = 'pending'",
                                  missing["id"])
        assert count == 1
    finally:
        await job_queues.empty(admin, META, job_queue)


async def test_start_refuses_queues_without_work_and_a_running_queue(user, admin, job_queue):
    with pytest.raises(BadRequest, match="Invalid job name"):
        await job_queues.start(admin, "backgroundTask", False, job_queue)
    with pytest.raises(BadRequest, match="no work on this server"):
        await job_queues.start(admin, "videoConversion", False, job_queue)
    await job_queues.start(admin, "library", False, job_queue)  # nothing to scan, as in Immich
    with pytest.raises(BadRequest, match="cannot be paused"):
        await job_queues.update(admin, "backgroundTask", True, job_queue)
    running = await metadata_task(user, status="started")
    await job_queue.enqueue(processing.METADATA_JOB, running["id"], running["job_id"])
    await job_queue.pool.set(in_progress_key_prefix + running["job_id"], b"1")
    try:
        with pytest.raises(BadRequest, match="already running"):
            await job_queues.start(admin, META, False, job_queue)
    finally:
        await job_queue.pool.delete(in_progress_key_prefix + running["job_id"])
        await job_queue.pool.zrem(default_queue_name, running["job_id"])


async def test_storage_template_migration_is_queued_under_its_queue(admin, job_queue):
    await job_queues.start(admin, "storageTemplateMigration", True, job_queue)
    try:
        status = await job_queues.get_queue(admin, "storageTemplateMigration", job_queue)
        assert status.statistics.waiting == 1
        assert [j.name for j in await job_queues.list_jobs(admin, "storageTemplateMigration", [], job_queue)] == [
            "StorageTemplateMigration"]
    finally:
        await job_queues.empty(admin, "storageTemplateMigration", job_queue)


async def test_only_an_administrator_reaches_the_queues(user, job_queue):
    member = f.principal_for(user)
    for call in (job_queues.list_queues(member, job_queue), job_queues.pause(member, META),
                 job_queues.start(member, META, True, job_queue), job_queues.empty(member, META, job_queue),
                 job_queues.create_manual_job(member, "person-cleanup", job_queue)):
        with pytest.raises(Forbidden):
            await call


async def test_person_cleanup_removes_people_without_faces(user, admin, job_queue):
    lonely = await f.new_person(user)
    kept = await f.new_person(user)
    await f.new_face(await f.new_asset(user), person=kept)
    await job_queues.create_manual_job(admin, "person-cleanup", job_queue)
    assert "background:person-cleanup" in await queued_ids(job_queue)
    assert (await stats(admin, job_queue, "backgroundTask")).waiting >= 1
    await job_queue.remove(["background:person-cleanup"])
    assert await job_queues.run_manual_job("person-cleanup", None) >= 1
    left = {r["id"] for r in await db.fetch("SELECT id FROM people WHERE id = ANY($1::uuid[])",
                                            [lonely["id"], kept["id"]])}
    assert left == {kept["id"]}
    assert await db.fetchval("SELECT count(*) FROM events WHERE entity_id = $1 AND event_type = 'person_deleted'",
                             lonely["id"]) == 1
    with pytest.raises(BadRequest, match="backups"):
        await job_queues.create_manual_job(admin, "backup-database", job_queue)


async def test_the_worker_limits_each_queue_and_honours_pauses(admin, job_queue):
    gates = QueueGates()
    limit = await job_queues.concurrency("faceDetection")
    now = peak = 0

    async def job() -> bool:
        nonlocal now, peak
        async with gates.slot("faceDetection") as allowed:
            if allowed:
                now += 1
                peak = max(peak, now)
                await asyncio.sleep(0.05)
                now -= 1
            return allowed

    assert all(await asyncio.gather(*(job() for _ in range(limit * 3))))
    assert peak == limit
    async with paused(admin, job_queue, "faceDetection"):
        gates._read_at = float("-inf")  # as after QUEUE_STATE_TTL_S
        assert await job() is False


async def test_a_queues_concurrency_follows_the_system_config(admin, job_queue):
    from app.domain import system_config

    assert await job_queues.concurrency("thumbnailGeneration") == 3  # Immich's default
    assert await job_queues.concurrency("facialRecognition") == 1
    await db.execute("INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     system_config.KEY, '{"job": {"thumbnailGeneration": {"concurrency": 7}}}')
    try:
        system_config.invalidate()
        assert await job_queues.concurrency("thumbnailGeneration") == 7
    finally:
        await db.execute("DELETE FROM system_metadata WHERE key = $1", system_config.KEY)
        system_config.invalidate()


async def test_a_rerun_step_is_told_apart_from_the_first_pass(user):
    from app.domain.processing import step_subject

    asset = await f.new_asset(user)
    first = await f.new_task(asset, "metadata_extract", status="success")
    assert (await step_subject(first["id"])).first_pass  # nothing after it yet: it chains on
    await f.new_task(asset, "thumbnail_generation", status="success")
    rerun = await f.new_task(asset, "metadata_extract")
    assert not (await step_subject(rerun["id"])).first_pass  # an administrator's start: this step alone
    variants = await f.new_task(asset, "thumbnail_generation")
    assert (await step_subject(variants["id"])).first_pass  # no face detection yet: it chains on


async def test_the_sweep_leaves_a_paused_queues_tasks_for_resume(user, admin, job_queue):
    from types import SimpleNamespace

    from app.jobs.worker import requeue_stalled_tasks

    task = await metadata_task(user)
    await db.execute("UPDATE tasks SET created_at = now() - interval '1 hour' WHERE id = $1", task["id"])
    ctx = {"shared": SimpleNamespace(queue=job_queue), "gates": QueueGates()}
    try:
        async with paused(admin, job_queue):
            await requeue_stalled_tasks(ctx)
            assert task["job_id"] not in await queued_ids(job_queue)
            assert (await db.fetchrow("SELECT status FROM tasks WHERE id = $1", task["id"]))["status"] == "pending"
    finally:
        await job_queues.empty(admin, META, job_queue)


async def test_many_jobs_enqueue_in_batches_as_arq_would_and_skip_the_queued(job_queue):
    from arq.jobs import Job, JobStatus

    ids = [uuid.uuid4() for _ in range(5)]
    jobs = [(processing.METADATA_JOB, task_id, f"metadata_extract:{task_id}") for task_id in ids]
    try:
        assert await job_queue.enqueue(*jobs[0]) is None  # one already queued the usual way
        assert await job_queue.enqueue_many(jobs, batch=2) == 4
        assert {job_id for _, _, job_id in jobs} <= await queued_ids(job_queue)
        info = await Job(jobs[3][2], job_queue.pool).info()  # what a worker would read back
        assert info.function == processing.METADATA_JOB and info.args == (str(ids[3]),)
        assert await Job(jobs[3][2], job_queue.pool).status() == JobStatus.queued
        assert await job_queue.enqueue_many(jobs) == 0
    finally:
        await job_queue.remove([job_id for _, _, job_id in jobs])
