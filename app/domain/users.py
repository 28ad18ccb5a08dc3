"""Accounts and API keys."""

from __future__ import annotations

import hashlib
import json
import logging
import re
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
from app.domain import access, album_sharing, assets, effective, library_admin, partners, system_config
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound
from app.domain.libraries import DEFAULT_LIBRARY_NAME, insert_library
from app.domain.principal import ALL_ACTIONS, DELETE, WRITE, Principal
from app.storage.blobstore import BlobStore

API_KEY_PREFIX = "apikey_"

log = logging.getLogger(__name__)

_hasher = PasswordHasher()

# An account as Immich shows it: its row, the bytes its assets take, its license if it has one, and
# whether its removal was forced (Immich's status `removing`).
_ACCOUNT = """
    SELECT u.*, (SELECT coalesce(sum(a.file_size_bytes), 0)::bigint FROM assets a WHERE a.owner_id = u.id)
           AS storage_used_bytes,
           l.license_key, l.activation_key AS license_activation_key, l.activated_at AS license_activated_at,
           EXISTS (SELECT 1 FROM user_removals r WHERE r.user_id = u.id) AS removal_requested
    FROM users u LEFT JOIN user_licenses l ON l.user_id = u.id"""


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
        f"""
        {_ACCOUNT}
        WHERE u.id = $1 AND u.deleted_at IS NULL
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
        f"""
        {_ACCOUNT}
        WHERE $1 OR u.deleted_at IS NULL ORDER BY u.created_at, u.id
        """,
        with_deleted,
    )


async def users_visible_to(principal: Principal) -> list[asyncpg.Record]:
    """The accounts a user may list: all of them for an administrator or while the system config's
    server.publicUsers is on (Immich's default), else only the caller's own."""
    everyone = await list_users()
    if principal.is_admin or (await system_config.current())["server"]["publicUsers"]:
        return everyone
    return [row for row in everyone if row["id"] == principal.user_id]


class UserAdminPatch(msgspec.Struct, kw_only=True):
    """What an administrator changes about an account; UNSET leaves a field as it is."""

    email: str | UnsetType = UNSET  # blank: unchanged
    name: str | UnsetType = UNSET
    password: str | UnsetType = UNSET  # blank: unchanged
    is_admin: bool | UnsetType = UNSET
    storage_limit_bytes: int | None | UnsetType = UNSET  # None: no cap
    storage_label: str | None | UnsetType = UNSET
    should_change_password: bool | UnsetType = UNSET
    avatar_color: str | None | UnsetType = UNSET  # None: the colour derived from the id
    pin_code: str | None | UnsetType = UNSET  # None or blank: the PIN is removed


async def admin_update_user(principal: Principal, user_id: uuid.UUID, patch: UserAdminPatch) -> asyncpg.Record:
    """An administrator changes an account. Admins cannot change their own admin rights (so there
    is always one); e-mails and storage labels belong to one account each."""
    principal.require_admin()
    await user_by_id(user_id)
    values: dict = {}
    if patch.email:
        email = patch.email.strip()
        if await db.fetchval("SELECT 1 FROM users WHERE lower(email) = lower($1) AND id <> $2", email, user_id):
            raise Invalid("Email already in use by another account", "email")
        values[User.email] = email
    if patch.name is not UNSET:
        values[User.name] = patch.name
    if patch.password:
        values[User.password_hash] = hash_password(patch.password)
    if patch.is_admin is not UNSET:
        if user_id == principal.user_id and patch.is_admin != principal.is_admin:
            raise Invalid("Admin status can only be changed by another admin", "is_admin")
        values[User.is_admin] = patch.is_admin
    if patch.storage_limit_bytes is not UNSET:
        if patch.storage_limit_bytes is not None and patch.storage_limit_bytes < 0:
            raise Invalid("The storage limit must be a non-negative number of bytes, or none", "storage_limit_bytes")
        values[User.storage_limit_bytes] = patch.storage_limit_bytes
    if patch.storage_label is not UNSET:
        label = patch.storage_label or None  # blank: none
        if label is not None and await db.fetchval(
                "SELECT 1 FROM users WHERE storage_label = $1 AND id <> $2", label, user_id):
            raise Invalid("Storage label already in use by another account", "storage_label")
        values[User.storage_label] = label
    if patch.should_change_password is not UNSET:
        values[User.should_change_password] = patch.should_change_password
    if patch.avatar_color is not UNSET:
        _check_avatar_color(patch.avatar_color)
        values[User.avatar_color] = patch.avatar_color
    if patch.pin_code:
        if not PIN_PATTERN.fullmatch(patch.pin_code):
            raise Invalid("pinCode must be a 6-digit numeric string", "pin_code")
    try:
        await _update_user(user_id, values)
    except asyncpg.UniqueViolationError:
        raise Invalid("Email already in use by another account", "email") from None
    if patch.pin_code is not UNSET:
        await _set_pin(user_id, patch.pin_code or None)
    return await user_by_id(user_id)


PIN_PATTERN = re.compile(r"\d{6}")


async def _set_pin(user_id: uuid.UUID, pin: str | None) -> None:
    """An administrator sets a user's PIN, or removes it (as Immich does); either way the user's
    unlocked sessions lock again, since the PIN that unlocked them is no longer the one."""
    async with db.transaction() as conn:
        if pin is None:
            await conn.execute("DELETE FROM pin_codes WHERE user_id = $1", user_id)
        else:
            await conn.execute(
                "INSERT INTO pin_codes (user_id, pin_hash) VALUES ($1, $2)"
                " ON CONFLICT (user_id) DO UPDATE SET pin_hash = excluded.pin_hash, created_at = now()",
                user_id, hash_password(pin))
        await conn.execute("UPDATE sessions SET pin_expires_at = NULL WHERE user_id = $1", user_id)


async def admin_delete_user(principal: Principal, user_id: uuid.UUID, *, force: bool = False) -> asyncpg.Record:
    """Soft delete: the account stops working at once; its data stays until removed, after the
    delete delay (remove_deleted_users), or at the next sweep when `force` asks for it now. Its
    partnerships and its places in others' albums end now (nothing restores an account), so the
    other side's clients drop them; its own albums are shared no more (access leaves out a deleted
    owner's). As in Immich, an account already deleted is not found, forced or not."""
    principal.require_admin()
    if user_id == principal.user_id:
        raise Forbidden("Cannot delete your own account")
    await user_by_id(user_id)
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET deleted_at = now(), updated_at = now() WHERE id = $1", user_id)
        await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
        await conn.execute("UPDATE api_keys SET is_active = false WHERE user_id = $1", user_id)
        await partners.end_all_of(conn, user_id)
        await album_sharing.end_all_of(conn, user_id)
        if force:
            await conn.execute("INSERT INTO user_removals (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user_id)
    return await any_user_by_id(user_id)


async def users_due_for_removal(delete_delay_days: int) -> list[uuid.UUID]:
    """Deleted accounts whose removal was forced, or whose deletion is older than the delay."""
    return [r["id"] for r in await db.fetch(
        """
        SELECT u.id FROM users u LEFT JOIN user_removals r ON r.user_id = u.id
        WHERE u.deleted_at IS NOT NULL
          AND (r.user_id IS NOT NULL OR u.deleted_at < now() - make_interval(days => $1))
        ORDER BY u.deleted_at
        """,
        delete_delay_days,
    )]


REMOVAL_JOB = "remove_deleted_users"  # the worker's sweep (app.jobs.worker)


async def queue_removal(queue, user_id: uuid.UUID) -> None:
    """Start the removal sweep now for a forced deletion. If the queue cannot take it, the sweep's
    cron still finds the account (user_removals), so this only makes it sooner."""
    if queue is None:
        return
    try:
        await queue.enqueue_plain(REMOVAL_JOB, job_id=f"{REMOVAL_JOB}:{user_id}")
    except Exception:
        log.exception("could not queue the removal of account %s", user_id)


async def remove_deleted_users(store: BlobStore, delete_delay_days: int) -> int:
    """The sweep: remove every account due (see users_due_for_removal); returns how many went."""
    removed = 0
    for user_id in await users_due_for_removal(delete_delay_days):
        removed += await remove_user(store, user_id)
    return removed


async def remove_user(store: BlobStore, user_id: uuid.UUID) -> bool:
    """Remove a deleted account for good: its libraries (their albums, assets and files, as a
    library purge does), its assets in others' libraries, its profile image, then the account row,
    which takes with it its sessions, keys, partnerships, PIN, license and the rest (foreign keys).

    Each step is its own transaction and files go only after the rows naming them are gone, so a
    crash leaves at worst an orphan file, and the next sweep finishes the work (the account stays
    deleted until its row goes). A restore that races it stops the removal, keeping what is left.
    Returns whether the account is gone."""
    while True:
        async with db.transaction() as conn:
            account = await conn.fetchrow("SELECT * FROM users WHERE id = $1 FOR NO KEY UPDATE", user_id)
            if account is None or account["deleted_at"] is None:
                return account is None
            library = await conn.fetchval("SELECT id FROM libraries WHERE owner_id = $1 ORDER BY id LIMIT 1", user_id)
            if library is not None:
                rows = await library_admin.purge_batch(conn, library)
            else:
                rows = await conn.fetch(
                    "SELECT * FROM assets WHERE owner_id = $1 ORDER BY id LIMIT $2 FOR UPDATE",
                    user_id, library_admin.PURGE_BATCH)
                if rows:
                    await assets.hard_delete_rows(conn, rows)
                else:
                    await conn.execute("DELETE FROM users WHERE id = $1", user_id)
        assets.remove_files(store, rows)
        if library is None and not rows:
            if account["profile_image_key"]:
                store.delete(account["profile_image_key"])
            return True


async def save_preferences(user_id: uuid.UUID, preferences: dict, *,
                           avatar_color: str | UnsetType = UNSET) -> None:
    """A client's own settings document, stored as it gives it (only that client reads it). Immich's
    preferences also carry the avatar colour, which is the account's own (users.avatar_color)."""
    if avatar_color is UNSET:
        await db.execute("UPDATE users SET preferences = $2::jsonb, updated_at = now() WHERE id = $1",
                         user_id, json.dumps(preferences))
        return
    _check_avatar_color(avatar_color)
    await db.execute("UPDATE users SET preferences = $2::jsonb, avatar_color = $3, updated_at = now() WHERE id = $1",
                     user_id, json.dumps(preferences), avatar_color)


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


# --- the account's own settings, as Immich's clients change them ----------------------------------

AVATAR_COLORS = ("primary", "pink", "red", "yellow", "blue", "green", "purple", "orange", "gray", "amber")


def _check_avatar_color(color: str | None) -> None:
    if color is not None and color not in AVATAR_COLORS:
        raise Invalid(f"avatar_color must be one of {', '.join(AVATAR_COLORS)}", "avatar_color")


class AccountPatch(msgspec.Struct, kw_only=True):
    """What a user changes about their own account (Immich's PUT /users/me); UNSET leaves it."""

    email: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    avatar_color: str | None | UnsetType = UNSET  # None: back to the colour derived from the id
    password: str | UnsetType = UNSET  # blank: unchanged


async def update_account(principal: Principal, patch: AccountPatch) -> asyncpg.Record:
    """A new password also ends a required password change, as a change-password does."""
    principal.require(WRITE)
    values: dict = {}
    if patch.email:
        email = patch.email.strip()
        duplicate = await db.fetchval(
            "SELECT 1 FROM users WHERE lower(email) = lower($1) AND id <> $2", email, principal.user_id)
        if duplicate:
            raise Invalid("Email already in use by another account", "email")
        values[User.email] = email
    if patch.name is not UNSET:
        if not patch.name.strip():
            raise Invalid("name should not be empty", "name")
        values[User.name] = patch.name
    if patch.avatar_color is not UNSET:
        _check_avatar_color(patch.avatar_color)
        values[User.avatar_color] = patch.avatar_color
    if patch.password:
        values[User.password_hash] = hash_password(patch.password)
        values[User.should_change_password] = False
    try:
        await _update_user(principal.user_id, values)
    except asyncpg.UniqueViolationError:
        raise Invalid("Email already in use by another account", "email") from None
    return await user_by_id(principal.user_id)


async def is_onboarded(principal: Principal) -> bool:
    principal.require(access.READ)
    return bool(await db.fetchval("SELECT is_onboarded FROM users WHERE id = $1", principal.user_id))


async def set_onboarded(principal: Principal, onboarded: bool) -> bool:
    """Whether the user has been through the app's first-run screens."""
    principal.require(WRITE)
    await _set_onboarded(principal.user_id, onboarded)
    return onboarded


async def reset_onboarding(principal: Principal) -> None:
    """The app shows its first-run screens again."""
    principal.require(DELETE)
    await _set_onboarded(principal.user_id, False)


async def _set_onboarded(user_id: uuid.UUID, onboarded: bool) -> None:
    await db.execute("UPDATE users SET is_onboarded = $2, updated_at = now() WHERE id = $1", user_id, onboarded)


# --- what an administrator reads and restores ------------------------------------------------------


async def any_user_by_id(user_id: uuid.UUID) -> asyncpg.Record:
    """An account, deleted or not (an administrator still sees and restores a deleted one)."""
    row = await db.fetchrow(
        f"""
        {_ACCOUNT}
        WHERE u.id = $1
        """,
        user_id,
    )
    if row is None:
        raise NotFound("User not found")
    return row


async def admin_restore_user(principal: Principal, user_id: uuid.UUID) -> asyncpg.Record:
    """A deleted account works again: it can sign in and its own libraries are its again. What its
    deletion ended for others (partnerships, places in their albums, sessions and API keys) stays ended."""
    principal.require_admin()
    await any_user_by_id(user_id)
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE users SET deleted_at = NULL, updated_at = now() WHERE id = $1 AND deleted_at IS NOT NULL", user_id)
        # A forced removal not yet done is called off (the sweep re-checks deleted_at under a lock).
        await conn.execute("DELETE FROM user_removals WHERE user_id = $1", user_id)
    return await user_by_id(user_id)


async def admin_user_statistics(principal: Principal, user_id: uuid.UUID, *, favorite: bool | None = None,
                                trashed: bool | None = None, visibility: str | None = None) -> asyncpg.Record:
    """Photo and video counts of the account's Immich library (the one its Immich clients show)."""
    principal.require_admin()
    row = await any_user_by_id(user_id)
    library = row["immich_library_id"] or row["default_library_id"]
    return await db.fetchrow(
        """
        SELECT count(*) FILTER (WHERE media_type = 'image') AS images,
               count(*) FILTER (WHERE media_type = 'video') AS videos, count(*) AS total
        FROM assets WHERE library_id = $1
          AND ((trashed_at IS NOT NULL) = $2)
          AND ($3::bool IS NULL OR (coalesce(effective_rating, $5) = $6) = $3)
          AND ($4::text IS NULL OR visibility = $4)
        """,
        library, trashed is True, favorite, visibility, effective.UNRATED, effective.FAVORITE_RATING,
    )
