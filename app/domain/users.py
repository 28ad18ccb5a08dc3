"""Accounts and API keys."""

from __future__ import annotations

import secrets
import uuid

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from app.db import engine as db
from app.domain import access
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.libraries import DEFAULT_LIBRARY_NAME, insert_library

_hasher = PasswordHasher()


# Verified when the email is unknown, so a failed login costs the same either way.
DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


async def create_user(email: str, password: str, *, name: str = "", is_admin: bool = False) -> asyncpg.Record:
    email = email.strip()
    if "@" not in email:
        raise Invalid("email must be an email address", loc=("body", "email"))
    if not password:
        raise Invalid("password must not be empty", loc=("body", "password"))
    async with db.transaction() as conn:
        try:
            user = await conn.fetchrow(
                "INSERT INTO users (email, name, password_hash, is_admin) VALUES ($1, $2, $3, $4) RETURNING *",
                email,
                name or email.split("@")[0],
                hash_password(password),
                is_admin,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"A user with email {email} already exists") from None
        library = await insert_library(conn, user["id"], DEFAULT_LIBRARY_NAME)
        return await conn.fetchrow(
            "UPDATE users SET default_library_id = $2 WHERE id = $1 RETURNING *", user["id"], library["id"]
        )


async def user_by_email(email: str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL", email.strip())
    if row is None:
        raise NotFound(f"No user with email {email}")
    return row


async def user_by_id(user_id: uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow(
        """
        SELECT u.*, (SELECT coalesce(sum(a.file_size_bytes), 0)::bigint FROM assets a WHERE a.owner_id = u.id)
               AS storage_used_bytes
        FROM users u WHERE u.id = $1 AND u.deleted_at IS NULL
        """,
        user_id,
    )
    if row is None:
        raise NotFound("User not found")
    return row


async def create_api_key(
    user_id: uuid.UUID,
    name: str | None,
    *,
    actions: frozenset[str] = access.ALL_ACTIONS,
    library_ids: list[uuid.UUID] | None = None,
) -> tuple[asyncpg.Record, str]:
    """Create a key and return (record, secret). Only the secret's hash is stored."""
    secret = access.API_KEY_PREFIX + secrets.token_urlsafe(32)
    mode = "all_libraries" if library_ids is None else "selected_libraries"
    row = await db.fetchrow(
        """
        INSERT INTO api_keys (user_id, name, secret_hash, actions, library_scope_mode, library_ids)
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING *
        """,
        user_id,
        name,
        access.hash_api_key(secret),
        sorted(actions),
        mode,
        library_ids or [],
    )
    return row, secret


_APP_SESSION_ONLY = ("face_detection_preference", "home_country", "home_subdivision")
_PATCHABLE = {"demo_mode_enabled", "favorite_display_mode", "immich_library_id", *_APP_SESSION_ONLY}


async def update_me(principal: access.Principal, change: dict) -> asyncpg.Record:
    from app.domain import ids
    from app.domain.errors import Forbidden

    unknown = set(change) - _PATCHABLE
    if unknown:
        raise Invalid(f"Unknown field(s): {', '.join(sorted(unknown))}", loc=("body",))
    principal.require(access.WRITE)
    restricted = [f for f in _APP_SESSION_ONLY if f in change]
    if restricted and principal.api_key_id is not None:
        raise Forbidden(f"{', '.join(restricted)} can only be changed from a signed-in app session, not an API key")
    sets, args = [], [principal.user_id]
    if "demo_mode_enabled" in change:
        if not isinstance(change["demo_mode_enabled"], bool):
            raise Invalid("demo_mode_enabled must be true or false", loc=("body", "demo_mode_enabled"))
        args.append(change["demo_mode_enabled"])
        sets.append(f"demo_mode_enabled = ${len(args)}")
    if "favorite_display_mode" in change:
        mode = change["favorite_display_mode"] or "favorite"
        if mode not in ("favorite", "rating"):
            raise Invalid("favorite_display_mode must be favorite or rating", loc=("body", "favorite_display_mode"))
        args.append(mode)
        sets.append(f"favorite_display_mode = ${len(args)}")
    for unsupported in ("home_country", "home_subdivision"):
        if unsupported in change:
            # No regional rules here, so nothing would use it: refuse rather than pretend to store it.
            raise Invalid(f"{unsupported} is not supported by this server", loc=("body", unsupported))
    if "face_detection_preference" in change:
        if not isinstance(change["face_detection_preference"], bool):
            raise Invalid("face_detection_preference must be true or false", loc=("body", "face_detection_preference"))
        args.append(change["face_detection_preference"])
        sets.append(f"face_detection_preference = ${len(args)}")
    if "immich_library_id" in change:
        value = change["immich_library_id"]
        library = None
        if value is not None:
            library = ids.try_decode(ids.LIBRARY, value) if isinstance(value, str) else None
            if library is None or library not in await access.live_library_ids(principal):
                raise NotFound("Library not found")
        args.append(library)
        sets.append(f"immich_library_id = ${len(args)}")
    if sets:
        await db.execute(f"UPDATE users SET {', '.join(sets)}, updated_at = now() WHERE id = $1", *args)
    return await user_by_id(principal.user_id)


async def list_users(*, with_deleted: bool = False) -> list[asyncpg.Record]:
    return await db.fetch(
        """
        SELECT u.*, (SELECT coalesce(sum(a.file_size_bytes), 0)::bigint FROM assets a WHERE a.owner_id = u.id)
               AS storage_used_bytes
        FROM users u WHERE $1 OR u.deleted_at IS NULL ORDER BY u.created_at, u.id
        """,
        with_deleted,
    )


def require_admin(principal: access.Principal) -> None:
    from app.domain.errors import Forbidden

    if not principal.is_admin:
        raise Forbidden("Only an administrator may do this")


async def admin_update_user(principal: access.Principal, user_id: uuid.UUID, change: dict) -> asyncpg.Record:
    """An administrator changes an account. Admins cannot demote themselves (there must be one)."""
    require_admin(principal)
    await user_by_id(user_id)
    sets, args = [], [user_id]

    def put(column: str, value) -> None:
        args.append(value)
        sets.append(f"{column} = ${len(args)}")

    if change.get("email"):
        put("email", change["email"].strip())
    if change.get("name") is not None:
        put("name", change["name"])
    if change.get("password"):
        put("password_hash", hash_password(change["password"]))
    if "isAdmin" in change:
        if user_id == principal.user_id and not change["isAdmin"]:
            raise Invalid("An administrator cannot remove their own admin rights", loc=("body", "isAdmin"))
        put("is_admin", bool(change["isAdmin"]))
    if "quotaSizeInBytes" in change:
        quota = change["quotaSizeInBytes"]
        if quota is not None and (not isinstance(quota, int) or quota < 0):
            raise Invalid("quotaSizeInBytes must be a non-negative integer or null", loc=("body", "quotaSizeInBytes"))
        put("storage_limit_bytes", quota)
    if "storageLabel" in change:
        put("storage_label", change["storageLabel"])
    if "shouldChangePassword" in change:
        put("should_change_password", bool(change["shouldChangePassword"]))
    if sets:
        try:
            await db.execute(f"UPDATE users SET {', '.join(sets)}, updated_at = now() WHERE id = $1", *args)
        except asyncpg.UniqueViolationError:
            raise Conflict("Another user already has that email") from None
    return await user_by_id(user_id)


async def admin_delete_user(principal: access.Principal, user_id: uuid.UUID) -> asyncpg.Record:
    """Soft delete: the account stops working at once; its data stays until purged."""
    require_admin(principal)
    if user_id == principal.user_id:
        raise Invalid("An administrator cannot delete their own account")
    await user_by_id(user_id)
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET deleted_at = now(), updated_at = now() WHERE id = $1", user_id)
        await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
        await conn.execute("UPDATE api_keys SET is_active = false WHERE user_id = $1", user_id)
    return await db.fetchrow(
        "SELECT u.*, 0::bigint AS storage_used_bytes FROM users u WHERE u.id = $1", user_id
    )


async def save_preferences(user_id: uuid.UUID, preferences: dict) -> None:
    import json

    await db.execute("UPDATE users SET preferences = $2::jsonb, updated_at = now() WHERE id = $1",
                     user_id, json.dumps(preferences))


async def usage_by_user() -> list[asyncpg.Record]:
    """Per active user: photo and video counts and bytes (the admin's server statistics)."""
    return await db.fetch(
        """
        SELECT u.id, u.name, u.storage_limit_bytes,
               count(a.id) FILTER (WHERE a.media_type = 'image') AS photos,
               count(a.id) FILTER (WHERE a.media_type = 'video') AS videos,
               coalesce(sum(a.file_size_bytes), 0)::bigint AS usage,
               coalesce(sum(a.file_size_bytes) FILTER (WHERE a.media_type = 'image'), 0)::bigint AS usage_photos,
               coalesce(sum(a.file_size_bytes) FILTER (WHERE a.media_type = 'video'), 0)::bigint AS usage_videos
        FROM users u LEFT JOIN assets a ON a.owner_id = u.id
        WHERE u.deleted_at IS NULL GROUP BY u.id ORDER BY u.created_at
        """
    )
