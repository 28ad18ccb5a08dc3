"""Rows for domain tests, written straight to the database: no HTTP, no upload pipeline.

Each factory fills every column the schema requires with a plausible value, takes any column as
a keyword override, and returns the inserted row as an asyncpg record (the shape domain functions
return and mapping functions read). Change-log events are only written when asked (`event=...`),
in the row's own transaction, the way the domain writes them.

Statements name only the columns a factory sets: what the database computes (defaults, identity
and generated columns) is left to it. The column names are checked against the Piccolo Table
classes in app/db/tables.py, which tests/test_schema.py keeps equal to the migrated schema, so a
misspelt override fails here rather than in Postgres.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from piccolo.columns import JSONB
from piccolo.table import Table

from app.db import engine as db
from app.db import tables as t
from app.domain import access, album_sharing, events
from app.domain.errors import Forbidden, NotFound

_serial = itertools.count(1)

# Capture times of assets made without one: a minute apart, in making order, so list order is known.
_BASE_TIME = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)


def _next() -> int:
    return next(_serial)


def _column_names(table: type[Table]) -> set[str]:
    return {c._meta.db_column_name for c in table._meta.columns}


async def insert(table: type[Table], **values: Any) -> asyncpg.Record:
    """INSERT one row of `table` with exactly these columns; the database fills in the rest."""
    columns = {c._meta.db_column_name: c for c in table._meta.columns}
    unknown = sorted(set(values) - set(columns))
    if unknown:
        raise TypeError(f"{table._meta.tablename} has no column(s) {', '.join(unknown)}")
    names, placeholders, args = [], [], []
    for name, value in values.items():
        args.append(value)
        placeholder = f"${len(args)}"
        if isinstance(columns[name], JSONB):
            args[-1] = None if value is None else json.dumps(value)
            placeholder += "::jsonb"
        names.append(name)
        placeholders.append(placeholder)
    return await db.fetchrow(
        f"INSERT INTO {table._meta.tablename} ({', '.join(names)}) VALUES ({', '.join(placeholders)}) RETURNING *",
        *args,
    )


async def _with_event(table: type[Table], values: dict, event: str | None, entity_type: str,
                      library_id: uuid.UUID | None, owner_id: uuid.UUID | None,
                      payload: dict | None = None) -> asyncpg.Record:
    if event is None:
        return await insert(table, **values)
    async with db.transaction() as conn:
        row = await insert(table, **values)
        await events.record(conn, entity_type=entity_type, entity_id=row["id"], event_type=event,
                            library_id=library_id, owner_id=owner_id, payload=payload)
        return row


async def record_event(entity_type: str, entity_id: uuid.UUID, event_type: str, *, library_id: uuid.UUID | None,
                       owner_id: uuid.UUID | None, payload: dict | None = None) -> None:
    """A change-log event on its own, committed in its own transaction."""
    async with db.transaction() as conn:
        await events.record(conn, entity_type=entity_type, entity_id=entity_id, event_type=event_type,
                            library_id=library_id, owner_id=owner_id, payload=payload)


# --- accounts -----------------------------------------------------------------------------


async def new_user(*, library: bool = True, password: str | None = None, **overrides: Any) -> asyncpg.Record:
    """A user (with a default library unless library=False). password: stored hashed, for sign-in tests."""
    n = _next()
    values: dict[str, Any] = {"email": f"user{n}-{uuid.uuid4().hex[:8]}@example.com", "name": f"User {n}"}
    if password is not None:
        from app.domain.users import hash_password

        values["password_hash"] = hash_password(password)
    values.update(overrides)
    user = await insert(t.User, **values)
    if not library:
        return user
    lib = await new_library(user, name="Default Library")
    return await db.fetchrow("UPDATE users SET default_library_id = $2 WHERE id = $1 RETURNING *",
                             user["id"], lib["id"])


async def new_library(owner: asyncpg.Record, **overrides: Any) -> asyncpg.Record:
    values: dict[str, Any] = {"owner_id": owner["id"], "name": f"Library {_next()}"}
    values.update(overrides)
    return await insert(t.Library, **values)


async def new_member(library: asyncpg.Record, user: asyncpg.Record, role: str = "viewer",
                     **overrides: Any) -> asyncpg.Record:
    """A library_members row: `user` joins `library` with `role` (viewer or collaborator), active
    unless state= says otherwise."""
    values: dict[str, Any] = {"library_id": library["id"], "user_id": user["id"], "role": role}
    values.update(overrides)
    return await insert(t.LibraryMember, **values)


def principal_for(user: asyncpg.Record, *, actions: frozenset[str] = access.ALL_ACTIONS,
                  library_scope: frozenset[uuid.UUID] | None = None,
                  api_key_id: uuid.UUID | None = None) -> access.Principal:
    """The user as a caller: a signed-in session by default, narrowed by the keywords."""
    return access.Principal(user_id=user["id"], is_admin=user["is_admin"], api_key_id=api_key_id,
                            actions=frozenset(actions), library_scope=library_scope)


async def new_api_key(user: asyncpg.Record, **overrides: Any) -> tuple[asyncpg.Record, str]:
    """An API key row and its secret, stored as the domain stores keys: the secret's SHA-256 only."""
    secret = "apikey_" + os.urandom(24).hex()
    values: dict[str, Any] = {"user_id": user["id"], "name": f"key {_next()}",
                              "secret_hash": hashlib.sha256(secret.encode()).digest()}
    values.update(overrides)
    return await insert(t.ApiKey, **values), secret


async def new_session(user: asyncpg.Record, **overrides: Any) -> tuple[asyncpg.Record, str]:
    """A sign-in session row and its bearer token (stored as its SHA-256, as app/domain/sessions.py does)."""
    token = os.urandom(24).hex()
    values: dict[str, Any] = {"user_id": user["id"], "token_hash": hashlib.sha256(token.encode()).digest(),
                              "device_type": "tests"}
    values.update(overrides)
    return await insert(t.Session, **values), token


# --- assets -------------------------------------------------------------------------------


def _library_of(user: asyncpg.Record, library_id: uuid.UUID | None) -> uuid.UUID:
    return library_id or user["default_library_id"]


async def new_asset(user: asyncpg.Record, *, library_id: uuid.UUID | None = None, taken: datetime | None = None,
                    exif: dict[str, Any] | None = None, event: str | None = None,
                    **overrides: Any) -> asyncpg.Record:
    """An asset row (no file on disk). `taken`: its capture time; aware (its offset becomes the
    wall clock's offset) or naive (a wall clock with no known offset). `exif`: an asset_exif row too,
    e.g. exif={"make": "Canon", "latitude": 59.9, "longitude": 10.7}. The file's rating is
    `file_rating=`, kept on the asset row (and in asset_exif while the schema has a copy there)."""
    n = _next()
    if taken is None:
        taken = _BASE_TIME + timedelta(minutes=n)
    if taken.tzinfo is None:
        local, offset, captured = taken, None, None
    else:
        delta = taken.utcoffset()
        local, offset, captured = taken.replace(tzinfo=None), int(delta.total_seconds() // 60), taken
    instant = captured or taken.replace(tzinfo=timezone.utc)
    values: dict[str, Any] = {
        "library_id": _library_of(user, library_id),
        "owner_id": user["id"],
        "media_type": "image",
        "mime_type": "image/jpeg",
        "original_file_name": f"IMG_{n:04d}.jpg",
        "storage_key": f"tests/{uuid.uuid4()}",
        "file_size_bytes": 1000 + n,
        "checksum_sha256": os.urandom(32),
        "checksum_sha1": os.urandom(20),
        "device_asset_id": f"device-asset-{n}",
        "device_id": "tests",
        "file_created_at": instant,
        "file_modified_at": instant,
        "local_datetime": local,
        "local_offset_minutes": offset,
        "captured_at": captured,
        "width": 4000,
        "height": 3000,
    }
    if overrides.get("media_type") == "video":
        values.update(mime_type="video/mp4", original_file_name=f"VID_{n:04d}.mp4", duration_ms=5000)
    values.update(overrides)
    # The asset row keeps copies of what the file says (and the user's edits over it) for filters
    # to use indexes; the domain keeps them in step, so a made row does too unless told otherwise.
    file = exif or {}
    if values.get("file_rating") is not None and "rating" in _column_names(t.AssetExif):
        # A schema that still keeps the file's rating in asset_exif too: both copies agree.
        exif = file = {"rating": values["file_rating"], **file}
    if values.get("user_latitude") is not None:
        values.setdefault("latitude", values["user_latitude"])
        values.setdefault("longitude", values["user_longitude"])
    elif file.get("latitude") is not None:
        values.setdefault("latitude", file["latitude"])
        values.setdefault("longitude", file["longitude"])
    async with db.transaction() as conn:
        row = await insert(t.Asset, **values)
        if exif is not None:
            await new_exif(row, **exif)
        if event is not None:
            await events.record(conn, entity_type=events.ASSET, entity_id=row["id"], event_type=event,
                                library_id=row["library_id"], owner_id=row["owner_id"])
        return row


async def new_exif(asset: asyncpg.Record, **values: Any) -> asyncpg.Record:
    """What the asset's file says (asset_exif), e.g. make="Canon", rating=3, city="Oslo"."""
    return await insert(t.AssetExif, asset_id=asset["id"], **values)


async def new_asset_file(asset: asyncpg.Record, kind: str = "thumbnail", **overrides: Any) -> asyncpg.Record:
    """A derived file's row (thumbnail, preview, fullsize or sidecar); no bytes on disk."""
    values: dict[str, Any] = {"asset_id": asset["id"], "kind": kind, "storage_key": f"tests/{uuid.uuid4()}",
                              "mime_type": "image/webp", "width": 250, "height": 188, "size_bytes": 2000}
    values.update(overrides)
    return await insert(t.AssetFile, **values)


async def new_stack(user: asyncpg.Record, assets: list[asyncpg.Record], *, event: str | None = None,
                    **overrides: Any) -> asyncpg.Record:
    """A stack of these assets (the first is the primary unless primary_asset_id says otherwise)."""
    values: dict[str, Any] = {"library_id": assets[0]["library_id"], "owner_id": user["id"],
                              "primary_asset_id": assets[0]["id"]}
    values.update(overrides)
    async with db.transaction() as conn:
        row = await insert(t.Stack, **values)
        await conn.execute("UPDATE assets SET stack_id = $1 WHERE id = ANY($2::uuid[])", row["id"],
                           [a["id"] for a in assets])
        if event is not None:
            await events.record(conn, entity_type="stack", entity_id=row["id"], event_type=event,
                                library_id=row["library_id"], owner_id=row["owner_id"])
        return row


# --- albums -------------------------------------------------------------------------------


async def new_album(user: asyncpg.Record, *, library_id: uuid.UUID | None = None, event: str | None = None,
                    **overrides: Any) -> asyncpg.Record:
    library = _library_of(user, library_id)
    values: dict[str, Any] = {"library_id": library, "owner_id": user["id"], "name": f"Album {_next()}"}
    values.update(overrides)
    return await _with_event(t.Album, values, event, "album", library, user["id"])


async def new_album_asset(album: asyncpg.Record, asset: asyncpg.Record, *, event: str | None = None,
                          **overrides: Any) -> asyncpg.Record:
    values: dict[str, Any] = {"album_id": album["id"], "asset_id": asset["id"], "library_id": album["library_id"]}
    values.update(overrides)
    return await _with_event(t.AlbumAsset, values, event, "album_asset", album["library_id"], album["owner_id"])


# --- people and faces ---------------------------------------------------------------------


async def new_person(user: asyncpg.Record, *, library_id: uuid.UUID | None = None, event: str | None = None,
                     **overrides: Any) -> asyncpg.Record:
    library = _library_of(user, library_id)
    values: dict[str, Any] = {"library_id": library, "owner_id": user["id"], "name": f"Person {_next()}"}
    values.update(overrides)
    return await _with_event(t.Person, values, event, "person", library, user["id"])


async def new_face(asset: asyncpg.Record, *, person: asyncpg.Record | None = None, event: str | None = None,
                   **overrides: Any) -> asyncpg.Record:
    """A detected face on the asset (a box in its display space), optionally someone's."""
    values: dict[str, Any] = {
        "asset_id": asset["id"], "library_id": asset["library_id"], "owner_id": asset["owner_id"],
        "person_id": None if person is None else person["id"], "source": "automatic",
        "box_x": 100, "box_y": 200, "box_w": 300, "box_h": 400,
        "image_width": asset["width"] or 4000, "image_height": asset["height"] or 3000, "confidence": 0.99,
        "assigned_by": "none" if person is None else "user",
    }
    values.update(overrides)
    return await _with_event(t.Face, values, event, "face", asset["library_id"], asset["owner_id"])


# --- background tasks ---------------------------------------------------------------------


async def new_task(asset: asyncpg.Record, task_type: str = "metadata_extract", **overrides: Any) -> asyncpg.Record:
    values: dict[str, Any] = {"owner_id": asset["owner_id"], "library_id": asset["library_id"],
                              "asset_id": asset["id"], "task_type": task_type,
                              "job_id": f"{task_type}:{asset['id']}"}
    values.update(overrides)
    return await insert(t.Task, **values)


async def outcome(coro) -> str:
    """How a domain call ends, as the native API would answer it: "ok", "404" or "403"."""
    try:
        await coro
    except NotFound:
        return "404"
    except Forbidden:
        return "403"
    return "ok"


@dataclass
class SharedAlbum:
    """An owner's album shared with a viewer and an editor; a stranger; a photo in the album and one
    of the owner's outside it."""

    owner: asyncpg.Record
    viewer: asyncpg.Record
    editor: asyncpg.Record
    stranger: asyncpg.Record
    album: asyncpg.Record
    in_album: asyncpg.Record
    elsewhere: asyncpg.Record

    def p(self, user: asyncpg.Record, **kw) -> access.Principal:
        return principal_for(user, **kw)


async def new_shared_album() -> SharedAlbum:
    owner, viewer, editor, stranger = [await new_user() for _ in range(4)]
    album = await new_album(owner)
    in_album, elsewhere = await new_asset(owner), await new_asset(owner)
    await new_album_asset(album, in_album)
    await album_sharing.add_users(principal_for(owner), album["id"], [
        (viewer["id"], access.ALBUM_VIEWER), (editor["id"], access.ALBUM_EDITOR)])
    return SharedAlbum(owner, viewer, editor, stranger, album, in_album, elsewhere)
