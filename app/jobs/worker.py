"""The arq worker: job functions and how to build a worker for this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

from arq import Retry, cron
from arq.connections import RedisSettings
from arq.worker import Worker, func

from app.api.state import Shared
from app.db import engine as db
from app.domain import (external_libraries, job_queues, library_scan, maintenance, memories, processing, recognition,
                        smart_search, storage_moves, system_config, tasks, users)
from app.jobs import library_watch

log = logging.getLogger(__name__)

MAX_TRIES = 5
# Pending this long: the job may never have reached the queue (enqueueing again is a no-op
# while it is queued, so this can be short).
STALLED_AFTER_S = 10
# Pending this long while no live worker runs the same step of the same asset: the job's
# arq in-progress mark may be left by a worker killed between taking the job and claiming the task.
ORPHANED_AFTER_S = 60
HEARTBEAT_S = 5
# How often a job waiting for its queue's slot looks again for a new limit or a pause.
QUEUE_STATE_TTL_S = 1.0


class QueueGates:
    """Immich's per-queue pause and concurrency inside one worker (arq's max_jobs is global).

    A job of a paused queue ends without running (its task stays pending for resume); otherwise
    it waits for one of its queue's slots. Pauses are read for every job (one primary-key read), so
    a pause holds from the moment it is answered; limits come from the system config (cached for a
    second), so a change takes effect without a restart.
    """

    def __init__(self) -> None:
        self.running: Counter[str] = Counter()
        self.changed = asyncio.Condition()

    async def paused(self) -> set[str]:
        return await job_queues.paused_queues()

    @contextlib.asynccontextmanager
    async def slot(self, queue: str):
        """Yields whether the job may run: False when its queue is paused."""
        while True:
            if queue in await self.paused():
                yield False
                return
            limit = await job_queues.concurrency(queue)
            async with self.changed:
                if self.running[queue] < limit:
                    self.running[queue] += 1
                    break
                # Woken by a finished job, or after a while to see a new limit or a pause.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), QUEUE_STATE_TTL_S)
        try:
            yield True
        finally:
            async with self.changed:
                self.running[queue] -= 1
                self.changed.notify_all()


async def _gated(ctx: dict, queue: str, run) -> str:
    async with ctx["gates"].slot(queue) as allowed:
        if not allowed:
            return "paused"
        return await run()


async def _run_step(ctx: dict, task_id: str, step, attempt: int | None = None) -> str:
    """attempt: the step's own try; by default the arq job's (a step run inline is on its first)."""
    attempt = attempt or ctx.get("job_try", 1)
    # The claim in tasks.start records this worker, so the sweep knows whom to ask after a crash.
    tasks.WORKER.set(tasks.claimant(ctx.get("worker_id"), ctx.get("job_id")))
    try:
        return await step(uuid.UUID(task_id), attempt)
    except asyncio.CancelledError:
        # Shutdown, or arq's job timeout (which arq does not retry): hand the task back so the
        # sweep runs it again, as many times as tasks.MAX_ATTEMPTS allows, instead of leaving
        # it held by this live worker forever.
        try:
            await tasks.hand_back(uuid.UUID(task_id))
        except Exception:
            log.warning("could not hand back task %s", task_id)
        raise
    except Exception as exc:
        if processing.is_transient(exc) and attempt < MAX_TRIES:
            await tasks.note_retry(uuid.UUID(task_id), f"attempt {attempt}: {exc}")
            raise Retry(defer=min(60, 2**attempt)) from exc
        # A bug or a permanent problem: record it on this task and keep the worker going.
        log.exception("task %s failed", task_id)
        await tasks.finish(uuid.UUID(task_id), ok=False, error=f"{type(exc).__name__}: {exc}"[:2000])
        return "failed"


class HeldSteps:
    """The job queue as a pipeline step sees it, except that the jobs of the following steps are
    held back: the job that ran the step runs them next itself (see _run_chain). Everything else
    goes to the real queue."""

    def __init__(self, queue, functions) -> None:
        self._queue = queue
        self._functions = frozenset(functions)
        self.held: list[tuple[str, uuid.UUID, str]] = []

    async def enqueue(self, function: str, task_id: uuid.UUID, job_id: str) -> None:
        if function in self._functions:
            self.held.append((function, task_id, job_id))
        elif self._queue is not None:
            await self._queue.enqueue(function, task_id, job_id)

    def __getattr__(self, name: str):
        return getattr(self._queue, name)


async def _metadata(ctx: dict, task_id: uuid.UUID, attempt: int, queue) -> str:
    return await processing.run_metadata(ctx["shared"].store, task_id, queue, attempt)


async def _variants(ctx: dict, task_id: uuid.UUID, attempt: int, queue) -> str:
    return await processing.run_variants(ctx["shared"].store, task_id, attempt, queue,
                                         settings=ctx["shared"].settings)


async def _faces(ctx: dict, task_id: uuid.UUID, attempt: int, queue) -> str:
    return await recognition.run_detection(ctx["shared"].settings, ctx["shared"].store, task_id, queue, attempt)


async def _clip(ctx: dict, task_id: uuid.UUID, attempt: int, queue) -> str:
    return await smart_search.run_encoding(ctx["shared"].settings, ctx["shared"].store, task_id, queue, attempt)


# A pipeline step's job function -> its Immich queue and its body.
_STEPS = {
    processing.METADATA_JOB: ("metadataExtraction", _metadata),
    processing.VARIANTS_JOB: ("thumbnailGeneration", _variants),
    recognition.DETECT_JOB: ("faceDetection", _faces),
    smart_search.ENCODE_JOB: ("smartSearch", _clip),
}


async def _run_chain(ctx: dict, function: str, task_id: str, attempt: int | None = None) -> str:
    """One pipeline step, then, in the same job, the steps it started (each under its own queue's
    gate, each with its own task row and outcome). Many small photos spent most of their time
    between steps (a queue round trip and a poll per step) rather than in them.

    Crash safety is the tasks': a following step's task commits (pending) with the end of the step
    before it, so a crash before it runs here leaves a pending task without a job, which the
    stalled-task sweep enqueues; a crash while it runs leaves it started by a gone worker, which
    the sweep reclaims, as for any job."""
    queue_name, body = _STEPS[function]
    following = HeldSteps(ctx["shared"].queue, _STEPS)
    with db.step_plans():
        outcome = await _gated(ctx, queue_name, lambda: _run_step(
            ctx, task_id, lambda t, a: body(ctx, t, a, following), attempt))
        for next_function, next_task, job_id in following.held:
            await _run_following(ctx, next_function, next_task, job_id)
    return outcome


async def _run_following(ctx: dict, function: str, task_id: uuid.UUID, job_id: str) -> None:
    queue = ctx["shared"].queue
    try:
        await _run_chain(ctx, function, str(task_id), attempt=1)
        return
    except Retry as retry:
        # Retrying is the step's own business: its own job, after the delay, not this job again.
        defer_s = (retry.defer_score or 0) / 1000
    except asyncio.CancelledError:
        raise  # its task was handed back (or is still pending): the sweep runs it
    except Exception:
        log.exception("running %s for task %s here failed; queueing it", function, task_id)
        defer_s = 0
        try:  # left started by this job when recording the failure failed too: the new job must find it pending
            await tasks.hand_back(task_id)
        except Exception:
            log.warning("could not hand back task %s", task_id, exc_info=True)
    if queue is None:
        return
    try:
        await queue.enqueue(function, task_id, job_id, defer_s=defer_s)
    except Exception:  # still pending in the database: the stalled-task sweep enqueues it
        log.warning("could not enqueue %s for task %s; the sweep will", function, task_id, exc_info=True)


async def extract_metadata(ctx: dict, task_id: str) -> str:
    return await _run_chain(ctx, processing.METADATA_JOB, task_id)


async def generate_variants(ctx: dict, task_id: str) -> str:
    return await _run_chain(ctx, processing.VARIANTS_JOB, task_id)


async def detect_faces(ctx: dict, task_id: str) -> str:
    return await _run_chain(ctx, recognition.DETECT_JOB, task_id)


async def encode_clip(ctx: dict, task_id: str) -> str:
    return await _run_chain(ctx, smart_search.ENCODE_JOB, task_id)


async def _cluster(ctx: dict, library_id: str) -> str:
    shared: Shared = ctx["shared"]
    try:
        return await recognition.run_clustering(shared.settings, uuid.UUID(library_id))
    except Exception:
        # The faces stay pending; the sweep below starts the library again.
        log.exception("clustering library %s failed", library_id)
        return "failed"


async def cluster_faces(ctx: dict, library_id: str) -> str:
    return await _gated(ctx, "facialRecognition", lambda: _cluster(ctx, library_id))


async def run_manual_job(ctx: dict, job_name: str) -> str:
    """A job an administrator created (POST /api/jobs)."""

    async def run() -> str:
        done = await job_queues.run_manual_job(job_name, ctx["shared"].store)
        log.info("manual job %s: %d removed", job_name, done)
        return "ok"

    return await _gated(ctx, "backgroundTask", run)


async def sweep_pending_faces(ctx: dict) -> int:
    """Libraries with faces no clustering run has looked at (a run was busy when they arrived)."""
    shared: Shared = ctx["shared"]
    if "facialRecognition" in await ctx["gates"].paused():
        return 0  # resume enqueues them
    libraries = await recognition.libraries_with_pending_faces(older_than_s=20)
    for library_id in libraries:
        await recognition.enqueue_clustering(shared.queue, library_id)
    return len(libraries)


async def storage_template_migration(ctx: dict) -> str:
    """Immich's storageTemplateMigration job: every original to where the template puts it."""
    shared: Shared = ctx["shared"]

    async def run() -> str:
        moved = await storage_moves.migrate_all(shared.store)
        log.info("storage template migration moved %d originals", moved)
        return "ok"

    return await _gated(ctx, "storageTemplateMigration", run)


async def purge_expired_trash(ctx: dict) -> int:
    """Hard-delete assets that have sat in the trash longer than the system config's trash.days;
    with the trash switched off nothing waits there (Immich's rule)."""
    shared: Shared = ctx["shared"]
    trash = (await system_config.current())["trash"]
    kept_for = timedelta(days=trash["days"] if trash["enabled"] else 0)
    removed = await maintenance.purge_trash_older_than(shared.store, kept_for)
    if removed:
        log.info("purged %d assets past the trash retention window", removed)
    return removed


async def prune_list_walks(ctx: dict) -> int:
    """Forget asset-list walks older than a day and the sort-key history they needed."""
    return await maintenance.prune_list_walks()


async def remove_deleted_users(ctx: dict) -> int:
    """Remove accounts deleted longer ago than Immich's user delete delay, and those whose removal
    an administrator forced (queued at once by the delete; this cron finishes any a crash cut short)."""
    shared: Shared = ctx["shared"]
    delay = (await system_config.current())["user"]["deleteDelay"]
    removed = await users.remove_deleted_users(shared.store, delay)
    if removed:
        log.info("removed %d deleted accounts", removed)
    return removed


async def library_delete(ctx: dict, external_library_id: str | None = None) -> int:
    """The assets of a deleted external library, then the library (app.domain.external_libraries);
    as a cron, of every deleted one a crash or a full queue left behind."""
    shared: Shared = ctx["shared"]
    only = None if external_library_id is None else uuid.UUID(external_library_id)
    return await external_libraries.remove_deleted(shared.store, only)


async def memories_daily(ctx: dict) -> str:
    """Immich's nightly MemoryCleanup then MemoryGenerate (app.domain.memories): the days of the
    window the job has not done yet get their "on this day" memories."""

    async def run() -> str:
        unlinked, removed = await memories.cleanup()
        made = await memories.generate()
        log.info("memories: %d made, %d removed, %d photos unlinked", made, removed, unlinked)
        return "ok"

    return await _gated(ctx, "backgroundTask", run)


async def scan_library(ctx: dict, external_library_id: str) -> str:
    """Immich's library scan of one external library (app/domain/library_scan.py)."""
    shared: Shared = ctx["shared"]

    async def run() -> str:
        summary = await library_scan.scan(uuid.UUID(external_library_id), shared.queue)
        log.info("library %s scanned: %s", external_library_id, summary.as_dict())
        return "ok"

    return await _gated(ctx, "library", run)


async def nightly_library_scan(ctx: dict) -> int:
    """Every minute: when the system config's library.scan cron expression names this minute, a
    scan of every external library (Immich's LibraryQueueScanAll)."""
    shared: Shared = ctx["shared"]
    config = (await system_config.current())["library"]["scan"]
    if shared.queue is None or not config["enabled"] or not cron_due(config["cronExpression"]):
        return 0
    return await library_scan.enqueue_all(shared.queue)


def cron_due(expression: str, now: datetime | None = None) -> bool:
    """Whether a 5-field cron expression (minute hour day month weekday; *, lists, ranges, steps;
    a leading seconds field is ignored) names the current UTC minute."""
    now = now or datetime.now(timezone.utc)
    fields = expression.split()
    if len(fields) == 6:
        fields = fields[1:]
    if len(fields) != 5:
        return False
    values = (now.minute, now.hour, now.day, now.month, now.isoweekday() % 7)
    bounds = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
    try:
        return all(_cron_field(f, v, lo, hi) for f, v, (lo, hi) in zip(fields, values, bounds))
    except (ValueError, ZeroDivisionError):  # a malformed field or a step of 0 names no minute
        return False


def _cron_field(field: str, value: int, lo: int, hi: int) -> bool:
    for part in field.split(","):
        base, _, step = part.partition("/")
        first, last = (lo, hi) if base == "*" else (int(base.split("-")[0]), int(base.split("-")[-1]))
        if "/" in part and "-" not in base and base != "*":
            last = hi
        if hi == 7 and value == 0 and first <= 7 <= last and (7 - first) % int(step or 1) == 0:
            return True  # Sunday is 0 or 7
        if first <= value <= last and (value - first) % int(step or 1) == 0:
            return True
    return False


_STEP_FOR_TYPE = {
    **{t: processing.METADATA_JOB for t in tasks.METADATA.values()},
    **{t: processing.VARIANTS_JOB for t in tasks.VARIANTS.values()},
    recognition.DETECTION_TASK: recognition.DETECT_JOB,
    smart_search.ENCODE_TASK: smart_search.ENCODE_JOB,
}


async def requeue_stalled_tasks(ctx: dict) -> int:
    """Tasks nobody will run unless told: started by a worker that is gone (a crash), or
    pending with no job in the queue (Redis down at upload time, a lost race, a crash)."""
    shared: Shared = ctx["shared"]
    if shared.queue is None:
        return 0
    count = 0
    # A paused queue's tasks stay pending without a job until resume enqueues them.
    paused = job_queues.paused_task_types(await ctx["gates"].paused())
    await tasks.forget_old_workers()
    for task in await tasks.reclaim_interrupted():
        function = _STEP_FOR_TYPE.get(task["task_type"])
        if task["status"] != "pending" or function is None:
            log.warning("task %s (%s) ended: %s", task["id"], task["task_type"], task["error_message"])
            continue
        if task["task_type"] in paused:
            continue
        # The dead worker's job may still sit in the queue, marked in progress for an hour:
        # unmark it so any worker takes it now (or enqueue it again if Redis lost it).
        log.info("task %s (%s) was interrupted; running it again", task["id"], task["task_type"])
        await shared.queue.release(task["job_id"])
        await shared.queue.enqueue(function, task["id"], task["job_id"])
        count += 1
    for task in await tasks.stalled(STALLED_AFTER_S, ORPHANED_AFTER_S, exclude_types=paused):
        function = _STEP_FOR_TYPE.get(task["task_type"])
        if function is None:
            continue
        if task["orphaned"]:
            await shared.queue.release(task["job_id"])
        await shared.queue.enqueue(function, task["id"], task["job_id"])
        count += 1
    return count


async def _heartbeat(worker_id: str) -> None:
    host, pid = socket.gethostname(), os.getpid()
    while True:
        try:
            await tasks.beat(worker_id, host, pid)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database is away for a moment; the next beat may reach it
            log.warning("worker heartbeat failed", exc_info=True)
        await asyncio.sleep(HEARTBEAT_S)


async def _on_startup(ctx: dict) -> None:
    # Registered before the first job is taken: a task this worker claims always names a
    # worker row the sweep can judge.
    await tasks.beat(ctx["worker_id"], socket.gethostname(), os.getpid())
    ctx["heartbeat"] = asyncio.create_task(_heartbeat(ctx["worker_id"]), name="worker heartbeat")
    # Every worker runs it; only the one holding its advisory lock watches (see library_watch).
    ctx["library_watch"] = asyncio.create_task(library_watch.run(ctx["shared"].queue), name="library watch")


async def stop_heartbeat(worker: Worker) -> None:
    """After the worker stopped: no more beats, and the row goes, so another worker takes
    over the jobs this one cancelled without waiting for the row to go stale."""
    watch = worker.ctx.pop("library_watch", None)
    if watch is not None:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    beat = worker.ctx.pop("heartbeat", None)
    if beat is None:
        return
    beat.cancel()
    await asyncio.gather(beat, return_exceptions=True)
    try:
        await tasks.retire(worker.ctx["worker_id"])
    except Exception:
        log.warning("could not retire worker %s; its row goes stale instead", worker.ctx["worker_id"])


async def detect_duplicates(ctx: dict, owner_id: str) -> str:
    """Immich's duplicate detection for one owner's assets (app/domain/duplicates.py)."""
    from app.domain import duplicates

    async def run() -> str:
        found = await duplicates.detect(uuid.UUID(owner_id))
        if found is None:
            return "skipped"
        log.info("duplicates of %s: %s", owner_id, found)
        return "ok"

    return await _gated(ctx, "duplicateDetection", run)


async def sweep_unchecked_duplicates(ctx: dict) -> int:
    """Queues detection for owners with embeddings it has not looked at (app/domain/duplicates.py)."""
    from app.domain import duplicates

    shared: Shared = ctx["shared"]
    owners = await duplicates.owners_unchecked()
    for owner_id in owners:
        await shared.queue.enqueue_plain(duplicates.JOB, str(owner_id), job_id=duplicates.job_id(owner_id))
    return len(owners)


FUNCTIONS = [
    func(extract_metadata, keep_result=0, max_tries=MAX_TRIES),
    func(generate_variants, keep_result=0, max_tries=MAX_TRIES),
    func(detect_faces, keep_result=0, max_tries=MAX_TRIES),
    func(encode_clip, keep_result=0, max_tries=MAX_TRIES),
    func(cluster_faces, keep_result=0, max_tries=1),
    func(run_manual_job, keep_result=0, max_tries=1),
    func(sweep_pending_faces, keep_result=0),
    func(purge_expired_trash, keep_result=0),
    func(prune_list_walks, keep_result=0),
    func(requeue_stalled_tasks, keep_result=0),
    # Walks every asset: far longer than arq's default timeout on a large library.
    func(storage_template_migration, keep_result=0, max_tries=1, timeout=24 * 3600),
    func(remove_deleted_users, keep_result=0),
    func(library_delete, keep_result=0, timeout=24 * 3600),
    # A large tree takes a while to walk; one scan per library at a time (its job id).
    func(scan_library, name=library_scan.SCAN_JOB, keep_result=0, max_tries=1, timeout=24 * 3600),
    func(nightly_library_scan, keep_result=0),
    func(detect_duplicates, keep_result=0, max_tries=1, timeout=3600),
    func(sweep_unchecked_duplicates, keep_result=0),
]
CRON_JOBS = [
    cron(purge_expired_trash, minute=17, unique=True, run_at_startup=True, keep_result=0),
    cron(prune_list_walks, minute={7, 37}, unique=True, run_at_startup=True, keep_result=0),
    # Often, and at start: a job interrupted by a crash runs again within a minute of restart.
    cron(requeue_stalled_tasks, second={5, 15, 25, 35, 45, 55}, unique=True, run_at_startup=True, keep_result=0),
    cron(sweep_pending_faces, second={0, 20, 40}, unique=True, run_at_startup=True, keep_result=0),
    cron(sweep_unchecked_duplicates, second={10, 40}, unique=True, run_at_startup=True, keep_result=0),
    cron(remove_deleted_users, minute=47, unique=True, run_at_startup=True, keep_result=0),
    cron(library_delete, minute=53, unique=True, run_at_startup=True, keep_result=0),
    # Days are UTC days: just after midnight UTC, and at start for a server that was down then.
    cron(memories_daily, hour=0, minute=5, unique=True, run_at_startup=True, keep_result=0),
    # The schedule itself is the system config's (checked each minute, so a change applies at once).
    cron(nightly_library_scan, second=30, unique=True, keep_result=0),
]


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def build_worker(shared: Shared, redis_url: str) -> Worker:
    from app.media import memory, vips_cache

    memory.limit_arenas()
    vips_cache.disable()
    return Worker(
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS,
        redis_settings=redis_settings(redis_url),
        ctx={"shared": shared, "worker_id": uuid.uuid4().hex, "gates": QueueGates()},
        on_startup=_on_startup,
        handle_signals=False,
        max_jobs=shared.settings.worker_concurrency,
        job_timeout=3600,
        keep_result=0,
        # arq sleeps this long between queue polls; its 0.5 s default idles each job slot
        # for most of a second per pipeline step. A poll is one cheap Redis call.
        poll_delay=0.05,
    )
