"""People: named or unnamed identities that faces are assigned to.

Every change writes its change event in the same transaction. A person's counts
and cluster metrics follow its faces, so only changes to the person's own fields
emit `person_updated`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import msgspec
import numpy as np
from msgspec import UNSET, UnsetType

from app.db import engine as db
from app.domain import access, events
from app.domain.errors import Conflict, Invalid, NotFound

MAX_IDS = 200
PERSON = "person"
SORTS = ("created_at_desc", "created_at_asc", "name_asc", "name_desc", "asset_count_desc", "asset_count_asc")
NAME_FILTERS = ("named", "unnamed", "all")
# Pairwise metrics of a large person are estimated from a sample of its faces.
METRICS_SAMPLE = 512

# People with what the API shows about them. Faces of trashed assets do not count.
PERSON_VIEW = """
SELECT p.*, (
    SELECT count(DISTINCT f.asset_id) FROM faces f JOIN assets a ON a.id = f.asset_id
    WHERE f.person_id = p.id AND a.trashed_at IS NULL
) AS asset_count
FROM people p
"""


class PersonPatch(msgspec.Struct, kw_only=True):
    """A change to a person's own fields; UNSET leaves a field as it is.

    Creating a person applies a patch to an empty person (UNSET flags keep their defaults).
    """

    name: str | None | UnsetType = UNSET
    birth_date: dt.date | None | UnsetType = UNSET
    is_favorite: bool | UnsetType = UNSET
    is_hidden: bool | UnsetType = UNSET
    color: str | None | UnsetType = UNSET
    thumbnail_face_id: uuid.UUID | None | UnsetType = UNSET


def embedding(value: bytes) -> np.ndarray:
    return np.frombuffer(value, dtype=np.float32)


async def event(conn, person: asyncpg.Record, event_type: str, payload: dict | None = None) -> None:
    await events.record(conn, entity_type=PERSON, entity_id=person["id"], event_type=event_type,
                        library_id=person["library_id"], owner_id=person["owner_id"], payload=payload)


def clean_name(value: str | None, field: tuple[str | int, ...]) -> str | None:
    if value is None:
        return None
    clean = value.strip()
    if not clean:
        raise Invalid("name must not be blank", field)
    return clean


def _birth_date(value: dt.date | None, field: tuple[str | int, ...]) -> dt.date | None:
    if value is not None and value > dt.date.today():
        raise Invalid("birth_date cannot be in the future", field)
    return value


async def _thumbnail_face(conn, face_id: uuid.UUID | None, library_id: uuid.UUID) -> uuid.UUID | None:
    if face_id is None:
        return None
    found = await conn.fetchval(
        "SELECT f.id FROM faces f JOIN assets a ON a.id = f.asset_id"
        " WHERE f.id = $1 AND f.library_id = $2 AND a.trashed_at IS NULL",
        face_id, library_id,
    )
    if found is None:
        raise NotFound("Face not found", kind="face", ids=(face_id,))
    return found


async def _changes(conn, patch: PersonPatch, library_id: uuid.UUID,
                   at: tuple[str | int, ...] = ()) -> dict[str, Any]:
    """Checked column values for the fields a patch sets; `at` is the patch's own path in a
    larger command (a bulk item), so an error names the field inside it."""
    values: dict[str, Any] = {}
    if patch.name is not UNSET:
        values["name"] = clean_name(patch.name, (*at, "name"))
    if patch.birth_date is not UNSET:
        values["birth_date"] = _birth_date(patch.birth_date, (*at, "birth_date"))
    for column in ("is_favorite", "is_hidden", "color"):
        value = getattr(patch, column)
        if value is not UNSET:
            values[column] = value
    if patch.thumbnail_face_id is not UNSET:
        values["thumbnail_face_id"] = await _thumbnail_face(conn, patch.thumbnail_face_id, library_id)
    return values


async def _name_taken(conn, library_id: uuid.UUID, name: str, except_id: uuid.UUID | None) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM people WHERE library_id = $1 AND lower(btrim(name)) = lower($2)"
        " AND ($3::uuid IS NULL OR id <> $3)",
        library_id, name, except_id,
    )


async def _apply(conn, person: asyncpg.Record, values: dict[str, Any]) -> asyncpg.Record:
    """Write a validated change; one person_updated event when something really changed."""
    changed = {k: v for k, v in values.items() if person[k] != v}
    if not changed:
        return person
    if changed.get("name") is not None and await _name_taken(conn, person["library_id"], changed["name"], person["id"]):
        raise Conflict(f"Another person in this library is already named '{changed['name']}'")
    sets = [f"{column} = ${i + 2}" for i, column in enumerate(changed)]
    row = await conn.fetchrow(
        f"UPDATE people SET {', '.join(sets)}, updated_at = now() WHERE id = $1 RETURNING *",
        person["id"], *changed.values(),
    )
    await event(conn, row, "person_updated")
    return row


async def view(person_id: uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow(PERSON_VIEW + " WHERE p.id = $1", person_id)
    if row is None:
        raise NotFound("Person not found", kind=PERSON, ids=(person_id,))
    return row


async def get_person(principal: access.Principal, person_id: uuid.UUID,
                     action: str = access.READ) -> asyncpg.Record:
    """One person the caller may act on (`action`) as shown, or 404 (403 when its role forbids it)."""
    await access.load_person(principal, person_id, action)
    return await view(person_id)


async def list_people(
    principal: access.Principal,
    library_id: uuid.UUID | None,
    *,
    album_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
    person_ids: list[uuid.UUID] | None = None,
    include_hidden: bool | None = None,
    name: str | None = None,
    name_filter: str | None = None,
    sort: str | None = None,
    limit: int = 20,
    starting_after: uuid.UUID | None = None,
    offset: int = 0,
) -> tuple[list[asyncpg.Record], bool]:
    library = await access.library_for(principal, library_id, access.READ)
    sort = sort or "created_at_desc"
    if sort not in SORTS:
        raise Invalid(f"sort must be one of {', '.join(SORTS)}", "sort")
    if name_filter is None:
        name_filter = "all" if person_ids is not None else "named"
    if name_filter not in NAME_FILTERS:
        raise Invalid(f"name_filter must be one of {', '.join(NAME_FILTERS)}", "name_filter")
    if name_filter == "unnamed" and sort.startswith("name_"):
        raise Invalid("name sorts cannot be combined with name_filter=unnamed", "sort")
    if include_hidden is None:
        include_hidden = person_ids is not None
    args: list[Any] = [library]
    clauses = ["p.library_id = $1"]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if not include_hidden:
        clauses.append("NOT p.is_hidden")
    if name_filter == "named":
        clauses.append("p.name IS NOT NULL")
    elif name_filter == "unnamed":
        clauses.append("p.name IS NULL")
    if name and name.strip():
        needle = name.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(f"p.name ILIKE {arg(f'%{needle}%')}")
    live_face = "SELECT 1 FROM faces f JOIN assets a ON a.id = f.asset_id WHERE f.person_id = p.id AND a.trashed_at IS NULL"
    if asset_id is not None:
        clauses.append(f"EXISTS ({live_face} AND f.asset_id = {arg(asset_id)})")
    if album_id is not None:
        clauses.append(f"EXISTS ({live_face} AND EXISTS (SELECT 1 FROM album_assets aa"
                       f" WHERE aa.asset_id = f.asset_id AND aa.album_id = {arg(album_id)}))")
    if person_ids is not None:
        if len(person_ids) > MAX_IDS:
            raise Invalid(f"At most {MAX_IDS} ids", "ids")
        clauses.append(f"p.id = ANY({arg(person_ids)}::uuid[])")

    order_keys = _SORT_KEYS[sort]
    outer = ""
    if starting_after is not None:
        cursor_exists = await db.fetchval(
            "SELECT 1 FROM people WHERE id = $1 AND library_id = $2", starting_after, library
        )
        if not cursor_exists:
            raise NotFound("starting_after_id names no person in this list")
        outer = f"WHERE {_after(order_keys, arg(starting_after))}"
    order = ", ".join(f"{expr} {direction}" for expr, direction in order_keys)
    sql = (
        f"WITH view AS ({PERSON_VIEW} WHERE {' AND '.join(clauses)})"
        f" SELECT * FROM view v {outer} ORDER BY {order} LIMIT {arg(limit + 1)} OFFSET {arg(offset)}"
    )
    rows = await db.fetch(sql, *args)
    return rows[:limit], len(rows) > limit


# Sort keys (never null, so tuple comparison works); unnamed people sort last both ways.
_SORT_KEYS = {
    "created_at_desc": [("v.created_at", "DESC"), ("v.id", "DESC")],
    "created_at_asc": [("v.created_at", "ASC"), ("v.id", "ASC")],
    "name_asc": [("(v.name IS NULL)", "ASC"), ("coalesce(lower(v.name), '')", "ASC"), ("v.id", "ASC")],
    "name_desc": [("(v.name IS NULL)", "ASC"), ("coalesce(lower(v.name), '')", "DESC"), ("v.id", "DESC")],
    "asset_count_desc": [("v.asset_count", "DESC"), ("v.id", "DESC")],
    "asset_count_asc": [("v.asset_count", "ASC"), ("v.id", "ASC")],
}


def _after(keys: list[tuple[str, str]], cursor_arg: str) -> str:
    """Rows strictly after the cursor person in a mixed-direction lexicographic order."""
    cursor = f"(SELECT {{}} FROM ({PERSON_VIEW} WHERE p.id = {cursor_arg}) c)"
    alternatives = []
    for i, (expr, direction) in enumerate(keys):
        equal = [f"{e} = {cursor.format(e.replace('v.', 'c.'))}" for e, _ in keys[:i]]
        op = "<" if direction == "DESC" else ">"
        alternatives.append(" AND ".join([*equal, f"{expr} {op} {cursor.format(expr.replace('v.', 'c.'))}"]))
    return "(" + " OR ".join(f"({a})" for a in alternatives) + ")"


async def count_people(principal: access.Principal, library_id: uuid.UUID | None) -> tuple[int, int]:
    """(all people, hidden people) of the library."""
    library = await access.library_for(principal, library_id, access.READ)
    row = await db.fetchrow(
        "SELECT count(*) AS total, count(*) FILTER (WHERE is_hidden) AS hidden FROM people WHERE library_id = $1",
        library,
    )
    return row["total"], row["hidden"]


async def create_person(principal: access.Principal, library_id: uuid.UUID | None,
                        patch: PersonPatch) -> tuple[asyncpg.Record, bool]:
    """Find-or-create among the library's named people (hidden ones too); unnamed always creates.

    Returns the person and whether it is new.
    """
    library = await access.library_for(principal, library_id, access.WRITE)
    async with db.transaction() as conn:
        values = await _changes(conn, patch, library)
        name = values.get("name")
        if name is not None:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('people:' || $1::uuid::text))", library)
            existing = await _name_taken(conn, library, name, None)
            if existing is not None:
                # Finding the person is only right when nothing else asked for contradicts it.
                for column, value in values.items():
                    if column != "name" and value is not None and existing[column] != value:
                        raise Conflict(f"A person named '{existing['name']}' exists with a different {column}")
                return await conn.fetchrow(PERSON_VIEW + " WHERE p.id = $1", existing["id"]), False
        columns = ["library_id", *values]
        placeholders = ", ".join(f"${i + 1}" for i in range(len(columns)))
        # A member's person is still the library owner's, like everything in the library.
        row = await conn.fetchrow(
            f"INSERT INTO people (owner_id, {', '.join(columns)})"
            f" SELECT owner_id, {placeholders} FROM libraries WHERE id = $1 RETURNING *",
            library, *values.values(),
        )
        await event(conn, row, "person_created")
        return await conn.fetchrow(PERSON_VIEW + " WHERE p.id = $1", row["id"]), True


async def update_person(principal: access.Principal, person_id: uuid.UUID, patch: PersonPatch) -> asyncpg.Record:
    person = await access.load_person(principal, person_id, access.WRITE)
    async with db.transaction() as conn:
        locked = await conn.fetchrow("SELECT * FROM people WHERE id = $1 FOR UPDATE", person["id"])
        if locked is None:
            raise NotFound("Person not found", kind=PERSON, ids=(person_id,))
        await _apply(conn, locked, await _changes(conn, patch, person["library_id"]))
    return await view(person_id)


async def bulk_update(principal: access.Principal, updates: list[tuple[uuid.UUID, PersonPatch]]) -> None:
    """All or nothing, in request order; each rename is checked against names left by earlier items."""
    principal.require(access.WRITE)
    if len(updates) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} updates", "updates")
    seen: set[uuid.UUID] = set()
    targets = []
    for i, (person_id, patch) in enumerate(updates):
        if person_id in seen:
            raise Invalid("The same person appears more than once", ("updates", i, "id"))
        seen.add(person_id)
        targets.append((await access.load_person(principal, person_id, access.WRITE), patch, i))
    async with db.transaction() as conn:
        for person, patch, i in targets:
            locked = await conn.fetchrow("SELECT * FROM people WHERE id = $1 FOR UPDATE", person["id"])
            if locked is None:
                raise NotFound("Person not found", kind=PERSON, ids=(person["id"],))
            values = await _changes(conn, patch, person["library_id"], ("updates", i, "change"))
            await _apply(conn, locked, values)


async def _lock_for_change(conn, person_id: uuid.UUID) -> asyncpg.Record:
    """Lock a person for a structural change; a concurrent change answers 409 instead of waiting."""
    try:
        row = await conn.fetchrow("SELECT * FROM people WHERE id = $1 FOR UPDATE NOWAIT", person_id)
    except asyncpg.LockNotAvailableError:
        raise Conflict("The person is being changed by another request; retry") from None
    if row is None:
        raise NotFound("Person not found", kind=PERSON, ids=(person_id,))
    return row


async def delete_person(principal: access.Principal, person_id: uuid.UUID) -> uuid.UUID:
    """Unassigns its faces (they are clustered again) and deletes the person. Returns the library."""
    person = await access.load_person(principal, person_id, access.DELETE)
    async with db.transaction() as conn:
        locked = await _lock_for_change(conn, person_id)
        faces = await conn.fetch(
            "UPDATE faces SET person_id = NULL, assigned_by = 'none', cluster_state = 'pending', updated_at = now()"
            " WHERE person_id = $1 RETURNING id, library_id, owner_id",
            person_id,
        )
        for face in faces:
            await face_event(conn, face, "face_updated", {"person_id": None, "previous_person_id": str(person_id)})
        await conn.execute("DELETE FROM people WHERE id = $1", person_id)
        await event(conn, locked, "person_deleted")
    return person["library_id"]


async def merge(principal: access.Principal, person_id: uuid.UUID,
                source_ids: list[uuid.UUID]) -> asyncpg.Record | None:
    """Move every face of the sources to the primary and delete the sources.

    None when the primary and all sources were unnamed and faceless: the primary goes too.
    """
    primary = await access.load_person(principal, person_id, access.WRITE)
    if not source_ids:
        raise Invalid("source_person_ids must name at least one person", "source_person_ids")
    if len(source_ids) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} ids", "source_person_ids")
    sources: list[uuid.UUID] = []
    for source in source_ids:
        if source == person_id:
            raise Invalid("A person cannot be merged into itself", "source_person_ids")
        row = await access.load_person(principal, source, access.DELETE)
        if row["library_id"] != primary["library_id"]:
            raise NotFound("Person not found", kind=PERSON, ids=(source,))
        if source not in sources:
            sources.append(source)
    async with db.transaction() as conn:
        locked = await _lock_for_change(conn, person_id)
        source_rows = [await _lock_for_change(conn, s) for s in sources]
        before = await conn.fetch(
            "SELECT id, person_id FROM faces WHERE person_id = ANY($1::uuid[]) FOR UPDATE", sources
        )
        moved = await conn.fetch(
            "UPDATE faces SET person_id = $1, assigned_by = 'user', cluster_state = 'considered',"
            " rejected_person_ids = array_remove(rejected_person_ids, $1), updated_at = now()"
            " WHERE id = ANY($2::uuid[]) RETURNING id, library_id, owner_id",
            person_id, [f["id"] for f in before],
        )
        previous = {f["id"]: f["person_id"] for f in before}
        for face in moved:
            await face_event(conn, face, "face_updated", {
                "person_id": str(person_id),
                "previous_person_id": str(previous[face["id"]]),
            })
        for row in source_rows:
            await conn.execute("DELETE FROM people WHERE id = $1", row["id"])
            await event(conn, row, "person_deleted")
        await refresh_people(conn, [person_id])
        faces_left = await conn.fetchval("SELECT count(*) FROM faces WHERE person_id = $1", person_id)
        if faces_left == 0 and locked["name"] is None and all(r["name"] is None for r in source_rows):
            await conn.execute("DELETE FROM people WHERE id = $1", person_id)
            await event(conn, locked, "person_deleted")
            return None
    return await view(person_id)


async def face_event(conn, face, event_type: str, payload: dict | None = None) -> None:
    await events.record(conn, entity_type="face", entity_id=face["id"], event_type=event_type,
                        library_id=face["library_id"], owner_id=face["owner_id"], payload=payload)


async def refresh_people(conn, person_ids: list[uuid.UUID], *, announce_thumbnail: bool = True) -> None:
    """Recompute centroid, face count and cohesion of people from their members' embeddings.

    A person without a thumbnail face gets its clearest remaining face (a person_updated
    event, since the thumbnail is the person's own field).
    """
    from app.faces.index import cluster_metrics, normalise

    for person_id in dict.fromkeys(person_ids):
        person = await conn.fetchrow("SELECT * FROM people WHERE id = $1", person_id)
        if person is None:
            continue
        rows = await conn.fetch(
            "SELECT f.embedding, f.embedding_model FROM faces f JOIN assets a ON a.id = f.asset_id"
            " WHERE f.person_id = $1 AND f.embedding IS NOT NULL AND a.trashed_at IS NULL",
            person_id,
        )
        centroid = model = None
        count, mean, p90 = 0, None, None
        if rows:
            # Embeddings of different models are not comparable: use the model most members have.
            models: dict[str, int] = {}
            for r in rows:
                models[r["embedding_model"]] = models.get(r["embedding_model"], 0) + 1
            model = max(models, key=models.get)
            vectors = np.stack([embedding(r["embedding"]) for r in rows if r["embedding_model"] == model])
            centroid = normalise(vectors.mean(axis=0)).tobytes()
            count, mean, p90 = cluster_metrics(vectors, METRICS_SAMPLE)
        await conn.execute(
            "UPDATE people SET centroid = $2, embedding_model = $3, face_count = $4, pairwise_mean = $5,"
            " pairwise_p90 = $6 WHERE id = $1",
            person_id, centroid, model, count, mean, p90,
        )
        if person["thumbnail_face_id"] is None:
            best = await conn.fetchval(
                "SELECT f.id FROM faces f JOIN assets a ON a.id = f.asset_id"
                " WHERE f.person_id = $1 AND a.trashed_at IS NULL"
                " ORDER BY coalesce(f.confidence, 0.5) * f.box_w * f.box_h DESC, f.id LIMIT 1",
                person_id,
            )
            if best is not None:
                row = await conn.fetchrow(
                    "UPDATE people SET thumbnail_face_id = $2, updated_at = now() WHERE id = $1 RETURNING *",
                    person_id, best,
                )
                if announce_thumbnail:
                    await event(conn, row, "person_updated")
