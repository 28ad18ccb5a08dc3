"""Who is calling: an API key or a session token becomes a Principal.

Above accounts (users), sessions and keys, and below every listener's auth: nothing in the
domain imports this module, so the layers only point one way (authentication -> sessions ->
users -> access -> libraries -> principal).
"""

from __future__ import annotations

import uuid

from app.db import engine as db
from app.domain import access, sessions
from app.domain.errors import Unauthorized
from app.domain.principal import ALL_ACTIONS, Principal
from app.domain.users import API_KEY_PREFIX, hash_api_key


# How stale an API key's last_used_at may get: it is written at most this often.
LAST_USED_EVERY_S = 60


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


async def authenticate_api_key(secret: str) -> Principal:
    if not is_api_key(secret):
        raise Unauthorized("Invalid credentials")
    # The key is read, and its last use written only when the stored one is over a minute old: a
    # write per request would make every request a durable commit (and a new row version).
    row = await db.fetchrow(
        f"""
        WITH k AS (
            SELECT k.id, k.user_id, k.actions, k.library_scope_mode, k.library_ids, k.last_used_at, u.is_admin,
                   {access.library_choices_sql('u')}
            FROM api_keys k JOIN users u ON u.id = k.user_id
            WHERE k.secret_hash = $1 AND k.is_active AND u.deleted_at IS NULL
        ), touched AS (
            UPDATE api_keys SET last_used_at = now() FROM k
            WHERE api_keys.id = k.id AND api_keys.is_active  -- not one deactivated meanwhile
              AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '{LAST_USED_EVERY_S} seconds')
        )
        SELECT * FROM k
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
        libraries=access.library_choices(row),
    )


async def authenticate_session(token: str) -> tuple[Principal, uuid.UUID]:
    """A password sign-in's session token: its principal and the session's id."""
    return await sessions.principal_for_token(token)


async def authenticate_bearer(authorization: str | None) -> Principal:
    """An API key, or the session token of a password sign-in (the first-party app session)."""
    if not authorization:
        raise Unauthorized("Not authenticated")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Not authenticated")
    if is_api_key(token):
        return await authenticate_api_key(token)
    principal, _ = await authenticate_session(token)
    return principal
