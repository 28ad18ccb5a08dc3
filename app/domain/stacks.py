"""Stacks: groups of frames (bursts, RAW+JPEG) shown as one tile."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from app.db import engine as db
from app.domain import access, events
from app.domain.errors import Conflict, Invalid, NotFound

MAX_IDS = 200

_STACK_VIEW = """
SELECT s.*,
       (SELECT count(*) FROM assets a WHERE a.stack_id = s.id AND a.trashed_at IS NULL) AS asset_count
FROM stacks s
"""


async def _event(conn, stack, event_type: str) -> None:
    await events.record(conn, entity_type="stack", entity_id=stack["id"], event_type=event_type,
                        library_id=stack["library_id"], owner_id=stack["owner_id"])


async def _asset_events(conn, rows: list[asyncpg.Record]) -> None:
    for r in rows:  # asset_updated carries the stack membership at event time
        stack = r["stack_id"]
        await events.record(conn, entity_type=events.ASSET, entity_id=r["id"], event_type="asset_updated",
                            library_id=r["library_id"], owner_id=r["owner_id"],
                            payload={"stack_id": None if stack is None else str(stack)})


async def clear_covers(conn, asset_ids: list[uuid.UUID]) -> None:
    """Stacks whose pinned cover is being deleted lose the pin, with an event."""
    rows = await conn.fetch(
        "UPDATE stacks SET primary_asset_id = NULL, updated_at = now() WHERE primary_asset_id = ANY($1::uuid[])"
        " RETURNING *",
        asset_ids,
    )
    for row in rows:
        await _event(conn, row, "stack_updated")


async def dissolve_if_too_small(conn: asyncpg.Connection, stack_ids: list[uuid.UUID]) -> None:
    """A stack left with fewer than two members (trashed ones count) dissolves."""
    for stack_id in stack_ids:
        stack = await conn.fetchrow("SELECT * FROM stacks WHERE id = $1 FOR UPDATE", stack_id)
        if stack is None:
            continue
        members = await conn.fetch("SELECT * FROM assets WHERE stack_id = $1", stack_id)
        if len(members) >= 2:
            continue
        released = await conn.fetch("UPDATE assets SET stack_id = NULL, updated_at = now() WHERE stack_id = $1"
                                    " RETURNING *", stack_id)
        await conn.execute("DELETE FROM stacks WHERE id = $1", stack_id)
        await _asset_events(conn, released)
        await _event(conn, stack, "stack_deleted")


async def get_stack(principal: access.Principal, stack_id: uuid.UUID, action: str = access.READ) -> asyncpg.Record:
    return await access.load_reachable(principal, action, _STACK_VIEW, stack_id, NotFound("Stack not found", kind="stack", ids=(stack_id,)))


async def member_ids(stack_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    rows = await db.fetch(
        "SELECT stack_id, id FROM assets WHERE stack_id = ANY($1::uuid[]) AND trashed_at IS NULL"
        " ORDER BY local_datetime, id",
        stack_ids,
    )
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    for r in rows:
        out.setdefault(r["stack_id"], []).append(r["id"])
    return out


ORIGINS = ("auto_burst", "user")


async def list_stacks(
    principal: access.Principal, library_id: uuid.UUID | None, *, stack_ids: list[uuid.UUID] | None = None,
    origin: str | None = None, primary_asset_id: uuid.UUID | None = None, limit: int,
    starting_after: uuid.UUID | None = None,
) -> tuple[list[asyncpg.Record], bool]:
    """One page of the library's stacks in id order, after `starting_after`."""
    library = await access.library_for(principal, library_id, access.READ)
    args: list[Any] = [library]
    clauses = ["s.library_id = $1"]
    if stack_ids is not None:
        if len(stack_ids) > MAX_IDS:
            raise Invalid(f"At most {MAX_IDS} ids", "stack_ids")
        args.append(stack_ids)
        clauses.append(f"s.id = ANY(${len(args)}::uuid[])")
    if origin is not None:
        if origin not in ORIGINS:
            raise Invalid("origin must be auto_burst or user", "origin")
        args.append(origin)
        clauses.append(f"s.origin = ${len(args)}")
    if primary_asset_id is not None:
        args.append(primary_asset_id)
        clauses.append(f"s.primary_asset_id = ${len(args)}")
    if starting_after is not None:
        args.append(starting_after)
        clauses.append(f"s.id > ${len(args)}")
    args.append(limit + 1)
    rows = await db.fetch(_STACK_VIEW + f" WHERE {' AND '.join(clauses)} ORDER BY s.id LIMIT ${len(args)}", *args)
    return rows[:limit], len(rows) > limit


def _distinct(asset_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(asset_ids) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} asset ids", "asset_ids")
    return list(dict.fromkeys(asset_ids))


async def _lock_members(conn, library_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The assets, locked; any id that is not an asset of this library (unknown, another user's,
    another library's) is the same 404, so the answer never tells which ids exist."""
    rows = await conn.fetch(
        "SELECT * FROM assets WHERE id = ANY($1::uuid[]) AND library_id = $2 ORDER BY id FOR UPDATE",
        asset_ids, library_id,
    )
    if len(rows) != len(asset_ids):
        found = {r["id"] for r in rows}
        missing = next(i for i in asset_ids if i not in found)
        raise NotFound(f"Asset {missing} not found", kind="asset", ids=(missing,))
    return rows


async def _join(conn, stack: asyncpg.Record, asset_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """Point assets at `stack`, folding in old stacks whose pinned cover moves, then tidy the old ones."""
    rows = await _lock_members(conn, stack["library_id"], asset_ids)
    moving = {r["id"] for r in rows if r["stack_id"] != stack["id"]}
    old_stacks = {r["stack_id"] for r in rows if r["stack_id"] not in (None, stack["id"])}
    for old in list(old_stacks):
        pinned = await conn.fetchval("SELECT primary_asset_id FROM stacks WHERE id = $1", old)
        if pinned in moving:  # its cover moves: the whole old stack comes along
            moving |= {r["id"] for r in await conn.fetch("SELECT id FROM assets WHERE stack_id = $1", old)}
    if not moving:
        return []
    changed = await conn.fetch(
        "UPDATE assets SET stack_id = $1, updated_at = now() WHERE id = ANY($2::uuid[]) RETURNING *",
        stack["id"], list(moving),
    )
    await _asset_events(conn, changed)
    await dissolve_if_too_small(conn, list(old_stacks))
    return changed


async def create_stack(
    principal: access.Principal, library_id: uuid.UUID | None, asset_ids: list[uuid.UUID],
    primary_asset_id: uuid.UUID | None,
) -> asyncpg.Record:
    library = await access.library_for(principal, library_id, access.WRITE)
    members = _distinct(asset_ids)
    if len(members) < 2:
        raise Invalid("A stack needs at least two distinct assets", "asset_ids")
    if primary_asset_id is not None and primary_asset_id not in members:
        raise Invalid("primary_asset_id must be one of asset_ids", "primary_asset_id")
    async with db.transaction() as conn:
        # NO KEY UPDATE: serialises creators in this library without blocking the foreign-key checks
        # (KEY SHARE) of every insert that names the library. FOR UPDATE deadlocked with a media step
        # that holds its asset row and inserts its next task in the same transaction.
        await conn.execute("SELECT 1 FROM libraries WHERE id = $1 FOR NO KEY UPDATE", library)
        # Before the insert: an unknown primary would otherwise fail its foreign key (a 500), while
        # another user's asset answered 404, telling the caller which ids exist.
        await _lock_members(conn, library, members)
        # A member's stack is still the library owner's, like everything in the library.
        stack = await conn.fetchrow(
            "INSERT INTO stacks (library_id, owner_id, origin, primary_asset_id)"
            " SELECT id, owner_id, 'user', $2 FROM libraries WHERE id = $1 RETURNING *",
            library, primary_asset_id,
        )
        await _event(conn, stack, "stack_created")
        await _join(conn, stack, members)
    return await get_stack(principal, stack["id"])


async def set_cover(
    principal: access.Principal, stack_id: uuid.UUID, primary_asset_id: uuid.UUID | None
) -> asyncpg.Record:
    """Pins the stack's cover; None stands for an id that names no asset (never a member)."""
    stack = await get_stack(principal, stack_id, access.WRITE)
    async with db.transaction() as conn:
        ok = primary_asset_id is not None and await conn.fetchval(
            "SELECT 1 FROM assets WHERE id = $1 AND stack_id = $2 AND trashed_at IS NULL", primary_asset_id, stack["id"]
        )
        if not ok:
            raise Invalid("primary_asset_id must be a live member of this stack", "primary_asset_id")
        row = await conn.fetchrow(
            "UPDATE stacks SET primary_asset_id = $2, origin = 'user', updated_at = now() WHERE id = $1 RETURNING *",
            stack["id"], primary_asset_id,
        )
        await _event(conn, row, "stack_updated")
    return await get_stack(principal, stack["id"])


async def add_assets(principal: access.Principal, stack_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> asyncpg.Record:
    stack = await get_stack(principal, stack_id, access.WRITE)
    members = _distinct(asset_ids)
    async with db.transaction() as conn:
        locked = await conn.fetchrow("SELECT * FROM stacks WHERE id = $1 FOR UPDATE", stack["id"])
        if locked is None:
            raise Conflict("The stack no longer exists")
        changed = await _join(conn, locked, members)
        if changed:  # a membership change freezes the stack as the user's
            row = await conn.fetchrow(
                "UPDATE stacks SET origin = 'user', updated_at = now() WHERE id = $1 RETURNING *", stack["id"]
            )
            await _event(conn, row, "stack_updated")
    return await get_stack(principal, stack["id"])


async def remove_assets(principal: access.Principal, stack_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> None:
    """Releases those of the assets that are members; ids naming no member are ignored."""
    stack = await get_stack(principal, stack_id, access.WRITE)
    wanted = _distinct(asset_ids)
    async with db.transaction() as conn:
        locked = await conn.fetchrow("SELECT * FROM stacks WHERE id = $1 FOR UPDATE", stack["id"])
        if locked is None:
            raise Conflict("The stack no longer exists")
        released = await conn.fetch(
            "UPDATE assets SET stack_id = NULL, updated_at = now() WHERE stack_id = $1 AND id = ANY($2::uuid[])"
            " RETURNING *",
            stack["id"], wanted,
        )
        if not released:
            return
        await _asset_events(conn, released)
        pin_cleared = locked["primary_asset_id"] in {r["id"] for r in released}
        row = await conn.fetchrow(
            "UPDATE stacks SET origin = 'user', updated_at = now(),"
            " primary_asset_id = CASE WHEN $2 THEN NULL ELSE primary_asset_id END WHERE id = $1 RETURNING *",
            stack["id"], pin_cleared,
        )
        await _event(conn, row, "stack_updated")
        await dissolve_if_too_small(conn, [stack["id"]])


async def delete_stack(principal: access.Principal, stack_id: uuid.UUID) -> None:
    stack = await get_stack(principal, stack_id, access.WRITE)
    async with db.transaction() as conn:
        locked = await conn.fetchrow("SELECT * FROM stacks WHERE id = $1 FOR UPDATE", stack["id"])
        if locked is None:
            raise Conflict("The stack no longer exists")
        released = await conn.fetch(
            "UPDATE assets SET stack_id = NULL, updated_at = now() WHERE stack_id = $1 RETURNING *", stack["id"]
        )
        await conn.execute("DELETE FROM stacks WHERE id = $1", stack["id"])
        await _asset_events(conn, released)
        await _event(conn, locked, "stack_deleted")


async def live_counts(stack_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await db.fetch(
        "SELECT stack_id, count(*) AS n FROM assets WHERE stack_id = ANY($1::uuid[]) AND trashed_at IS NULL"
        " GROUP BY stack_id",
        stack_ids,
    )
    return {r["stack_id"]: r["n"] for r in rows}


async def live_members(stack_id: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM assets WHERE stack_id = $1 AND trashed_at IS NULL ORDER BY local_datetime, id", stack_id
    )


# --- one member out, and every stack of a library (Immich's stack search and member removal) -----


async def remove_member(principal: access.Principal, stack_id: uuid.UUID, asset_id: uuid.UUID) -> None:
    """Takes one asset out of its stack. It must be a member, and not the cover in effect (the pinned
    one, else the first live member): a stack's cover is changed first, then the old one removed."""
    stack = await get_stack(principal, stack_id, access.WRITE)
    member = await db.fetchval("SELECT 1 FROM assets WHERE id = $1 AND stack_id = $2", asset_id, stack["id"])
    if not member:
        raise Invalid("Asset not in stack", "asset_id")
    live = await live_members(stack["id"])
    cover = stack["primary_asset_id"] or (live[0]["id"] if live else None)
    if asset_id == cover:
        raise Invalid("Cannot remove stack's primary asset", "asset_id")
    await remove_assets(principal, stack["id"], [asset_id])


async def all_stacks(principal: access.Principal, library_id: uuid.UUID | None, *,
                     cover_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    """Every stack of the library (read page by page), or those whose cover in effect is `cover_id`."""
    out: list[asyncpg.Record] = []
    after = None
    while True:
        page, more = await list_stacks(principal, library_id, limit=500, starting_after=after)
        out.extend(page)
        if not more:
            break
        after = page[-1]["id"]
    if cover_id is None:
        return out
    members = await member_ids([s["id"] for s in out])
    return [s for s in out if (s["primary_asset_id"] or next(iter(members.get(s["id"], [])), None)) == cover_id]
