"""Notifications: short messages for one user (Immich's notifications), which its clients list, mark
read and remove.

An administrator creates them for any user; the server may raise its own (job failures and the
like) with `notify`. Only the user a notification is for reads, changes or removes it: any other
caller, the administrator included, is told it does not exist. Removing one hides it at once
(deleted_at); the row stays, as Immich keeps removed ones a few days. Every write records its
change event for the notification's user, which also carries a new one live to that user's clients.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from app.db import engine as db
from app.domain import access, events
from app.domain.errors import Invalid, NotFound

LEVELS = ("success", "error", "warning", "info")
TYPES = ("JobFailed", "BackupFailed", "SystemMessage", "AlbumInvite", "AlbumUpdate", "Custom")
DEFAULT_LEVEL = "info"
DEFAULT_TYPE = "Custom"

ENTITY_TYPE = "notification"
CREATED = "notification_created"
UPDATED = "notification_updated"
DELETED = "notification_deleted"

_COLUMNS = "id, user_id, level, type, title, description, data, read_at, created_at"


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


# update()'s read_at when the caller leaves it as it is (None marks it unread).
UNCHANGED: Any = _Unchanged()


@dataclass(frozen=True)
class NotificationFilter:
    """Which of the caller's notifications to list; every field left None narrows nothing.
    `unread` True keeps the unread ones; False, as in Immich, narrows nothing."""

    id: uuid.UUID | None = None
    level: str | None = None
    type: str | None = None
    unread: bool | None = None


def _decoded(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out["data"], str):
        out["data"] = json.loads(out["data"])
    return out


def _missing(ids: Sequence[uuid.UUID]) -> NotFound:
    return NotFound("Notification not found", kind=ENTITY_TYPE, ids=tuple(ids))


def _check(level: str, kind: str) -> None:
    if level not in LEVELS:
        raise Invalid(f"level must be one of {', '.join(LEVELS)}", "level")
    if kind not in TYPES:
        raise Invalid(f"type must be one of {', '.join(TYPES)}", "type")


async def list_notifications(principal: access.Principal,
                             wanted: NotificationFilter = NotificationFilter()) -> list[dict[str, Any]]:
    """The caller's live notifications the filter keeps, newest first."""
    principal.require(access.READ)
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM notifications WHERE user_id = $1 AND deleted_at IS NULL"
        " AND ($2::uuid IS NULL OR id = $2) AND ($3::text IS NULL OR level = $3)"
        " AND ($4::text IS NULL OR type = $4) AND (NOT $5 OR read_at IS NULL)"
        " ORDER BY created_at DESC, id DESC",
        principal.user_id, wanted.id, wanted.level, wanted.type, wanted.unread is True,
    )
    return [_decoded(r) for r in rows]


async def get(principal: access.Principal, notification_id: uuid.UUID) -> dict[str, Any]:
    principal.require(access.READ)
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM notifications WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
        notification_id, principal.user_id)
    if row is None:
        raise _missing([notification_id])
    return _decoded(row)


async def _owned(conn: asyncpg.Connection, principal: access.Principal, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The distinct ids, each the caller's and live, locked against a concurrent change; any other
    id refuses them all, as Immich's access check does."""
    wanted = list(dict.fromkeys(ids))
    found = await conn.fetch(
        "SELECT id FROM notifications WHERE id = ANY($1::uuid[]) AND user_id = $2 AND deleted_at IS NULL"
        " FOR UPDATE", wanted, principal.user_id)
    if len(found) != len(wanted):
        raise _missing([i for i in wanted if i not in {r["id"] for r in found}])
    return wanted


async def update(principal: access.Principal, ids: Sequence[uuid.UUID], *,
                 read_at: datetime | None = UNCHANGED) -> None:
    """Mark the caller's notifications read at `read_at`, or unread (None)."""
    principal.require(access.WRITE)
    async with db.transaction() as conn:
        wanted = await _owned(conn, principal, ids)
        if read_at is UNCHANGED:
            return
        await conn.execute("UPDATE notifications SET read_at = $2 WHERE id = ANY($1::uuid[])", wanted, read_at)
        await events.record_many(conn, entity_type=ENTITY_TYPE, event_type=UPDATED,
                                 rows=[(i, None, principal.user_id) for i in wanted])


async def delete(principal: access.Principal, ids: Sequence[uuid.UUID]) -> None:
    """Remove the caller's notifications: gone from every list and lookup at once."""
    principal.require(access.DELETE)
    async with db.transaction() as conn:
        wanted = await _owned(conn, principal, ids)
        await conn.execute("UPDATE notifications SET deleted_at = now() WHERE id = ANY($1::uuid[])", wanted)
        await events.record_many(conn, entity_type=ENTITY_TYPE, event_type=DELETED,
                                 rows=[(i, None, principal.user_id) for i in wanted])


async def notify(user_id: uuid.UUID, title: str, *, level: str = DEFAULT_LEVEL, type: str = DEFAULT_TYPE,
                 description: str | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new notification for a live user, from the server itself (the caller decided it is due)."""
    _check(level, type)
    async with db.transaction() as conn:
        # KEY SHARE holds the user against deletion until the insert commits.
        if await conn.fetchval("SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL FOR KEY SHARE",
                               user_id) is None:
            raise NotFound("User not found", kind="user", ids=(user_id,))
        row = await conn.fetchrow(
            "INSERT INTO notifications (user_id, level, type, title, description, data)"
            f" VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING {_COLUMNS}",
            user_id, level, type, title, description, None if data is None else json.dumps(data))
        await events.record(conn, entity_type=ENTITY_TYPE, entity_id=row["id"], event_type=CREATED,
                            library_id=None, owner_id=user_id)
    return _decoded(row)


async def create(principal: access.Principal, user_id: uuid.UUID, title: str, *, level: str = DEFAULT_LEVEL,
                 type: str = DEFAULT_TYPE, description: str | None = None,
                 data: dict[str, Any] | None = None) -> dict[str, Any]:
    """An administrator's notification for a user. Like Immich, it starts unread whatever the
    request says of readAt."""
    principal.require(access.WRITE)
    principal.require_admin()
    return await notify(user_id, title, level=level, type=type, description=description, data=data)


async def for_delivery(ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    """Live notifications by id, for the live-event layer that tells their users of them."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM notifications WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL"
        " ORDER BY created_at, id", list(ids))
    return [_decoded(r) for r in rows]
