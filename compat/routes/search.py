"""Immich search: metadata, random and largest picks, counts, place names, suggestions and explore."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import msgspec
from litestar import Request, get, post
from litestar.params import Parameter, QueryParameter
from msgspec import UNSET

from app.api.state import Shared
from app.domain import access, albums, asset_views, assets, search, smart_search, tags
from app.domain.asset_filters import SHOWN, AssetFilter
from app.domain.errors import BadRequest
from compat import dtos, mapping, search_items
from compat.auth import ImmichAuth


async def _scopes(auth: ImmichAuth, dto, *, with_partners: bool = True,
                  shown_by_default: bool = True) -> list[AssetFilter]:
    """Where a search body looks, one filter per library: the one album it names (as the caller may
    read it), else the caller's library and, as Immich searches its partners' photos too, those of
    the partners it shows in its timeline. Unless a visibility is asked for, the motion parts of
    live photos stay out (Immich's default visibility)."""
    album_ids = getattr(dto, "albumIds", None) or []
    if album_ids:
        first, *more = (mapping.parse_uuid(a, "albumIds", i) for i, a in enumerate(album_ids))
        scope = await albums.contents_filter(auth.principal, first, also_in_albums=more)
        own = dataclasses.replace(mapping.metadata_search_filter(dto, scope.library_id),
                                  through_share=scope.through_share, elevated=scope.elevated)
        with_partners = False
    else:
        own = dataclasses.replace(mapping.metadata_search_filter(dto, await access.preferred_library(auth.principal)),
                                  elevated=auth.principal.elevated)
    if own.tag_ids:  # the caller's own tags only (another user's tag answers like a missing one)
        await tags.require_tags(auth.principal, own.tag_ids)
    if shown_by_default and own.visibility is None:
        own.visibilities = SHOWN
    if not with_partners:
        return [own]
    return [own, *(dataclasses.replace(own, library_id=library, through_share=True)
                   for library in await access.partner_timeline_libraries(auth.principal))]


async def _assets(rows) -> list[dtos.AssetResponseDto]:
    return [mapping.asset(v) for v in await asset_views.views(rows)]


@post("/api/search/metadata", status_code=200, action=access.READ)
async def search_metadata(auth: ImmichAuth, data: dtos.MetadataSearchDto) -> dtos.SearchResponseDto:
    """A page of the filter's assets. As in Immich, an item carries exifInfo only with `withExif`
    and its people only with `withPeople`, and no stack."""
    [f] = await _scopes(auth, data, with_partners=False, shown_by_default=False)
    page, size = data.page or 1, data.size or 250
    if page < 1 or not 1 <= size <= 1000:
        raise BadRequest("page must be >= 1 and size between 1 and 1000")
    with_exif, with_people = data.withExif is True, data.withPeople is True
    found, has_more = await search.metadata_page(auth.principal, f, page=page, size=size,
                                                 order="asc" if data.order == "asc" else "desc",
                                                 with_exif=with_exif, with_people=with_people)
    items = [search_items.search_item(item, with_exif=with_exif) for item in found]
    return dtos.SearchResponseDto(
        albums=dtos.SearchAlbumResponseDto(total=0, count=0, items=[], facets=[]),
        assets=dtos.SearchAssetResponseDto(total=len(items), count=len(items), items=items, facets=[],
                                           nextPage=str(page + 1) if has_more else None),
    )


@post("/api/search/smart", status_code=200, action=access.READ)
async def search_smart(auth: ImmichAuth, shared: Shared, data: dtos.SmartSearchDto) -> dtos.SearchResponseDto:
    """CLIP search by a text query or by another asset's embedding, over the same filters as the
    metadata search and (as Immich does) the partners' photos too; Immich's page numbers."""
    config = await smart_search.enabled_config()
    if data.query:
        vector = await smart_search.text_vector(shared.settings.model_dir, config.model, data.query)
    elif data.queryAssetId:
        vector = await smart_search.asset_vector(auth.principal, mapping.parse_uuid(data.queryAssetId), config.model)
    else:
        raise BadRequest("Either `query` or `queryAssetId` must be set")
    # What selects the vector, not the filter ("language" only picks a multilingual model's tokens).
    filters_only = msgspec.structs.replace(data, query=UNSET, queryAssetId=UNSET, language=UNSET)
    filters = await _scopes(auth, filters_only)
    page, size = data.page or 1, data.size or 100
    rows = await smart_search.search(auth.principal, filters, config.model, vector, (page - 1) * size, size + 1)
    # As Immich's search pages: exifInfo only with withExif, and never the stack.
    keep_exif = data.withExif is True
    items = [msgspec.structs.replace(item, stack=UNSET, **({} if keep_exif else {"exifInfo": UNSET}))
             for item in await _assets(rows[:size])]
    return dtos.SearchResponseDto(
        albums=dtos.SearchAlbumResponseDto(total=0, count=0, items=[], facets=[]),
        assets=dtos.SearchAssetResponseDto(total=len(items), count=len(items), items=items, facets=[],
                                           nextPage=str(page + 1) if len(rows) > size else None),
    )


@post("/api/search/random", status_code=200, action=access.READ)
async def search_random(auth: ImmichAuth, data: dtos.RandomSearchDto) -> list[dtos.AssetResponseDto]:
    filters = await _scopes(auth, data)
    return await _assets(await search.random_assets(auth.principal, filters, data.size or 250))


# The large-assets query fields this server cannot filter by: refused by name, never ignored.
_LARGE_UNSUPPORTED = ("ocr", "tagIds")


@post("/api/search/large-assets", status_code=200, action=access.READ)
async def search_large_assets(
    auth: ImmichAuth, request: Request, albumIds: list[str] | None = None, city: str | None = None,
    country: str | None = None, region: str | None = QueryParameter(name="state", default=None),
    make: str | None = None, model: str | None = None,
    lensModel: str | None = None, isFavorite: bool | None = None, isNotInAlbum: bool | None = None,
    kind: dtos.AssetTypeEnum | None = QueryParameter(name="type", default=None),
    visibility: dtos.AssetVisibility | None = None, takenAfter: datetime | None = None,
    takenBefore: datetime | None = None, withDeleted: bool | None = None, withExif: bool | None = None,
    personIds: list[str] | None = None, rating: int | None = Parameter(default=None, ge=1, le=5),
    size: int = Parameter(default=250, ge=1, le=1000),
    minFileSize: int | None = Parameter(default=None, ge=0, le=9007199254740991),
    libraryId: str | None = None, isOffline: bool | None = None,
    createdAfter: datetime | None = None, createdBefore: datetime | None = None,
    updatedAfter: datetime | None = None, updatedBefore: datetime | None = None,
    trashedAfter: datetime | None = None, trashedBefore: datetime | None = None,
    isMotion: bool | None = None, isEncoded: bool | None = None,
) -> list[dtos.AssetResponseDto]:
    asked = sorted(name for name in _LARGE_UNSUPPORTED if name in request.query_params)
    if asked:
        raise BadRequest(f"Search by {', '.join(asked)} is not supported by this server")
    given = dict(albumIds=albumIds, city=city, country=country, state=region, make=make, model=model,
                 lensModel=lensModel, isFavorite=isFavorite, isNotInAlbum=isNotInAlbum, type=kind,
                 visibility=visibility, takenAfter=takenAfter, takenBefore=takenBefore, withDeleted=withDeleted,
                 withExif=withExif, personIds=personIds, rating=rating, libraryId=libraryId, isOffline=isOffline,
                 createdAfter=createdAfter, createdBefore=createdBefore, updatedAfter=updatedAfter,
                 updatedBefore=updatedBefore, trashedAfter=trashedAfter, trashedBefore=trashedBefore,
                 isMotion=isMotion, isEncoded=isEncoded)
    dto = dtos.RandomSearchDto(**{name: value for name, value in given.items() if value is not None})
    filters = await _scopes(auth, dto)
    return await _assets(await search.largest_assets(auth.principal, filters, size, minFileSize or 0))


@post("/api/search/statistics", status_code=200, action=access.READ)
async def search_statistics(auth: ImmichAuth, data: dtos.StatisticsSearchDto) -> dtos.SearchStatisticsResponseDto:
    return dtos.SearchStatisticsResponseDto(total=await search.count(auth.principal, await _scopes(auth, data)))


@get("/api/search/places", action=access.READ)
async def search_places(auth: ImmichAuth, name: str) -> list[dtos.PlacesResponseDto]:
    return [dtos.PlacesResponseDto(name=p.city, latitude=p.latitude, longitude=p.longitude,
                                   admin1name=p.state if p.state else UNSET)
            for p in await search.places(auth.principal, name)]


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
    return await _assets(await assets.one_per_city(await access.preferred_library(auth.principal)))


@get("/api/search/explore", action=access.READ)
async def search_explore(auth: ImmichAuth) -> list[dtos.SearchExploreResponseDto]:
    """Immich's explore strip: the caller's own timeline photos, one for each city it has enough of."""
    own = AssetFilter(library_id=await access.preferred_library(auth.principal), visibility="timeline",
                      elevated=auth.principal.elevated)
    views = await asset_views.views(await search.explore_cities(auth.principal, own))
    items = [dtos.SearchExploreItem(value=v.exif["city"], data=mapping.asset(v)) for v in views]
    return [dtos.SearchExploreResponseDto(fieldName="exifInfo.city", items=items)]


ROUTES = [search_metadata, search_smart, search_random, search_large_assets, search_statistics, search_places,
          search_suggestions, search_cities, search_explore]
