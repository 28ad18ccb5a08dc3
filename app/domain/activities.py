"""Activities (Immich's comments and likes) on an album, or on one asset in it.

Who may do what is asked of the album, never decided here: whoever may read the album
(albums.get_album: a role in its library, or an album share) reads its activities and adds
comments and likes while the album takes them (is_activity_enabled). Removing one is for its
author, or for whoever may delete the album itself (the album's owner; a library collaborator,
who could delete the whole album anyway). Every write records its change event in its transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from app.db import engine as db
from app.domain import access, albums, events
from app.domain.errors import AccessRefused, Forbidden, Invalid, NotFound

COMMENT = "comment"
LIKE = "like"
KINDS = (COMMENT, LIKE)
ALBUM_LEVEL = "album"
ASSET_LEVEL = "asset"
LEVELS = (ALBUM_LEVEL, ASSET_LEVEL)
ENTITY_TYPE = "activity"
CREATED = "activity_created"
DELETED = "activity_deleted"

# Activities still shown: by authors whose account is not deleted, and on the album itself or on an
# asset that is live and still in the album (one removed from it keeps its activities, hidden, until
# it is deleted for good or the album is).
_VISIBLE = """
FROM activities ac
JOIN users u ON u.id = ac.user_id AND u.deleted_at IS NULL
WHERE ac.album_id = $1
  AND (ac.asset_id IS NULL OR EXISTS (
      SELECT 1 FROM album_assets aa JOIN assets a ON a.id = aa.asset_id
      WHERE aa.album_id = ac.album_id AND aa.asset_id = ac.asset_id AND a.trashed_at IS NULL))
"""


@dataclass(frozen=True)
class Activity:
    """An activity row and its author's users row."""

    row: asyncpg.Record
    author: asyncpg.Record

    @property
    def kind(self) -> str:
        return LIKE if self.row["is_liked"] else COMMENT


@dataclass(frozen=True)
class ActivityFilter:
    """Which of an album's activities to list. `level` ALBUM_LEVEL keeps those on the album itself
    (asset_id is then ignored); otherwise `asset_id` keeps one asset's. ASSET_LEVEL alone narrows
    nothing, as in Immich. `kind` keeps comments or likes, `user_id` one author's."""

    asset_id: uuid.UUID | None = None
    level: str | None = None
    kind: str | None = None
    user_id: uuid.UUID | None = None


async def _readable_album(principal: access.Principal, album_id: uuid.UUID) -> asyncpg.Record:
    return await albums.get_album(principal, album_id, access.READ)


async def _with_authors(rows: list[asyncpg.Record]) -> list[Activity]:
    authors = {r["id"]: r for r in await db.fetch(
        "SELECT * FROM users WHERE id = ANY($1::uuid[])", list({r["user_id"] for r in rows}))}
    return [Activity(r, authors[r["user_id"]]) for r in rows]


async def list_activities(principal: access.Principal, album_id: uuid.UUID,
                          wanted: ActivityFilter = ActivityFilter()) -> list[Activity]:
    """The album's activities the filter keeps, oldest first."""
    if wanted.level is not None and wanted.level not in LEVELS:
        raise Invalid(f"level must be one of {', '.join(LEVELS)}", "level")
    if wanted.kind is not None and wanted.kind not in KINDS:
        raise Invalid(f"type must be one of {', '.join(KINDS)}", "type")
    album = await _readable_album(principal, album_id)
    args: list = [album["id"]]
    clauses = []
    if wanted.level == ALBUM_LEVEL:
        clauses.append("ac.asset_id IS NULL")
    elif wanted.asset_id is not None:
        args.append(wanted.asset_id)
        clauses.append(f"ac.asset_id = ${len(args)}")
    if wanted.kind is not None:
        args.append(wanted.kind == LIKE)
        clauses.append(f"ac.is_liked = ${len(args)}")
    if wanted.user_id is not None:
        args.append(wanted.user_id)
        clauses.append(f"ac.user_id = ${len(args)}")
    extra = "".join(f" AND {c}" for c in clauses)
    rows = await db.fetch(f"SELECT ac.* {_VISIBLE}{extra} ORDER BY ac.created_at, ac.id", *args)
    return await _with_authors(rows)


async def statistics(principal: access.Principal, album_id: uuid.UUID,
                     asset_id: uuid.UUID | None = None) -> tuple[int, int]:
    """(comments, likes) on the album and all its assets, or on one asset of it."""
    album = await _readable_album(principal, album_id)
    row = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE NOT ac.is_liked) AS comments, count(*) FILTER (WHERE ac.is_liked) AS likes"
        f" {_VISIBLE} AND ($2::uuid IS NULL OR ac.asset_id = $2)",
        album["id"], asset_id,
    )
    return row["comments"], row["likes"]


def _checked_comment(kind: str, comment: str | None) -> str | None:
    if kind not in KINDS:
        raise Invalid(f"type must be one of {', '.join(KINDS)}", "type")
    if kind == COMMENT:
        if comment is None or not comment.strip():
            raise Invalid("A comment needs its text", "comment")
        return comment
    if comment:
        raise Invalid("A like has no comment", "comment")
    return None


async def create(principal: access.Principal, album_id: uuid.UUID, kind: str, *,
                 asset_id: uuid.UUID | None = None, comment: str | None = None) -> tuple[Activity, bool]:
    """A comment or a like by the caller on the album, or on a live asset in it. A second like of
    the same thing by the same user is the first one again: (it, False) instead of (new, True)."""
    text = _checked_comment(kind, comment)
    album = await _readable_album(principal, album_id)
    principal.require(access.WRITE)
    missing = NotFound("Album not found", kind="album", ids=(album_id,))
    async with db.transaction() as conn:
        # KEY SHARE holds the album and the asset against deletion until the insert commits.
        enabled = await conn.fetchval("SELECT is_activity_enabled FROM albums WHERE id = $1 FOR KEY SHARE",
                                      album["id"])
        if enabled is None:
            raise missing
        if not enabled:
            raise AccessRefused("This album takes no comments or likes", kind="album")
        if asset_id is not None and await conn.fetchval(
            "SELECT a.id FROM album_assets aa JOIN assets a ON a.id = aa.asset_id"
            " WHERE aa.album_id = $1 AND aa.asset_id = $2 AND a.trashed_at IS NULL FOR KEY SHARE OF a",
            album["id"], asset_id,
        ) is None:
            raise NotFound("Asset not found in this album", kind="asset", ids=(asset_id,))
        # The like already there is read after the insert gives way to it; should it be removed in
        # between (its author unliking at the same moment), the insert is tried again.
        existing = None
        while existing is None:
            row = await conn.fetchrow(
                "INSERT INTO activities (album_id, asset_id, user_id, comment, is_liked) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (user_id, album_id, asset_id) WHERE is_liked DO NOTHING RETURNING *",
                album["id"], asset_id, principal.user_id, text, kind == LIKE,
            )
            if row is not None:
                break
            existing = await conn.fetchrow(
                "SELECT * FROM activities WHERE user_id = $1 AND album_id = $2"
                " AND asset_id IS NOT DISTINCT FROM $3 AND is_liked",
                principal.user_id, album["id"], asset_id,
            )
        created = existing is None
        if created:
            await events.record(conn, entity_type=ENTITY_TYPE, entity_id=row["id"], event_type=CREATED,
                                library_id=album["library_id"], owner_id=album["owner_id"],
                                payload={"album_id": str(album["id"]),
                                         "asset_id": None if asset_id is None else str(asset_id)})
    [activity] = await _with_authors([row if created else existing])
    return activity, created


async def delete(principal: access.Principal, activity_id: uuid.UUID) -> None:
    """Remove an activity: its author may, and so may whoever may delete its album."""
    principal.require(access.DELETE)
    missing = NotFound("Activity not found", kind="activity", ids=(activity_id,))
    row = await db.fetchrow("SELECT * FROM activities WHERE id = $1", activity_id)
    if row is None:
        raise missing
    if row["user_id"] != principal.user_id:
        try:
            await albums.get_album(principal, row["album_id"], access.DELETE)
        except NotFound:
            raise missing from None
        except Forbidden:
            raise AccessRefused("Only its author or the album's owner may remove an activity",
                                kind="activity") from None
    async with db.transaction() as conn:
        gone = await conn.fetchrow(
            "DELETE FROM activities ac USING albums al WHERE ac.id = $1 AND al.id = ac.album_id"
            " RETURNING ac.*, al.library_id, al.owner_id",
            activity_id,
        )
        if gone is None:  # removed since it was read
            raise missing
        await events.record(conn, entity_type=ENTITY_TYPE, entity_id=gone["id"], event_type=DELETED,
                            library_id=gone["library_id"], owner_id=gone["owner_id"],
                            payload={"album_id": str(gone["album_id"]),
                                     "asset_id": None if gone["asset_id"] is None else str(gone["asset_id"])})
