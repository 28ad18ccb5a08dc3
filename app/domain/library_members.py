"""Library members: the accounts a library's owner shares it with, each with a role and a state.

A membership record is kept for every account that ever joined (one per library and account):
`active` grants its role, `left` and `removed` grant nothing. `last_removed_at` is the owner's
removal cutoff: an invitation issued before it cannot readmit the account.

Membership is managed from a signed-in session only (the SDK's contract), never with an API key.
The change feed has no entity type for memberships, so these writes record no event.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from app.db import engine as db
from app.domain import access
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound

ACTIVE, LEFT, REMOVED = "active", "left", "removed"
MEMBER_ROLES = (access.VIEWER, access.COLLABORATOR)
MEMBER_VIEW = "SELECT m.*, u.name AS user_name FROM library_members m JOIN users u ON u.id = m.user_id"


def session_only(principal: access.Principal) -> None:
    """Sharing is between people: an API key (a program acting for its user) may not manage it."""
    if principal.api_key_id is not None:
        raise Forbidden("Library members and invitations are managed from a signed-in session, not an API key")


def check_role(role: str, field: str = "role") -> None:
    if role not in MEMBER_ROLES:
        raise Invalid("role must be viewer or collaborator", field)


async def member_row(conn: Any, membership_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(MEMBER_VIEW + " WHERE m.id = $1", membership_id)


async def list_members(
    principal: access.Principal, library_id: uuid.UUID, *, state: str, limit: int,
    starting_after: uuid.UUID | None = None,
) -> tuple[list[asyncpg.Record], bool]:
    """A page of the library's membership records, newest first; `state` is one state or `all`."""
    session_only(principal)
    await access.owned_library(principal, library_id, access.READ, include_trashed=True)
    args: list[Any] = [library_id]
    clauses = ["m.library_id = $1"]
    if state != "all":
        args.append(state)
        clauses.append(f"m.state = ${len(args)}")
    if starting_after is not None:
        cursor = await db.fetchrow(
            "SELECT created_at, id FROM library_members WHERE id = $1 AND library_id = $2", starting_after, library_id
        )
        if cursor is None:
            raise NotFound("starting_after_id names no membership of this library")
        args += [cursor["created_at"], cursor["id"]]
        clauses.append(f"(m.created_at, m.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await db.fetch(
        MEMBER_VIEW + f" WHERE {' AND '.join(clauses)} ORDER BY m.created_at DESC, m.id DESC LIMIT ${len(args)}",
        *args,
    )
    return rows[:limit], len(rows) > limit


async def _owned_membership(conn: asyncpg.Connection, library: asyncpg.Record, user_id: uuid.UUID) -> asyncpg.Record:
    if user_id == library["owner_id"]:
        raise Conflict("The library's owner is not a member: their access cannot be changed")
    row = await conn.fetchrow(
        "SELECT * FROM library_members WHERE library_id = $1 AND user_id = $2 FOR UPDATE", library["id"], user_id
    )
    if row is None:
        raise NotFound("Member not found")
    return row


async def update_role(principal: access.Principal, library_id: uuid.UUID, user_id: uuid.UUID,
                      role: str) -> asyncpg.Record:
    """Change an active member's role; the same role again changes nothing."""
    session_only(principal)
    check_role(role)
    library = await access.owned_library(principal, library_id, access.WRITE, include_trashed=True)
    async with db.transaction() as conn:
        row = await _owned_membership(conn, library, user_id)
        if row["state"] != ACTIVE:
            raise Conflict(f"This membership is {row['state']}: only an active member's role can change")
        if row["role"] != role:
            await conn.execute("UPDATE library_members SET role = $2, updated_at = now() WHERE id = $1", row["id"], role)
        return await member_row(conn, row["id"])


async def remove_member(principal: access.Principal, library_id: uuid.UUID, user_id: uuid.UUID) -> asyncpg.Record:
    """End a membership by the owner's decision and set the removal cutoff; removing again changes nothing."""
    session_only(principal)
    library = await access.owned_library(principal, library_id, access.DELETE, include_trashed=True)
    async with db.transaction() as conn:
        row = await _owned_membership(conn, library, user_id)
        if row["state"] != REMOVED:
            # A member who had left keeps their departure time; the cutoff is now either way.
            await conn.execute(
                "UPDATE library_members SET state = 'removed', ended_at = coalesce(ended_at, now()),"
                " last_removed_at = now(), updated_at = now() WHERE id = $1",
                row["id"],
            )
        return await member_row(conn, row["id"])


async def leave(principal: access.Principal, library_id: uuid.UUID) -> asyncpg.Record:
    """End the caller's own membership, even of a trashed library; leaving again changes nothing."""
    session_only(principal)
    principal.require(access.WRITE)
    async with db.transaction() as conn:
        owner = await conn.fetchval("SELECT owner_id FROM libraries WHERE id = $1", library_id)
        if owner is None:
            raise NotFound("Library not found")
        if owner == principal.user_id:
            raise Conflict("The owner cannot leave their own library")
        row = await conn.fetchrow(
            "SELECT * FROM library_members WHERE library_id = $1 AND user_id = $2 FOR UPDATE",
            library_id, principal.user_id,
        )
        if row is None:
            raise NotFound("Library not found")
        if row["state"] == ACTIVE:
            await conn.execute(
                "UPDATE library_members SET state = 'left', ended_at = now(), updated_at = now() WHERE id = $1",
                row["id"],
            )
        return await member_row(conn, row["id"])
