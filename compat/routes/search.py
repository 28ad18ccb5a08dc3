"""Immich metadata search: the typed filters this server can answer truthfully."""

from __future__ import annotations

import base64
from typing import Any

from litestar import get, post
from litestar.params import QueryParameter

from app.domain import access, assets
from app.domain.asset_filters import AssetFilter
from app.domain.datetimes import parse_iso
from app.domain.effective import ratings_for_favorite
from app.domain.errors import BadRequest
from compat import dtos, mapping
from compat.auth import ImmichAuth

_EXIF_FIELDS = {"make": "make", "model": "model", "lensModel": "lens_model", "city": "city", "state": "state",
                "country": "country"}
# Accepted and applied; anything else with a value is refused rather than silently ignored.
_HANDLED = {*_EXIF_FIELDS, "albumIds", "isFavorite", "isNotInAlbum", "visibility", "type", "originalFileName",
            "description", "takenAfter", "takenBefore", "withDeleted", "order", "page", "size", "rating",
            "withExif", "withStacked", "withPeople", "checksum", "id", "personIds"}




@post("/api/search/metadata", status_code=200, action=access.READ)
async def search_metadata(auth: ImmichAuth, data: dict[str, Any]) -> dtos.SearchResponseDto:
    unsupported = sorted(k for k, v in data.items() if k not in _HANDLED and v not in (None, False, [], ""))
    if unsupported:
        raise BadRequest(f"Search by {', '.join(unsupported)} is not supported by this server")
    library = await access.preferred_library(auth.principal)
    album_ids = data.get("albumIds") or []
    if len(album_ids) > 1:
        raise BadRequest("Search by more than one album is not supported by this server")
    f = AssetFilter(
        library_id=library,
        state="all" if data.get("withDeleted") else "live",
        album_id=mapping.parse_uuid(album_ids[0]) if album_ids else None,
        album_filter="not_in_album" if data.get("isNotInAlbum") else "all",
        media_type={"IMAGE": "image", "VIDEO": "video"}.get(data.get("type") or "", None),
        visibility=data.get("visibility"),
        exif_equals={column: data[key] for key, column in _EXIF_FIELDS.items() if data.get(key)},
        file_name_contains=data.get("originalFileName") or None,
        description_contains=data.get("description") or None,
        taken_after=parse_iso(data["takenAfter"], "takenAfter") if data.get("takenAfter") else None,
        taken_before=parse_iso(data["takenBefore"], "takenBefore") if data.get("takenBefore") else None,
    )
    if data.get("type") and f.media_type is None:
        raise BadRequest("type must be IMAGE or VIDEO")
    if data.get("isFavorite") is not None:
        f.ratings = ratings_for_favorite(data["isFavorite"])
    if data.get("rating") is not None:
        f.ratings = [int(data["rating"])]
    if data.get("personIds"):
        f.person_ids = [mapping.parse_uuid(p) for p in data["personIds"]]
    if data.get("id"):
        f.ids = [mapping.parse_uuid(data["id"])]
    if data.get("checksum"):
        sha1 = mapping.sha1_base64(data["checksum"])
        if sha1 is None:
            raise BadRequest("checksum must be a SHA-1 in hex or base64")
        f.checksum_sha1 = base64.b64decode(sha1)
    page, size = int(data.get("page") or 1), int(data.get("size") or 250)
    if page < 1 or not 1 <= size <= 1000:
        raise BadRequest("page must be >= 1 and size between 1 and 1000")
    rows, has_more = await assets.search_page(f, page=page, limit=size,
                                              order="asc" if data.get("order") == "asc" else "desc")
    items = [mapping.asset(v) for v in await assets.views(rows)]
    return dtos.SearchResponseDto(
        albums=dtos.SearchAlbumResponseDto(total=0, count=0, items=[], facets=[]),
        assets=dtos.SearchAssetResponseDto(total=len(items), count=len(items), items=items, facets=[],
                                           nextPage=str(page + 1) if has_more else None),
    )


@get("/api/search/suggestions", action=access.READ)
async def search_suggestions(auth: ImmichAuth, type: str, country: str | None = None,
                             region: str | None = QueryParameter(name="state", default=None),
                             make: str | None = None, model: str | None = None,
                             includeNull: bool = False) -> list[str | None]:
    library = await access.preferred_library(auth.principal)
    narrow = {k: v for k, v in (("country", country), ("state", region), ("make", make), ("model", model)) if v}
    return await assets.suggestions(library, type, narrow, includeNull)


@get("/api/search/cities", action=access.READ)
async def search_cities(auth: ImmichAuth) -> list[dtos.AssetResponseDto]:
    rows = await assets.one_per_city(await access.preferred_library(auth.principal))
    return [mapping.asset(v) for v in await assets.views(rows)]


@get("/api/search/explore", action=access.READ)
async def search_explore(auth: ImmichAuth) -> list[dtos.SearchExploreResponseDto]:
    rows = await assets.one_per_city(await access.preferred_library(auth.principal))
    items = [dtos.SearchExploreItem(value=v.exif["city"], data=mapping.asset(v)) for v in await assets.views(rows)]
    return [dtos.SearchExploreResponseDto(fieldName="exifInfo.city", items=items)]
