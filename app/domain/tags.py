"""Tags: each user's own tree of labels ("Travel/2024" lies below "Travel"), and the assets carrying them.

A tag's value is its full path; every level of a path is a tag of its own, created when a path
names it first. tag_closure holds every (ancestor, descendant) pair, a tag being its own, so "this
tag or any below it" is one join (asset_filters). Tags belong to one user and answer 404 to anyone
else; tagging an asset needs write access to it (a role allowing WRITE in its library).

Every write records its change event in the same transaction: `tag` events for the tags (no
library: a tag is its user's), `asset_tag` events, keyed by the asset, for links made or undone.
After a tagging commits, write_sidecars writes the assets' tag paths to their XMP sidecars.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg

from app.db import engine as db
from app.domain import access, events
from app.domain.asset_filters import LOCKED
from app.domain.blob_locks import lock_blobs
from app.domain.errors import Conflict, Invalid, NotFound
from app.media.metadata import RefusedSidecar, with_tags_list

log = logging.getLogger(__name__)

TAG = "tag"
ASSET_TAG = "asset_tag"
MAX_IDS = 1000
SEPARATOR = "/"
# A tag's full path, in UTF-8 bytes: well under what one entry of the (user, value) index may hold.
MAX_VALUE_BYTES = 2000


@dataclass
class LinkResults:
    """What became of each asset asked to be tagged or untagged with one tag."""

    done: list[uuid.UUID] = field(default_factory=list)
    duplicate: list[uuid.UUID] = field(default_factory=list)  # tagging: it had the tag already
    not_found: list[uuid.UUID] = field(default_factory=list)  # untagging: it did not have it
    no_permission: list[uuid.UUID] = field(default_factory=list)


def name_of(value: str) -> str:
    """A tag's name: the last level of its path."""
    return value.rsplit(SEPARATOR, 1)[-1]


def _clean(path: str) -> list[str]:
    """A path's levels, trimmed, empty ones ("a//b", a trailing "/") dropped."""
    return [level for level in (level.strip() for level in path.split(SEPARATOR)) if level]


def _levels(path: str, field_name: str, parent: str = "") -> list[str]:
    levels = _clean(path)
    if not levels:
        raise Invalid("A tag needs a name", field_name)
    if len(SEPARATOR.join([parent, *levels]).encode()) > MAX_VALUE_BYTES:
        raise Invalid(f"A tag's full path is at most {MAX_VALUE_BYTES} bytes long", field_name)
    return levels


async def _event(conn, tag: asyncpg.Record, event_type: str) -> None:
    await events.record(conn, entity_type=TAG, entity_id=tag["id"], event_type=event_type,
                        library_id=None, owner_id=tag["user_id"],
                        payload={"value": tag["value"], "parent_id": None if tag["parent_id"] is None
                                 else str(tag["parent_id"])})


async def _link_events(conn, user_id: uuid.UUID, event_type: str, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
    """One asset_tag event per (tag, asset) link made or undone, in its asset's library."""
    if not pairs:
        return
    await conn.execute(
        "INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type, payload)"
        " SELECT a.library_id, $1, $2, a.id, $3, jsonb_build_object('tag_id', p.tag_id::text)"
        " FROM unnest($4::uuid[], $5::uuid[]) AS p(tag_id, asset_id) JOIN assets a ON a.id = p.asset_id"
        " ORDER BY a.id, p.tag_id",
        user_id, ASSET_TAG, event_type, [t for t, _ in pairs], [a for _, a in pairs],
    )
    for tag_id, asset_id in pairs:
        db.note_change({"entity_type": ASSET_TAG, "entity_id": str(asset_id), "event_type": event_type,
                        "library_id": None, "owner_id": str(user_id), "payload": {"tag_id": str(tag_id)}})


# --- reading -----------------------------------------------------------------------------


async def list_tags(principal: access.Principal) -> list[asyncpg.Record]:
    principal.require(access.READ)
    return await db.fetch("SELECT * FROM tags WHERE user_id = $1 ORDER BY value", principal.user_id)


async def get_tag(principal: access.Principal, tag_id: uuid.UUID, action: str = access.READ) -> asyncpg.Record:
    """One of the caller's tags; anyone else's answers like a missing one."""
    principal.require(action)
    row = await db.fetchrow("SELECT * FROM tags WHERE id = $1 AND user_id = $2", tag_id, principal.user_id)
    if row is None:
        raise NotFound("Tag not found", kind=TAG, ids=(tag_id,))
    return row


async def require_tags(principal: access.Principal, tag_ids: list[uuid.UUID]) -> None:
    """Every id is one of the caller's tags (for filters naming them), else 404."""
    principal.require(access.READ)
    wanted = set(tag_ids)
    found = await db.fetchval("SELECT count(*) FROM tags WHERE id = ANY($1::uuid[]) AND user_id = $2",
                              list(wanted), principal.user_id)
    if found != len(wanted):
        raise NotFound("Tag not found", kind=TAG, ids=tuple(wanted))


async def tags_of_assets(asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The tags on each asset, by value. For assets the caller was already allowed to read."""
    out: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for r in await db.fetch(
        "SELECT ta.asset_id, t.* FROM tag_assets ta JOIN tags t ON t.id = ta.tag_id"
        " WHERE ta.asset_id = ANY($1::uuid[]) ORDER BY t.value", asset_ids,
    ):
        out.setdefault(r["asset_id"], []).append(r)
    return out


# --- the tree ----------------------------------------------------------------------------


async def _ensure_path(conn, user_id: uuid.UUID, levels: list[str],
                       parent: asyncpg.Record | None = None) -> tuple[asyncpg.Record, bool]:
    """The tag at the end of the path below `parent`, each missing level created (with its closure
    rows and event). Returns it and whether the last level was created now."""
    created = False
    for level in levels:
        value = level if parent is None else f"{parent['value']}{SEPARATOR}{level}"
        row = await conn.fetchrow(
            "INSERT INTO tags (user_id, value, parent_id) VALUES ($1, $2, $3)"
            " ON CONFLICT (user_id, value) DO NOTHING RETURNING *",
            user_id, value, None if parent is None else parent["id"],
        )
        created = row is not None
        if created:
            await conn.execute(
                "INSERT INTO tag_closure (ancestor_id, descendant_id)"
                " SELECT $1::uuid, $1::uuid UNION ALL SELECT ancestor_id, $1::uuid FROM tag_closure WHERE descendant_id = $2",
                row["id"], None if parent is None else parent["id"],
            )
            await _event(conn, row, "tag_created")
        else:  # made by an earlier level or request, or concurrently (the unique index decided)
            # FOR SHARE: a delete of it waits for this transaction, which may link assets to it
            row = await conn.fetchrow("SELECT * FROM tags WHERE user_id = $1 AND value = $2 FOR SHARE",
                                      user_id, value)
        parent = row
    return parent, created


async def create_tag(principal: access.Principal, name: str, *, parent_id: uuid.UUID | None = None,
                     color: str | None = None) -> asyncpg.Record:
    """A new tag named `name` below `parent_id` (one of the caller's), or at the top. A name with
    "/" creates the levels it names that are missing. Conflict when the tag exists already."""
    principal.require(access.WRITE)
    _levels(name, "name")  # refused before the parent is looked up
    async with db.transaction() as conn:
        parent = None
        if parent_id is not None:
            parent = await get_tag(principal, parent_id, access.WRITE)
            await _hold(conn, principal, parent_id)
        levels = _levels(name, "name", parent["value"] if parent else "")
        row, created = await _ensure_path(conn, principal.user_id, levels, parent)
        if not created:
            raise Conflict("A tag with that name already exists")
        if color is not None:
            row = await conn.fetchrow("UPDATE tags SET color = $2 WHERE id = $1 RETURNING *", row["id"], color)
    return row


async def upsert_tags(principal: access.Principal, paths: list[str]) -> list[asyncpg.Record]:
    """The tags at these paths, those missing created with their parents; in the order asked, each once."""
    principal.require(access.WRITE)
    wanted = [_levels(p, ("tags", i)) for i, p in enumerate(dict.fromkeys(paths))]
    async with db.transaction() as conn:
        rows = [(await _ensure_path(conn, principal.user_id, levels))[0] for levels in wanted]
    return list({r["id"]: r for r in rows}.values())


async def update_color(principal: access.Principal, tag_id: uuid.UUID, color: str | None) -> asyncpg.Record:
    """Set (or, with None, clear) the tag's colour."""
    await get_tag(principal, tag_id, access.WRITE)
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "UPDATE tags SET color = $3, updated_at = now() WHERE id = $1 AND user_id = $2 RETURNING *",
            tag_id, principal.user_id, color,
        )
        if row is None:  # deleted since it was read
            raise NotFound("Tag not found", kind=TAG, ids=(tag_id,))
        await _event(conn, row, "tag_updated")
    return row


async def delete_tag(principal: access.Principal, tag_id: uuid.UUID) -> list[uuid.UUID]:
    """Delete the tag and every tag below it, with their asset links. Returns the assets that lost
    a tag (their sidecars are rewritten by the caller, write_sidecars)."""
    await get_tag(principal, tag_id, access.DELETE)
    async with db.transaction() as conn:
        gone = await conn.fetch(
            "SELECT t.* FROM tag_closure c JOIN tags t ON t.id = c.descendant_id WHERE c.ancestor_id = $1"
            " ORDER BY t.value FOR UPDATE OF t", tag_id,
        )
        ids = [r["id"] for r in gone]
        links = await conn.fetch("SELECT tag_id, asset_id FROM tag_assets WHERE tag_id = ANY($1::uuid[])", ids)
        await _link_events(conn, principal.user_id, "asset_untagged", [(r["tag_id"], r["asset_id"]) for r in links])
        for row in reversed(gone):  # the deepest first, as the cascade removes them
            await _event(conn, row, "tag_deleted")
        await conn.execute("DELETE FROM tags WHERE id = $1", tag_id)  # the tree below and the links cascade
    return sorted({r["asset_id"] for r in links})


async def delete_empty_tags() -> int:
    """Immich's TagCleanup: every tag with no photo on it or on any tag below it goes."""
    async with db.transaction() as conn:
        gone = await conn.fetch(
            "DELETE FROM tags t WHERE NOT EXISTS (SELECT 1 FROM tag_closure c JOIN tag_assets ta"
            " ON ta.tag_id = c.descendant_id WHERE c.ancestor_id = t.id) RETURNING *")
        for row in gone:
            await _event(conn, row, "tag_deleted")
    return len(gone)


# --- tagging assets ------------------------------------------------------------------------


async def _hold(conn, principal: access.Principal, tag_id: uuid.UUID) -> None:
    """Keep the caller's tag from being deleted until this transaction ends (404 if it just was)."""
    if await conn.fetchval("SELECT 1 FROM tags WHERE id = $1 AND user_id = $2 FOR SHARE",
                           tag_id, principal.user_id) is None:
        raise NotFound("Tag not found", kind=TAG, ids=(tag_id,))


def _distinct(ids: list[uuid.UUID], field_name: str) -> list[uuid.UUID]:
    if len(ids) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} ids", field_name)
    return list(dict.fromkeys(ids))


async def _writable_assets(conn, principal: access.Principal, asset_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The assets among these the caller may change: its role in their live library allows WRITE,
    within its credential's scope; locked ones only from a session unlocked with the PIN."""
    rows = await conn.fetch(
        f"SELECT a.id, a.library_id, a.visibility, {access.caller_role_sql('a.library_id', '$2')} AS role"
        " FROM assets a WHERE a.id = ANY($1::uuid[])",
        asset_ids, principal.user_id,
    )
    return {r["id"] for r in rows if r["role"] is not None and access.WRITE in access.ROLE_ACTIONS[r["role"]]
            and principal.in_scope(r["library_id"]) and (r["visibility"] != LOCKED or principal.elevated)}


async def _link(conn, user_id: uuid.UUID, tag_ids: list[uuid.UUID], asset_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """Link every tag to every asset; returns the links that are new."""
    if not tag_ids or not asset_ids:  # nothing to link: no round trip (a photo without tags)
        return []
    made = await conn.fetch(
        "INSERT INTO tag_assets (tag_id, asset_id) SELECT t, a FROM unnest($1::uuid[]) t, unnest($2::uuid[]) a"
        " ON CONFLICT DO NOTHING RETURNING tag_id, asset_id",
        tag_ids, asset_ids,
    )
    await _link_events(conn, user_id, "asset_tagged", [(r["tag_id"], r["asset_id"]) for r in made])
    return made


async def tag_assets_bulk(principal: access.Principal, tag_ids: list[uuid.UUID],
                          asset_ids: list[uuid.UUID]) -> tuple[int, list[uuid.UUID]]:
    """Give every asset the caller may change every one of its tags named; ids it cannot reach are
    passed over, as Immich does. Returns how many links are new, and the assets that gained one."""
    principal.require(access.WRITE)
    tags = _distinct(tag_ids, "tag_ids")
    wanted = _distinct(asset_ids, "asset_ids")
    async with db.transaction() as conn:
        own = [r["id"] for r in await conn.fetch(
            "SELECT id FROM tags WHERE id = ANY($1::uuid[]) AND user_id = $2 FOR SHARE", tags, principal.user_id)]
        writable = await _writable_assets(conn, principal, wanted)
        made = await _link(conn, principal.user_id, own, [a for a in wanted if a in writable])
    return len(made), sorted({r["asset_id"] for r in made})


async def add_assets(principal: access.Principal, tag_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> LinkResults:
    """Tag each asset with one of the caller's tags: done, duplicate (had it) or no_permission."""
    await get_tag(principal, tag_id, access.WRITE)
    wanted = _distinct(asset_ids, "asset_ids")
    result = LinkResults()
    async with db.transaction() as conn:
        await _hold(conn, principal, tag_id)
        present = {r["asset_id"] for r in await conn.fetch(
            "SELECT asset_id FROM tag_assets WHERE tag_id = $1 AND asset_id = ANY($2::uuid[])", tag_id, wanted)}
        writable = await _writable_assets(conn, principal, [a for a in wanted if a not in present])
        for asset_id in wanted:
            (result.duplicate if asset_id in present else result.done if asset_id in writable
             else result.no_permission).append(asset_id)
        made = await _link(conn, principal.user_id, [tag_id], result.done)
        # a link made concurrently since `present` was read is a duplicate after all
        new = {r["asset_id"] for r in made}
        result.duplicate += [a for a in result.done if a not in new]
        result.done = [a for a in result.done if a in new]
    return result


async def remove_assets(principal: access.Principal, tag_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> LinkResults:
    """Untag each asset: done, or not_found (it did not carry the tag). The tag is the caller's own,
    so it may always take it off, whoever may change the asset (Immich's canAlwaysRemove)."""
    await get_tag(principal, tag_id, access.WRITE)
    wanted = _distinct(asset_ids, "asset_ids")
    async with db.transaction() as conn:
        removed = {r["asset_id"] for r in await conn.fetch(
            "DELETE FROM tag_assets WHERE tag_id = $1 AND asset_id = ANY($2::uuid[]) RETURNING asset_id",
            tag_id, wanted)}
        await _link_events(conn, principal.user_id, "asset_untagged", [(tag_id, a) for a in sorted(removed)])
    return LinkResults(done=[a for a in wanted if a in removed], not_found=[a for a in wanted if a not in removed])


async def replace_from_file(conn, asset: asyncpg.Record, paths: list[str], read_at: datetime | None = None) -> None:
    """On (re)reading a file: its tags become the asset's owner's tags on it, as Immich's metadata
    job replaces them (its sidecar, which this server writes, says what the user tagged since).
    Links made after `read_at`, when the file and sidecar were read, are newer than what they
    say and stay."""
    tag_ids = []
    for path in dict.fromkeys(paths):
        levels = _clean(path)
        if levels and len(SEPARATOR.join(levels).encode()) <= MAX_VALUE_BYTES:  # others are passed over
            tag_ids.append((await _ensure_path(conn, asset["owner_id"], levels))[0]["id"])
    removed = await conn.fetch(
        "DELETE FROM tag_assets ta USING tags t WHERE ta.asset_id = $1 AND t.id = ta.tag_id AND t.user_id = $2"
        " AND NOT ta.tag_id = ANY($3::uuid[]) AND ($4::timestamptz IS NULL OR ta.created_at < $4)"
        " RETURNING ta.tag_id",
        asset["id"], asset["owner_id"], tag_ids, read_at,
    )
    await _link_events(conn, asset["owner_id"], "asset_untagged", [(r["tag_id"], asset["id"]) for r in removed])
    await _link(conn, asset["owner_id"], tag_ids, [asset["id"]])


# --- sidecars ------------------------------------------------------------------------------


async def write_sidecars(store, asset_ids: list[uuid.UUID]) -> None:
    """Write each asset's tag paths to its XMP sidecar's TagsList (a new sidecar when it has none),
    as Immich's sidecar job does after a tagging: tools reading the file see the tags too. A sidecar
    this server cannot read is left as it is (logged): rewriting it would lose what it says."""
    for asset_id in dict.fromkeys(asset_ids):
        # Under the asset's file lock, as every writer of its files: a delete or a move that commits
        # first leaves nothing to write (the row is gone, or names the new folder).
        async with db.transaction() as conn:
            await lock_blobs(conn, asset_id, wait=True)
            r = await conn.fetchrow(
                "SELECT a.id, a.library_id, s.storage_key, a.sidecar_path,"
                " coalesce((SELECT array_agg(t.value ORDER BY t.value) FROM tag_assets ta"
                "           JOIN tags t ON t.id = ta.tag_id WHERE ta.asset_id = a.id), '{}') AS paths"
                " FROM assets a LEFT JOIN asset_files s ON s.asset_id = a.id AND s.kind = 'sidecar'"
                " WHERE a.id = $1", asset_id,
            )
            if r is None:
                continue
            key = r["storage_key"] or f"{store.derived_prefix(r['library_id'], r['id'])}/sidecar.xmp"
            # The sidecar written is always the store's copy. An external asset's sidecar beside its
            # file is the user's and stays untouched (external originals are read-only, unlike
            # Immich, which writes there): the first store copy starts from what it says.
            source = store.path(key) if r["storage_key"] is not None else (
                Path(r["sidecar_path"]) if r["sidecar_path"] is not None else None)
            try:
                data = await asyncio.to_thread(_rewrite, store, key, source, list(r["paths"]))
            except RefusedSidecar as exc:
                log.warning("asset %s: sidecar not rewritten with its tags: %s", r["id"], exc)
                continue
            await conn.execute(
                "INSERT INTO asset_files (asset_id, kind, storage_key, mime_type, size_bytes)"
                " VALUES ($1, 'sidecar', $2, 'application/xml', $3)"
                " ON CONFLICT (asset_id, kind) DO UPDATE SET size_bytes = EXCLUDED.size_bytes",
                r["id"], key, len(data),
            )


def _rewrite(store, key: str, source: Path | None, paths: list[str]) -> bytes:
    old = source.read_bytes() if source is not None and source.is_file() else None
    data = with_tags_list(old, paths)
    store.put_derived(key, data)
    return data
