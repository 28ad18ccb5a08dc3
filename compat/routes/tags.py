"""Immich's Tags tag: the caller's tag tree, and tagging assets (app/domain/tags.py)."""

from __future__ import annotations

import msgspec
from litestar import delete, get, post, put

from app.api.state import Shared
from app.domain import access, tags
from app.domain.errors import BadRequest, Conflict
from compat import dtos, mapping
from compat.auth import ImmichAuth
from compat.errors import refused_as


@get("/api/tags", action=access.READ)
async def get_all_tags(auth: ImmichAuth) -> list[dtos.TagResponseDto]:
    return [mapping.tag(r) for r in await tags.list_tags(auth.principal)]


@post("/api/tags", status_code=201, action=access.WRITE)
async def create_tag(auth: ImmichAuth, data: dtos.TagCreateDto) -> dtos.TagResponseDto:
    parent = None if data.parentId in (msgspec.UNSET, None) else mapping.parse_uuid(data.parentId, "parentId")
    color = None if data.color is msgspec.UNSET else data.color
    try:
        with refused_as("tag.read"):  # the parent: Immich checks read access to it
            row = await tags.create_tag(auth.principal, data.name, parent_id=parent, color=color)
    except Conflict as exc:
        raise BadRequest(exc.detail) from None
    return mapping.tag(row)


@put("/api/tags", action=access.WRITE)
async def upsert_tags(auth: ImmichAuth, data: dtos.TagUpsertDto) -> list[dtos.TagResponseDto]:
    return [mapping.tag(r) for r in await tags.upsert_tags(auth.principal, data.tags)]


@put("/api/tags/assets", action=access.WRITE)
async def bulk_tag_assets(auth: ImmichAuth, shared: Shared, data: dtos.TagBulkAssetsDto) -> dtos.TagBulkAssetsResponseDto:
    tag_ids = [mapping.parse_uuid(t, "tagIds", i) for i, t in enumerate(data.tagIds)]
    asset_ids = [mapping.parse_uuid(a, "assetIds", i) for i, a in enumerate(data.assetIds)]
    count, changed = await tags.tag_assets_bulk(auth.principal, tag_ids, asset_ids)
    await tags.write_sidecars(shared.store, changed)
    return dtos.TagBulkAssetsResponseDto(count=count)


@get("/api/tags/{tag_id:str}", action=access.READ)
async def get_tag(auth: ImmichAuth, tag_id: str) -> dtos.TagResponseDto:
    return mapping.tag(await tags.get_tag(auth.principal, mapping.parse_uuid(tag_id)))


@put("/api/tags/{tag_id:str}", action=access.WRITE)
async def update_tag(auth: ImmichAuth, tag_id: str, data: dtos.TagUpdateDto) -> dtos.TagResponseDto:
    tag = mapping.parse_uuid(tag_id)
    if data.color is msgspec.UNSET:  # nothing to change
        return mapping.tag(await tags.get_tag(auth.principal, tag, access.WRITE))
    return mapping.tag(await tags.update_color(auth.principal, tag, data.color))


@delete("/api/tags/{tag_id:str}", status_code=204, action=access.DELETE)
async def delete_tag(auth: ImmichAuth, shared: Shared, tag_id: str) -> None:
    untagged = await tags.delete_tag(auth.principal, mapping.parse_uuid(tag_id))
    await tags.write_sidecars(shared.store, untagged)


def _results(asked: list, results: tags.LinkResults) -> list[dtos.BulkIdResponseDto]:
    """Immich's per-id answer, in the order asked (an id asked twice is answered twice)."""
    errors = {**{a: "duplicate" for a in results.duplicate}, **{a: "not_found" for a in results.not_found},
              **{a: "no_permission" for a in results.no_permission}}
    return [dtos.BulkIdResponseDto(id=str(a), success=True) if a not in errors
            else dtos.BulkIdResponseDto(id=str(a), success=False, error=errors[a]) for a in asked]


@put("/api/tags/{tag_id:str}/assets", action=access.WRITE)
async def tag_assets(auth: ImmichAuth, shared: Shared, tag_id: str, data: dtos.BulkIdsDto) -> list[dtos.BulkIdResponseDto]:
    asset_ids = [mapping.parse_uuid(a, "ids", i) for i, a in enumerate(data.ids)]
    with refused_as("tag.asset"):
        results = await tags.add_assets(auth.principal, mapping.parse_uuid(tag_id), asset_ids)
    await tags.write_sidecars(shared.store, results.done)
    return _results(asset_ids, results)


@delete("/api/tags/{tag_id:str}/assets", status_code=200, action=access.WRITE)
async def untag_assets(auth: ImmichAuth, shared: Shared, tag_id: str, data: dtos.BulkIdsDto) -> list[dtos.BulkIdResponseDto]:
    asset_ids = [mapping.parse_uuid(a, "ids", i) for i, a in enumerate(data.ids)]
    with refused_as("tag.asset"):
        results = await tags.remove_assets(auth.principal, mapping.parse_uuid(tag_id), asset_ids)
    await tags.write_sidecars(shared.store, results.done)
    return _results(asset_ids, results)


ROUTES = [get_all_tags, create_tag, upsert_tags, bulk_tag_assets, get_tag, update_tag, delete_tag, tag_assets,
          untag_assets]
