"""Scoped loading, in one place: given a Principal, the libraries and objects it may touch.

Every object load goes through the functions here, so another user's object answers exactly
like a missing one (404), and a credential's action and library scopes are checked the same
way everywhere. Who the caller is comes from app.domain.authentication; the Principal type
and the action names live in app.domain.principal and are re-exported here, so callers
name them as access.Principal, access.READ and so on.
"""

from __future__ import annotations

import uuid

import asyncpg

from app.db import engine as db
from app.domain.errors import BadRequest, Forbidden, NotFound
from app.domain.libraries import create_default_library
from app.domain.principal import ALL_ACTIONS, DELETE, DELETE_PERMANENTLY, READ, WRITE, Principal

__all__ = [
    "ALL_ACTIONS", "DELETE", "DELETE_PERMANENTLY", "READ", "WRITE", "Principal", "OWNER", "COLLABORATOR",
    "VIEWER", "ROLE_ACTIONS", "library_for", "library_role", "live_library_ids", "load_asset", "load_face",
    "load_person", "owned_library", "preferred_library",
]

# A library's owner, or a member with a role (library_members). What each role may do to the
# library's content; the library itself (rename, trash, delete, members, invitations) is the owner's.
OWNER = "owner"
COLLABORATOR = "collaborator"
VIEWER = "viewer"
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    OWNER: ALL_ACTIONS,
    COLLABORATOR: frozenset({READ, WRITE, DELETE}),  # adds and edits, trashes; never erases for good
    VIEWER: frozenset({READ}),
}


def _role_allows(role: str, action: str) -> bool:
    return action in ROLE_ACTIONS[role]


async def library_role(principal: Principal, library_id: uuid.UUID, *, include_trashed: bool = False) -> str | None:
    """The caller's role in a library (owner, collaborator, viewer), or None: no access, out of the
    credential's scope, or trashed (unless asked for)."""
    if not principal.in_scope(library_id):
        return None
    row = await db.fetchrow(
        "SELECT role, trashed_at FROM library_access WHERE library_id = $1 AND user_id = $2",
        library_id, principal.user_id,
    )
    if row is None or (row["trashed_at"] is not None and not include_trashed):
        return None
    return row["role"]


async def live_library_ids(principal: Principal) -> list[uuid.UUID]:
    """The live libraries the caller owns, within its credential's scope."""
    rows = await db.fetch(
        "SELECT id FROM libraries WHERE owner_id = $1 AND trashed_at IS NULL ORDER BY created_at, id",
        principal.user_id,
    )
    return [r["id"] for r in rows if principal.in_scope(r["id"])]


async def owned_library(principal: Principal, library_id: uuid.UUID, action: str, *,
                        include_trashed: bool = False) -> asyncpg.Record:
    """A library the caller owns, for what only an owner does (rename, trash, members, invitations).
    404 without access; 403 for a member, who can see the library but not run it."""
    principal.require(action)
    role = await library_role(principal, library_id, include_trashed=include_trashed)
    if role is None:
        raise NotFound("Library not found")
    if role != OWNER:
        raise Forbidden("Only the library's owner may do this")
    return await db.fetchrow("SELECT * FROM libraries WHERE id = $1", library_id)


async def library_for(principal: Principal, library_id: uuid.UUID | None, action: str) -> uuid.UUID:
    """The library a request acts on: the one named (owned or shared with the caller, and its role
    must allow the action), or, when none is named, the caller's only own library. A shared library
    is always named: joining one never changes where an unnamed request goes."""
    principal.require(action)
    if library_id is not None:
        role = await library_role(principal, library_id)
        if role is None:
            raise NotFound("Library not found")
        if not _role_allows(role, action):
            raise Forbidden(f"A library {role} may not {action.replace('_', ' ')} here")
        return library_id
    libraries = await live_library_ids(principal)
    if len(libraries) == 1:
        return libraries[0]
    if not libraries:
        if principal.library_scope is not None:
            raise NotFound("Library not found")
        return await create_default_library(principal.user_id)
    raise BadRequest("library_id is required because you have more than one library")


async def _load_owned(principal: Principal, action: str, sql: str, object_id: uuid.UUID, name: str,
                      library_id: uuid.UUID | None = None) -> asyncpg.Record:
    """A row in a live library the caller owns and may reach, or 404 whether missing or someone else's.

    `sql` selects the row by $1 and must join `libraries l` and filter `l.owner_id = $2`.
    """
    principal.require(action)
    row = await db.fetchrow(sql, object_id, principal.user_id)
    if row is None or not principal.in_scope(row["library_id"]) or (
        library_id is not None and row["library_id"] != library_id
    ):
        raise NotFound(f"{name} not found")
    return row


async def load_asset(principal: Principal, asset_id: uuid.UUID, action: str) -> asyncpg.Record:
    """One asset the caller may act on, or 404 whether it is missing or someone else's."""
    return await _load_owned(
        principal, action,
        "SELECT a.* FROM assets a JOIN libraries l ON l.id = a.library_id"
        " WHERE a.id = $1 AND l.owner_id = $2 AND l.trashed_at IS NULL",
        asset_id, "Asset",
    )


async def preferred_library(principal: Principal) -> uuid.UUID:
    """The one library a single-library client (Immich) sees: the chosen one, else the default."""
    row = await db.fetchrow("SELECT immich_library_id, default_library_id FROM users WHERE id = $1", principal.user_id)
    live = await live_library_ids(principal)
    for candidate in (row["immich_library_id"], row["default_library_id"]) if row else ():
        if candidate in live:
            return candidate
    if live:
        return live[0]
    return await library_for(principal, None, WRITE)


async def load_person(principal: Principal, person_id: uuid.UUID, action: str) -> asyncpg.Record:
    """One person the caller may act on, or 404 whether it is missing or someone else's."""
    return await _load_owned(
        principal, action,
        "SELECT p.* FROM people p JOIN libraries l ON l.id = p.library_id"
        " WHERE p.id = $1 AND l.owner_id = $2 AND l.trashed_at IS NULL",
        person_id, "Person",
    )


async def load_face(principal: Principal, face_id: uuid.UUID, action: str,
                    library_id: uuid.UUID | None = None) -> asyncpg.Record:
    """One face on a live asset the caller may act on (a trashed asset's faces are hidden), or 404."""
    return await _load_owned(
        principal, action,
        "SELECT f.* FROM faces f JOIN assets a ON a.id = f.asset_id JOIN libraries l ON l.id = f.library_id"
        " WHERE f.id = $1 AND l.owner_id = $2 AND l.trashed_at IS NULL AND a.trashed_at IS NULL",
        face_id, "Face", library_id,
    )
