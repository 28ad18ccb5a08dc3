"""Native albums and album-asset links. Prefixed ids are decoded here; the domain sees UUIDs."""

import uuid

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter
from litestar.response import Response
from msgspec import UNSET, UnsetType

from app.api.errors import InputError
from app.api.params import MAX_IDS, base_url, library_uuid, list_param, listed
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
from app.api import ids
from app.domain import access, albums
from app.domain.access import Principal

EMPTY: dict = {}


class AlbumCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    description: str | None = None
    library_id: str | None = None


class AlbumUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """albums.AlbumPatch with the cover as a native asset id; a null name leaves the name as it is."""

    name: str | None | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    album_cover_asset_id: str | None | UnsetType = UNSET

    def patch(self) -> albums.AlbumPatch:
        cover = self.album_cover_asset_id
        if isinstance(cover, str):
            cover = ids.try_decode(ids.ASSET, cover)
            if cover is None:  # a malformed id names no asset of the album either
                raise InputError(albums.COVER_NOT_IN_ALBUM, "body", "album_cover_asset_id")
        return albums.AlbumPatch(name=UNSET if self.name is None else self.name, description=self.description,
                                 album_cover_asset_id=cover)


class AssetIdsBody(msgspec.Struct, forbid_unknown_fields=True):
    asset_ids: list[str]


def _filter_id(prefix: str, value: str | None, field: str) -> uuid.UUID | None:
    return ids.decode_filter(prefix, value, field) if value else None


def _filter_ids(request: Request, prefix: str, most: int | None = None) -> list[uuid.UUID] | None:
    values = list_param(request, "ids")
    if values is None:
        return None
    if most is not None and len(values) > most:
        raise InputError(f"At most {most} ids", "query", "ids")
    return [ids.decode_filter(prefix, v, "ids") for v in values]


def _asset_ids(values: list[str]) -> dict[str, uuid.UUID | None]:
    """Each distinct id as given, with its UUID (None when malformed: such an id names no asset)."""
    if len(values) > albums.MAX_IDS:  # counted as sent, repeats and malformed ids included
        raise InputError(f"At most {albums.MAX_IDS} asset ids", "body", "asset_ids")
    return {raw: ids.try_decode(ids.ASSET, raw) for raw in values}


async def _render(request: Request, shared: Shared, rows) -> list[AlbumResponse]:
    covers = await albums.covers(rows)
    url = base_url(request, shared.settings.public_url)
    return [album_response(r, covers.get(r["id"]), shared.signer, url) for r in rows]


class AlbumController(Controller):
    path = "/api/albums"

    @get("/", action=access.READ)
    async def list_albums(
        self, request: Request, principal: Principal, shared: Shared, library_id: str | None = None,
        name: str | None = None, asset_id: str | None = None,
        limit: int = Parameter(default=20, ge=1, le=200), starting_after_id: str | None = None,
        listed_ids: list[str] | None = listed("ids", "Only these albums, by id (at most 200)."),
    ) -> AlbumPage:
        rows, has_more = await albums.list_albums(
            principal, library_uuid(library_id), name=name, asset_id=_filter_id(ids.ASSET, asset_id, "asset_id"),
            album_ids=_filter_ids(request, ids.ALBUM, MAX_IDS), limit=limit,
            starting_after=_filter_id(ids.ALBUM, starting_after_id, "starting_after_id"),
        )
        return AlbumPage(data=await _render(request, shared, rows), has_more=has_more)

    @post("/", action=access.WRITE)
    async def create_album(
        self, request: Request, principal: Principal, shared: Shared, data: AlbumCreate
    ) -> Response[AlbumResponse]:
        row, created = await albums.create_album(principal, library_uuid(data.library_id), data.name, data.description)
        [album] = await _render(request, shared, [row])
        return Response(album, status_code=201 if created else 200)

    @get("/{album_id:str}", action=access.READ)
    async def retrieve(self, request: Request, principal: Principal, shared: Shared, album_id: str) -> AlbumResponse:
        [album] = await _render(request, shared, [await albums.get_album(principal, ids.decode(ids.ALBUM, album_id))])
        return album

    @patch("/{album_id:str}", action=access.WRITE)
    async def update(
        self, request: Request, principal: Principal, shared: Shared, album_id: str, data: AlbumUpdate
    ) -> AlbumResponse:
        album_uuid = ids.decode(ids.ALBUM, album_id)
        row = await albums.update_album(principal, album_uuid, data.patch())
        [album] = await _render(request, shared, [row])
        return album

    @delete("/{album_id:str}", status_code=200, action=access.DELETE)
    async def delete_album(self, principal: Principal, album_id: str) -> dict:
        await albums.delete_album(principal, ids.decode(ids.ALBUM, album_id))
        return EMPTY

    @post("/{album_id:str}/assets", status_code=200, action=access.WRITE)
    async def add_assets(self, principal: Principal, album_id: str, data: AssetIdsBody) -> AssociationAddResponse:
        album_uuid = ids.decode(ids.ALBUM, album_id)
        given = _asset_ids(data.asset_ids)
        result = await albums.add_assets(principal, album_uuid, [u for u in given.values() if u is not None])
        added, duplicate = set(result.added), set(result.duplicate)
        out = AssociationAddResponse(added_assets=[], duplicate_assets=[], not_found_assets=[])
        for raw, decoded in given.items():
            (out.added_assets if decoded in added else out.duplicate_assets if decoded in duplicate
             else out.not_found_assets).append(raw)
        return out

    @delete("/{album_id:str}/assets", status_code=200, action=access.DELETE)
    async def remove_assets(self, principal: Principal, album_id: str, data: AssetIdsBody) -> dict:
        album_uuid = ids.decode(ids.ALBUM, album_id)
        given = _asset_ids(data.asset_ids)
        await albums.remove_assets(principal, album_uuid, [u for u in given.values() if u is not None])
        return EMPTY


class AlbumAssetController(Controller):
    path = "/api/album-assets"

    @get("/", action=access.READ)
    async def list_links(
        self, request: Request, principal: Principal, library_id: str | None = None, album_id: str | None = None,
        asset_id: str | None = None, limit: int = Parameter(default=20, ge=1, le=200),
        starting_after_id: str | None = None,
        listed_ids: list[str] | None = listed("ids", "Only these album-asset links, by id."),
    ) -> AlbumAssetPage:
        rows, has_more = await albums.list_links(
            principal, library_uuid(library_id), album_id=_filter_id(ids.ALBUM, album_id, "album_id"),
            asset_id=_filter_id(ids.ASSET, asset_id, "asset_id"), link_ids=_filter_ids(request, ids.ALBUM_ASSET),
            limit=limit, starting_after=_filter_id(ids.ALBUM_ASSET, starting_after_id, "starting_after_id"),
        )
        return AlbumAssetPage(data=[album_asset_response(r) for r in rows], has_more=has_more)

    @get("/{album_asset_id:str}", action=access.READ)
    async def get_link(self, principal: Principal, album_asset_id: str) -> AlbumAssetResponse:
        return album_asset_response(await albums.get_link(principal, ids.decode(ids.ALBUM_ASSET, album_asset_id)))
