"""Face detection per asset, and clustering per library: the two face jobs.

Detection runs on the preview variant (already turned upright) and stores boxes in
the asset's display space. Clustering assigns new faces to the person of their
nearest face (within max_distance) and groups the rest DBSCAN-style: a face with at
least min_faces unassigned faces around it (itself included) is a core face;
connected core faces and the faces next to them become a new person; the others
stay unassigned until later faces make them part of a cluster. Only faces nobody
has looked at yet (cluster_state 'pending') start a run, so a run never rescans a
library.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np

from app.db import engine as db
from app.domain import faces, people, system_config, tasks
from app.domain.faces import Box, Detection
from app.domain.people import event as person_event
from app.domain.people import face_event, refresh_people
from app.faces import runtime
from app.faces.index import nearest_person

log = logging.getLogger(__name__)

DETECT_JOB = "detect_faces"
CLUSTER_JOB = "cluster_faces"
DETECTION_TASK = "face_detection"
CLUSTERING_TASK = "face_clustering"
# Neighbours fetched per face: enough to judge core-ness and find a person past a few strangers.
NEIGHBOURS = 32
BATCH = 2_000
# Bound one run's DBSCAN expansion through earlier outliers.
MAX_EXPANSION = 20_000


def cluster_job_id(library_id: uuid.UUID) -> str:
    # One clustering job per library, queued or running, across every worker.
    return f"{CLUSTERING_TASK}:{library_id}"


async def enqueue_clustering(queue, library_id: uuid.UUID) -> None:
    if queue is None:
        return
    try:
        await queue.enqueue_plain(CLUSTER_JOB, str(library_id), job_id=cluster_job_id(library_id))
    except Exception:  # the cron sweep finds pending faces later
        log.exception("could not enqueue clustering for library %s", library_id)


# --- detection -------------------------------------------------------------------------------


def _load_rgb(path) -> np.ndarray:
    import pyvips

    image = pyvips.Image.new_from_file(str(path), access="sequential")
    if image.hasalpha():
        image = image.flatten()
    if image.bands == 1:
        image = image.colourspace("srgb")
    image = image.cast("uchar")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8, shape=(image.height, image.width, image.bands))[
        :, :, :3
    ]


def _detect(models, path, display: tuple[int, int]) -> tuple[list[Detection], tuple[int, int]]:
    rgb = _load_rgb(path)
    found = models.detect(rgb)
    if not found:
        return [], display
    vectors = models.embed(rgb, found)
    height, width = rgb.shape[:2]
    sx, sy = display[0] / width, display[1] / height
    out = []
    for hit, vector in zip(found, vectors):
        x1, y1, x2, y2 = hit.box
        left = int(round(max(0.0, x1) * sx))
        top = int(round(max(0.0, y1) * sy))
        right = int(round(min(float(width), x2) * sx))
        bottom = int(round(min(float(height), y2) * sy))
        if right - left < 1 or bottom - top < 1:
            continue
        out.append(Detection(Box(left, top, right - left, bottom - top), float(hit.score), vector))
    return out, display


async def _models_or_skip(settings, owner_allows: bool) -> tuple[Any, tasks.Skip | None]:
    """The face models detection would use now for an owner with this preference, or why it
    would not run."""
    if not owner_allows:
        return None, tasks.Skip("face detection is off for this account", "skipped_owner_off")
    face_settings = await facial_recognition()
    if face_settings is None:
        return None, tasks.Skip("facial recognition is off in the system config", "skipped_config_off")
    models = await runtime.face_models(settings.model_dir, face_settings["minScore"])
    if models is None:
        from app.faces.models import missing_models_reason

        return None, tasks.Skip(missing_models_reason(settings.model_dir), "skipped_no_model")
    return models, None


async def detection_skip(settings, owner_allows: bool) -> tasks.Skip | None:
    """Why face detection would not run now for an owner with this preference; None when it would."""
    return (await _models_or_skip(settings, owner_allows))[1]


async def run_detection(settings, store, task_id: uuid.UUID, queue, attempt: int = 1) -> str:
    row = await db.fetchrow(
        "SELECT a.*, coalesce(u.face_detection_preference, true) AS detect_allowed FROM tasks t"
        " JOIN assets a ON a.id = t.asset_id JOIN users u ON u.id = a.owner_id WHERE t.id = $1",
        task_id,
    )
    if row is None:
        return "asset no longer exists"
    if await tasks.start(task_id, attempt) is None:
        return "not run: the task has ended, or a live worker runs it"
    models, skip = await _models_or_skip(settings, row["detect_allowed"])
    if skip is not None:
        await tasks.finish(task_id, ok=True, result=skip.result, outcome=skip.outcome)
        return "skipped"
    preview = await db.fetchrow(
        "SELECT storage_key, width, height FROM asset_files WHERE asset_id = $1 AND kind = 'preview'", row["id"]
    )
    if preview is None:
        await tasks.finish(task_id, ok=True, result="no preview to look at", outcome=None)
        return "skipped"
    display = (row["width"] or preview["width"], row["height"] or preview["height"])
    detections, size = await asyncio.to_thread(_detect, models, store.path(preview["storage_key"]), display)
    new = await faces.save_detections(row, size, models.name, detections)
    await tasks.finish(task_id, ok=True, result=f"{len(detections)} faces ({new} new)", outcome="ran")
    if new:
        await enqueue_clustering(queue, row["library_id"])
    return "ok"


async def create_detection(conn: asyncpg.Connection, asset: asyncpg.Record,
                           skip: tasks.Skip | None = None) -> uuid.UUID | None:
    """In the variants step's transaction: detection for assets a timeline shows (not a live
    photo's video half). Its job is enqueued after that commits; with a skip known (detection_skip),
    its task is recorded as skipped instead and there is no job."""
    if asset["visibility"] == "hidden":
        return None
    return await tasks.create_unless_skipped(conn, asset, DETECTION_TASK, skip)


# --- clustering ------------------------------------------------------------------------------


@dataclass
class _Pending:
    id: uuid.UUID
    seq: int
    updated_at: object
    vector: np.ndarray
    rejected: frozenset


@dataclass
class Plan:
    assign: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # face -> existing person
    clusters: list[list[uuid.UUID]] = field(default_factory=list)  # faces -> one new person each


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


async def _neighbour_rows(library_id: uuid.UUID, seqs: list[int]) -> dict[int, asyncpg.Record]:
    rows = await db.fetch(
        "SELECT seq, id, person_id, embedding FROM faces WHERE library_id = $1 AND seq = ANY($2::bigint[])",
        library_id, seqs,
    )
    return {r["seq"]: r for r in rows}


async def plan_batch(library_id: uuid.UUID, index, pending: list[_Pending], max_distance: float,
                     min_faces: int) -> Plan:
    plan = Plan()
    vectors = np.stack([p.vector for p in pending])
    distances, seqs = await asyncio.to_thread(index.search, vectors, NEIGHBOURS)
    rows = await _neighbour_rows(library_id, sorted({int(s) for s in seqs[distances <= max_distance] if s >= 0}))
    person_of = {s: r["person_id"] for s, r in rows.items() if r["person_id"] is not None}

    # 1. Join the person of the nearest face that has one.
    left: list[int] = []
    for i, face in enumerate(pending):
        person, _ = nearest_person(distances[i], seqs[i], person_of, max_distance, exclude=face.rejected)
        if person is not None:
            plan.assign[face.id] = person
        else:
            left.append(i)
    if not left:
        return plan

    # 2. DBSCAN among unassigned faces, expanding from the new ones through core faces only.
    face_of_seq: dict[int, uuid.UUID] = {p.seq: p.id for p in pending}
    for s, r in rows.items():
        face_of_seq.setdefault(s, r["id"])
    assigned_now = {pending[i].seq for i in range(len(pending)) if pending[i].id in plan.assign}

    def unassigned_neighbours(d_row, s_row) -> list[int]:
        return [int(s) for d, s in zip(d_row, s_row)
                if s >= 0 and d <= max_distance and int(s) in face_of_seq
                and int(s) not in person_of and int(s) not in assigned_now]

    hood: dict[int, list[int]] = {pending[i].seq: unassigned_neighbours(distances[i], seqs[i]) for i in left}
    frontier = [s for s in hood if len(hood[s]) >= min_faces]
    while frontier and len(hood) < MAX_EXPANSION:
        unseen = sorted({n for s in frontier for n in hood[s] if n not in hood})
        if not unseen:
            break
        extra = await _neighbour_rows(library_id, unseen)
        unseen = [s for s in unseen if s in extra and extra[s]["embedding"] is not None]
        if not unseen:
            break
        ev = np.stack([people.embedding(extra[s]["embedding"]) for s in unseen])
        d2, s2 = await asyncio.to_thread(index.search, ev, NEIGHBOURS)
        more = await _neighbour_rows(library_id, sorted({int(x) for x in s2[d2 <= max_distance] if x >= 0}
                                                        - set(face_of_seq)))
        for s, r in more.items():
            face_of_seq.setdefault(s, r["id"])
            if r["person_id"] is not None:
                person_of[s] = r["person_id"]
        frontier = []
        for j, s in enumerate(unseen):
            hood[s] = unassigned_neighbours(d2[j], s2[j])
            if len(hood[s]) >= min_faces:
                frontier.append(s)

    core = {s for s, n in hood.items() if len(n) >= min_faces}
    groups = _UnionFind()
    for s in core:
        groups.find(s)
        for n in hood[s]:
            if n in core:
                groups.union(s, n)
    members: dict[int, list[int]] = {}
    for s in core:
        members.setdefault(groups.find(s), []).append(s)
    border_taken: set[int] = set(core)
    for s in sorted(core):
        for n in hood[s]:
            if n not in border_taken:  # a border face joins the first core face that reaches it
                border_taken.add(n)
                members[groups.find(s)].append(n)
    for group in members.values():
        plan.clusters.append([face_of_seq[s] for s in sorted(group)])
    return plan


async def _commit(library_id: uuid.UUID, owner_id: uuid.UUID, pending: list[_Pending], plan: Plan) -> tuple[int, int]:
    """Write one batch's decisions. A face a user touched meanwhile is left as the user left it."""
    assigned = created = 0
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", cluster_job_id(library_id))
        targets = list({*plan.assign.values()})
        live = {r["id"] for r in await conn.fetch(
            "SELECT id FROM people WHERE id = ANY($1::uuid[]) FOR SHARE", targets)}
        touched: list[uuid.UUID] = []
        for face_id, person in plan.assign.items():
            if person not in live:
                continue
            row = await conn.fetchrow(
                "UPDATE faces SET person_id = $2, assigned_by = 'cluster', cluster_state = 'considered',"
                " updated_at = now() WHERE id = $1 AND person_id IS NULL AND cluster_state = 'pending'"
                " RETURNING id, library_id, owner_id",
                face_id, person,
            )
            if row is not None:
                assigned += 1
                touched.append(person)
                await face_event(conn, row, "face_updated",
                                 {"person_id": str(person), "previous_person_id": None})
        new_people: list[uuid.UUID] = []
        for group in plan.clusters:
            # Older outliers join too, so their state is not required to be pending.
            free = [r["id"] for r in await conn.fetch(
                "SELECT id FROM faces WHERE id = ANY($1::uuid[]) AND person_id IS NULL FOR UPDATE", group)]
            if not free:
                continue
            person = await conn.fetchrow(
                "INSERT INTO people (library_id, owner_id) VALUES ($1, $2) RETURNING *", library_id, owner_id
            )
            await person_event(conn, person, "person_created")
            rows = await conn.fetch(
                "UPDATE faces SET person_id = $2, assigned_by = 'cluster', cluster_state = 'considered',"
                " updated_at = now() WHERE id = ANY($1::uuid[]) AND NOT ($2 = ANY(rejected_person_ids))"
                " RETURNING id, library_id, owner_id",
                free, person["id"],
            )
            for row in rows:
                await face_event(conn, row, "face_updated",
                                 {"person_id": str(person["id"]), "previous_person_id": None})
            new_people.append(person["id"])
            created += 1
        await conn.execute(
            "UPDATE faces f SET cluster_state = 'considered' FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, ts)"
            " WHERE f.id = t.id AND f.updated_at = t.ts AND f.cluster_state = 'pending'",
            [p.id for p in pending], [p.updated_at for p in pending],
        )
        await refresh_people(conn, touched)
        await refresh_people(conn, new_people, announce_thumbnail=False)
    return assigned, created


async def facial_recognition() -> dict | None:
    """The system config's facial recognition settings (minScore, maxDistance, minFaces), or None
    while it, or machine learning as a whole, is switched off."""
    learning = (await system_config.current())["machineLearning"]
    settings = learning["facialRecognition"]
    return settings if learning["enabled"] and settings["enabled"] else None


async def run_clustering(settings, library_id: uuid.UUID) -> str:
    library = await db.fetchrow("SELECT id, owner_id FROM libraries WHERE id = $1", library_id)
    if library is None:
        return "library no longer exists"
    face_settings = await facial_recognition()
    if face_settings is None:  # the faces wait, pending, until it is switched back on
        return "facial recognition is off in the system config"
    async with db.transaction() as conn:
        task_id = await conn.fetchval(
            "INSERT INTO tasks (owner_id, library_id, task_type, job_id, status, started_at)"
            " VALUES ($1, $2, $3, $4, 'started', now()) RETURNING id",
            library["owner_id"], library_id, CLUSTERING_TASK, cluster_job_id(library_id),
        )
    assigned = created = considered = 0
    while True:
        rows = await db.fetch(
            "SELECT id, seq, updated_at, embedding, embedding_model, rejected_person_ids FROM faces"
            " WHERE library_id = $1 AND cluster_state = 'pending' AND person_id IS NULL AND embedding IS NOT NULL"
            " ORDER BY seq LIMIT $2",
            library_id, BATCH,
        )
        if not rows:
            break
        model = rows[0]["embedding_model"]
        batch = [
            _Pending(r["id"], r["seq"], r["updated_at"], people.embedding(r["embedding"]), frozenset(r["rejected_person_ids"]))
            for r in rows if r["embedding_model"] == model
        ]
        index = await runtime.indexes.sync(library_id, model, len(batch[0].vector))
        missing = [p for p in batch if p.seq not in index]
        if missing:
            index.add(np.array([p.seq for p in missing]), np.stack([p.vector for p in missing]))
        plan = await plan_batch(library_id, index, batch, face_settings["maxDistance"], face_settings["minFaces"])
        a, c = await _commit(library_id, library["owner_id"], batch, plan)
        assigned, created, considered = assigned + a, created + c, considered + len(batch)
    await tasks.finish(task_id, ok=True, result=f"{considered} faces considered, {assigned} joined a person,"
                       f" {created} new people")
    return "ok"


async def libraries_with_pending_faces(older_than_s: int) -> list[uuid.UUID]:
    rows = await db.fetch(
        "SELECT DISTINCT library_id FROM faces WHERE cluster_state = 'pending' AND person_id IS NULL"
        " AND embedding IS NOT NULL AND updated_at < now() - make_interval(secs => $1)",
        older_than_s,
    )
    return [r["library_id"] for r in rows]
