"""A user's profile image: one picture per account, kept in the blob store under profile/."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg

from app.db import engine as db
from app.domain import media_types
from app.domain.errors import BadRequest, Invalid, NotFound
from app.domain.principal import DELETE, READ, WRITE, Principal
from app.storage.blobstore import BlobStore, StagedFile

# Shown by browsers and phones as they are, so no conversion is needed.
PROFILE_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif",
                                 "image/heic", "image/heif"})


def _decodes(path: Path, mime: str) -> bool:
    from app.media.images import header_size  # pyvips is only loaded where pictures are read

    return header_size(path, mime) is not None


async def set_profile_image(principal: Principal, store: BlobStore, staged: StagedFile,
                            filename: str) -> asyncpg.Record:
    """Take a finished upload as the caller's profile image. Its bytes must be a picture this
    server can read; the staged file is consumed either way, and a replaced image is removed."""
    try:
        principal.require(WRITE)
        try:
            kind = media_types.classify(filename or "", staged.head)
        except Invalid:
            kind = None
        if kind is None or kind.media_type != "image" or kind.mime_type not in PROFILE_IMAGE_TYPES:
            raise BadRequest("The profile image must be a JPEG, PNG, WebP, GIF, AVIF or HEIC picture")
        if not await asyncio.to_thread(_decodes, staged.path, kind.mime_type):
            raise BadRequest("The profile image could not be read as a picture")
        key = f"profile/{principal.user_id}/{uuid.uuid4().hex}{kind.extension}"
        await asyncio.to_thread(store.commit, staged, key)
    finally:
        staged.discard()  # nothing left behind once committed (the rename moved it)
    async with db.transaction() as conn:
        previous = await conn.fetchval("SELECT profile_image_key FROM users WHERE id = $1 FOR UPDATE",
                                       principal.user_id)
        row = await conn.fetchrow(
            """UPDATE users SET profile_image_key = $2, profile_changed_at = now(), updated_at = now()
               WHERE id = $1 RETURNING *""",
            principal.user_id, key,
        )
    if previous:
        store.delete(previous)
    return row


async def profile_image(principal: Principal, store: BlobStore, user_id: uuid.UUID) -> tuple[Path, str]:
    """(file, content type) of an account's profile image; every signed-in user may see it."""
    principal.require(READ)
    key = await db.fetchval("SELECT profile_image_key FROM users WHERE id = $1", user_id)
    if not key or not store.exists(key):
        raise NotFound("User does not have a profile image")
    mime, _ = media_types.mime_from_name(key)
    return store.path(key), mime or "application/octet-stream"


async def delete_profile_image(principal: Principal, store: BlobStore) -> None:
    principal.require(DELETE)
    async with db.transaction() as conn:
        key = await conn.fetchval("SELECT profile_image_key FROM users WHERE id = $1 FOR UPDATE",
                                  principal.user_id)
        if not key:
            raise BadRequest("Can't delete a missing profile Image")
        await conn.execute(
            """UPDATE users SET profile_image_key = NULL, profile_changed_at = now(), updated_at = now()
               WHERE id = $1""",
            principal.user_id,
        )
    store.delete(key)
