"""Library invitations: links by which a library's owner admits other accounts with a role.

An invitation admits up to `max_joiners` distinct accounts until it expires or is disabled. Its
secret is the bearer part of the link: random bytes, shown as url-safe base64, and matched by the
stored bytes together with the invitation id. A wrong secret answers exactly like a missing
invitation (404), so guessing tells nothing. Like membership, invitations are handled from a
signed-in session only, and the change feed has no entity type for them: no event is recorded.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg

from app.db import engine as db
from app.domain import access
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.library_members import ACTIVE, REMOVED, check_role, member_row, session_only

MAX_JOINERS = 10_000
_SECRET_BYTES = 32

# Disablement comes first, then expiry (expires_at is exclusive), then exhaustion.
_STATE = ("CASE WHEN i.disabled_at IS NOT NULL THEN 'disabled' WHEN i.expires_at <= now() THEN 'expired'"
          " WHEN i.joiner_count >= i.max_joiners THEN 'exhausted' ELSE 'active' END")
INVITATION_VIEW = (f"SELECT i.*, {_STATE} AS state, u.name AS created_by_name"
                   " FROM library_invitations i JOIN users u ON u.id = i.created_by")
STATES = ("active", "exhausted", "expired", "disabled")
_NOT_FOUND = "Invitation not found"


def secret_text(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode()


def _secret_bytes(text: str) -> bytes | None:
    """The stored bytes a shown secret stands for; strict, so no other spelling opens the same invitation."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _SECRET_BYTES and secret_text(raw) == text else None


async def create_invitation(principal: access.Principal, library_id: uuid.UUID, *, role: str, max_joiners: int,
                            expires_at: datetime) -> tuple[asyncpg.Record, bool]:
    """Issue an invitation, or return the active one with the same policy. Returns (invitation, created)."""
    session_only(principal)
    check_role(role)
    if not 1 <= max_joiners <= MAX_JOINERS:
        raise Invalid(f"max_joiners must be between 1 and {MAX_JOINERS}", "max_joiners")
    if expires_at.tzinfo is None:
        raise Invalid("expires_at needs a timezone offset", "expires_at")
    if expires_at <= datetime.now(timezone.utc):
        raise Invalid("expires_at must be in the future", "expires_at")
    await access.owned_library(principal, library_id, access.WRITE)
    async with db.transaction() as conn:
        await conn.execute("SELECT 1 FROM libraries WHERE id = $1 FOR NO KEY UPDATE", library_id)
        same = await conn.fetchrow(
            INVITATION_VIEW + " WHERE i.library_id = $1 AND i.role = $2 AND i.max_joiners = $3 AND i.expires_at = $4"
            " ORDER BY i.created_at DESC LIMIT 1",
            library_id, role, max_joiners, expires_at,
        )
        if same is not None:
            if same["state"] != "active":
                raise Conflict(f"An invitation with this policy is {same['state']}: choose another policy")
            return same, False
        new_id = await conn.fetchval(
            "INSERT INTO library_invitations (library_id, created_by, secret, role, max_joiners, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            library_id, principal.user_id, secrets.token_bytes(_SECRET_BYTES), role, max_joiners, expires_at,
        )
        return await conn.fetchrow(INVITATION_VIEW + " WHERE i.id = $1", new_id), True


async def list_invitations(
    principal: access.Principal, library_id: uuid.UUID | None, *, state: str, limit: int,
    starting_after: uuid.UUID | None = None,
) -> tuple[list[asyncpg.Record], bool]:
    """A page of the invitations of the caller's libraries (or one of them), newest first."""
    session_only(principal)
    if library_id is not None:
        await access.owned_library(principal, library_id, access.READ, include_trashed=True)
        libraries = [library_id]
    else:
        rows = await db.fetch("SELECT id FROM libraries WHERE owner_id = $1", principal.user_id)
        libraries = [r["id"] for r in rows if principal.in_scope(r["id"])]
    args: list[Any] = [libraries]
    clauses = ["i.library_id = ANY($1::uuid[])"]
    if state != "all":
        args.append(state)
        clauses.append(f"{_STATE} = ${len(args)}")
    if starting_after is not None:
        cursor = await db.fetchrow(
            "SELECT created_at, id FROM library_invitations WHERE id = $1 AND library_id = ANY($2::uuid[])",
            starting_after, libraries,
        )
        if cursor is None:
            raise NotFound("starting_after_id names no invitation of this list")
        args += [cursor["created_at"], cursor["id"]]
        clauses.append(f"(i.created_at, i.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await db.fetch(
        INVITATION_VIEW + f" WHERE {' AND '.join(clauses)} ORDER BY i.created_at DESC, i.id DESC LIMIT ${len(args)}",
        *args,
    )
    return rows[:limit], len(rows) > limit


async def _owned_invitation(conn: Any, principal: access.Principal, invitation_id: uuid.UUID,
                            lock: str = "") -> asyncpg.Record:
    """An invitation of a library the caller owns, or 404 (whoever else's it is)."""
    if lock:
        await conn.execute("SELECT 1 FROM library_invitations WHERE id = $1 " + lock, invitation_id)
    row = await conn.fetchrow(
        INVITATION_VIEW + " JOIN libraries l ON l.id = i.library_id WHERE i.id = $1 AND l.owner_id = $2",
        invitation_id, principal.user_id,
    )
    if row is None or not principal.in_scope(row["library_id"]):
        raise NotFound(_NOT_FOUND)
    return row


async def invitation_link(principal: access.Principal, invitation_id: uuid.UUID) -> asyncpg.Record:
    """An active invitation, with its secret, for its owner to share the link again."""
    session_only(principal)
    principal.require(access.READ)
    row = await _owned_invitation(db, principal, invitation_id)
    if row["state"] != "active":
        raise Conflict(f"This invitation is {row['state']}: issue a new one")
    return row


async def disable_invitation(principal: access.Principal, invitation_id: uuid.UUID) -> asyncpg.Record:
    """Stop admissions through an invitation (members it admitted stay); disabling again changes nothing."""
    session_only(principal)
    principal.require(access.WRITE)
    async with db.transaction() as conn:
        row = await _owned_invitation(conn, principal, invitation_id, lock="FOR UPDATE")
        if row["disabled_at"] is None:
            await conn.execute(
                "UPDATE library_invitations SET disabled_at = now(), updated_at = now() WHERE id = $1", invitation_id
            )
        return await conn.fetchrow(INVITATION_VIEW + " WHERE i.id = $1", invitation_id)


# --- the recipient's side ---------------------------------------------------------------------

@dataclass(frozen=True)
class Preview:
    invitation: asyncpg.Record
    library: asyncpg.Record  # id, name, owner_id, owner_name
    current_role: str | None
    eligibility: str


@dataclass(frozen=True)
class Joined:
    outcome: str  # joined | already_member
    library_id: uuid.UUID
    membership: asyncpg.Record | None  # None when the caller owns the library


async def _by_secret(conn: Any, invitation_id: uuid.UUID, secret: str, lock: str = "") -> asyncpg.Record:
    """The invitation this id and secret open, on a live library, or the same 404 for anything else."""
    raw = _secret_bytes(secret) if isinstance(secret, str) else None
    row = None
    if raw:
        row = await conn.fetchrow(
            INVITATION_VIEW + " JOIN libraries l ON l.id = i.library_id"
            f" WHERE i.id = $1 AND i.secret = $2 AND l.trashed_at IS NULL {lock}",
            invitation_id, raw,
        )
    if row is None:
        raise NotFound(_NOT_FOUND)
    return row


async def _eligibility(conn: Any, invitation: asyncpg.Record, user_id: uuid.UUID) -> tuple[str, str | None, Any]:
    """(eligibility, the caller's current role, their membership record or None)."""
    role = await conn.fetchval(
        "SELECT role FROM library_access WHERE library_id = $1 AND user_id = $2", invitation["library_id"], user_id
    )
    member = await conn.fetchrow(
        "SELECT * FROM library_members WHERE library_id = $1 AND user_id = $2", invitation["library_id"], user_id
    )
    if role is not None:
        return "already_member", role, member
    if invitation["state"] in ("disabled", "expired"):
        return invitation["state"], None, member
    if member is not None and member["state"] == REMOVED and member["last_removed_at"] >= invitation["created_at"]:
        # The owner removed this account after issuing the invitation: it may not bring them back.
        return "new_invitation_required", None, member
    counted = member is not None and member["invitation_id"] == invitation["id"]
    if invitation["state"] == "exhausted" and not counted:
        return "exhausted", None, member
    return "joinable", None, member


async def preview_invitation(principal: access.Principal, invitation_id: uuid.UUID, secret: str) -> Preview:
    session_only(principal)
    principal.require(access.READ)
    invitation = await _by_secret(db, invitation_id, secret)
    eligibility, role, _ = await _eligibility(db, invitation, principal.user_id)
    library = await db.fetchrow(
        "SELECT l.id, l.name, l.owner_id, u.name AS owner_name FROM libraries l JOIN users u ON u.id = l.owner_id"
        " WHERE l.id = $1",
        invitation["library_id"],
    )
    return Preview(invitation=invitation, library=library, current_role=role, eligibility=eligibility)


_REFUSED = {
    "disabled": "This invitation has been disabled: ask the owner for a new one",
    "expired": "This invitation has expired: ask the owner for a new one",
    "exhausted": "This invitation has no places left: ask the owner for a new one",
    "new_invitation_required": "You were removed from this library after this invitation was issued:"
                               " ask the owner for a new one",
}


async def join(principal: access.Principal, invitation_id: uuid.UUID, secret: str) -> Joined:
    """Admit the caller with the invitation's role, counting each account once, or return their access unchanged."""
    session_only(principal)
    principal.require(access.READ)
    async with db.transaction() as conn:
        # The invitation's row lock serialises joiners, so the count never passes max_joiners.
        invitation = await _by_secret(conn, invitation_id, secret, lock="FOR UPDATE OF i")
        eligibility, role, member = await _eligibility(conn, invitation, principal.user_id)
        if eligibility == "already_member":
            membership = None if role == access.OWNER else await member_row(conn, member["id"])
            return Joined("already_member", invitation["library_id"], membership)
        if eligibility != "joinable":
            raise Conflict(_REFUSED[eligibility])
        if member is None or member["invitation_id"] != invitation["id"]:
            await conn.execute(
                "UPDATE library_invitations SET joiner_count = joiner_count + 1, updated_at = now() WHERE id = $1",
                invitation["id"],
            )
        membership_id = await conn.fetchval(
            """
            INSERT INTO library_members (library_id, user_id, role, state, invitation_id)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (library_id, user_id) DO UPDATE
                SET role = excluded.role, state = excluded.state, invitation_id = excluded.invitation_id,
                    joined_at = now(), ended_at = NULL, updated_at = now()
            RETURNING id
            """,
            invitation["library_id"], principal.user_id, invitation["role"], ACTIVE, invitation["id"],
        )
        return Joined("joined", invitation["library_id"], await member_row(conn, membership_id))
