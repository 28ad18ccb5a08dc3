from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter
from litestar.response import Response

from app.api.params import base_url, list_param
from app.api.schemas import (
    AlbumAssetPage,
    AlbumAssetResponse,
    AlbumPage,
    AlbumResponse,
    AssociationAddResponse,
    album_asset_response,
    album_response,
)
from app.api.state import Shared
from app.domain import albums, ids
from app.domain.access import Principal
from app.domain import access

EMPTY: dict = {}


class AlbumCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    description: str | None = None
    library_id: str | None = None


class AssetIdsBody(msgspec.Struct, forbid_unknown_fields=True):
    asset_ids: list[str]


async def _render(request: Request, shared: Shared, row) -> AlbumResponse:
    return await album_response(row, shared.signer, base_url(request, shared.settings.public_url))


class AlbumController(Controller):
    path = "/api/albums"

    @get("/", action=access.READ)
    async def list_albums(
        self, request: Request, principal: Principal, shared: Shared, library_id: str | None = None,
        name: str | None = None, asset_id: str | None = None,
        limit: int = Parameter(default=20, ge=1, le=200), starting_after_id: str | None = None,
    ) -> AlbumPage:
        rows, has_more = await albums.list_albums(
            principal, library_id, name=name, asset_id=asset_id, album_ids=list_param(request, "ids"),
            limit=limit, starting_after=starting_after_id,
        )
        return AlbumPage(data=[await _render(request, shared, r) for r in rows], has_more=has_more)

    @post("/", action=access.WRITE)
    async def create_album(
        self, request: Request, principal: Principal, shared: Shared, data: AlbumCreate
    ) -> Response[AlbumResponse]:
        row, created = await albums.create_album(principal, data.library_id, data.name, data.description)
        return Response(await _render(request, shared, row), status_code=201 if created else 200)

    @get("/{album_id:str}", action=access.READ)
    async def retrieve(self, request: Request, principal: Principal, shared: Shared, album_id: str) -> AlbumResponse:
        return await _render(request, shared, await albums.get_album(principal, ids.decode(ids.ALBUM, album_id)))

    @patch("/{album_id:str}", action=access.WRITE)
    async def update(
        self, request: Request, principal: Principal, shared: Shared, album_id: str, data: dict[str, Any]
    ) -> AlbumResponse:
        row = await albums.update_album(principal, ids.decode(ids.ALBUM, album_id), data)
        return await _render(request, shared, row)

    @delete("/{album_id:str}", status_code=200, action=access.DELETE)
    async def delete_album(self, principal: Principal, album_id: str) -> dict:
        await albums.delete_album(principal, ids.decode(ids.ALBUM, album_id))
        return EMPTY

    @post("/{album_id:str}/assets", status_code=200, action=access.WRITE)
    async def add_assets(self, principal: Principal, album_id: str, data: AssetIdsBody) -> AssociationAddResponse:
        result = await albums.add_assets(principal, ids.decode(ids.ALBUM, album_id), data.asset_ids)
        return AssociationAddResponse(**result)

    @delete("/{album_id:str}/assets", status_code=200, action=access.DELETE)
    async def remove_assets(self, principal: Principal, album_id: str, data: AssetIdsBody) -> dict:
        await albums.remove_assets(principal, ids.decode(ids.ALBUM, album_id), data.asset_ids)
        return EMPTY


class AlbumAssetController(Controller):
    path = "/api/album-assets"

    @get("/", action=access.READ)
    async def list_links(
        self, request: Request, principal: Principal, library_id: str | None = None, album_id: str | None = None,
        asset_id: str | None = None, limit: int = Parameter(default=20, ge=1, le=200),
        starting_after_id: str | None = None,
    ) -> AlbumAssetPage:
        rows, has_more = await albums.list_links(
            principal, library_id, album_id=album_id, asset_id=asset_id, link_ids=list_param(request, "ids"),
            limit=limit, starting_after=starting_after_id,
        )
        return AlbumAssetPage(data=[album_asset_response(r) for r in rows], has_more=has_more)

    @get("/{album_asset_id:str}", action=access.READ)
    async def get_link(self, principal: Principal, album_asset_id: str) -> AlbumAssetResponse:
        return album_asset_response(await albums.get_link(principal, ids.decode(ids.ALBUM_ASSET, album_asset_id)))
