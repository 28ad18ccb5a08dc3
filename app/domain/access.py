"""Access control, in one place: who is calling, and which libraries they may touch.

Every route resolves its caller through authenticate() and every object load
goes through the functions here, so another user's object answers exactly like
a missing one (404), and a credential's action scopes are checked the same way
everywhere.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import asyncpg

from app.db import engine as db
from app.domain import ids
from app.domain.errors import BadRequest, Forbidden, NotFound, Unauthorized

READ = "read"
WRITE = "write"
DELETE = "delete"
DELETE_PERMANENTLY = "delete_permanently"
ALL_ACTIONS = frozenset({READ, WRITE, DELETE, DELETE_PERMANENTLY})

API_KEY_PREFIX = "apikey_"


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    is_admin: bool
    api_key_id: uuid.UUID | None
    actions: frozenset[str]
    # None: every library the user can reach; otherwise only these.
    library_scope: frozenset[uuid.UUID] | None

    def require(self, action: str) -> None:
        if action not in self.actions:
            raise Forbidden(f"This credential does not allow the '{action}' action")

    def in_scope(self, library_id: uuid.UUID) -> bool:
        return self.library_scope is None or library_id in self.library_scope


def hash_api_key(secret: str) -> bytes:
    # Secrets are 256 random bits, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).digest()


async def authenticate_api_key(secret: str) -> Principal:
    if not secret.startswith(API_KEY_PREFIX):
        raise Unauthorized("Invalid credentials")
    row = await db.fetchrow(
        """
        UPDATE api_keys k SET last_used_at = now()
        FROM users u
        WHERE k.secret_hash = $1 AND k.is_active AND u.id = k.user_id AND u.deleted_at IS NULL
        RETURNING k.id, k.user_id, k.actions, k.library_scope_mode, k.library_ids, u.is_admin
        """,
        hash_api_key(secret),
    )
    if row is None:
        raise Unauthorized("Invalid credentials")
    scope = None
    if row["library_scope_mode"] == "selected_libraries":
        scope = frozenset(row["library_ids"])
    return Principal(
        user_id=row["user_id"],
        is_admin=row["is_admin"],
        api_key_id=row["id"],
        actions=frozenset(row["actions"]) & ALL_ACTIONS,
        library_scope=scope,
    )


async def authenticate_bearer(authorization: str | None) -> Principal:
    """An API key, or the session token of a password sign-in (the first-party app session)."""
    if not authorization:
        raise Unauthorized("Not authenticated")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Not authenticated")
    if token.startswith(API_KEY_PREFIX):
        return await authenticate_api_key(token)
    from app.domain import sessions

    principal, _ = await sessions.principal_for_token(token)
    return principal


async def live_library_ids(principal: Principal) -> list[uuid.UUID]:
    rows = await db.fetch(
        "SELECT id FROM libraries WHERE owner_id = $1 AND trashed_at IS NULL ORDER BY created_at, id",
        principal.user_id,
    )
    return [r["id"] for r in rows if principal.in_scope(r["id"])]


async def library_for(principal: Principal, library_id: uuid.UUID | str | None, action: str) -> uuid.UUID:
    """The library a request acts on: the one named, or the caller's only one."""
    principal.require(action)
    if library_id:
        lib = library_id if isinstance(library_id, uuid.UUID) else ids.decode(ids.LIBRARY, library_id)
        found = await db.fetchval(
            "SELECT id FROM libraries WHERE id = $1 AND owner_id = $2 AND trashed_at IS NULL",
            lib,
            principal.user_id,
        )
        if found is None or not principal.in_scope(lib):
            raise NotFound("Library not found")
        return lib
    libraries = await live_library_ids(principal)
    if len(libraries) == 1:
        return libraries[0]
    if not libraries:
        if principal.library_scope is not None:
            raise NotFound("Library not found")
        from app.domain.libraries import create_default_library

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
