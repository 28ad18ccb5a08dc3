"""Partners (Immich): one user lets another read all their photos.

A partnership is one-way: shared_by lets shared_with read the photos of the library shared_by's
Immich client sees (the grant itself is access._partner_grant). Only the sharer creates or ends
it; only the receiver decides whether those photos appear in its own timeline (in_timeline).
Ending a partnership takes effect on the receiver's next request: nothing is cached.

Every write records a "partner" event naming both users (partner_created / partner_updated /
partner_deleted). A partnership belongs to no library, so its events carry no library_id: the
native feed, which reads one library's events, never shows them; the Immich sync stream and
live events read them by the users in their payload.
"""

from __future__ import annotations

import hashlib
import uuid

import asyncpg

from app.db import engine as db
from app.domain import access, events
from app.domain.errors import BadRequest, Forbidden, NotFound

SHARED_BY = "shared_by"  # partnerships where the caller shares its photos
SHARED_WITH = "shared_with"  # partnerships where someone shares with the caller
DIRECTIONS = (SHARED_BY, SHARED_WITH)


def _with_other_user(other: str) -> str:
    """Partnerships with the other party's account (`other` is the partners column naming it),
    leaving out accounts that are being deleted."""
    return (f"SELECT u.*, p.shared_by_id, p.shared_with_id, p.in_timeline FROM partners p"
            f" JOIN users u ON u.id = p.{other} AND u.deleted_at IS NULL")


_SHARED_BY_VIEW = _with_other_user("shared_with_id")
_SHARED_WITH_VIEW = _with_other_user("shared_by_id")
ENTITY_TYPE = "partner"


def partnership_id(shared_by_id: uuid.UUID, shared_with_id: uuid.UUID) -> uuid.UUID:
    """The change log's entity id of a partnership: a partnership has no id of its own, and
    the pair of users names it for good (re-creating it continues the same entity). The md5 of
    the pair, which SQL computes the same way (migration 2026-11-29T17:20)."""
    return uuid.UUID(hashlib.md5(f"{shared_by_id}:{shared_with_id}".encode()).hexdigest())


async def _event(conn, event_type: str, shared_by_id: uuid.UUID, shared_with_id: uuid.UUID,
                 in_timeline: bool) -> None:
    await events.record(conn, entity_type=ENTITY_TYPE, entity_id=partnership_id(shared_by_id, shared_with_id),
                        event_type=event_type, library_id=None, owner_id=shared_by_id,
                        payload={"shared_by_id": str(shared_by_id), "shared_with_id": str(shared_with_id),
                                 "in_timeline": in_timeline})


def _require_whole_user(principal: access.Principal, action: str) -> None:
    """A partnership is user-wide (all the photos of the sharer's Immich library): a credential limited
    to some libraries neither makes, changes nor ends one."""
    principal.require(action)
    if principal.library_scope is not None:
        raise Forbidden("A key limited to some libraries cannot change what its user shares")


async def create(principal: access.Principal, shared_with_id: uuid.UUID) -> asyncpg.Record:
    """The caller shares its photos with another account; the record carries that account."""
    _require_whole_user(principal, access.WRITE)
    if shared_with_id == principal.user_id:
        raise BadRequest("You cannot be your own partner")
    async with db.transaction() as conn:
        if not await conn.fetchval("SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL", shared_with_id):
            raise BadRequest("Invalid user")
        created = await conn.fetchval(
            "INSERT INTO partners (shared_by_id, shared_with_id) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING true",
            principal.user_id, shared_with_id,
        )
        if not created:
            raise BadRequest("Partner already exists")
        await _event(conn, "partner_created", principal.user_id, shared_with_id, False)
        return await conn.fetchrow(_SHARED_BY_VIEW + " WHERE p.shared_by_id = $1 AND p.shared_with_id = $2",
                                   principal.user_id, shared_with_id)


async def list_partners(principal: access.Principal, direction: str) -> list[asyncpg.Record]:
    """The caller's partnerships in one direction, oldest first, each with the other account."""
    principal.require(access.READ)
    if direction == SHARED_BY:
        query = _SHARED_BY_VIEW + " WHERE p.shared_by_id = $1"
    elif direction == SHARED_WITH:
        query = _SHARED_WITH_VIEW + " WHERE p.shared_with_id = $1"
    else:
        raise BadRequest(f"direction must be one of {', '.join(DIRECTIONS)}")
    return await db.fetch(query + " ORDER BY p.created_at, u.id", principal.user_id)


async def set_in_timeline(principal: access.Principal, shared_by_id: uuid.UUID, in_timeline: bool) -> asyncpg.Record:
    """The receiver shows (or hides) a sharer's photos in its timeline. 404 when that account does
    not share with the caller: the sharer cannot decide this for the receiver."""
    _require_whole_user(principal, access.WRITE)
    async with db.transaction() as conn:
        updated = await conn.fetchval(
            "UPDATE partners SET in_timeline = $3, updated_at = now()"
            " WHERE shared_by_id = $1 AND shared_with_id = $2 RETURNING true",
            shared_by_id, principal.user_id, in_timeline,
        )
        if not updated:
            raise NotFound("Partner not found", kind="partner")
        await _event(conn, "partner_updated", shared_by_id, principal.user_id, in_timeline)
        row = await conn.fetchrow(_SHARED_WITH_VIEW + " WHERE p.shared_by_id = $1 AND p.shared_with_id = $2",
                                  shared_by_id, principal.user_id)
    if row is None:  # the sharer's account is being deleted
        raise NotFound("Partner not found", kind="partner")
    return row


async def remove(principal: access.Principal, shared_with_id: uuid.UUID) -> None:
    """The sharer stops sharing with an account. Only the sharer ends a partnership (as in Immich);
    the receiver hides it from its timeline instead."""
    _require_whole_user(principal, access.DELETE)
    async with db.transaction() as conn:
        removed = await conn.fetchval(
            "DELETE FROM partners WHERE shared_by_id = $1 AND shared_with_id = $2 RETURNING in_timeline",
            principal.user_id, shared_with_id,
        )
        if removed is None:
            raise NotFound("Partner not found", kind="partner")
        await _event(conn, "partner_deleted", principal.user_id, shared_with_id, removed)


async def end_all_of(conn, user_id: uuid.UUID) -> None:
    """End every partnership of an account being deleted, both ways, each with its partner_deleted
    event (in the caller's transaction): the other side's clients then drop it like any other."""
    ended = await conn.fetch(
        "DELETE FROM partners WHERE shared_by_id = $1 OR shared_with_id = $1"
        " RETURNING shared_by_id, shared_with_id, in_timeline",
        user_id,
    )
    for row in ended:
        await _event(conn, "partner_deleted", row["shared_by_id"], row["shared_with_id"], row["in_timeline"])
