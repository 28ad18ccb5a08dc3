"""Password sign-in and the session tokens it hands out (used by Immich clients)."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

import asyncpg

from app.db import engine as db
from app.domain import access, users
from app.domain.errors import BadRequest, Unauthorized


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    # 256 random bits, URL- and cookie-safe.
    return re.sub(r"\W", "", secrets.token_urlsafe(40))[:43]


async def login(email: str, password: str, *, device_type: str = "", device_os: str = "",
                app_version: str | None = None) -> tuple[asyncpg.Record, str]:
    row = await db.fetchrow("SELECT * FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL", email.strip())
    # Verify against a dummy hash for unknown users too, so timing does not reveal accounts.
    ok = users.verify_password(row["password_hash"] if row else users.DUMMY_HASH, password)
    if row is None or not ok:
        raise Unauthorized("Incorrect email or password")
    token = new_token()
    await db.execute(
        "INSERT INTO sessions (user_id, token_hash, device_type, device_os, app_version) VALUES ($1, $2, $3, $4, $5)",
        row["id"], _hash(token), device_type, device_os, app_version,
    )
    return row, token


async def principal_for_token(token: str) -> tuple[access.Principal, uuid.UUID]:
    row = await db.fetchrow(
        """
        UPDATE sessions s SET updated_at = now() FROM users u
        WHERE s.token_hash = $1 AND u.id = s.user_id AND u.deleted_at IS NULL
          AND (s.expires_at IS NULL OR s.expires_at > now())
        RETURNING s.id, s.user_id, u.is_admin
        """,
        _hash(token),
    )
    if row is None:
        raise Unauthorized("Invalid user token")
    # A signed-in session may do everything its user may.
    principal = access.Principal(row["user_id"], row["is_admin"], None, access.ALL_ACTIONS, None)
    return principal, row["id"]


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
