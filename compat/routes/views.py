"""Immich's folder view: the folders of the caller's originals, and the photos in one of them."""

from __future__ import annotations

from litestar import get

from app.domain import access, asset_views, search
from app.domain.asset_filters import AssetFilter
from compat import dtos, mapping
from compat.auth import ImmichAuth


async def _timeline(auth: ImmichAuth) -> AssetFilter:
    # Immich's folder view shows the caller's own live timeline assets (not the archive, not partners').
    return AssetFilter(library_id=await access.preferred_library(auth.principal), visibility="timeline",
                       elevated=auth.principal.elevated)


@get("/api/view/folder/unique-paths", action=access.READ)
async def unique_original_paths(auth: ImmichAuth) -> list[str]:
    return await search.folders(auth.principal, await _timeline(auth))


@get("/api/view/folder", action=access.READ)
async def assets_by_original_path(auth: ImmichAuth, path: str) -> list[dtos.AssetResponseDto]:
    rows = await search.folder_assets(auth.principal, await _timeline(auth), path)
    return [mapping.asset(v) for v in await asset_views.views(rows)]


ROUTES = [unique_original_paths, assets_by_original_path]
