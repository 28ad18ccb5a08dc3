"""Faces: boxes on assets, the person each shows, and the user's corrections.

Boxes are stored in the asset's display space (after EXIF orientation). A user's
assignment is final for clustering: it never moves a face a user placed, and never
puts a face back into a person the user took it out of.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import numpy as np
from msgspec import UNSET, UnsetType

from app.db import engine as db
from app.domain import access, originals, people
from app.domain.errors import Invalid, NotFound
from app.domain.people import face_event, refresh_people

MAX_IDS = 200
CANDIDATES = 5
# Matching a re-detected face to a stored one keeps its person and id.
SAME_FACE_IOU = 0.5


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Detection:
    """One detector hit, already in the asset's display space."""

    box: Box
    confidence: float
    embedding: np.ndarray


class NewFace(msgspec.Struct, kw_only=True):
    """A box a user draws on an asset, optionally naming its person at once."""

    asset_id: uuid.UUID
    box: Box
    person_id: uuid.UUID | None = None


class FacePatch(msgspec.Struct, kw_only=True):
    """A user's change to a face: a person assigns it, None detaches it, UNSET leaves it."""

    person_id: uuid.UUID | None | UnsetType = UNSET


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def box_of(row: asyncpg.Record) -> Box:
    return Box(row["box_x"], row["box_y"], row["box_w"], row["box_h"])


# --- reads ----------------------------------------------------------------------------------

_LIVE = "JOIN assets a ON a.id = f.asset_id AND a.trashed_at IS NULL"


async def faces_of_asset(principal: access.Principal, asset_id: uuid.UUID, *,
                         limit: int = 200) -> list[asyncpg.Record]:
    """The faces on one asset the caller reads, however it reads it (a library role, or a share of the
    asset: partner, album, link); oldest first."""
    asset = await access.load_asset(principal, asset_id, access.READ)
    return await db.fetch("SELECT f.* FROM faces f WHERE f.asset_id = $1 AND f.library_id = $2"
                          " ORDER BY f.created_at, f.id LIMIT $3", asset["id"], asset["library_id"], limit)


async def list_faces(
    principal: access.Principal,
    library_id: uuid.UUID | None,
    *,
    asset_id: uuid.UUID | None = None,
    face_ids: list[uuid.UUID] | None = None,
    person_id: uuid.UUID | None = None,
    limit: int = 20,
    starting_after: uuid.UUID | None = None,
) -> tuple[list[asyncpg.Record], bool]:
    library = await access.library_for(principal, library_id, access.READ)
    args: list[Any] = [library]
    clauses = ["f.library_id = $1"]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if asset_id is not None:
        clauses.append(f"f.asset_id = {arg(asset_id)}")
    if person_id is not None:
        clauses.append(f"f.person_id = {arg(person_id)}")
    if face_ids is not None:
        if len(face_ids) > MAX_IDS:
            raise Invalid(f"At most {MAX_IDS} ids", "ids")
        clauses.append(f"f.id = ANY({arg(face_ids)}::uuid[])")
    if starting_after is not None:
        cursor = await db.fetchrow(
            "SELECT created_at, id FROM faces WHERE id = $1 AND library_id = $2", starting_after, library
        )
        if cursor is None:
            raise NotFound("starting_after_id names no face in this list")
        clauses.append(f"(f.created_at, f.id) < ({arg(cursor['created_at'])}, {arg(cursor['id'])})")
    rows = await db.fetch(
        f"SELECT f.* FROM faces f {_LIVE} WHERE {' AND '.join(clauses)}"
        f" ORDER BY f.created_at DESC, f.id DESC LIMIT {arg(limit + 1)}",
        *args,
    )
    return rows[:limit], len(rows) > limit


async def get_face(principal: access.Principal, face_id: uuid.UUID,
                   library_id: uuid.UUID | None = None) -> asyncpg.Record:
    library = None
    if library_id:
        library = await access.library_for(principal, library_id, access.READ)
    return await access.load_face(principal, face_id, access.READ, library)


async def faces_of_assets(asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    out: dict[uuid.UUID, list[asyncpg.Record]] = {a: [] for a in asset_ids}
    for row in await db.fetch(
        "SELECT * FROM faces WHERE asset_id = ANY($1::uuid[]) ORDER BY box_x, box_y, id", asset_ids
    ):
        out[row["asset_id"]].append(row)
    return out


async def people_of_assets(asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The distinct people shown on each asset, in the order their faces appear."""
    out: dict[uuid.UUID, list[asyncpg.Record]] = {a: [] for a in asset_ids}
    rows = await db.fetch(
        f"""
        SELECT DISTINCT ON (f.asset_id, v.id) f.asset_id AS on_asset, min(f.box_x) OVER w AS first_x, v.*
        FROM faces f JOIN ({people.PERSON_VIEW}) v ON v.id = f.person_id
        WHERE f.asset_id = ANY($1::uuid[])
        WINDOW w AS (PARTITION BY f.asset_id, v.id)
        """,
        asset_ids,
    )
    for row in sorted(rows, key=lambda r: (r["first_x"], r["id"])):
        out[row["on_asset"]].append(row)
    return out


@dataclass(frozen=True)
class Assignment:
    distance_to_person: float | None
    candidates: list[tuple[uuid.UUID, float, str | None]]


async def cluster_assignments(faces: list[asyncpg.Record]) -> dict[uuid.UUID, Assignment]:
    """Why each face sits where it does: distance to its person's centroid and the nearest other people.

    Computed when asked, from the centroids as they are now, so it never goes stale.
    """
    out: dict[uuid.UUID, Assignment] = {}
    by_library: dict[tuple[uuid.UUID, str], list[asyncpg.Record]] = {}
    for face in faces:
        if face["embedding"] is None:
            out[face["id"]] = Assignment(None, [])
        else:
            by_library.setdefault((face["library_id"], face["embedding_model"]), []).append(face)
    for (library, model), members in by_library.items():
        allowed = await db.fetchval(
            "SELECT coalesce(u.face_detection_preference, true) FROM libraries l JOIN users u ON u.id = l.owner_id"
            " WHERE l.id = $1", library,
        )
        if not allowed:
            for face in members:
                out[face["id"]] = Assignment(None, [])
            continue
        rows = await db.fetch(
            "SELECT id, name, is_hidden, centroid FROM people"
            " WHERE library_id = $1 AND centroid IS NOT NULL AND embedding_model = $2",
            library, model,
        )
        if not rows:
            for face in members:
                out[face["id"]] = Assignment(None, [])
            continue
        centroids = np.stack([people.embedding(r["centroid"]) for r in rows])
        queries = np.stack([people.embedding(f["embedding"]) for f in members])
        distances = 1.0 - queries @ centroids.T
        for face, row_distances in zip(members, distances):
            own = None
            candidates = []
            for j in np.argsort(row_distances, kind="stable"):
                person = rows[j]
                if person["id"] == face["person_id"]:
                    own = float(row_distances[j])
                elif not person["is_hidden"] and len(candidates) < CANDIDATES:
                    candidates.append((person["id"], float(row_distances[j]), person["name"]))
            out[face["id"]] = Assignment(own, candidates)
    return out


# --- user changes ---------------------------------------------------------------------------


async def _person_in(conn, person_id: uuid.UUID | None, library_id: uuid.UUID) -> uuid.UUID | None:
    """The person a face is given, which must be of the face's library; None detaches."""
    if person_id is None:
        return None
    if await conn.fetchval("SELECT 1 FROM people WHERE id = $1 AND library_id = $2", person_id, library_id) is None:
        raise NotFound("Person not found", kind=people.PERSON, ids=(person_id,))
    return person_id


async def create_face(principal: access.Principal, library_id: uuid.UUID | None, face: NewFace) -> asyncpg.Record:
    """A user-drawn box (source manual) on an asset, optionally assigned at once."""
    library = await access.library_for(principal, library_id, access.WRITE)
    asset = await access.load_asset(principal, face.asset_id, access.WRITE)
    if asset["library_id"] != library or asset["trashed_at"] is not None:
        raise NotFound("Asset not found", kind="asset", ids=(face.asset_id,))
    box = _fitted(face.box, asset)
    async with db.transaction() as conn:
        person = await _person_in(conn, face.person_id, library)
        row = await conn.fetchrow(
            """
            INSERT INTO faces (asset_id, library_id, owner_id, person_id, source, box_x, box_y, box_w, box_h,
                               image_width, image_height, assigned_by, cluster_state)
            VALUES ($1, $2, $3, $4, 'manual', $5, $6, $7, $8, $9, $10, $11, 'considered') RETURNING *
            """,
            asset["id"], library, asset["owner_id"], person, box.x, box.y, box.w, box.h,
            asset["width"], asset["height"], "user" if person else "none",
        )
        await face_event(conn, row, "face_created")
        if person is not None:
            await refresh_people(conn, [person])
    return row


def _fitted(box: Box, asset: asyncpg.Record) -> Box:
    """The box, once it is known to lie inside the asset's display space."""
    if not asset["width"] or not asset["height"]:
        raise Invalid("The asset's dimensions are not known yet; try again once it is processed", "bounding_box")
    if box.x < 0 or box.y < 0 or box.w <= 0 or box.h <= 0 or box.x + box.w > asset["width"] \
            or box.y + box.h > asset["height"]:
        raise Invalid(f"bounding_box must fit inside the asset ({asset['width']}x{asset['height']})", "bounding_box")
    return box


async def update_face(principal: access.Principal, face_id: uuid.UUID, patch: FacePatch,
                      library_id: uuid.UUID | None = None) -> tuple[asyncpg.Record, bool]:
    """Assign (a person) or detach (None). Returns the face and whether clustering should run."""
    library = await access.library_for(principal, library_id, access.WRITE) if library_id else None
    face = await access.load_face(principal, face_id, access.WRITE, library)
    if patch.person_id is UNSET:
        return face, False
    async with db.transaction() as conn:
        face = await conn.fetchrow("SELECT * FROM faces WHERE id = $1 FOR UPDATE", face_id)
        if face is None:
            raise NotFound("Face not found", kind="face", ids=(face_id,))
        target = await _person_in(conn, patch.person_id, face["library_id"])
        previous = face["person_id"]
        if target == previous:
            return face, False
        if target is None:
            # Detached: clustering may try again, but never back into the person it left.
            row = await conn.fetchrow(
                "UPDATE faces SET person_id = NULL, assigned_by = 'user', cluster_state = 'pending',"
                " rejected_person_ids = CASE WHEN $2::uuid IS NULL OR $2 = ANY(rejected_person_ids)"
                " THEN rejected_person_ids ELSE rejected_person_ids || $2::uuid END, updated_at = now()"
                " WHERE id = $1 RETURNING *",
                face_id, previous,
            )
        else:
            row = await conn.fetchrow(
                "UPDATE faces SET person_id = $2, assigned_by = 'user', cluster_state = 'considered',"
                " rejected_person_ids = array_remove(rejected_person_ids, $2), updated_at = now()"
                " WHERE id = $1 RETURNING *",
                face_id, target,
            )
        await face_event(conn, row, "face_updated", {
            "person_id": None if target is None else str(target),
            "previous_person_id": None if previous is None else str(previous),
        })
        await _release_thumbnail(conn, face_id, previous)
        await refresh_people(conn, [p for p in (previous, target) if p is not None])
    return row, target is None and row["embedding"] is not None


async def _release_thumbnail(conn, face_id: uuid.UUID, person_id: uuid.UUID | None) -> None:
    """A face leaving its person stops being that person's thumbnail (a new one is chosen)."""
    if person_id is not None:
        await conn.execute(
            "UPDATE people SET thumbnail_face_id = NULL WHERE id = $1 AND thumbnail_face_id = $2", person_id, face_id
        )


async def delete_face(principal: access.Principal, face_id: uuid.UUID, library_id: uuid.UUID | None = None) -> None:
    library = await access.library_for(principal, library_id, access.DELETE) if library_id else None
    await access.load_face(principal, face_id, access.DELETE, library)
    async with db.transaction() as conn:
        face = await conn.fetchrow("DELETE FROM faces WHERE id = $1 RETURNING *", face_id)
        if face is None:
            raise NotFound("Face not found", kind="face", ids=(face_id,))
        previous = face["person_id"]
        await face_event(conn, face, "face_deleted", {
            "previous_person_id": None if previous is None else str(previous),
        })
        if previous is not None:
            await refresh_people(conn, [previous])


async def people_of(conn, asset_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """People with a face on these assets (their counts change when the assets go)."""
    rows = await conn.fetch(
        "SELECT DISTINCT person_id FROM faces WHERE asset_id = ANY($1::uuid[]) AND person_id IS NOT NULL", asset_ids
    )
    return [r["person_id"] for r in rows]


# --- detection results (the worker) ------------------------------------------------------------


async def save_detections(asset: asyncpg.Record, image_size: tuple[int, int], model: str,
                          detections: list[Detection]) -> int:
    """Replace the asset's automatic faces with a new detection run; returns how many are new.

    A detection that overlaps a stored face (IoU > 0.5) updates it in place and keeps its
    id and person. Stored automatic faces the run no longer finds go, unless a user
    assigned them. Manual faces are never touched.
    """
    new = 0
    async with db.transaction() as conn:
        if not await conn.fetchval("SELECT 1 FROM assets WHERE id = $1 FOR UPDATE", asset["id"]):
            return 0
        stored = await conn.fetch("SELECT * FROM faces WHERE asset_id = $1 AND source = 'automatic'", asset["id"])
        matched: set[uuid.UUID] = set()
        touched_people: list[uuid.UUID] = []
        for d in detections:
            best, best_iou = None, SAME_FACE_IOU
            for row in stored:
                if row["id"] in matched:
                    continue
                overlap = iou(d.box, box_of(row))
                if overlap > best_iou:
                    best, best_iou = row, overlap
            vector = np.ascontiguousarray(d.embedding, dtype=np.float32).tobytes()
            if best is not None:
                matched.add(best["id"])
                same_model = best["embedding_model"] == model
                await conn.execute(
                    """
                    UPDATE faces SET box_x = $2, box_y = $3, box_w = $4, box_h = $5, image_width = $6,
                           image_height = $7, confidence = $8, embedding = $9, embedding_model = $10,
                           cluster_state = CASE WHEN $11 THEN cluster_state ELSE 'pending' END, updated_at = now()
                    WHERE id = $1
                    """,
                    best["id"], d.box.x, d.box.y, d.box.w, d.box.h, *image_size, d.confidence, vector, model,
                    same_model,
                )
                if best["person_id"] is not None:
                    touched_people.append(best["person_id"])
                continue
            row = await conn.fetchrow(
                """
                INSERT INTO faces (asset_id, library_id, owner_id, source, box_x, box_y, box_w, box_h,
                                   image_width, image_height, confidence, embedding, embedding_model)
                VALUES ($1, $2, $3, 'automatic', $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *
                """,
                asset["id"], asset["library_id"], asset["owner_id"], d.box.x, d.box.y, d.box.w, d.box.h,
                *image_size, d.confidence, vector, model,
            )
            await face_event(conn, row, "face_created")
            new += 1
        for row in stored:
            if row["id"] in matched or row["assigned_by"] == "user":
                continue
            await conn.execute("DELETE FROM faces WHERE id = $1", row["id"])
            previous = row["person_id"]
            await face_event(conn, row, "face_deleted", {
                "previous_person_id": None if previous is None else str(previous),
            })
            if previous is not None:
                touched_people.append(previous)
        await refresh_people(conn, touched_people)
    return new


def _crop_face(row: asyncpg.Record, source) -> bytes:
    """Boxes are in the upload's display space: an edited asset's crop comes from the upload itself."""
    from app.media import crops, edits, memory

    try:
        if row["current_version_id"] is not None:
            source = edits.upright(source, row["upload_mime"])
        return crops.face_crop(source, (row["box_x"], row["box_y"], row["box_w"], row["box_h"]),
                               (row["image_width"], row["image_height"]))
    finally:
        memory.release()


async def thumbnail_file(store, face_id: uuid.UUID) -> str | None:
    """Storage key of the face's crop, rendered on first use from the asset's preview; None if it can't be."""
    import asyncio

    row = await db.fetchrow(
        "SELECT f.*, pf.storage_key AS preview_key, a.current_version_id, a.storage_key AS upload_key,"
        " a.original_path, a.mime_type AS upload_mime FROM faces f JOIN assets a ON a.id = f.asset_id"
        " JOIN asset_files pf ON pf.asset_id = f.asset_id AND pf.kind = 'preview' WHERE f.id = $1",
        face_id,
    )
    if row is None:
        return None
    # The key names the box, so a moved box never serves a stale crop.
    key = (f"{store.derived_prefix(row['library_id'], row['asset_id'])}/faces/"
           f"{face_id}-{row['box_x']}-{row['box_y']}-{row['box_w']}-{row['box_h']}.jpeg")
    if not store.exists(key):
        # An edited asset's boxes are in its original's pixels: the crop comes from the original,
        # which for an external asset is its file in place (read only, and perhaps gone).
        source = (store.path(row["preview_key"]) if row["current_version_id"] is None
                  else originals.original_file(store, {"original_path": row["original_path"],
                                                       "storage_key": row["upload_key"]}))
        if not source.is_file():
            return None
        data = await asyncio.to_thread(_crop_face, row, source)
        await asyncio.to_thread(store.put_derived, key, data)
    return key
