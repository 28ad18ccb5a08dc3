"""Album users: an album shared with other accounts, each with a role (access.ALBUM_EDITOR or
access.ALBUM_VIEWER). Only the album's owner shares, changes roles and removes users; an album
user may remove itself (leave). What an album user may then do is decided in app.domain.access.

Every change records `album_updated` for the album in its transaction, so the owner's feed and
live listeners hear that the album's users changed. A removal also records `album_user_removed`
(entity type `album_user`, outside the native feed's types) naming the album and the user, since
the album_users row is gone: the Immich sync stream tells everyone who still sees the album that
this user left it, and live events reach the removed user too.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import asyncpg

from app.db import engine as db
from app.domain import access, albums, events
from app.domain.errors import BadRequest, Forbidden, Invalid

ROLES = (access.ALBUM_EDITOR, access.ALBUM_VIEWER)
ENTITY_TYPE = "album_user"
REMOVED = "album_user_removed"


def album_user_id(album_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID:
    """The change log's entity id of one album user: the pair names it for good (a user added back
    continues the same entity, so only its latest removal counts)."""
    return uuid.UUID(hashlib.md5(f"{album_id}:{user_id}".encode()).hexdigest())


@dataclass(frozen=True)
class AlbumUser:
    """One account an album is shared with: the user's row (users) and its role."""

    user: asyncpg.Record
    role: str


def _check_role(role: str) -> None:
    if role not in ROLES:
        # the one other role a client can name is the owner's, and an album has exactly one
        raise Invalid("Cannot add another owner" if role == access.OWNER else "role must be editor or viewer", "role")


async def _owned_album(principal: access.Principal, album_id: uuid.UUID) -> asyncpg.Record:
    """The album, if the caller owns its library: sharing is the owner's, like renaming the library.
    Any other caller who can see the album gets 403; one who cannot, 404."""
    album = await albums.get_album(principal, album_id, access.WRITE)
    if album["caller_role"] != access.OWNER:
        raise Forbidden("Only the album's owner may share it")
    return album


async def _event(conn, album: asyncpg.Record) -> None:
    await events.record(conn, entity_type="album", entity_id=album["id"], event_type="album_updated",
                        library_id=album["library_id"], owner_id=album["owner_id"])


async def _record_removal(conn, album: asyncpg.Record, user_id: uuid.UUID) -> None:
    await _event(conn, album)
    await events.record(conn, entity_type=ENTITY_TYPE, entity_id=album_user_id(album["id"], user_id),
                        event_type=REMOVED, library_id=album["library_id"], owner_id=album["owner_id"],
                        payload={"album_id": str(album["id"]), "user_id": str(user_id)})


async def users_of(album_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[AlbumUser]]:
    """The users of each album, by album id, ordered by name: one query for a whole list of albums.
    Deleted accounts are left out."""
    rows = await db.fetch(
        "SELECT au.album_id, au.role AS album_role, u.* FROM album_users au JOIN users u ON u.id = au.user_id"
        " WHERE au.album_id = ANY($1::uuid[]) AND u.deleted_at IS NULL ORDER BY lower(u.name), u.id",
        album_ids,
    )
    out: dict[uuid.UUID, list[AlbumUser]] = {}
    for r in rows:
        out.setdefault(r["album_id"], []).append(AlbumUser(user=r, role=r["album_role"]))
    return out


async def add_users(principal: access.Principal, album_id: uuid.UUID, additions: list[tuple[uuid.UUID, str]]) -> None:
    """Share the album with each (user, role). All or nothing: the owner, a user already added, a
    missing account or a role other than editor/viewer refuses the whole request."""
    album = await _owned_album(principal, album_id)
    if not additions:
        raise Invalid("albumUsers must not be empty", "albumUsers")
    for _, role in additions:
        _check_role(role)
    wanted = [user_id for user_id, _ in additions]
    if album["owner_id"] in wanted:
        raise BadRequest("Cannot be shared with owner")
    if len(set(wanted)) != len(wanted):
        raise BadRequest("User already added")
    async with db.transaction() as conn:
        await conn.execute("SELECT 1 FROM albums WHERE id = $1 FOR UPDATE", album["id"])  # one sharer at a time
        existing = {r["id"] for r in await conn.fetch(
            "SELECT id FROM users WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL", wanted)}
        if len(existing) != len(wanted):
            raise BadRequest("User not found")
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM album_users WHERE album_id = $1"
                               " AND user_id = ANY($2::uuid[]))", album["id"], wanted):
            raise BadRequest("User already added")
        await conn.executemany(
            "INSERT INTO album_users (album_id, user_id, role) VALUES ($1, $2, $3)",
            [(album["id"], user_id, role) for user_id, role in additions],
        )
        await _event(conn, album)


async def update_user(principal: access.Principal, album_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    """Change an album user's role (the owner only)."""
    album = await _owned_album(principal, album_id)
    _check_role(role)
    if user_id == album["owner_id"]:
        raise BadRequest("User is owner")
    async with db.transaction() as conn:
        changed = await conn.fetchval(
            "UPDATE album_users SET role = $3, updated_at = now() WHERE album_id = $1 AND user_id = $2"
            " RETURNING role", album["id"], user_id, role)
        if changed is None:
            raise BadRequest("Album not shared with user")
        await _event(conn, album)


async def remove_user(principal: access.Principal, album_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """End an album user's access: the owner removes anyone, an album user removes itself (leaves).
    Access ends with the transaction: nothing about shares is kept outside the database."""
    principal.require(access.DELETE)
    album = await albums.get_album(principal, album_id)  # anyone who sees the album may at least leave it
    if user_id == album["owner_id"]:
        raise BadRequest("Cannot remove the album owner")
    if user_id != principal.user_id and album["caller_role"] != access.OWNER:
        raise Forbidden("Only the album's owner may remove its other users")
    async with db.transaction() as conn:
        removed = await conn.fetchval(
            "DELETE FROM album_users WHERE album_id = $1 AND user_id = $2 RETURNING user_id", album["id"], user_id)
        if removed is None:
            raise BadRequest("Album not shared with user")
        await _record_removal(conn, album, user_id)


async def end_all_of(conn, user_id: uuid.UUID) -> None:
    """End every album share of an account being deleted (in the caller's transaction), each as a
    removal is recorded, so the albums' owners and other users drop it from their albums."""
    ended = await conn.fetch(
        "WITH gone AS (DELETE FROM album_users WHERE user_id = $1 RETURNING album_id)"
        " SELECT al.id, al.library_id, al.owner_id FROM gone JOIN albums al ON al.id = gone.album_id ORDER BY al.id",
        user_id,
    )
    for album in ended:
        await _record_removal(conn, album, user_id)
