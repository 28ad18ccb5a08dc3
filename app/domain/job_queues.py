"""Immich's job queues over this server's background work (arq jobs and their task rows).

Queues and what they hold here:
- metadataExtraction, thumbnailGeneration, faceDetection: the per-asset pipeline steps; a job id is
  `<task_type>:<asset_id>` and every job has a task row.
- smartSearch: the CLIP embedding step (`smart_search:<asset_id>`); starting it queues the assets
  with no embedding under the configured model (all of them with force).
- facialRecognition: clustering runs, one job per library (`face_clustering:<library_id>`).
- sidecar: sidecars are read by metadata extraction, so starting it re-reads the metadata of the
  assets that have one (those jobs are counted under metadataExtraction).
- library: a scan of every external library (app/domain/library_scan.py), one job per library
  (`library_scan:<id>`).
- backgroundTask: the trash purge, the daily memories run, and the manual jobs of POST /api/jobs
  (`background:<name>`: person cleanup, memory cleanup and memory creation).
- storageTemplateMigration: one run of the storage template over every original (`storageTemplateMigration:run`).
- Every other Immich queue has no work here: zero counts, and starting it is refused.

Counts come from arq's queue (one read of the sorted set and of the in-progress marks) and from
the task rows: a pending task not in arq's queue yet is waiting (the stalled-task sweep enqueues
it); while the queue is paused, waiting work is reported as paused. arq keeps no results
(keep_result=0) as Immich's BullMQ removes completed jobs, so `completed` is always 0.

Pausing is stored in system_metadata (so it survives restarts) and the worker honours it: a paused
queue's job ends without running, its task stays pending, and the sweep leaves it alone until
resume enqueues it again.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from app.db import engine as db
from app.domain import (access, events, library_scan, memories, people, processing, recognition, smart_search,
                        system_config, tags, tasks, users)
from app.domain.errors import BadRequest, Invalid
from app.domain.principal import Principal

# Immich 3.1's QueueName, in its order.
QUEUE_NAMES = (
    "thumbnailGeneration", "metadataExtraction", "videoConversion", "faceDetection", "facialRecognition",
    "smartSearch", "duplicateDetection", "backgroundTask", "storageTemplateMigration", "migration", "search",
    "sidecar", "library", "notifications", "backupDatabase", "ocr", "workflow", "integrityCheck", "editor",
)
STATUSES = ("active", "failed", "completed", "delayed", "waiting", "paused")
BACKGROUND_PREFIX = "background:"
STORAGE_MIGRATION_JOB = "storage_template_migration"
MANUAL_JOB = "run_manual_job"
CLEANED_UP = "cancelled"  # the outcome of a task an administrator removed from its queue


@dataclass(frozen=True)
class _Queue:
    # task rows (and arq job ids `<task_type>:...`) that belong to this queue, with the arq function
    # that runs each and Immich's JobName for it
    task_types: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    # further arq job-id prefixes (jobs without task rows), with Immich's JobName
    prefixes: dict[str, str] = field(default_factory=dict)


QUEUES: dict[str, _Queue] = {
    "metadataExtraction": _Queue({t: (processing.METADATA_JOB, "AssetExtractMetadata") for t in tasks.METADATA.values()}),
    "thumbnailGeneration": _Queue({t: (processing.VARIANTS_JOB, "AssetGenerateThumbnails")
                                   for t in tasks.VARIANTS.values()}),
    "faceDetection": _Queue({recognition.DETECTION_TASK: (recognition.DETECT_JOB, "AssetDetectFaces")}),
    "smartSearch": _Queue({smart_search.ENCODE_TASK: (smart_search.ENCODE_JOB, "SmartSearch")}),
    # A clustering run is queued by library, not by task: no function re-enqueues its rows.
    "facialRecognition": _Queue({recognition.CLUSTERING_TASK: (None, "FacialRecognitionQueueAll")}),
    "backgroundTask": _Queue(prefixes={"cron:purge_expired_trash:": "AssetDeleteCheck",
                                       "cron:memories_daily:": "MemoryGenerate", BACKGROUND_PREFIX: "PersonCleanup"}),
    "storageTemplateMigration": _Queue(prefixes={"storageTemplateMigration:": "StorageTemplateMigration"}),
}

# Queues Immich runs one job at a time, whatever the config says (they have no concurrency setting).
_SERIAL_QUEUES = ("facialRecognition", "storageTemplateMigration", "duplicateDetection", "backupDatabase")


async def concurrency(queue_name: str) -> int:
    """How many of the queue's jobs one worker runs at once: Immich's job.<queue>.concurrency
    (system_config.current() is cached for a second, so a change applies without a restart)."""
    if queue_name in _SERIAL_QUEUES:
        return 1
    setting = (await system_config.current())["job"].get(queue_name)
    return max(1, int(setting["concurrency"])) if setting else 1


# --- state: paused, and when failed jobs were last cleared --------------------------------------

_STATE_KEY = "job-queues"
_STATE_ENTITY = uuid.uuid5(uuid.NAMESPACE_URL, f"photos:system-metadata:{_STATE_KEY}")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


async def _state() -> dict[str, dict[str, Any]]:
    stored = await db.fetchval("SELECT value FROM system_metadata WHERE key = $1", _STATE_KEY)
    return (json.loads(stored) if isinstance(stored, str) else stored) or {}


async def _set_state(principal: Principal, name: str, **patch: Any) -> None:
    # Merged in SQL: two administrators changing different queues at once both stick.
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO system_metadata (key, value) VALUES ($1, jsonb_build_object($2::text, $3::jsonb))"
            " ON CONFLICT (key) DO UPDATE SET updated_at = now(), value = system_metadata.value"
            " || jsonb_build_object($2::text, coalesce(system_metadata.value -> $2, '{}'::jsonb) || $3::jsonb)",
            _STATE_KEY, name, json.dumps(patch),
        )
        await events.record(conn, entity_type="system_metadata", entity_id=_STATE_ENTITY,
                            event_type="system_metadata_set", library_id=None, owner_id=principal.user_id,
                            payload={"key": _STATE_KEY, "queue": name, **patch})


async def paused_queues() -> set[str]:
    return {name for name, value in (await _state()).items() if value.get("isPaused")}


def paused_task_types(paused: set[str]) -> list[str]:
    return [t for name in paused for t in QUEUES.get(name, _Queue()).task_types]


# --- counts --------------------------------------------------------------------------------------


@dataclass
class Statistics:
    active: int = 0
    completed: int = 0
    delayed: int = 0
    failed: int = 0
    paused: int = 0
    waiting: int = 0


@dataclass(frozen=True)
class QueueStatus:
    name: str
    is_paused: bool
    statistics: Statistics


def _queue_of_job(job_id: str) -> str | None:
    for name, queue in QUEUES.items():
        if any(job_id.startswith(f"{t}:") for t in queue.task_types) or any(
                job_id.startswith(p) for p in queue.prefixes):
            return name
    return None


async def _statuses(job_queue) -> dict[str, QueueStatus]:
    state = await _state()
    snapshot = await job_queue.snapshot() if job_queue is not None else []
    stats = {name: Statistics() for name in QUEUE_NAMES}
    queued = set()
    for job in snapshot:
        name = _queue_of_job(job.job_id)
        if name is None:
            continue  # the server's own housekeeping (sweeps), which no Immich queue shows
        queued.add(job.job_id)
        s = stats[name]
        if job.running:
            s.active += 1
        elif job.delayed:
            s.delayed += 1
        else:
            s.waiting += 1
    type_queue = {t: name for name, q in QUEUES.items() for t in q.task_types}
    # Pending rows arq does not hold: the sweep enqueues them, or a paused worker put them aside.
    for row in await db.fetch("SELECT task_type, job_id FROM tasks WHERE status = 'pending'"
                              " AND task_type = ANY($1::text[])", list(type_queue)):
        if row["job_id"] not in queued:
            stats[type_queue[row["task_type"]]].waiting += 1
    since = [_cleared_at(state, type_queue[t]) for t in type_queue]
    for row in await db.fetch(
        "SELECT c.task_type, (SELECT count(*) FROM tasks t WHERE t.status = 'failure' AND t.task_type = c.task_type"
        " AND t.completed_at > c.since AND t.outcome IS DISTINCT FROM $3) AS failed"
        " FROM unnest($1::text[], $2::timestamptz[]) AS c(task_type, since)",
        list(type_queue), since, CLEANED_UP,
    ):
        stats[type_queue[row["task_type"]]].failed += row["failed"]
    out = {}
    for name in QUEUE_NAMES:
        is_paused = bool(state.get(name, {}).get("isPaused"))
        s = stats[name]
        if is_paused:
            s.paused, s.waiting = s.waiting, 0
        out[name] = QueueStatus(name, is_paused, s)
    return out


def _cleared_at(state: dict, name: str) -> datetime:
    value = state.get(name, {}).get("failedClearedAt")
    return datetime.fromisoformat(value) if value else _EPOCH


async def list_queues(principal: Principal, job_queue) -> list[QueueStatus]:
    principal.require_admin()
    return list((await _statuses(job_queue)).values())


async def get_queue(principal: Principal, name: str, job_queue) -> QueueStatus:
    principal.require_admin()
    return (await _statuses(job_queue))[name]


# --- commands ------------------------------------------------------------------------------------


async def command(principal: Principal, name: str, command_name: str, force: bool, job_queue) -> QueueStatus:
    """Immich's PUT /api/jobs/{name}: start, pause, resume, empty or clear-failed; the queue after it."""
    principal.require_admin()
    if command_name == "start":
        await start(principal, name, force, job_queue)
    elif command_name == "pause":
        await pause(principal, name)
    elif command_name == "resume":
        await resume(principal, name, job_queue)
    elif command_name == "empty":
        await empty(principal, name, job_queue)
    elif command_name == "clear-failed":
        await clear_failed(principal, name)
    return await get_queue(principal, name, job_queue)


async def update(principal: Principal, name: str, is_paused: bool | None, job_queue) -> QueueStatus:
    """Immich's PUT /api/queues/{name}."""
    principal.require_admin()
    if is_paused is True:
        if name == "backgroundTask":
            raise BadRequest("The BackgroundTask queue cannot be paused")
        await pause(principal, name)
    elif is_paused is False:
        await resume(principal, name, job_queue)
    return await get_queue(principal, name, job_queue)


async def pause(principal: Principal, name: str) -> None:
    principal.require_admin()
    await _set_state(principal, name, isPaused=True)


async def resume(principal: Principal, name: str, job_queue) -> None:
    """Unpause, and hand the queue's put-aside work to arq now rather than at the next sweep."""
    principal.require_admin()
    await _set_state(principal, name, isPaused=False)
    if job_queue is None:
        return
    queue = QUEUES.get(name, _Queue())
    steps = {t: fn for t, (fn, _) in queue.task_types.items() if fn is not None}
    if steps:
        rows = await db.fetch("SELECT id, task_type, job_id FROM tasks WHERE status = 'pending'"
                              " AND task_type = ANY($1::text[]) ORDER BY created_at", list(steps))
        await job_queue.enqueue_many([(steps[r["task_type"]], r["id"], r["job_id"]) for r in rows])
    if name == "facialRecognition":
        for library_id in await recognition.libraries_with_pending_faces(older_than_s=0):
            await recognition.enqueue_clustering(job_queue, library_id)


async def clear_failed(principal: Principal, name: str) -> None:
    """Failed jobs stop counting; their task rows keep their error (GET /api/tasks shows them)."""
    principal.require_admin()
    await _set_state(principal, name, failedClearedAt=datetime.now(timezone.utc).isoformat())


async def empty(principal: Principal, name: str, job_queue, *, failed: bool = False) -> None:
    """Remove the queue's waiting and delayed jobs. Their tasks end first (outcome 'cancelled'),
    so a job a worker took a moment ago does nothing and the stalled-task sweep never re-enqueues them."""
    principal.require_admin()
    queue = QUEUES.get(name, _Queue())
    if queue.task_types:
        await db.execute(
            "UPDATE tasks SET status = 'failure', outcome = $2, completed_at = now(), worker_id = NULL,"
            " error_message = 'removed from its queue by an administrator'"
            " WHERE status = 'pending' AND task_type = ANY($1::text[])",
            list(queue.task_types), CLEANED_UP,
        )
    if job_queue is not None:
        waiting = [j.job_id for j in await job_queue.snapshot() if not j.running and _queue_of_job(j.job_id) == name]
        await job_queue.remove(waiting)
    if failed:
        await clear_failed(principal, name)


async def start(principal: Principal, name: str, force: bool, job_queue) -> None:
    principal.require_admin()
    if (await _statuses(job_queue))[name].statistics.active:
        raise BadRequest("Job is already running")
    if job_queue is None:
        raise BadRequest("Jobs cannot be queued: this server runs without Redis")
    if name == "metadataExtraction":
        await _start_step(job_queue, name, tasks.METADATA, force)
    elif name == "sidecar":
        await _start_step(job_queue, "metadataExtraction", tasks.METADATA, force,
                          "EXISTS (SELECT 1 FROM asset_files s WHERE s.asset_id = a.id AND s.kind = 'sidecar')")
    elif name == "thumbnailGeneration":
        await _start_step(job_queue, name, tasks.VARIANTS, force)
    elif name == "faceDetection":
        kinds = {"image": recognition.DETECTION_TASK, "video": recognition.DETECTION_TASK}
        await _start_step(job_queue, name, kinds, force, "a.visibility <> 'hidden'")
    elif name == "smartSearch":
        await _start_smart_search(job_queue, force)
    elif name == "facialRecognition":
        await _start_clustering(job_queue, force)
    elif name == "library":
        await library_scan.enqueue_all(job_queue)
    elif name == "storageTemplateMigration":
        # Immich's migration has no force: it always looks at every original.
        await job_queue.enqueue_plain(STORAGE_MIGRATION_JOB, job_id=f"{name}:run")
    elif name == "duplicateDetection":
        await _start_duplicate_detection(job_queue)
    elif name == "backgroundTask":
        raise BadRequest(f"Invalid job name: {name}")  # Immich's answer: it has no start
    else:
        raise BadRequest(f"The {name} queue has no work on this server, so it cannot be started")


async def _start_step(job_queue, queue_name: str, types: dict[str, str], force: bool, where: str = "true",
                      asset_ids: list[uuid.UUID] | None = None) -> int:
    """Task rows for every live asset (or those of `asset_ids`), all of them (force) or those without
    a successful run of the step, minus those already pending or running it; then their jobs. Each
    runs its step alone: the worker chains on to the next step only on an asset's first pass through
    the pipeline."""
    rows = await db.fetch(
        f"""
        INSERT INTO tasks (owner_id, library_id, asset_id, task_type, job_id)
        SELECT a.owner_id, a.library_id, a.id, k.task_type, k.task_type || ':' || a.id
        FROM assets a JOIN unnest($1::text[], $2::text[]) AS k(media_type, task_type) ON k.media_type = a.media_type
        WHERE a.trashed_at IS NULL AND {where} AND ($4::uuid[] IS NULL OR a.id = ANY($4::uuid[]))
          AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.task_type = k.task_type AND t.asset_id = a.id
                          AND t.status IN ('pending', 'started'))
          AND ($3 OR NOT EXISTS (SELECT 1 FROM tasks t WHERE t.asset_id = a.id AND t.task_type = k.task_type
                                 AND t.status = 'success'))
        RETURNING id, job_id, task_type
        """,
        list(types), list(types.values()), force, asset_ids,
    )
    if queue_name not in await paused_queues():  # else resume enqueues them
        functions = QUEUES[queue_name].task_types
        await job_queue.enqueue_many([(functions[r["task_type"]][0], r["id"], r["job_id"]) for r in rows])
    return len(rows)


async def _start_smart_search(job_queue, force: bool) -> int:
    """Every shown asset (force), else those with no embedding under the configured model: a
    finished task is not enough, as a run without the model ends as skipped."""
    model = (await smart_search.config()).model
    where = "a.visibility <> 'hidden'"
    if not force:
        quoted = "'" + model.replace("'", "''") + "'"  # _start_step takes SQL text: the name as a literal
        where += f" AND NOT EXISTS (SELECT 1 FROM smart_search s WHERE s.asset_id = a.id AND s.model = {quoted})"
    kinds = {"image": smart_search.ENCODE_TASK, "video": smart_search.ENCODE_TASK}
    return await _start_step(job_queue, "smartSearch", kinds, True, where)


# What one asset's jobs run (Immich's asset jobs): its queue, its step per media type, and which assets.
ASSET_STEPS = {
    "metadata": ("metadataExtraction", tasks.METADATA, "true"),
    "thumbnails": ("thumbnailGeneration", tasks.VARIANTS, "true"),
    "faces": ("faceDetection", {"image": recognition.DETECTION_TASK, "video": recognition.DETECTION_TASK},
              "a.visibility <> 'hidden'"),
}


async def run_for_assets(job_queue, step: str, asset_ids: list[uuid.UUID]) -> int:
    """Runs one step again for these assets (their access already checked); an asset with the step
    pending or running is left to that run. The number of jobs queued."""
    if job_queue is None:
        raise BadRequest("Jobs cannot be queued: this server runs without Redis")
    queue_name, types, where = ASSET_STEPS[step]
    return await _start_step(job_queue, queue_name, types, True, where, asset_ids)


async def run_asset_step(principal: Principal, job_queue, step: str, asset_ids: list[uuid.UUID]) -> int:
    """Immich's asset jobs: the caller must be able to change every asset named."""
    if len(asset_ids) > MAX_ASSET_JOB_IDS:
        raise Invalid(f"At most {MAX_ASSET_JOB_IDS} asset ids", "asset_ids")
    wanted = list(dict.fromkeys(asset_ids))
    await access.load_assets(principal, wanted, access.WRITE)
    return await run_for_assets(job_queue, step, wanted)


MAX_ASSET_JOB_IDS = 1000


async def _start_duplicate_detection(job_queue) -> None:
    """One detection per owner with embeddings (each looks at all the owner's assets at once);
    nothing while detection or smart search is off (Immich's queue-all job is skipped then)."""
    from app.domain import duplicates

    settings = duplicates.enabled(await system_config.current())
    if settings is None:
        return
    for owner_id in await duplicates.owners_with_embeddings(settings[0]):
        await job_queue.enqueue_plain(duplicates.JOB, str(owner_id), job_id=duplicates.job_id(owner_id))


async def _start_clustering(job_queue, force: bool) -> None:
    """Cluster faces nobody has looked at; with force, also reconsider every face left without a
    person (people already made are kept, unlike Immich, which deletes them and starts over)."""
    if force:
        await db.execute("UPDATE faces SET cluster_state = 'pending' WHERE person_id IS NULL"
                         " AND cluster_state = 'considered' AND embedding IS NOT NULL")
    for library_id in await recognition.libraries_with_pending_faces(older_than_s=0):
        await recognition.enqueue_clustering(job_queue, library_id)


# --- jobs by status ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedJobView:
    id: str
    name: str
    data: dict[str, Any]
    timestamp: int


def _view(name: str, job_id: str, timestamp_ms: int) -> QueuedJobView | None:
    queue = QUEUES.get(name, _Queue())
    for task_type, (_, job_name) in queue.task_types.items():
        if job_id.startswith(f"{task_type}:"):
            key = "libraryId" if task_type == recognition.CLUSTERING_TASK else "id"
            return QueuedJobView(job_id, job_name, {key: job_id.split(":", 1)[1]}, timestamp_ms)
    for prefix, job_name in queue.prefixes.items():
        if job_id.startswith(prefix):
            if prefix == BACKGROUND_PREFIX:
                job_name = MANUAL_JOB_NAMES.get(job_id[len(prefix):], job_name)
            return QueuedJobView(job_id, job_name, {}, timestamp_ms)
    return None


async def list_jobs(principal: Principal, name: str, statuses: list[str], job_queue,
                    limit: int = 1000) -> list[QueuedJobView]:
    """Immich's GET /api/queues/{name}/jobs: the queue's jobs in the given states (all when none)."""
    principal.require_admin()
    wanted = set(statuses or STATUSES)
    is_paused = name in await paused_queues()
    out: list[QueuedJobView] = []
    queued = set()
    for job in await job_queue.snapshot() if job_queue is not None else []:
        state = "active" if job.running else "delayed" if job.delayed else "paused" if is_paused else "waiting"
        view = _view(name, job.job_id, job.run_at_ms)
        if view is not None:
            queued.add(job.job_id)
            if state in wanted:
                out.append(view)
    types = list(QUEUES.get(name, _Queue()).task_types)
    if types and wanted & {"waiting", "paused", "failed"}:
        since = _cleared_at(await _state(), name)
        rows = await db.fetch(
            "SELECT job_id, status, created_at FROM tasks WHERE task_type = ANY($1::text[]) AND"
            " (status = 'pending' OR (status = 'failure' AND completed_at > $2 AND outcome IS DISTINCT FROM $3))"
            " ORDER BY created_at LIMIT $4",
            types, since, CLEANED_UP, limit,
        )
        for row in rows:
            state = "failed" if row["status"] == "failure" else "paused" if is_paused else "waiting"
            if state in wanted and row["job_id"] not in queued:
                view = _view(name, row["job_id"], int(row["created_at"].timestamp() * 1000))
                if view is not None:
                    out.append(view)
    return out[:limit]


# --- manual jobs (POST /api/jobs) ---------------------------------------------------------------

MANUAL_JOB_NAMES = {"person-cleanup": "PersonCleanup", "memory-cleanup": "MemoryCleanup",
                    "memory-create": "MemoryGenerate", "tag-cleanup": "TagCleanup", "user-cleanup": "UserDeleteCheck"}
_UNSUPPORTED_MANUAL = {
    "backup-database": "database backups are not made by this server",
}


async def create_manual_job(principal: Principal, job_name: str, job_queue) -> None:
    principal.require_admin()
    if job_name in MANUAL_JOB_NAMES:
        if job_queue is None:
            raise BadRequest("Jobs cannot be queued: this server runs without Redis")
        await job_queue.enqueue_plain(MANUAL_JOB, job_name, job_id=f"{BACKGROUND_PREFIX}{job_name}")
        return
    reason = _UNSUPPORTED_MANUAL.get(job_name, "it is not supported by this server")
    raise BadRequest(f"The {job_name} job cannot run: {reason}")


async def run_manual_job(job_name: str, store) -> int:
    """The worker's body of a manual job; what it removed (or made)."""
    if job_name == "tag-cleanup":
        return await tags.delete_empty_tags()
    if job_name == "user-cleanup":  # accounts past the delete delay (the hourly sweep's work, now)
        return await users.remove_deleted_users(store, (await system_config.current())["user"]["deleteDelay"])
    if job_name == "person-cleanup":
        return await remove_people_without_faces()
    if job_name == "memory-cleanup":
        return sum(await memories.cleanup())
    if job_name == "memory-create":
        return await memories.generate()
    raise ValueError(f"unknown manual job {job_name}")


async def remove_people_without_faces() -> int:
    """Immich's PersonCleanup: people left with no face (their faces deleted or moved) go."""
    async with db.transaction() as conn:
        gone = await conn.fetch(
            "DELETE FROM people p WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = p.id) RETURNING *")
        await events.record_many(conn, entity_type=people.PERSON, event_type="person_deleted",
                                 rows=[(p["id"], p["library_id"], p["owner_id"]) for p in gone])
    return len(gone)


async def wait_idle(job_queue, names: tuple[str, ...], timeout_s: float = 60) -> None:
    """Until the named queues have nothing active, waiting or delayed (tests and tools)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        statuses = await _statuses(job_queue)
        if all(not (s.statistics.active or s.statistics.waiting or s.statistics.delayed)
               for n, s in statuses.items() if n in names):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"queues {names} still busy")
