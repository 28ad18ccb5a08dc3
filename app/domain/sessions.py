"""Password sign-in and the session tokens it hands out (used by Immich clients)."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

import asyncpg

from app.db import engine as db
from app.domain import access, system_config, users
from app.domain.errors import BadRequest, Unauthorized
from app.domain.login_throttle import LoginThrottle
from app.domain.principal import ALL_ACTIONS, Principal


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    # 256 random bits, URL- and cookie-safe.
    return re.sub(r"\W", "", secrets.token_urlsafe(40))[:43]


async def login(email: str, password: str, *, throttle: LoginThrottle | None = None, address: str = "",
                device_type: str = "", device_os: str = "",
                app_version: str | None = None) -> tuple[asyncpg.Record, str]:
    """Password sign-in from a client address; raises Throttled (before any password check) when
    that address must wait. Without a throttle (admin tools and test fixtures in-process) nothing counts.
    Refused outright while the system config turns password sign-in off, as Immich does."""
    if not (await system_config.current())["passwordLogin"]["enabled"]:
        raise Unauthorized("Password login has been disabled")
    attempt = await throttle.begin(email, address) if throttle is not None else None
    row = await db.fetchrow("SELECT * FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL", email.strip())
    # Verify against a dummy hash for unknown users too, so timing does not reveal accounts.
    ok = users.verify_password(row["password_hash"] if row else users.DUMMY_HASH, password)
    if row is None or not ok:
        raise Unauthorized("Incorrect email or password")
    if attempt is not None:
        await attempt.succeeded()
    token = new_token()
    await db.execute(
        "INSERT INTO sessions (user_id, token_hash, device_type, device_os, app_version) VALUES ($1, $2, $3, $4, $5)",
        row["id"], _hash(token), device_type, device_os, app_version,
    )
    return row, token


# How long a PIN unlock lasts, and how far each request made near its end stretches it (Immich's).
UNLOCK_MINUTES = 15
UNLOCK_EXTENSION_MINUTES = 5
# How stale a session's updated_at (its last activity, which orders the sessions list) may get.
ACTIVITY_EVERY_S = 60


async def principal_for_token(token: str) -> tuple[Principal, uuid.UUID]:
    # An unlocked session in its last minutes is kept unlocked a few minutes past each request.
    # The session row is written only for that, or when its last activity (updated_at) is over
    # ACTIVITY_EVERY_S old: a write per request would make every request a durable commit.
    # Elevation is read before the extension; an extension only happens while still unlocked. A
    # stretched unlock is written again only once it is ACTIVITY_EVERY_S shorter than a full
    # extension, so a session in use writes at most once a minute while unlocked too.
    row = await db.fetchrow(
        f"""
        WITH s AS (
            SELECT s.id, s.user_id, s.updated_at, s.pin_expires_at, u.is_admin, {access.library_choices_sql('u')}
            FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.token_hash = $1 AND u.deleted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())
        ), touched AS (
            UPDATE sessions t SET updated_at = now(),
                pin_expires_at = CASE
                    WHEN t.pin_expires_at > now()
                     AND t.pin_expires_at < now() + interval '{UNLOCK_EXTENSION_MINUTES} minutes'
                    THEN now() + interval '{UNLOCK_EXTENSION_MINUTES} minutes' ELSE t.pin_expires_at END
            FROM s
            WHERE t.id = s.id
              AND (s.updated_at < now() - interval '{ACTIVITY_EVERY_S} seconds'
                   OR (s.pin_expires_at > now()
                       AND s.pin_expires_at < now() + interval '{UNLOCK_EXTENSION_MINUTES * 60 - ACTIVITY_EVERY_S} seconds'))
        )
        SELECT s.*, coalesce(pin_expires_at > now(), false) AS elevated FROM s
        """,
        _hash(token),
    )
    if row is None:
        raise Unauthorized("Invalid user token")
    # A signed-in session may do everything its user may.
    principal = Principal(row["user_id"], row["is_admin"], None, ALL_ACTIONS, None, elevated=row["elevated"],
                          libraries=access.library_choices(row))
    return principal, row["id"]


async def get_session(session_id: uuid.UUID) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM sessions WHERE id = $1", session_id)


async def unlock(session_id: uuid.UUID) -> None:
    await db.execute(f"UPDATE sessions SET pin_expires_at = now() + interval '{UNLOCK_MINUTES} minutes'"
                     " WHERE id = $1", session_id)


async def lock(user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Ends a session's unlock: one of the user's own sessions, else NotFound."""
    from app.domain.errors import NotFound

    if await db.execute("UPDATE sessions SET pin_expires_at = NULL WHERE id = $1 AND user_id = $2",
                        session_id, user_id) == "UPDATE 0":
        raise NotFound("Session not found")


async def create_child(user_id: uuid.UUID, parent_id: uuid.UUID, *, duration_seconds: int | None,
                       device_type: str, device_os: str) -> tuple[asyncpg.Record, str]:
    """A session made by a signed-in one (a TV cast): it ends after `duration_seconds` (never when
    None), or with its parent. Never unlocked: the locked folder needs its own PIN unlock."""
    token = new_token()
    row = await db.fetchrow(
        "INSERT INTO sessions (user_id, parent_id, token_hash, device_type, device_os, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::bigint IS NULL THEN NULL"
        " ELSE now() + make_interval(secs => $6::bigint) END) RETURNING *",
        user_id, parent_id, _hash(token), device_type, device_os, duration_seconds,
    )
    return row, token


async def logout(session_id: uuid.UUID) -> None:
    await db.execute("DELETE FROM sessions WHERE id = $1", session_id)


async def has_admin() -> bool:
    return bool(await db.fetchval("SELECT 1 FROM users WHERE is_admin AND deleted_at IS NULL LIMIT 1"))


async def admin_sign_up(email: str, password: str, name: str) -> asyncpg.Record:
    """The first account, only while no admin exists."""
    if await has_admin():
        raise BadRequest("Admin setup is not available")
    user = await users.create_user(email, password, name=name, is_admin=True)
    return await db.fetchrow("UPDATE users SET storage_label = 'admin' WHERE id = $1 RETURNING *", user["id"])


async def list_sessions(user_id: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM sessions WHERE user_id = $1 AND (expires_at IS NULL OR expires_at > now())"
                          " ORDER BY updated_at DESC, id", user_id)


async def delete_other_sessions(user_id: uuid.UUID, keep: uuid.UUID | None) -> None:
    await db.execute("DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2", user_id, keep)


async def delete_session(user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    from app.domain.errors import NotFound

    if await db.execute("DELETE FROM sessions WHERE id = $1 AND user_id = $2", session_id, user_id) == "DELETE 0":
        raise NotFound("Session not found")


async def get_own(user_id: uuid.UUID, session_id: uuid.UUID) -> asyncpg.Record:
    from app.domain.errors import NotFound

    row = await db.fetchrow("SELECT * FROM sessions WHERE id = $1 AND user_id = $2", session_id, user_id)
    if row is None:
        raise NotFound("Session not found")
    return row


async def set_pending_sync_reset(user_id: uuid.UUID, session_id: uuid.UUID, pending: bool) -> asyncpg.Record:
    from app.domain.errors import NotFound

    row = await db.fetchrow(
        "UPDATE sessions SET is_pending_sync_reset = $3, updated_at = now() WHERE id = $1 AND user_id = $2 RETURNING *",
        session_id, user_id, pending,
    )
    if row is None:
        raise NotFound("Session not found")
    return row


async def change_password(user_id: uuid.UUID, current: str, new: str, *, keep_session: uuid.UUID | None,
                          sign_out_others: bool, throttle: LoginThrottle | None = None, address: str = "") -> None:
    """The current password is a guess like a sign-in's (a stolen session must not try passwords
    freely), so it counts against the same throttle as signing in to this account."""
    row = await db.fetchrow("SELECT password_hash, email FROM users WHERE id = $1", user_id)
    attempt = await throttle.begin(row["email"], address) if throttle is not None and row is not None else None
    if row is None or not users.verify_password(row["password_hash"], current):
        raise BadRequest("Wrong password")
    if attempt is not None:
        await attempt.succeeded()
    if not new:
        raise BadRequest("The new password must not be empty")
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET password_hash = $2, should_change_password = false, updated_at = now()"
                           " WHERE id = $1", user_id, users.hash_password(new))
        if sign_out_others:
            await conn.execute("DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2", user_id, keep_session)
