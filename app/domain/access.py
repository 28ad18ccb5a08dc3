"""Scoped loading, in one place: given a Principal, the libraries and objects it may touch.

Every object load goes through the functions here, so another user's object answers exactly
like a missing one (404), and a credential's action and library scopes are checked the same
way everywhere. A library's content is reached through the caller's role in it (the
library_access view: its owner and its active members), and the role decides the actions
(ROLE_ACTIONS): a member whose role forbids one gets 403, everyone without a role 404.

Who the caller is comes from app.domain.authentication; the Principal type and the action
names live in app.domain.principal and are re-exported here, so callers name them as
access.Principal, access.READ and so on.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from app.db import engine as db
from app.domain.errors import AccessRefused, BadRequest, Forbidden, NotFound
from app.domain.asset_filters import LOCKED
from app.domain.libraries import create_default_library
from app.domain.principal import ALL_ACTIONS, DELETE, DELETE_PERMANENTLY, READ, WRITE, LibraryChoices, Principal

__all__ = [
    "ALBUM_EDITOR",
    "ALBUM_VIEWER",
    "ALL_ACTIONS",
    "COLLABORATOR",
    "DELETE",
    "DELETE_PERMANENTLY",
    "OWNER",
    "PARTNER",
    "READ",
    "ROLE_ACTIONS",
    "VIEWER",
    "WRITE",
    "Principal",
    "album_user_audiences",
    "album_user_role",
    "asset_outcomes",
    "caller_role_sql",
    "library_for",
    "library_partner_audiences",
    "library_role",
    "live_library_ids",
    "load_asset",
    "load_assets",
    "load_face",
    "load_person",
    "load_reachable",
    "owned_library",
    "partner_libraries_of",
    "partner_timeline_libraries",
    "preferred_library",
    "require_album_user",
    "require_role",
    "SHARED_LINK",
    "shared_link_asset_grant",
    "timeline_library_of",
    "shared_album_ids",
]

# A library's owner, or a member with a role (library_members). What each role may do to the
# library's content; the library itself (rename, trash, delete, members, invitations) is the owner's.
OWNER = "owner"
COLLABORATOR = "collaborator"
VIEWER = "viewer"
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    OWNER: ALL_ACTIONS,
    COLLABORATOR: frozenset({READ, WRITE, DELETE}),  # adds and edits, trashes; never erases for good
    VIEWER: frozenset({READ}),
}
# Not a library role: an Immich partner reads the sharer's photos and changes nothing (_partner_grant).
PARTNER = "partner"
ROLE_ACTIONS[PARTNER] = frozenset({READ})


def _role_allows(role: str, action: str) -> bool:
    return action in ROLE_ACTIONS[role]


async def library_role(principal: Principal, library_id: uuid.UUID, *, include_trashed: bool = False) -> str | None:
    """The caller's role in a library (owner, collaborator, viewer), or None: no access, out of the
    credential's scope, or trashed (unless asked for)."""
    if not principal.in_scope(library_id):
        return None
    row = await db.fetchrow(
        "SELECT role, trashed_at FROM library_access WHERE library_id = $1 AND user_id = $2",
        library_id, principal.user_id,
    )
    if row is None or (row["trashed_at"] is not None and not include_trashed):
        return None
    return row["role"]


async def live_library_ids(principal: Principal) -> list[uuid.UUID]:
    """The live libraries the caller owns, within its credential's scope."""
    rows = await db.fetch(
        "SELECT id FROM libraries WHERE owner_id = $1 AND trashed_at IS NULL ORDER BY created_at, id",
        principal.user_id,
    )
    return [r["id"] for r in rows if principal.in_scope(r["id"])]


async def owned_library(principal: Principal, library_id: uuid.UUID, action: str, *,
                        include_trashed: bool = False) -> asyncpg.Record:
    """A library the caller owns, for what only an owner does (rename, trash, members, invitations).
    404 without access; 403 for a member, who can see the library but not run it."""
    principal.require(action)
    role = await library_role(principal, library_id, include_trashed=include_trashed)
    if role is None:
        raise NotFound("Library not found")
    if role != OWNER:
        raise Forbidden("Only the library's owner may do this")
    return await db.fetchrow("SELECT * FROM libraries WHERE id = $1", library_id)


async def library_for(principal: Principal, library_id: uuid.UUID | None, action: str) -> uuid.UUID:
    """The library a request acts on: the one named (owned or shared with the caller, and its role
    must allow the action), or, when none is named, the caller's only own library. A shared library
    is always named: joining one never changes where an unnamed request goes."""
    principal.require(action)
    if library_id is not None:
        await require_role(principal, library_id, action, NotFound("Library not found"))
        return library_id
    libraries = await live_library_ids(principal)
    if len(libraries) == 1:
        return libraries[0]
    if not libraries:
        if principal.library_scope is not None:
            raise NotFound("Library not found")
        return await create_default_library(principal.user_id)
    raise BadRequest("library_id is required because you have more than one library")


def _decide(principal: Principal, library_id: uuid.UUID, role: str | None, action: str, missing: NotFound) -> str:
    """The one rule for reaching a library's content: no role (or outside the credential's scope) is
    `missing`, a 404, so another user's object answers like one that does not exist; a role that
    does not allow the action is a 403, since a member already sees what it may not change."""
    if role is None or not principal.in_scope(library_id):
        raise missing
    if not _role_allows(role, action):
        raise AccessRefused(f"A library {role} may not {action.replace('_', ' ')} here", kind=missing.kind)
    return role


async def require_role(principal: Principal, library_id: uuid.UUID, action: str, missing: NotFound) -> str:
    """The caller's role in a live library it may act on (`action`); `missing` (404) without access,
    403 when its role forbids the action. For content whose library is already known."""
    principal.require(action)
    return _decide(principal, library_id, await library_role(principal, library_id), action, missing)


def caller_role_sql(library_column: str, user_param: str) -> str:
    """A scalar SQL subquery: the role of the user in `user_param` in the live library named by
    `library_column`, or NULL when it has none (library_access, trashed libraries left out)."""
    return (f"(SELECT la.role FROM library_access la WHERE la.library_id = {library_column}"
            f" AND la.user_id = {user_param} AND la.trashed_at IS NULL)")


# A source of access beyond library roles: given the caller and a row it has no library role for,
# the role it holds on that row anyway, or None.
Grant = Callable[[Principal, asyncpg.Record], Awaitable[str | None]]


async def load_reachable(principal: Principal, action: str, view_sql: str, object_id: uuid.UUID,
                         missing: NotFound, *, library_id: uuid.UUID | None = None,
                         lock: bool = False, grant: Grant | None = None) -> asyncpg.Record:
    """One row of `view_sql` by id, if the caller's role in the row's live library allows `action`.

    `view_sql` is a SELECT with no access filter whose rows have `id` and `library_id` columns;
    the caller's role is read in the same query (one round trip) and the returned record carries
    it as `caller_role`. Missing, another user's, in a trashed library, out of the credential's
    scope, or not in `library_id` when one is given: `missing` (404). A role that forbids the
    action: 403. `lock` holds the row (FOR UPDATE) for the current transaction. `grant` is asked
    only when the caller has no role in the row's library (an Immich share of the object).
    """
    principal.require(action)
    row = await db.fetchrow(
        f"SELECT v.*, {caller_role_sql('v.library_id', '$2')} AS caller_role FROM ({view_sql}) v"
        f" WHERE v.id = $1{' FOR UPDATE OF v' if lock else ''}",
        object_id, principal.user_id,
    )
    if row is None or (library_id is not None and row["library_id"] != library_id):
        raise missing
    role = row["caller_role"]
    if role is None and grant is not None:
        role = await grant(principal, row)
    _decide(principal, row["library_id"], role, action, missing)
    return row


async def load_asset(principal: Principal, asset_id: uuid.UUID, action: str, *,
                     missing: NotFound | None = None, lock: bool = False) -> asyncpg.Record:
    """One asset the caller may act on (trashed ones too), or 404 whether it is missing or someone else's.
    Without a library role or a partnership, an album share may still let the caller read it
    (_album_asset_grant), or the shared link the caller came with (shared_link_asset_grant)."""
    missing = missing or NotFound("Asset not found", kind="asset", ids=(asset_id,))
    try:
        row = await load_reachable(principal, action, "SELECT a.* FROM assets a", asset_id, missing, lock=lock,
                                   grant=_partner_grant)
    except NotFound as exc:
        if exc is not missing or action != READ or not (
                await _album_asset_grant(principal, asset_id) or await shared_link_asset_grant(principal, asset_id)):
            raise
        # The grants above never admit a locked asset.
        return await db.fetchrow("SELECT a.*, NULL::text AS caller_role FROM assets a WHERE a.id = $1", asset_id)
    if row["visibility"] == LOCKED and not principal.elevated:
        raise missing  # the locked folder opens only to a session unlocked with the PIN
    return row


async def asset_outcomes(principal: Principal, asset_ids: list[uuid.UUID],
                         action: str) -> dict[uuid.UUID, asyncpg.Record | Forbidden | NotFound]:
    """load_asset for many ids in one query: per id, the asset or the refusal load_asset would raise.

    The same rules in the same order: the caller's role (within the credential's scope), else a
    partner share; a role that forbids the action refuses (403); for READ only, an album or the
    caller's shared link may admit a live unlocked asset; a locked asset reached through a role
    needs an unlocked session. Rows are load_asset's (caller_role NULL when only a grant admits
    them) plus the grant columns the decision read. No ids: nothing is checked, as no load_asset ran."""
    if not asset_ids:
        return {}
    principal.require(action)
    reading = action == READ
    rows = await db.fetch(
        f"SELECT a.*, CASE WHEN $3::uuid[] IS NULL OR a.library_id = ANY($3::uuid[])"
        f" THEN {caller_role_sql('a.library_id', '$2')} END AS caller_role,"
        f" {_partner_sql('a', '$2')} AS partner_granted,"
        f" {_album_grant_sql('a', '$2') if reading else 'false'} AS album_granted,"
        f" {_shared_link_grant_sql('a', '$4') if reading else 'false'} AS link_granted"
        " FROM assets a WHERE a.id = ANY($1::uuid[])",
        list(asset_ids), principal.user_id,
        None if principal.library_scope is None else list(principal.library_scope),
        *([principal.shared_link.id if principal.shared_link is not None else None] if reading else []),
    )
    found = {r["id"]: r for r in rows}
    out: dict[uuid.UUID, asyncpg.Record | Forbidden | NotFound] = {}
    for asset_id in asset_ids:
        missing = NotFound("Asset not found", kind="asset", ids=(asset_id,))
        row = found.get(asset_id)
        out[asset_id] = missing if row is None else _asset_outcome(principal, row, action, missing)
    return out


def _asset_outcome(principal: Principal, row: asyncpg.Record, action: str,
                   missing: NotFound) -> asyncpg.Record | Forbidden | NotFound:
    """load_asset's decision on a row of asset_outcomes' query."""
    role = row["caller_role"]
    if role is None and row["partner_granted"] and _share_allowed(principal):
        role = PARTNER
    try:
        _decide(principal, row["library_id"], role, action, missing)
    except AccessRefused as refused:
        return refused
    except NotFound:
        granted = (_share_allowed(principal) and row["album_granted"]) or (
            principal.shared_link is not None and row["link_granted"])
        return row if action == READ and granted else missing
    return missing if row["visibility"] == LOCKED and not principal.elevated else row


async def load_assets(principal: Principal, asset_ids: list[uuid.UUID], action: str) -> dict[uuid.UUID, asyncpg.Record]:
    """Every asset named, when the caller may act on all of them; else the refusal of the first one
    (in the order given) that it may not, as a loop over load_asset would raise."""
    outcomes = await asset_outcomes(principal, asset_ids, action)
    for outcome in outcomes.values():
        if isinstance(outcome, Exception):
            raise outcome
    return outcomes


def library_choices_sql(user: str) -> str:
    """The columns of a SELECT over users aliased `user` that library_choices() reads."""
    return (f"{user}.immich_library_id AS immich_library_id, {user}.default_library_id AS default_library_id,"
            f" ARRAY(SELECT l.id FROM libraries l WHERE l.owner_id = {user}.id AND l.trashed_at IS NULL"
            f" ORDER BY l.created_at, l.id) AS live_library_ids")


def library_choices(row: asyncpg.Record) -> LibraryChoices:
    return LibraryChoices(row["immich_library_id"], row["default_library_id"], tuple(row["live_library_ids"]))


async def preferred_library(principal: Principal) -> uuid.UUID:
    """The one library a single-library client (Immich) sees: the chosen one, else the default."""
    choices = principal.libraries
    if choices is None:  # a principal not made by authentication (jobs, tests): one query
        row = await db.fetchrow(f"SELECT {library_choices_sql('u')} FROM users u WHERE id = $1", principal.user_id)
        choices = LibraryChoices(None, None, ()) if row is None else library_choices(row)
    live = [library for library in choices.live if principal.in_scope(library)]
    for candidate in (choices.immich, choices.default):
        if candidate in live:
            return candidate
    if live:
        return live[0]
    return await library_for(principal, None, WRITE)


async def load_person(principal: Principal, person_id: uuid.UUID, action: str) -> asyncpg.Record:
    """One person the caller may act on, or 404 whether it is missing or someone else's."""
    return await load_reachable(principal, action, "SELECT p.* FROM people p", person_id, NotFound("Person not found", kind="person", ids=(person_id,)))


async def load_face(principal: Principal, face_id: uuid.UUID, action: str,
                    library_id: uuid.UUID | None = None) -> asyncpg.Record:
    """One face on a live asset the caller may act on (a trashed asset's faces are hidden), or 404."""
    return await load_reachable(
        principal, action,
        "SELECT f.* FROM faces f JOIN assets a ON a.id = f.asset_id WHERE a.trashed_at IS NULL",
        face_id, NotFound("Face not found", kind="face", ids=(face_id,)), library_id=library_id,
    )


# --- Immich partners ---
# A partner reaches the sharer's photos in the one library the sharer's Immich client sees (the
# chosen Immich library, else the default, else the oldest live one: preferred_library's order).
# Sharing from Immich thus never exposes a library the sharer keeps to the native API, and the
# partner timeline shows exactly what the grant admits.


def _immich_library_sql(user_column: str) -> str:
    """A scalar SQL subquery: the live library the Immich client of the user in `user_column` sees
    (NULL for an account being deleted, whose photos are shared no more)."""
    return (f"(SELECT l.id FROM libraries l JOIN users u ON u.id = {user_column}"
            f" WHERE l.owner_id = u.id AND l.trashed_at IS NULL AND u.deleted_at IS NULL"
            f" ORDER BY l.id IS NOT DISTINCT FROM u.immich_library_id DESC,"
            f" l.id IS NOT DISTINCT FROM u.default_library_id DESC, l.created_at, l.id LIMIT 1)")


async def immich_library_of(user_id: uuid.UUID) -> uuid.UUID | None:
    """The live library the user's Immich clients see (None for a missing or deleted account)."""
    return await db.fetchval(f"SELECT {_immich_library_sql('$1::uuid')}", user_id)


async def _partner_grant(principal: Principal, row: asyncpg.Record) -> str | None:
    """PARTNER when the row's library is the Immich library of someone who shares with the caller
    (never for an asset its owner locked: no share reaches those)."""
    if row.get("visibility") == LOCKED or not _share_allowed(principal):
        return None
    shared = await db.fetchval(f"SELECT {_partner_library_sql('$2', '$1')}", principal.user_id, row["library_id"])
    return PARTNER if shared else None


def _partner_library_sql(library_expr: str, user_param: str) -> str:
    """An SQL condition: the library in `library_expr` is the Immich library of someone who shares
    with the user in `user_param`."""
    return (f"EXISTS (SELECT 1 FROM partners p WHERE p.shared_with_id = {user_param}"
            f" AND {_immich_library_sql('p.shared_by_id')} = {library_expr})")


def _partner_sql(asset: str, user_param: str) -> str:
    """_partner_grant as an SQL condition on the assets row aliased `asset` (share_allowed aside)."""
    return f"({asset}.visibility <> '{LOCKED}' AND {_partner_library_sql(f'{asset}.library_id', user_param)})"


async def timeline_library_of(principal: Principal, user_id: uuid.UUID) -> uuid.UUID:
    """The library whose timeline is the user's, for the caller: its own (preferred) one, or the
    Immich library of a partner who shares with it. Anyone else's: 404 (kind "timeline")."""
    if user_id == principal.user_id:
        return await preferred_library(principal)
    library = None
    if _share_allowed(principal):
        library = await db.fetchval(
            f"SELECT {_immich_library_sql('p.shared_by_id')} FROM partners p"
            " WHERE p.shared_by_id = $1 AND p.shared_with_id = $2",
            user_id, principal.user_id,
        )
    if library is None:
        raise NotFound("Timeline not found", kind="timeline", ids=(user_id,))
    return library


async def partner_timeline_libraries(principal: Principal) -> list[uuid.UUID]:
    """The libraries of partners whose photos the caller chose to see in its timeline (in_timeline),
    within its credential's scope."""
    rows = await db.fetch(
        f"SELECT DISTINCT {_immich_library_sql('p.shared_by_id')} AS library_id FROM partners p"
        " WHERE p.shared_with_id = $1 AND p.in_timeline",
        principal.user_id,
    )
    return [r["library_id"] for r in rows if r["library_id"] is not None and principal.in_scope(r["library_id"])]


# --- album users (Immich album sharing) ---------------------------------------------------
# An album-level grant, never a library role: it reaches one album and the live assets in it,
# never the rest of the album's library. Every album user reads; an editor also adds its own
# assets and removes them again.
# Renaming, deleting and sharing the album stay with those who have a role in its library.
ALBUM_EDITOR = "editor"
ALBUM_VIEWER = "viewer"


# An album shares only while its owner's account lives: a deleted account's albums are shared no more.
_SHARING_OWNER = " JOIN users album_owner ON album_owner.id = al.owner_id AND album_owner.deleted_at IS NULL"


def _share_allowed(principal: Principal) -> bool:
    """A credential limited to some libraries reaches nothing through a share: it runs only those."""
    return principal.library_scope is None


async def album_user_role(principal: Principal, album_id: uuid.UUID) -> str | None:
    """The caller's role in an album shared with it (album_users) whose library is live, or None."""
    if not _share_allowed(principal):
        return None
    return await db.fetchval(
        "SELECT au.role FROM album_users au JOIN albums al ON al.id = au.album_id"
        f" JOIN libraries l ON l.id = al.library_id{_SHARING_OWNER}"
        " WHERE au.album_id = $1 AND au.user_id = $2 AND l.trashed_at IS NULL",
        album_id, principal.user_id,
    )


async def require_album_user(principal: Principal, album_id: uuid.UUID, action: str, missing: NotFound, *,
                             linking_assets: bool = False) -> str:
    """The caller's album-user role, when it allows `action` on the album: READ for every album user;
    WRITE only to link or unlink assets (its own: the caller narrows them) and only for an editor.
    `missing` (404) when the album is not shared with the caller, 403 when its role forbids the action."""
    principal.require(action)
    if principal.shared_link is not None:
        return await _shared_link_album_role(principal, album_id, action, missing)
    role = await album_user_role(principal, album_id)
    if role is None:
        raise missing
    if action == READ or (action == WRITE and linking_assets and role == ALBUM_EDITOR):
        return role
    what = "add or remove assets in" if linking_assets else action.replace("_", " ")
    raise Forbidden(f"An album {role} may not {what} this album")


async def _album_asset_grant(principal: Principal, asset_id: uuid.UUID) -> bool:
    """Whether the caller may read a live asset because it is in an album the caller can read: one
    shared with it, or one in a live library it has a role in (an editor's asset in the owner's album)."""
    if not _share_allowed(principal):
        return False
    return await db.fetchval(f"SELECT EXISTS (SELECT 1 FROM assets a WHERE a.id = $1 AND {_album_grant_sql('a', '$2')})",
                             asset_id, principal.user_id)


def _live_asset_sql(asset: str) -> str:
    """An SQL condition: the assets row aliased `asset` is live, not locked, in a live library."""
    return (f"{asset}.trashed_at IS NULL AND {asset}.visibility <> '{LOCKED}' AND EXISTS"
            f" (SELECT 1 FROM libraries own WHERE own.id = {asset}.library_id AND own.trashed_at IS NULL)")


def _album_grant_sql(asset: str, user_param: str) -> str:
    """_album_asset_grant as an SQL condition on the assets row aliased `asset` (share_allowed aside)."""
    return (f"({_live_asset_sql(asset)} AND EXISTS (SELECT 1 FROM album_assets aa JOIN albums al ON al.id = aa.album_id"
            f" WHERE aa.asset_id = {asset}.id AND ("
            f"   EXISTS (SELECT 1 FROM album_users au JOIN libraries l ON l.id = al.library_id{_SHARING_OWNER}"
            f"           WHERE au.album_id = al.id AND au.user_id = {user_param} AND l.trashed_at IS NULL)"
            f"  OR {caller_role_sql('al.library_id', user_param)} IS NOT NULL)))")


# --- shared links ---------------------------------------------------------------------------
# Immich's public links. A link caller's Principal has an empty library_scope, so every grant
# above refuses it; these two are all it reaches, read-only, while the link exists and has not
# expired (both checked here, in the same query, on every load): the live album the link names
# and that album's live assets, or the assets listed for an INDIVIDUAL link.
SHARED_LINK = "shared_link"


def _live_link(link_param: str) -> str:
    """An SQL condition: the shared link aliased `sl` is the one in `link_param` and has not expired."""
    return f"sl.id = {link_param} AND (sl.expires_at IS NULL OR sl.expires_at > now())"


async def shared_link_asset_grant(principal: Principal, asset_id: uuid.UUID) -> bool:
    """Whether the caller's shared link opens this live asset: it is in the link's album, or listed
    for the link."""
    if principal.shared_link is None:
        return False
    return await db.fetchval(f"SELECT EXISTS (SELECT 1 FROM assets a WHERE a.id = $2 AND {_shared_link_grant_sql('a', '$1')})",
                             principal.shared_link.id, asset_id)


def _shared_link_grant_sql(asset: str, link_param: str) -> str:
    """shared_link_asset_grant as an SQL condition on the assets row aliased `asset`."""
    return (f"({_live_asset_sql(asset)} AND EXISTS (SELECT 1 FROM shared_links sl"
            f" WHERE {_live_link(link_param)} AND ("
            "   EXISTS (SELECT 1 FROM album_assets aa JOIN albums al ON al.id = aa.album_id"
            "           JOIN libraries l ON l.id = al.library_id"
            f"           WHERE aa.album_id = sl.album_id AND aa.asset_id = {asset}.id AND l.trashed_at IS NULL)"
            "   OR EXISTS (SELECT 1 FROM shared_link_assets sla"
            f"              WHERE sla.shared_link_id = sl.id AND sla.asset_id = {asset}.id))))")


async def _shared_link_album_role(principal: Principal, album_id: uuid.UUID, action: str, missing: NotFound) -> str:
    """SHARED_LINK when the caller's link is an ALBUM link to this album (in a live library) and
    the caller only reads; otherwise `missing`."""
    link = principal.shared_link
    if action != READ or link.album_id != album_id or not await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM shared_links sl JOIN albums al ON al.id = sl.album_id"
        f" JOIN libraries l ON l.id = al.library_id WHERE {_live_link('$1')} AND sl.album_id = $2 AND l.trashed_at IS NULL)",
        link.id, album_id,
    ):
        raise missing
    return SHARED_LINK


# --- audiences ---
# Who sees what beyond library roles, for clients that keep a copy (the Immich sync stream) and
# for live events: a partner receives the sharer's Immich library, an album user the album.


async def partner_libraries_of(user_id: uuid.UUID) -> list[uuid.UUID]:
    """The Immich libraries of everyone who shares with the user (whatever in_timeline says: the
    receiver's client keeps them all and filters its timeline itself)."""
    rows = await db.fetch(
        f"SELECT DISTINCT {_immich_library_sql('p.shared_by_id')} AS library_id FROM partners p"
        " WHERE p.shared_with_id = $1",
        user_id,
    )
    return sorted(r["library_id"] for r in rows if r["library_id"] is not None)


async def shared_album_ids(user_id: uuid.UUID) -> list[uuid.UUID]:
    """The albums shared with the user (album_users) whose library is live and whose owner's account
    is not deleted."""
    rows = await db.fetch(
        "SELECT au.album_id FROM album_users au JOIN albums al ON al.id = au.album_id"
        f" JOIN libraries l ON l.id = al.library_id{_SHARING_OWNER} WHERE au.user_id = $1 AND l.trashed_at IS NULL"
        " ORDER BY au.album_id",
        user_id,
    )
    return [r["album_id"] for r in rows]


async def library_partner_audiences(library_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """For each library, the users it reaches as a partner share (it is the sharer's Immich library)."""
    if not library_ids:
        return {}
    rows = await db.fetch(
        f"SELECT lib, p.shared_with_id FROM partners p, LATERAL (SELECT {_immich_library_sql('p.shared_by_id')}"
        " AS lib) s WHERE s.lib = ANY($1::uuid[])",
        library_ids,
    )
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    for r in rows:
        out.setdefault(r["lib"], []).append(r["shared_with_id"])
    return out


async def album_user_audiences(album_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """For each album, the users it is shared with (album_users), while its owner's account lives."""
    if not album_ids:
        return {}
    rows = await db.fetch("SELECT au.album_id, au.user_id FROM album_users au JOIN albums al ON al.id = au.album_id"
                          f"{_SHARING_OWNER} WHERE au.album_id = ANY($1::uuid[])", album_ids)
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    for r in rows:
        out.setdefault(r["album_id"], []).append(r["user_id"])
    return out
