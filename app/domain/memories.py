"""Memories (Immich's "on this day"): collections of a user's photos, made by a daily job or by hand.

A memory belongs to its owner alone, and shows photos of one library: the library it was made from
(the job makes one per library and year) or the library its creator's client names. Its events go
to that library's change log, so the Immich sync stream reads them with the library's other changes.

Rules taken from Immich 3.1:
- The daily job (generate) looks at the days from three before today to three after (UTC days). For
  each day it has not done yet (the state under STATE_KEY says how far it got), every live library
  gets one memory per earlier year with photos taken on that month and day (their wall clock, as
  taken), at most ASSETS_PER_YEAR of them: photos on the timeline (not archived, hidden or locked),
  not trashed, with a preview. The memory shows from the start to the end of that UTC day.
- What a memory shows is filtered when it is read: only photos still on the timeline and not
  trashed, of a library the owner still reaches. A photo archived, locked or trashed after the
  memory was made leaves it at once, and comes back if the change is undone.
- The cleanup (Immich's MemoryCleanup) unlinks photos that left the timeline, and deletes memories
  older than UNSAVED_KEPT_FOR that were never saved.

Immich 3.1 keeps no time zone per user: days are UTC days and photos match by their wall-clock date,
so that is what happens here too.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import asyncpg

from app.db import engine as db
from app.domain import access, events
from app.domain.errors import Forbidden, Invalid, NotFound

ON_THIS_DAY = "on_this_day"
TYPES = (ON_THIS_DAY,)
ORDERS = ("asc", "desc", "random")
ENTITY = "memory"
LINK = "memory_asset"

DAYS_AROUND = 3  # the job makes memories for today and this many days either side
ASSETS_PER_YEAR = 20
UNSAVED_KEPT_FOR = timedelta(days=30)
STATE_KEY = "memories-state"  # system_metadata: {"lastOnThisDayDate": ISO datetime of the last day done}
MAX_IDS = 1000
_LOCK_KEY = 0x6D656D6F72  # serialises job runs across workers ("memor")

# A photo a memory shows: on the timeline and not trashed ($1: the memory owner's id, $2: the
# libraries the owner reaches through a partnership).
_SHOWN = ("a.visibility = 'timeline' AND a.trashed_at IS NULL AND ("
          f"{access.caller_role_sql('a.library_id', '$1')} IS NOT NULL OR a.library_id = ANY($2::uuid[]))")


@dataclass(frozen=True)
class MemoryView:
    """A memory's row and the photos it shows now, oldest first."""

    row: asyncpg.Record
    assets: list[asyncpg.Record]


@dataclass(frozen=True)
class MemoryFilter:
    """Immich's search: `on` keeps memories whose show window holds that day's start (UTC)."""

    on: date | None = None
    is_saved: bool | None = None
    is_trashed: bool | None = None
    type: str | None = None
    order: str | None = None  # asc, desc (the default: newest memoryAt first) or random
    size: int | None = None


@dataclass(frozen=True)
class NewMemory:
    type: str
    data: dict[str, Any]
    memory_at: datetime
    is_saved: bool = False
    seen_at: datetime | None = None
    show_at: datetime | None = None
    hide_at: datetime | None = None
    asset_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class MemoryPatch:
    """What an update changes; None leaves the field as it is (none of them can be cleared)."""

    is_saved: bool | None = None
    seen_at: datetime | None = None
    memory_at: datetime | None = None


@dataclass(frozen=True)
class AssetOutcome:
    """One asset of an add or remove: error None when done, else Immich's reason
    (duplicate, no_permission, not_found)."""

    asset_id: uuid.UUID
    error: str | None


# --- reading ------------------------------------------------------------------------------------


async def _load(principal: access.Principal, memory_id: uuid.UUID, action: str) -> asyncpg.Record:
    """The caller's own memory, if its credential allows `action` in the memory's library; another
    user's answers like a missing one. (load_reachable's $2 is the caller's id.)"""
    return await access.load_reachable(
        principal, action, "SELECT m.* FROM memories m WHERE m.owner_id = $2 AND m.deleted_at IS NULL",
        memory_id, NotFound("Memory not found", kind=ENTITY, ids=(memory_id,)),
    )


async def _shown_assets(principal: access.Principal, owner_id: uuid.UUID,
                        memory_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The photos each memory shows its owner now, within the libraries the caller's credential
    reaches (a key limited to one library sees none of a memory's photos from another)."""
    if not memory_ids:
        return {}
    scope = None if principal.library_scope is None else list(principal.library_scope)
    rows = await db.fetch(
        "SELECT ma.memory_id AS in_memory, a.* FROM memory_assets ma JOIN assets a ON a.id = ma.asset_id"
        f" WHERE ma.memory_id = ANY($3::uuid[]) AND {_SHOWN}"
        " AND ($4::uuid[] IS NULL OR a.library_id = ANY($4::uuid[])) ORDER BY a.taken_at, a.id",
        owner_id, await access.partner_libraries_of(owner_id), memory_ids, scope,
    )
    out: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for r in rows:
        out.setdefault(r["in_memory"], []).append(r)
    return out


async def _views(principal: access.Principal, rows: list[asyncpg.Record]) -> list[MemoryView]:
    if not rows:
        return []
    shown = await _shown_assets(principal, rows[0]["owner_id"], [r["id"] for r in rows])
    return [MemoryView(r, shown.get(r["id"], [])) for r in rows]


async def get_memory(principal: access.Principal, memory_id: uuid.UUID) -> MemoryView:
    [view] = await _views(principal, [await _load(principal, memory_id, access.READ)])
    return view


def _search_sql(flt: MemoryFilter) -> tuple[str, list[Any]]:
    """The WHERE clause of a search and its arguments ($1: owner, $2: library)."""
    args: list[Any] = []
    clauses = ["m.owner_id = $1", "m.library_id = $2",
               f"m.deleted_at IS {'NOT ' if flt.is_trashed else ''}NULL"]
    if flt.is_saved is not None:
        args.append(flt.is_saved)
        clauses.append(f"m.is_saved = ${len(args) + 2}")
    if flt.type is not None:
        if flt.type not in TYPES:
            raise Invalid(f"type must be one of {', '.join(TYPES)}", "type")
        args.append(flt.type)
        clauses.append(f"m.type = ${len(args) + 2}")
    if flt.on is not None:
        args.append(datetime.combine(flt.on, time(), timezone.utc))
        n = len(args) + 2
        clauses.append(f"(m.show_at IS NULL OR m.show_at <= ${n}) AND (m.hide_at IS NULL OR m.hide_at >= ${n})")
    return " AND ".join(clauses), args


async def _searchable_library(principal: access.Principal, library_id: uuid.UUID) -> uuid.UUID:
    await access.require_role(principal, library_id, access.READ, NotFound("Library not found"))
    return library_id


async def search(principal: access.Principal, library_id: uuid.UUID, flt: MemoryFilter) -> list[MemoryView]:
    """The caller's memories of the library, newest memoryAt first unless `order` says otherwise."""
    library = await _searchable_library(principal, library_id)
    where, args = _search_sql(flt)
    if flt.order is not None and flt.order not in ORDERS:
        raise Invalid(f"order must be one of {', '.join(ORDERS)}", "order")
    order = "random()" if flt.order == "random" else f"m.memory_at {'ASC' if flt.order == 'asc' else 'DESC'}, m.id"
    limit = ""
    if flt.size is not None:
        if flt.size < 1:
            raise Invalid("size must be at least 1", "size")
        args.append(flt.size)
        limit = f" LIMIT ${len(args) + 2}"
    rows = await db.fetch(f"SELECT m.* FROM memories m WHERE {where} ORDER BY {order}{limit}",
                          principal.user_id, library, *args)
    return await _views(principal, rows)


async def statistics(principal: access.Principal, library_id: uuid.UUID, flt: MemoryFilter) -> int:
    """How many memories a search with the same filters finds (size and order play no part)."""
    library = await _searchable_library(principal, library_id)
    where, args = _search_sql(flt)
    return await db.fetchval(f"SELECT count(*) FROM memories m WHERE {where}", principal.user_id, library, *args)


# --- writing ------------------------------------------------------------------------------------


async def _event(conn, memory: asyncpg.Record, event_type: str) -> None:
    await events.record(conn, entity_type=ENTITY, entity_id=memory["id"], event_type=event_type,
                        library_id=memory["library_id"], owner_id=memory["owner_id"])


async def _link_events(conn, memory: asyncpg.Record, links: list[asyncpg.Record], event_type: str) -> None:
    """Link events carry both ids: a removal's row is gone when the sync stream reads it."""
    for link in links:
        await events.record(conn, entity_type=LINK, entity_id=link["id"], event_type=event_type,
                            library_id=memory["library_id"], owner_id=memory["owner_id"],
                            payload={"memory_id": str(memory["id"]), "asset_id": str(link["asset_id"])})


async def _link(conn, memory: asyncpg.Record, asset_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """Link the assets not linked yet, with their events; the new links."""
    links = await conn.fetch(
        "INSERT INTO memory_assets (memory_id, asset_id) SELECT $1, unnest($2::uuid[])"
        " ON CONFLICT (memory_id, asset_id) DO NOTHING RETURNING id, asset_id",
        memory["id"], asset_ids,
    )
    await _link_events(conn, memory, links, "memory_asset_added")
    return links


def _distinct(asset_ids: list[uuid.UUID] | tuple[uuid.UUID, ...]) -> list[uuid.UUID]:
    if len(asset_ids) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} asset ids at once", "assetIds")
    return list(dict.fromkeys(asset_ids))


async def _shareable(principal: access.Principal, asset_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The assets the caller may put in a memory (Immich's asset.share): those of a library it has
    a role in, or of a partner who shares with it; never one it sees only through an album or a link."""
    partner_libraries = set(await access.partner_libraries_of(principal.user_id))
    try:
        outcomes = await access.asset_outcomes(principal, asset_ids, access.READ)
    except Forbidden:  # a credential that may not read shares nothing
        return set()
    # load_asset's rules also admit album and link grants: those leave caller_role unset and are
    # not a partner's library.
    return {asset_id for asset_id, row in outcomes.items() if not isinstance(row, Exception)
            and (row["caller_role"] is not None or row["library_id"] in partner_libraries)}


def _check_new(memory: NewMemory) -> None:
    if memory.type not in TYPES:
        raise Invalid(f"type must be one of {', '.join(TYPES)}", "type")
    year = memory.data.get("year")
    if memory.type == ON_THIS_DAY and (not isinstance(year, int) or isinstance(year, bool) or not 1000 <= year <= 9999):
        raise Invalid("data.year must be a year from 1000 to 9999", ("data", "year"))


async def create_memory(principal: access.Principal, library_id: uuid.UUID, memory: NewMemory) -> MemoryView:
    """A memory of the caller's, in a library it may change; assets it may not share are left out
    (as Immich does), not refused."""
    principal.require(access.WRITE)
    await access.require_role(principal, library_id, access.WRITE, NotFound("Library not found"))
    _check_new(memory)
    allowed = await _shareable(principal, _distinct(memory.asset_ids))
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "INSERT INTO memories (owner_id, library_id, type, data, is_saved, memory_at, seen_at, show_at, hide_at)"
            " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9) RETURNING *",
            principal.user_id, library_id, memory.type, json.dumps(memory.data), memory.is_saved, memory.memory_at,
            memory.seen_at, memory.show_at, memory.hide_at,
        )
        await _event(conn, row, "memory_created")
        await _link(conn, row, [a for a in memory.asset_ids if a in allowed])
    return await get_memory(principal, row["id"])


async def update_memory(principal: access.Principal, memory_id: uuid.UUID, patch: MemoryPatch) -> MemoryView:
    memory = await _load(principal, memory_id, access.WRITE)
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "UPDATE memories SET is_saved = coalesce($2, is_saved), seen_at = coalesce($3, seen_at),"
            " memory_at = coalesce($4, memory_at), updated_at = now() WHERE id = $1 RETURNING *",
            memory["id"], patch.is_saved, patch.seen_at, patch.memory_at,
        )
        if row is None:
            raise NotFound("Memory not found", kind=ENTITY, ids=(memory_id,))
        await _event(conn, row, "memory_updated")
    return await get_memory(principal, memory_id)


async def delete_memory(principal: access.Principal, memory_id: uuid.UUID) -> None:
    """The memory and its links go; memory_deleted implies the links (the sync stream finds each
    link gone by its own earlier event)."""
    memory = await _load(principal, memory_id, access.DELETE)
    async with db.transaction() as conn:
        row = await conn.fetchrow("DELETE FROM memories WHERE id = $1 RETURNING *", memory["id"])
        if row is not None:
            await _event(conn, row, "memory_deleted")


async def _touch(conn, memory_id: uuid.UUID) -> None:
    row = await conn.fetchrow("UPDATE memories SET updated_at = now() WHERE id = $1 RETURNING *", memory_id)
    if row is not None:
        await _event(conn, row, "memory_updated")


async def add_assets(principal: access.Principal, memory_id: uuid.UUID,
                     asset_ids: list[uuid.UUID]) -> list[AssetOutcome]:
    """Each asset already in the memory (or named twice) is a duplicate, one the caller may not
    share is no_permission; the rest are added, and the memory counts as updated."""
    memory = await _load(principal, memory_id, access.WRITE)
    wanted = _distinct(asset_ids)
    async with db.transaction() as conn:
        await conn.execute("SELECT 1 FROM memories WHERE id = $1 FOR UPDATE", memory["id"])
        present = {r["asset_id"] for r in await conn.fetch(
            "SELECT asset_id FROM memory_assets WHERE memory_id = $1 AND asset_id = ANY($2::uuid[])",
            memory["id"], wanted)}
        allowed = await _shareable(principal, [a for a in wanted if a not in present])
        outcomes, added = [], []
        for asset_id in asset_ids:
            if asset_id in present or asset_id in added:
                outcomes.append(AssetOutcome(asset_id, "duplicate"))
            elif asset_id not in allowed:
                outcomes.append(AssetOutcome(asset_id, "no_permission"))
            else:
                outcomes.append(AssetOutcome(asset_id, None))
                added.append(asset_id)
        if added:
            await _link(conn, memory, added)
            await _touch(conn, memory["id"])
    return outcomes


async def remove_assets(principal: access.Principal, memory_id: uuid.UUID,
                        asset_ids: list[uuid.UUID]) -> list[AssetOutcome]:
    """Each asset not in the memory (or named twice) is not_found; the owner may always take out
    the rest, whoever's they are."""
    memory = await _load(principal, memory_id, access.WRITE)
    wanted = _distinct(asset_ids)
    async with db.transaction() as conn:
        removed = await conn.fetch(
            "DELETE FROM memory_assets WHERE memory_id = $1 AND asset_id = ANY($2::uuid[]) RETURNING id, asset_id",
            memory["id"], wanted,
        )
        await _link_events(conn, memory, removed, "memory_asset_removed")
        if removed:
            await _touch(conn, memory["id"])
    gone = {r["asset_id"] for r in removed}
    outcomes, seen = [], set()
    for asset_id in asset_ids:
        outcomes.append(AssetOutcome(asset_id, None if asset_id in gone and asset_id not in seen else "not_found"))
        seen.add(asset_id)
    return outcomes


# --- the daily jobs -----------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), timezone.utc)


async def _on_this_day(conn, library_id: uuid.UUID, owner_id: uuid.UUID, target: date) -> int:
    """The library's memories for one day: one per earlier year with qualifying photos, unless the
    same memory exists already (a run repeated for the day makes none twice). How many were made."""
    rows = await conn.fetch(
        """
        SELECT year, array_agg(id ORDER BY local_datetime, id) AS asset_ids FROM (
            SELECT a.id, a.local_datetime, extract(year FROM a.local_datetime)::int AS year,
                   row_number() OVER (PARTITION BY extract(year FROM a.local_datetime)
                                      ORDER BY a.local_datetime, a.id) AS n
            FROM assets a
            WHERE a.library_id = $1 AND a.visibility = 'timeline' AND a.trashed_at IS NULL
              AND extract(month FROM a.local_datetime) = $2 AND extract(day FROM a.local_datetime) = $3
              AND extract(year FROM a.local_datetime) < $4
              AND EXISTS (SELECT 1 FROM asset_files f WHERE f.asset_id = a.id AND f.kind = 'preview')
        ) found WHERE n <= $5 GROUP BY year ORDER BY year DESC
        """,
        library_id, target.month, target.day, target.year, ASSETS_PER_YEAR,
    )
    show_at = _day_start(target)
    hide_at = show_at + timedelta(days=1) - timedelta(milliseconds=1)
    made = 0
    for r in rows:
        memory = await conn.fetchrow(
            "INSERT INTO memories (owner_id, library_id, type, data, memory_at, show_at, hide_at)"
            " SELECT $1, $2, $3, jsonb_build_object('year', $4::int), $5, $6, $7"
            " WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.owner_id = $1 AND m.library_id = $2"
            "   AND m.type = $3 AND m.show_at = $6 AND m.data->>'year' = $4::text)"
            " RETURNING *",
            owner_id, library_id, ON_THIS_DAY, r["year"], _day_start(target.replace(year=r["year"])), show_at, hide_at,
        )
        if memory is None:
            continue
        await _event(conn, memory, "memory_created")
        await _link(conn, memory, list(r["asset_ids"]))
        made += 1
    return made


async def _libraries(owner_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    """Live libraries of live accounts (one owner's, when named)."""
    return await db.fetch(
        "SELECT l.id, l.owner_id FROM libraries l JOIN users u ON u.id = l.owner_id"
        " WHERE l.trashed_at IS NULL AND u.deleted_at IS NULL AND ($1::uuid IS NULL OR l.owner_id = $1)"
        " ORDER BY l.id",
        owner_id,
    )


def _window(today: date) -> list[date]:
    return [today + timedelta(days=i) for i in range(-DAYS_AROUND, DAYS_AROUND + 1)]


async def generate(today: date | None = None) -> int:
    """Immich's MemoryGenerate: each day of the window not done yet, for every live library, in
    one transaction a day that also records the day as done. Runs are serialised, so two workers
    never make the same day's memories. How many memories were made."""
    window = _window(today or datetime.now(timezone.utc).date())
    made = 0
    for target in window:
        async with db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            stored = await conn.fetchval("SELECT value FROM system_metadata WHERE key = $1", STATE_KEY)
            state = (json.loads(stored) if isinstance(stored, str) else stored) or {}
            last = state.get("lastOnThisDayDate")
            # Never run before: Immich counts the window's first day as done.
            done = datetime.fromisoformat(last).date() if last else window[0]
            if done >= target:
                continue
            for library in await _libraries():
                made += await _on_this_day(conn, library["id"], library["owner_id"], target)
            await conn.execute(
                "INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()",
                STATE_KEY, json.dumps({**state, "lastOnThisDayDate": _day_start(target).isoformat()}),
            )
    return made


async def generate_for_user(user_id: uuid.UUID, today: date | None = None) -> int:
    """The job's memories for one user's libraries over the whole window now, whatever the job has
    done already (memories that exist are not made again). How many were made."""
    made = 0
    for target in _window(today or datetime.now(timezone.utc).date()):
        async with db.transaction() as conn:
            for library in await _libraries(user_id):
                made += await _on_this_day(conn, library["id"], library["owner_id"], target)
    return made


async def cleanup(now: datetime | None = None) -> tuple[int, int]:
    """Immich's MemoryCleanup: photos that left the timeline (archived, hidden, locked) leave every
    memory, and memories never saved go once older than UNSAVED_KEPT_FOR. (links, memories) removed."""
    cutoff = (now or datetime.now(timezone.utc)) - UNSAVED_KEPT_FOR
    async with db.transaction() as conn:
        links = await conn.fetch(
            "DELETE FROM memory_assets ma USING assets a, memories m"
            " WHERE a.id = ma.asset_id AND m.id = ma.memory_id AND a.visibility <> 'timeline'"
            " RETURNING ma.id, ma.asset_id, ma.memory_id, m.library_id, m.owner_id",
        )
        for link in links:
            await _link_events(conn, {"id": link["memory_id"], "library_id": link["library_id"],
                                      "owner_id": link["owner_id"]}, [link], "memory_asset_removed")
        gone = await conn.fetch("DELETE FROM memories WHERE created_at < $1 AND NOT is_saved RETURNING *", cutoff)
        for memory in gone:
            await _event(conn, memory, "memory_deleted")
    return len(links), len(gone)
