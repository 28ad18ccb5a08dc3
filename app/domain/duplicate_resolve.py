"""Resolving a duplicate group (Immich's POST /duplicates/resolve): keep some assets, trash the rest.

Per group, Immich's checks in Immich's order, each a result rather than an error: an unknown group,
an asset in both lists, a group asset in neither, trash the caller may not do. When exactly one
asset is kept and some are trashed, the keeper takes over what the others had: favorite and the
highest rating (one value here: favorite is rating 5), the archive if any was archived, every
distinct description line, the coordinates when they all agree, the group's albums and tags.
Then keepers leave the group, and the others go to the trash (the ordinary trash, with its events)
and leave it too.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from app.db import engine as db
from app.domain import access, albums, asset_views, assets, duplicates, effective, tags
from app.domain.assets import AssetPatch
from app.domain.errors import DomainError

log = logging.getLogger(__name__)

BOTH_LISTS = "An asset cannot be in both keepAssetIds and trashAssetIds"
NEITHER_LIST = "Every asset must be in either keepAssetIds or trashAssetIds"
NO_DELETE = "No permission to delete assets"


@dataclass
class Resolved:
    duplicate_id: uuid.UUID
    error: str | None = None  # not_found, validation, no_permission, unknown
    message: str | None = None


def _description_lines(values: list[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        for line in (value or "").splitlines():
            if line.strip():
                seen.setdefault(line.strip(), None)
    return list(seen)


def _merged_patch(views: list[asset_views.AssetView]) -> AssetPatch:
    shown = [effective.of(v.row, v.exif) for v in views]
    patch = AssetPatch()
    rating = max((s.rating or 0 for s in shown), default=0)
    if rating > 0:
        patch.rating = rating
    # The group holds timeline and archive assets only (locked and hidden ones are never grouped).
    patch.visibility = "archive" if any(v.row["visibility"] == "archive" for v in views) else "timeline"
    lines = _description_lines([s.description for s in shown])
    if lines:
        patch.description = "\n".join(lines)
    places = {(s.latitude, s.longitude) for s in shown if s.latitude is not None and s.longitude is not None}
    if len(places) == 1:
        patch.latitude, patch.longitude = places.pop()
    return patch


async def _merge_into(principal: access.Principal, keeper: uuid.UUID, group: list[uuid.UUID],
                      views: list[asset_views.AssetView]) -> list[uuid.UUID]:
    """The keeper takes the group's metadata, albums and tags; returns assets whose tags changed."""
    album_ids = [r["album_id"] for r in await db.fetch(
        "SELECT DISTINCT aa.album_id FROM album_assets aa WHERE aa.asset_id = ANY($1::uuid[]) ORDER BY 1", group)]
    for album_id in album_ids:
        try:
            await albums.add_assets(principal, album_id, [keeper])
        except DomainError:  # an album the caller may not add to is passed over, as in Immich
            pass
    tag_ids = sorted({t["id"] for rows in (await tags.tags_of_assets(group)).values() for t in rows}, key=str)
    retagged: list[uuid.UUID] = []
    if tag_ids:
        _, retagged = await tags.tag_assets_bulk(principal, tag_ids, [keeper])
    await assets.update_asset(principal, keeper, _merged_patch(views))
    return retagged


async def resolve_group(principal: access.Principal, duplicate_id: uuid.UUID, keep: list[uuid.UUID],
                        trash: list[uuid.UUID]) -> tuple[Resolved, list[uuid.UUID]]:
    """One group; also the assets whose tags changed (their sidecars are the caller's to rewrite)."""
    rows = await duplicates.group_members(principal, duplicate_id)
    if not rows:
        return Resolved(duplicate_id, "not_found"), []
    members = [r["id"] for r in rows]
    to_keep = [a for a in dict.fromkeys(keep) if a in members]  # ids outside the group are ignored
    to_trash = [a for a in dict.fromkeys(trash) if a in members]
    for asset_id in members:
        if asset_id in to_keep and asset_id in to_trash:
            return Resolved(duplicate_id, "validation", BOTH_LISTS), []
        if asset_id not in to_keep and asset_id not in to_trash:
            return Resolved(duplicate_id, "validation", NEITHER_LIST), []
    if to_trash:
        outcomes = await access.asset_outcomes(principal, to_trash, access.DELETE)
        if any(isinstance(o, Exception) for o in outcomes.values()):
            return Resolved(duplicate_id, "no_permission", NO_DELETE), []
    retagged: list[uuid.UUID] = []
    if len(to_keep) == 1 and to_trash:
        retagged = await _merge_into(principal, to_keep[0], members, await asset_views.views(rows))
    by_library: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row in rows:
        if row["id"] in to_trash:
            by_library.setdefault(row["library_id"], []).append(row["id"])
    for library_id, asset_ids in by_library.items():
        await assets.set_trashed(principal, library_id, asset_ids, True)
    async with db.transaction() as conn:
        await duplicates.set_group(conn, rows, None)
    return Resolved(duplicate_id), retagged


async def resolve(principal: access.Principal, groups: list[tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]],
                  ) -> tuple[list[Resolved], list[uuid.UUID]]:
    """Every group, after the caller's access to all of them is checked (one refused: 400 for all)."""
    await duplicates.require_groups(principal, [g for g, _, _ in groups])
    results, retagged = [], []
    for duplicate_id, keep, trash in groups:
        try:
            result, changed = await resolve_group(principal, duplicate_id, keep, trash)
        except Exception:
            log.exception("resolving duplicate group %s failed", duplicate_id)
            result, changed = Resolved(duplicate_id, "unknown"), []
        results.append(result)
        retagged += changed
    return results, retagged
