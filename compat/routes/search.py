"""Immich metadata search: the typed filters this server can answer truthfully."""

from __future__ import annotations

import dataclasses

from litestar import get, post
from litestar.params import QueryParameter

from app.domain import access, albums, asset_views, assets, tags
from app.domain.errors import BadRequest
from compat import dtos, mapping
from compat.auth import ImmichAuth


@post("/api/search/metadata", status_code=200, action=access.READ)
async def search_metadata(auth: ImmichAuth, data: dtos.MetadataSearchDto) -> dtos.SearchResponseDto:
    if data.albumIds:  # one album at most (the mapping refuses more): read as the caller may read it
        scope = await albums.contents_filter(auth.principal, mapping.parse_uuid(data.albumIds[0]))
        f = dataclasses.replace(mapping.metadata_search_filter(data, scope.library_id),
                                through_share=scope.through_share, elevated=scope.elevated)
    else:
        f = dataclasses.replace(mapping.metadata_search_filter(data, await access.preferred_library(auth.principal)),
                                elevated=auth.principal.elevated)
    if f.tag_ids:  # the caller's own tags only (another user's tag answers like a missing one)
        await tags.require_tags(auth.principal, f.tag_ids)
    page, size = data.page or 1, data.size or 250
    if page < 1 or not 1 <= size <= 1000:
        raise BadRequest("page must be >= 1 and size between 1 and 1000")
    rows, has_more = await assets.search_page(f, page=page, limit=size, order="asc" if data.order == "asc" else "desc")
    items = [mapping.asset(v) for v in await asset_views.views(rows)]
    return dtos.SearchResponseDto(
        albums=dtos.SearchAlbumResponseDto(total=0, count=0, items=[], facets=[]),
        assets=dtos.SearchAssetResponseDto(total=len(items), count=len(items), items=items, facets=[],
                                           nextPage=str(page + 1) if has_more else None),
    )


@get("/api/search/suggestions", action=access.READ)
async def search_suggestions(auth: ImmichAuth, type: dtos.SearchSuggestionType, country: str | None = None,
                             region: str | None = QueryParameter(name="state", default=None),
                             make: str | None = None, model: str | None = None,
                             includeNull: bool = False) -> list[str | None]:
    library = await access.preferred_library(auth.principal)
    narrow = {k: v for k, v in (("country", country), ("state", region), ("make", make), ("model", model)) if v}
    return await assets.suggestions(library, type, narrow, includeNull)


@get("/api/search/cities", action=access.READ)
async def search_cities(auth: ImmichAuth) -> list[dtos.AssetResponseDto]:
    rows = await assets.one_per_city(await access.preferred_library(auth.principal))
    return [mapping.asset(v) for v in await asset_views.views(rows)]


@get("/api/search/explore", action=access.READ)
async def search_explore(auth: ImmichAuth) -> list[dtos.SearchExploreResponseDto]:
    rows = await assets.one_per_city(await access.preferred_library(auth.principal))
    items = [dtos.SearchExploreItem(value=v.exif["city"], data=mapping.asset(v)) for v in await asset_views.views(rows)]
    return [dtos.SearchExploreResponseDto(fieldName="exifInfo.city", items=items)]
