"""Accounts and API keys."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import datetime, timezone

import asyncpg
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from msgspec import UNSET, UnsetType

from app.db import engine as db
from app.db.tables import User
from app.domain import access, album_sharing, partners
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound
from app.domain.libraries import DEFAULT_LIBRARY_NAME, insert_library
from app.domain.principal import ALL_ACTIONS, WRITE, Principal

API_KEY_PREFIX = "apikey_"

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
        raise Invalid("email must be an email address", "email")
    if not password:
        raise Invalid("password must not be empty", "password")
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


def hash_api_key(secret: str) -> bytes:
    # Secrets are 256 random bits, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).digest()


async def create_api_key(
    user_id: uuid.UUID,
    name: str | None,
    *,
    actions: frozenset[str] = ALL_ACTIONS,
    library_ids: list[uuid.UUID] | None = None,
) -> tuple[asyncpg.Record, str]:
    """Create a key and return (record, secret). Only the secret's hash is stored."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    mode = "all_libraries" if library_ids is None else "selected_libraries"
    row = await db.fetchrow(
        """
        INSERT INTO api_keys (user_id, name, secret_hash, actions, library_scope_mode, library_ids)
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING *
        """,
        user_id,
        name,
        hash_api_key(secret),
        sorted(actions),
        mode,
        library_ids or [],
    )
    return row, secret


class UserPatch(msgspec.Struct, kw_only=True):
    """What a user changes about their own account; UNSET leaves a field as it is."""

    demo_mode_enabled: bool | UnsetType = UNSET
    favorite_display_mode: str | None | UnsetType = UNSET  # None: back to the default, "favorite"
    face_detection_preference: bool | UnsetType = UNSET
    home_country: str | None | UnsetType = UNSET
    home_subdivision: str | None | UnsetType = UNSET
    immich_library_id: uuid.UUID | None | UnsetType = UNSET  # None: the default library


_APP_SESSION_ONLY = ("face_detection_preference", "home_country", "home_subdivision")
FAVORITE_DISPLAY_MODES = ("favorite", "rating")


async def _update_user(user_id: uuid.UUID, values: dict) -> None:
    if values:
        await User.update({**values, User.updated_at: datetime.now(timezone.utc)}).where(User.id == user_id)


async def update_me(principal: Principal, patch: UserPatch) -> asyncpg.Record:
    principal.require(WRITE)
    restricted = [f for f in _APP_SESSION_ONLY if getattr(patch, f) is not UNSET]
    if restricted and principal.api_key_id is not None:
        raise Forbidden(f"{', '.join(restricted)} can only be changed from a signed-in app session, not an API key")
    values: dict = {}
    if patch.demo_mode_enabled is not UNSET:
        values[User.demo_mode_enabled] = patch.demo_mode_enabled
    if patch.favorite_display_mode is not UNSET:
        mode = patch.favorite_display_mode or "favorite"
        if mode not in FAVORITE_DISPLAY_MODES:
            raise Invalid("favorite_display_mode must be favorite or rating", "favorite_display_mode")
        values[User.favorite_display_mode] = mode
    for unsupported in ("home_country", "home_subdivision"):
        if getattr(patch, unsupported) is not UNSET:
            # No regional rules here, so nothing would use it: refuse rather than pretend to store it.
            raise Invalid(f"{unsupported} is not supported by this server", unsupported)
    if patch.face_detection_preference is not UNSET:
        values[User.face_detection_preference] = patch.face_detection_preference
    if patch.immich_library_id is not UNSET:
        library = patch.immich_library_id
        # Only one of the caller's own: an Immich client treats its one library as the account's own.
        if library is not None and library not in await access.live_library_ids(principal):
            raise NotFound("Library not found")
        values[User.immich_library_id] = library
    await _update_user(principal.user_id, values)
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


class UserAdminPatch(msgspec.Struct, kw_only=True):
    """What an administrator changes about an account; UNSET leaves a field as it is."""

    email: str | UnsetType = UNSET  # blank: unchanged
    name: str | UnsetType = UNSET
    password: str | UnsetType = UNSET  # blank: unchanged
    is_admin: bool | UnsetType = UNSET
    storage_limit_bytes: int | None | UnsetType = UNSET  # None: no cap
    storage_label: str | None | UnsetType = UNSET
    should_change_password: bool | UnsetType = UNSET


async def admin_update_user(principal: Principal, user_id: uuid.UUID, patch: UserAdminPatch) -> asyncpg.Record:
    """An administrator changes an account. Admins cannot demote themselves (there must be one)."""
    principal.require_admin()
    await user_by_id(user_id)
    values: dict = {}
    if patch.email:
        values[User.email] = patch.email.strip()
    if patch.name is not UNSET:
        values[User.name] = patch.name
    if patch.password:
        values[User.password_hash] = hash_password(patch.password)
    if patch.is_admin is not UNSET:
        if user_id == principal.user_id and not patch.is_admin:
            raise Invalid("An administrator cannot remove their own admin rights", "is_admin")
        values[User.is_admin] = patch.is_admin
    if patch.storage_limit_bytes is not UNSET:
        if patch.storage_limit_bytes is not None and patch.storage_limit_bytes < 0:
            raise Invalid("The storage limit must be a non-negative number of bytes, or none", "storage_limit_bytes")
        values[User.storage_limit_bytes] = patch.storage_limit_bytes
    if patch.storage_label is not UNSET:
        values[User.storage_label] = patch.storage_label
    if patch.should_change_password is not UNSET:
        values[User.should_change_password] = patch.should_change_password
    try:
        await _update_user(user_id, values)
    except asyncpg.UniqueViolationError:
        raise Conflict("Another user already has that email") from None
    return await user_by_id(user_id)


async def admin_delete_user(principal: Principal, user_id: uuid.UUID) -> asyncpg.Record:
    """Soft delete: the account stops working at once; its data stays until purged. Its partnerships
    and its places in others' albums end now (nothing restores an account), so the other side's
    clients drop them; its own albums are shared no more (access leaves out a deleted owner's)."""
    principal.require_admin()
    if user_id == principal.user_id:
        raise Invalid("An administrator cannot delete their own account")
    await user_by_id(user_id)
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET deleted_at = now(), updated_at = now() WHERE id = $1", user_id)
        await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
        await conn.execute("UPDATE api_keys SET is_active = false WHERE user_id = $1", user_id)
        await partners.end_all_of(conn, user_id)
        await album_sharing.end_all_of(conn, user_id)
    return await db.fetchrow(
        "SELECT u.*, 0::bigint AS storage_used_bytes FROM users u WHERE u.id = $1", user_id
    )


async def save_preferences(user_id: uuid.UUID, preferences: dict) -> None:
    """A client's own settings document, stored as it gives it (only that client reads it)."""
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
