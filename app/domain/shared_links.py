"""Shared links (Immich's): an owner hands out a key, or a slug, that opens one album or a list of
the owner's assets to whoever holds it, until it expires or is deleted.

The owner manages its links here (create, list, update, delete, add and remove assets). A request
that comes with a key or slug is turned into a link Principal by `authenticate`: the link owner's
id, an empty library_scope (so no library role, album share or partnership reaches anything),
READ (plus WRITE when the link allows uploads) and a SharedLinkGrant. What the link then opens is
decided in app.domain.access (its "shared links" section), like every other grant.

Every change records a "shared_link" event in its transaction; that entity type is not in the
native feed (events.FEED_ENTITY_TYPES), which has no shared links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.db import engine as db
from app.domain import access, albums, events
from app.domain.errors import BadRequest, Forbidden, Invalid, NotFound, Unauthorized
from app.domain.principal import DELETE, READ, WRITE, Principal, SharedLinkGrant

ALBUM = "ALBUM"
INDIVIDUAL = "INDIVIDUAL"
ENTITY = "shared_link"
KEY_BYTES = 50  # 400 random bits, Immich's length; sent base64url (67 characters)

# Per-asset outcomes of adding or removing assets (Immich's AssetIdErrorReason).
DUPLICATE = "duplicate"
NO_PERMISSION = "no_permission"
NOT_FOUND = "not_found"

_LIVE = "(sl.expires_at IS NULL OR sl.expires_at > now())"
MAX_ASSETS = 1000  # asset ids checked in one request
MAX_SLUG = 500  # characters; a slug is a URL part, and its unique index takes only so many bytes


@dataclass(frozen=True)
class LinkSettings:
    """What an owner sets on a link. On update, only the fields named in `fields` change."""

    description: str | None = None
    password: str | None = None
    expires_at: datetime | None = None
    allow_upload: bool = True
    allow_download: bool = True
    show_metadata: bool = True
    slug: str | None = None


@dataclass(frozen=True)
class AssetOutcome:
    asset_id: uuid.UUID
    error: str | None  # None: done

    @property
    def success(self) -> bool:
        return self.error is None


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def _decode_key(text: str) -> bytes | None:
    """A key as a client sends it: base64url, or hex when it is 100 characters (Immich's two forms)."""
    try:
        if len(text) == 2 * KEY_BYTES:
            return bytes.fromhex(text)
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        return None


def password_token(link_id: uuid.UUID, password: str) -> str:
    """What the password cookie holds for a link once its password was given: a hash of the link and
    its password, so changing the password (or deleting the link) invalidates it."""
    return base64.b64encode(hashlib.sha256(f"{link_id}-{password}".encode()).digest()).decode()


def _check_slug(settings: LinkSettings) -> None:
    if settings.slug is not None and len(settings.slug) > MAX_SLUG:
        raise Invalid(f"slug must be at most {MAX_SLUG} characters", "slug")


def _has_token(row: asyncpg.Record, tokens: list[str]) -> bool:
    wanted = password_token(row["id"], row["password"])
    return any(hmac.compare_digest(wanted, t) for t in tokens)


async def _owned(principal: Principal, link_id: uuid.UUID) -> asyncpg.Record:
    """One of the caller's links; any other (missing, someone else's) is a 404 alike."""
    row = await db.fetchrow("SELECT * FROM shared_links WHERE id = $1 AND owner_id = $2", link_id, principal.user_id)
    if row is None:
        raise NotFound("Shared link not found")
    return row


async def _event(conn, row: asyncpg.Record, event_type: str) -> None:
    # The owner's event, in no library: a library's feeds (native /api/events, the Immich sync
    # stream) read by library, and a link is the owner's, not a change to the library's content.
    await events.record(conn, entity_type=ENTITY, entity_id=row["id"], event_type=event_type,
                        library_id=None, owner_id=row["owner_id"])


# --- authentication -----------------------------------------------------------------------


async def authenticate(*, key: str | None = None, slug: str | None = None, password_tokens: list[str] = (),
                       password_checked: bool = True) -> Principal:
    """The link a request's key (or slug) names, as a Principal. Unknown, expired, or its owner
    deleted: 401, the same answer for each, so a guess learns nothing. A link with a password also
    needs the password's token (the cookie), unless `password_checked` is False (the login that
    asks for the password)."""
    what = "key" if key is not None else "slug"
    if key is not None:
        raw = _decode_key(key)
        row = None if raw is None else await db.fetchrow(
            f"SELECT sl.* FROM shared_links sl JOIN users u ON u.id = sl.owner_id"
            f" WHERE sl.key = $1 AND u.deleted_at IS NULL AND {_LIVE}", raw)
    else:
        row = await db.fetchrow(
            f"SELECT sl.* FROM shared_links sl JOIN users u ON u.id = sl.owner_id"
            f" WHERE sl.slug = $1 AND u.deleted_at IS NULL AND {_LIVE}", slug or "")
    if row is None:
        raise Unauthorized(f"Invalid share {what}")
    if password_checked and row["password"] and not _has_token(row, list(password_tokens)):
        raise Unauthorized("Password required")
    asset_ids = frozenset(r["asset_id"] for r in await db.fetch(
        "SELECT asset_id FROM shared_link_assets WHERE shared_link_id = $1", row["id"]))
    grant = SharedLinkGrant(id=row["id"], owner_id=row["owner_id"], album_id=row["album_id"], asset_ids=asset_ids,
                            allow_upload=row["allow_upload"], allow_download=row["allow_download"],
                            show_metadata=row["show_metadata"])
    actions = frozenset({READ, WRITE}) if row["allow_upload"] else frozenset({READ})
    return Principal(user_id=row["owner_id"], is_admin=False, api_key_id=None, actions=actions,
                     library_scope=frozenset(), shared_link=grant)


def require_download(principal: Principal) -> None:
    """A link caller downloads an original only when its link allows downloads (Immich's asset.download)."""
    link = principal.shared_link
    if link is not None and not link.allow_download:
        raise Forbidden("This shared link does not allow downloads")


def may_see_original_bytes(principal: Principal) -> bool:
    """Whether the caller may be sent an original file where a rendition would do (a browser-ready image
    with no full-size rendition): its bytes are a download and carry the file's metadata, so a link
    caller needs both downloads and metadata allowed."""
    link = principal.shared_link
    return link is None or (link.allow_download and link.show_metadata)


def _link_of(principal: Principal) -> SharedLinkGrant:
    if principal.shared_link is None:  # Immich: these answer only a link caller
        raise Forbidden("Forbidden")
    return principal.shared_link


async def mine(principal: Principal) -> asyncpg.Record:
    """The link the caller came with (its password, if any, was checked when it authenticated)."""
    row = await db.fetchrow(f"SELECT sl.* FROM shared_links sl WHERE sl.id = $1 AND {_LIVE}", _link_of(principal).id)
    if row is None:
        raise Unauthorized("Invalid share key")
    return row


async def login(principal: Principal, password: str) -> tuple[asyncpg.Record, str]:
    """The caller's link and the token its password cookie keeps, for the right password."""
    row = await mine(principal)
    if not row["password"]:
        raise BadRequest("Shared link is not password protected")
    if not hmac.compare_digest(row["password"].encode(), password.encode()):
        raise Unauthorized("Invalid password")
    return row, password_token(row["id"], row["password"])


# --- the owner's links --------------------------------------------------------------------


async def list_links(principal: Principal, *, link_id: uuid.UUID | None = None,
                     album_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    """The caller's links (expired ones too), newest first, optionally one id or one album's."""
    principal.require(READ)
    return await db.fetch(
        "SELECT * FROM shared_links WHERE owner_id = $1 AND ($2::uuid IS NULL OR id = $2)"
        " AND ($3::uuid IS NULL OR album_id = $3) ORDER BY created_at DESC, id DESC",
        principal.user_id, link_id, album_id,
    )


async def get_link(principal: Principal, link_id: uuid.UUID) -> asyncpg.Record:
    principal.require(READ)
    return await _owned(principal, link_id)


async def _shareable_assets(principal: Principal, asset_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The assets the caller may put in a link: those it may change (a role in their library that
    allows WRITE), never ones it only reads through a share."""
    if len(asset_ids) > MAX_ASSETS:
        raise Invalid(f"At most {MAX_ASSETS} asset ids at once", "assetIds")
    allowed = set()
    for asset_id in dict.fromkeys(asset_ids):
        try:
            await access.load_asset(principal, asset_id, WRITE)
        except (NotFound, Forbidden):
            continue
        allowed.add(asset_id)
    return allowed


async def create_link(principal: Principal, link_type: str, settings: LinkSettings, *,
                      album_id: uuid.UUID | None = None, asset_ids: list[uuid.UUID] = ()) -> asyncpg.Record:
    """A new link to an album the caller may change (owner or collaborator of its library), or to
    a list of assets it may change. The album or an asset it cannot reach: a NotFound of that kind."""
    principal.require(WRITE)
    _check_slug(settings)
    if link_type == ALBUM:
        if album_id is None:
            raise BadRequest("Invalid albumId")
        album = await albums.get_album(principal, album_id, WRITE)
        if album["caller_role"] is None:  # an album user shares nothing onwards
            raise NotFound("Album not found", kind="album", ids=(album_id,))
    elif link_type == INDIVIDUAL:
        if not asset_ids:
            raise BadRequest("Invalid assetIds")
        wanted = list(dict.fromkeys(asset_ids))
        if len(await _shareable_assets(principal, wanted)) != len(wanted):
            raise NotFound("Asset not found", kind="asset", ids=tuple(wanted))
        album_id = None
    else:
        raise BadRequest("type must be ALBUM or INDIVIDUAL")
    async with db.transaction() as conn:
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    "INSERT INTO shared_links (id, owner_id, link_type, album_id, key, slug, description, password,"
                    " expires_at, allow_upload, allow_download, show_metadata)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *",
                    uuid.uuid4(), principal.user_id, link_type, album_id, secrets.token_bytes(KEY_BYTES),
                    settings.slug or None, settings.description or None, settings.password or None,
                    settings.expires_at, settings.allow_upload, settings.allow_download, settings.show_metadata,
                )
        except asyncpg.UniqueViolationError:
            raise BadRequest("Failed to save shared link") from None  # the slug is taken
        if link_type == INDIVIDUAL:
            await conn.executemany("INSERT INTO shared_link_assets (shared_link_id, asset_id) VALUES ($1, $2)",
                                   [(row["id"], a) for a in dict.fromkeys(asset_ids)])
        await _event(conn, row, "shared_link_created")
    return row


_COLUMNS = {"description": "description", "password": "password", "expires_at": "expires_at",
            "allow_upload": "allow_upload", "allow_download": "allow_download",
            "show_metadata": "show_metadata", "slug": "slug"}


async def update_link(principal: Principal, link_id: uuid.UUID, settings: LinkSettings,
                      fields: frozenset[str]) -> asyncpg.Record:
    """Change the named settings. Takes effect on the link's next request (each one reads the link)."""
    principal.require(WRITE)
    _check_slug(settings)
    await _owned(principal, link_id)
    names = [name for name in _COLUMNS if name in fields]
    values = [getattr(settings, name) for name in names]
    assignments = ", ".join(f"{_COLUMNS[name]} = ${i + 3}" for i, name in enumerate(names)) or "id = id"
    async with db.transaction() as conn:
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"UPDATE shared_links SET {assignments} WHERE id = $1 AND owner_id = $2 RETURNING *",
                    link_id, principal.user_id, *values,
                )
        except asyncpg.UniqueViolationError:
            raise BadRequest("Failed to save shared link") from None
        if row is None:
            raise NotFound("Shared link not found")
        await _event(conn, row, "shared_link_updated")
    return row


async def delete_link(principal: Principal, link_id: uuid.UUID) -> None:
    """Delete the link: its key and slug open nothing from the next request on."""
    principal.require(DELETE)
    async with db.transaction() as conn:
        row = await conn.fetchrow("DELETE FROM shared_links WHERE id = $1 AND owner_id = $2 RETURNING *",
                                  link_id, principal.user_id)
        if row is None:
            raise NotFound("Shared link not found")
        await _event(conn, row, "shared_link_deleted")


async def _individual(principal: Principal, link_id: uuid.UUID) -> asyncpg.Record:
    row = await _owned(principal, link_id)
    if row["link_type"] != INDIVIDUAL:
        raise BadRequest("Invalid shared link type")
    return row


async def add_assets(principal: Principal, link_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> list[AssetOutcome]:
    """Add assets to an INDIVIDUAL link: each one already there is a duplicate, one the caller may
    not share is refused (no_permission); the rest are added."""
    principal.require(WRITE)
    row = await _individual(principal, link_id)
    async with db.transaction() as conn:
        await conn.execute("SELECT 1 FROM shared_links WHERE id = $1 FOR UPDATE", row["id"])
        present = {r["asset_id"] for r in await conn.fetch(
            "SELECT asset_id FROM shared_link_assets WHERE shared_link_id = $1", row["id"])}
        allowed = await _shareable_assets(principal, [a for a in asset_ids if a not in present])
        outcomes, added = [], []
        for asset_id in asset_ids:
            if asset_id in present or asset_id in added:
                outcomes.append(AssetOutcome(asset_id, DUPLICATE))
            elif asset_id not in allowed:
                outcomes.append(AssetOutcome(asset_id, NO_PERMISSION))
            else:
                outcomes.append(AssetOutcome(asset_id, None))
                added.append(asset_id)
        if added:
            await conn.executemany("INSERT INTO shared_link_assets (shared_link_id, asset_id) VALUES ($1, $2)",
                                   [(row["id"], a) for a in added])
            await _event(conn, row, "shared_link_updated")
    return outcomes


async def remove_assets(principal: Principal, link_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> list[AssetOutcome]:
    """Take assets out of an INDIVIDUAL link; one that is not in it is not_found."""
    principal.require(DELETE)
    row = await _individual(principal, link_id)
    async with db.transaction() as conn:
        removed = {r["asset_id"] for r in await conn.fetch(
            "DELETE FROM shared_link_assets WHERE shared_link_id = $1 AND asset_id = ANY($2::uuid[]) RETURNING asset_id",
            row["id"], list(dict.fromkeys(asset_ids)))}
        if removed:
            await _event(conn, row, "shared_link_updated")
    outcomes, seen = [], set()
    for asset_id in asset_ids:
        outcomes.append(AssetOutcome(asset_id, None if asset_id in removed and asset_id not in seen else NOT_FOUND))
        seen.add(asset_id)
    return outcomes


# --- what a link shows ----------------------------------------------------------------------


async def link_albums(rows: list[asyncpg.Record]) -> dict[uuid.UUID, asyncpg.Record]:
    """The albums of ALBUM links (rows of albums.ALBUM_VIEW), by album id, live libraries only."""
    album_ids = list({r["album_id"] for r in rows if r["album_id"] is not None})
    if not album_ids:
        return {}
    found = await db.fetch(
        f"SELECT v.*, NULL::text AS caller_role FROM ({albums.ALBUM_VIEW}) v JOIN libraries l ON l.id = v.library_id"
        " WHERE v.id = ANY($1::uuid[]) AND l.trashed_at IS NULL", album_ids)
    return {r["id"]: r for r in found}


async def albums_with_links(album_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these albums have a shared link (Immich's hasSharedLink), expired ones included."""
    rows = await db.fetch("SELECT DISTINCT album_id FROM shared_links WHERE album_id = ANY($1::uuid[])", album_ids)
    return {r["album_id"] for r in rows}


async def link_assets(rows: list[asyncpg.Record]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The live assets of INDIVIDUAL links, by link id, oldest first (Immich's order). An asset moved
    to the locked folder leaves every link, as no share reaches it (app/domain/access.py)."""
    found = await db.fetch(
        "SELECT sla.shared_link_id, a.* FROM shared_link_assets sla JOIN assets a ON a.id = sla.asset_id"
        " JOIN libraries l ON l.id = a.library_id"
        " WHERE sla.shared_link_id = ANY($1::uuid[]) AND a.trashed_at IS NULL AND l.trashed_at IS NULL"
        " AND a.visibility <> $2 ORDER BY a.taken_at, a.id",
        [r["id"] for r in rows], access.LOCKED,
    )
    out: dict[uuid.UUID, list[asyncpg.Record]] = {r["id"]: [] for r in rows}
    for r in found:
        out[r["shared_link_id"]].append(r)
    return out


@dataclass(frozen=True)
class LinkPreview:
    """What a page opened with a link shows to link unfurlers (Immich's Open Graph tags)."""

    title: str
    description: str
    thumbnail_asset_id: uuid.UUID | None
    key: str  # base64url, for the thumbnail URL


async def preview(*, key: str | None = None, slug: str | None = None) -> LinkPreview | None:
    """The preview of a live link without a password; None for any other (unknown, expired, password
    protected), so the page then shows nothing about it. Immich's wording: the album's name or
    'Public Share', the link's description or '<n> shared photos & videos'."""
    try:
        principal = await authenticate(key=key, slug=slug)
    except (Unauthorized, BadRequest):
        return None
    row = await mine(principal)
    if row["album_id"] is not None:
        album = (await link_albums([row])).get(row["album_id"])
        if album is None:
            return None
        title, count, cover = album["name"], album["asset_count"], album["effective_cover_id"]
    else:
        assets = (await link_assets([row]))[row["id"]]
        title, count, cover = "Public Share", len(assets), assets[0]["id"] if assets else None
    return LinkPreview(title=title, description=row["description"] or f"{count} shared photos & videos",
                       thumbnail_asset_id=cover, key=encode_key(row["key"]))


# --- uploading through a link ---------------------------------------------------------------


async def upload_target(principal: Principal) -> tuple[Principal, uuid.UUID]:
    """Who an upload acts as, and the library it lands in. A link caller uploads as the link's owner,
    narrowed to the one library: the album's (an ALBUM link), or the owner's Immich library (an
    INDIVIDUAL link). Ingest still checks that the owner may add to it. Anyone else: itself."""
    link = principal.shared_link
    if link is None:
        return principal, await access.preferred_library(principal)
    if not link.allow_upload:
        raise Unauthorized("Unauthorized")
    if link.album_id is not None:
        library = await db.fetchval("SELECT library_id FROM albums WHERE id = $1", link.album_id)
        if library is None:
            raise Unauthorized("Invalid share key")
    else:
        owner = Principal(user_id=link.owner_id, is_admin=False, api_key_id=None,
                          actions=frozenset({READ, WRITE}), library_scope=None)
        library = await access.preferred_library(owner)
    acting = Principal(user_id=link.owner_id, is_admin=False, api_key_id=None,
                       actions=frozenset({READ, WRITE}), library_scope=frozenset({library}))
    return acting, library


async def uploaded_in_album(principal: Principal, album_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """For a link caller adding assets to its album (Immich's web does so after each upload through a
    link): which of them are in the album already. A link adds nothing itself (its uploads landed
    there); another album, or a link that allows no uploads, is a NotFound of the album."""
    link = _link_of(principal)
    if link.album_id != album_id or not link.allow_upload:
        raise NotFound("Album not found", kind="album", ids=(album_id,))
    await albums.get_album(principal, album_id)  # still live, the link still valid
    rows = await db.fetch("SELECT asset_id FROM album_assets WHERE album_id = $1 AND asset_id = ANY($2::uuid[])",
                          album_id, list(dict.fromkeys(asset_ids)))
    return {r["asset_id"] for r in rows}


async def attach_upload(principal: Principal, acting: Principal, asset_id: uuid.UUID) -> None:
    """Put an asset uploaded through a link where the link shows it: into its album (an
    album_asset_added event), or into its asset list."""
    link = principal.shared_link
    if link is None:
        return
    if link.album_id is not None:
        await albums.add_assets(acting, link.album_id, [asset_id])
        return
    async with db.transaction() as conn:
        row = await conn.fetchrow("SELECT * FROM shared_links WHERE id = $1 FOR UPDATE", link.id)
        if row is None:
            raise Unauthorized("Invalid share key")
        added = await conn.fetchval(
            "INSERT INTO shared_link_assets (shared_link_id, asset_id) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING asset_id", link.id, asset_id)
        if added is not None:
            await _event(conn, row, "shared_link_updated")
