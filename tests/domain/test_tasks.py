"""Background task records (app/domain/tasks.py): who may claim a task, retries, crashes and the sweeps."""

from __future__ import annotations

import contextlib
import uuid

from app.db import engine as db
from app.domain import tasks
from tests.domain import factories as f


@contextlib.contextmanager
def as_worker(worker_id: str | None):
    # Every test shares one context on the package loop: always put the previous identity back.
    token = tasks.WORKER.set(worker_id)
    try:
        yield
    finally:
        tasks.WORKER.reset(token)


async def live_worker() -> str:
    worker_id = f"worker-{uuid.uuid4().hex[:8]}"
    await tasks.beat(worker_id, "tests", 1)
    return worker_id


async def task_row(task_id):
    return await db.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)


async def new_task(user):
    return await f.new_task(await f.new_asset(user))


async def test_a_pending_task_is_claimed_once(user):
    task = await new_task(user)
    first, second = await live_worker(), await live_worker()
    with as_worker(first):
        claimed = await tasks.start(task["id"], attempt=1)
    assert (claimed["status"], claimed["worker_id"], claimed["attempts"], claimed["retry_count"]) == (
        "started", first, 1, 0)
    with as_worker(second):  # a re-delivered job while the first worker is alive and running it
        assert await tasks.start(task["id"], attempt=1) is None
    assert (await task_row(task["id"]))["worker_id"] == first


async def test_the_holding_worker_may_retry(user):
    task = await new_task(user)
    worker = await live_worker()
    with as_worker(worker):
        await tasks.start(task["id"], attempt=1)
        again = await tasks.start(task["id"], attempt=2)
    assert (again["attempts"], again["retry_count"]) == (2, 1)


async def test_a_dead_workers_task_is_taken_over(user):
    task = await new_task(user)
    dead, alive = await live_worker(), await live_worker()
    with as_worker(dead):
        await tasks.start(task["id"], attempt=1)
    await tasks.retire(dead)
    with as_worker(alive):
        taken = await tasks.start(task["id"], attempt=1)
    assert taken["worker_id"] == alive and taken["attempts"] == 2


async def test_an_ended_task_does_not_run_again(user):
    task = await new_task(user)
    with as_worker(await live_worker()):
        await tasks.start(task["id"], attempt=1)
        await tasks.finish(task["id"], ok=True, result="done", outcome="extracted")
        assert await tasks.start(task["id"], attempt=1) is None
    row = await task_row(task["id"])
    assert (row["status"], row["result"], row["outcome"]) == ("success", "done", "extracted")
    assert row["completed_at"] is not None


async def test_too_many_starts_end_the_task_as_failed(user):
    task = await f.new_task(await f.new_asset(user), attempts=tasks.MAX_ATTEMPTS, error_message="boom")
    with as_worker(await live_worker()):
        assert await tasks.start(task["id"], attempt=1) is None
    row = await task_row(task["id"])
    assert row["status"] == "failure"
    assert row["error_message"] == f"gave up after {tasks.MAX_ATTEMPTS} starts: boom"


async def test_retry_and_hand_back_make_it_pending_for_anyone(user):
    task = await new_task(user)
    worker, other = await live_worker(), await live_worker()
    with as_worker(worker):
        await tasks.start(task["id"], attempt=1)
        await tasks.note_retry(task["id"], "transient")
    row = await task_row(task["id"])
    assert (row["status"], row["worker_id"], row["error_message"]) == ("pending", None, "transient")
    with as_worker(worker):
        await tasks.start(task["id"], attempt=2)
    with as_worker(other):
        await tasks.hand_back(task["id"])  # not its task: nothing happens
    assert (await task_row(task["id"]))["worker_id"] == worker
    with as_worker(worker):
        await tasks.hand_back(task["id"])
    assert (await task_row(task["id"]))["status"] == "pending"


async def test_a_failure_keeps_the_last_error_unless_given_one(user):
    task = await new_task(user)
    with as_worker(await live_worker()):
        await tasks.start(task["id"], attempt=1)
        await tasks.note_retry(task["id"], "first try failed")
        await tasks.start(task["id"], attempt=2)
        await tasks.finish(task["id"], ok=False)
    row = await task_row(task["id"])
    assert (row["status"], row["error_message"]) == ("failure", "first try failed")


async def test_reclaiming_interrupted_tasks(user):
    asset = await f.new_asset(user)
    gone = f"gone-{uuid.uuid4().hex[:8]}"  # never heartbeated
    retry = await f.new_task(asset, "metadata_extract", status="started", worker_id=gone, attempts=1)
    exhausted = await f.new_task(asset, "thumbnail_generation", status="started", worker_id=gone,
                                 attempts=tasks.MAX_ATTEMPTS)
    old_unowned = await f.new_task(await f.new_asset(user), status="started", attempts=1,
                                   started_at=f._BASE_TIME)
    fresh_unowned = await f.new_task(await f.new_asset(user), status="started", attempts=1,
                                     started_at=await db.fetchval("SELECT now()"))
    held = await f.new_task(await f.new_asset(user), status="started", attempts=1, worker_id=await live_worker())
    reclaimed = {r["id"] for r in await tasks.reclaim_interrupted()}
    assert {retry["id"], exhausted["id"], old_unowned["id"]} <= reclaimed
    assert fresh_unowned["id"] not in reclaimed and held["id"] not in reclaimed
    # Read back rather than trusting the returned rows alone: the rows are what the sweep left.
    retry, exhausted, old_unowned, fresh_unowned, held = [
        await task_row(x["id"]) for x in (retry, exhausted, old_unowned, fresh_unowned, held)]
    assert (retry["status"], retry["worker_id"]) == ("pending", None)
    assert exhausted["status"] == "failure" and "its worker died" in exhausted["error_message"]
    assert exhausted["completed_at"] is not None and old_unowned["status"] == "pending"
    assert fresh_unowned["status"] == held["status"] == "started"


async def test_stalled_pending_tasks_and_orphans(user):
    asset = await f.new_asset(user)
    created = await db.fetchval("SELECT now() - interval '1 hour'")
    stalled_alone = await f.new_task(asset, "metadata_extract", created_at=created)
    other_asset = await f.new_asset(user)
    waiting = await f.new_task(other_asset, "metadata_extract", created_at=created)
    await f.new_task(other_asset, "metadata_extract", status="started", worker_id=await live_worker(), attempts=1)
    recent = await f.new_task(await f.new_asset(user))
    found = {r["id"]: r for r in await tasks.stalled(older_than_s=60, orphaned_after_s=600)}
    assert found[stalled_alone["id"]]["orphaned"] is True
    assert found[waiting["id"]]["orphaned"] is False  # a live worker runs the same step of that asset
    assert recent["id"] not in found


async def test_tasks_are_made_from_an_asset_row(user):
    asset = await f.new_asset(user)
    async with db.transaction() as conn:
        task_id = await tasks.create(conn, asset, tasks.METADATA["image"])
    row = await task_row(task_id)
    assert (row["asset_id"], row["library_id"], row["owner_id"]) == (asset["id"], asset["library_id"], user["id"])
    assert row["job_id"] == tasks.job_id("metadata_extract", asset["id"]) and row["status"] == "pending"


async def test_another_job_of_the_holding_worker_does_not_run_it_again(user):
    # A pipeline chain runs a step inline in one job while a job the sweep queued for the same task
    # lands in the same worker process: only the job holding the claim (and its arq retries) runs it.
    task = await new_task(user)
    worker = await live_worker()
    chain, queued = tasks.claimant(worker, "metadata_extract:x"), tasks.claimant(worker, "smart_search:x")
    with as_worker(chain):
        assert await tasks.start(task["id"], attempt=1) is not None
    with as_worker(queued):
        assert await tasks.start(task["id"], attempt=1) is None
        assert await tasks.start(task["id"], attempt=2) is None
    with as_worker(chain):
        assert (await tasks.start(task["id"], attempt=2))["attempts"] == 2
    row = await task_row(task["id"])
    assert (row["status"], row["worker_id"]) == ("started", chain)
    await tasks.retire(worker)  # the process is gone: any job takes its claims over
    with as_worker(tasks.claimant(await live_worker(), "smart_search:x")):
        assert (await tasks.start(task["id"], attempt=1))["attempts"] == 3
