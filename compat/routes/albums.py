"""Immich albums (what the CLI's --album and the web client use). Sharing is not offered."""

from __future__ import annotations

import uuid

import msgspec
from litestar import delete, get, patch, post, put
from litestar.response import Response

from app.domain import access, albums, users
from app.domain.errors import BadRequest, Conflict
from compat import dtos, mapping
from compat.auth import ImmichAuth


async def _all_albums(principal, library: uuid.UUID, asset_id: uuid.UUID | None) -> list:
    rows, cursor = [], None
    while True:
        page, more = await albums.list_albums(principal, library, asset_id=asset_id, limit=200, starting_after=cursor)
        rows += page
        if not more:
            return rows
        cursor = page[-1]["id"]


@get("/api/albums", action=access.READ)
async def list_albums(auth: ImmichAuth, assetId: str | None = None, name: str | None = None,
                      isShared: bool | None = None) -> list[dtos.AlbumResponseDto]:
    if isShared:  # no album is shared on this server
        return []
    library = await access.preferred_library(auth.principal)
    asset = mapping.parse_uuid(assetId) if assetId else None
    owner = await users.user_by_id(auth.principal.user_id)
    rows = await _all_albums(auth.principal, library, asset)
    if name is not None:  # Immich matches the whole name here
        rows = [r for r in rows if r["name"] == name]
    return [mapping.album(r, owner) for r in rows]


@post("/api/albums", status_code=201, action=access.WRITE)
async def create_album(auth: ImmichAuth, data: dtos.CreateAlbumDto) -> Response[dtos.AlbumResponseDto]:
    library = await access.preferred_library(auth.principal)
    asset_ids = [mapping.parse_uuid(a) for a in data.assetIds or ()]  # albumUsers: sharing is not offered
    description = None if data.description is msgspec.UNSET else data.description
    try:
        row, _ = await albums.create_album(auth.principal, library, data.albumName, description)
    except Conflict as exc:  # an album of that name exists with another description
        raise BadRequest(exc.detail) from None
    if asset_ids:
        await albums.add_assets(auth.principal, row["id"], asset_ids)
        row = await albums.get_album(auth.principal, row["id"])
    owner = await users.user_by_id(auth.principal.user_id)
    return Response(mapping.album(row, owner), status_code=201)


@put("/api/albums/{album_id:str}/assets", action=access.WRITE)
async def add_album_assets(auth: ImmichAuth, album_id: str, data: dtos.BulkIdsDto) -> list[dtos.BulkIdResponseDto]:
    asset_ids = [mapping.parse_uuid(a) for a in data.ids]
    result = await albums.add_assets(auth.principal, mapping.parse_uuid(album_id), asset_ids)
    added, duplicate = set(result.added), set(result.duplicate)
    out = []
    for a in asset_ids:
        if a in added:
            out.append(dtos.BulkIdResponseDto(id=str(a), success=True))
        elif a in duplicate:
            out.append(dtos.BulkIdResponseDto(id=str(a), success=False, error="duplicate"))
        else:
            out.append(dtos.BulkIdResponseDto(id=str(a), success=False, error="not_found"))
    return out


@get("/api/albums/statistics", action=access.READ)
async def album_statistics(auth: ImmichAuth) -> dtos.AlbumStatisticsResponseDto:
    library = await access.preferred_library(auth.principal)
    owned = len(await _all_albums(auth.principal, library, None))
    return dtos.AlbumStatisticsResponseDto(owned=owned, shared=0, notShared=owned)


@get("/api/albums/{album_id:str}", action=access.READ)
async def get_album(auth: ImmichAuth, album_id: str) -> dtos.AlbumResponseDto:
    row = await albums.get_album(auth.principal, mapping.parse_uuid(album_id))
    return mapping.album(row, await users.user_by_id(row["owner_id"]))


@patch("/api/albums/{album_id:str}", action=access.WRITE)
async def update_album(auth: ImmichAuth, album_id: str, data: dtos.UpdateAlbumDto) -> dtos.AlbumResponseDto:
    album = mapping.parse_uuid(album_id)
    try:
        row = await albums.update_album(auth.principal, album, mapping.album_patch(data))
    except Conflict as exc:
        raise BadRequest(exc.detail) from None
    return mapping.album(row, await users.user_by_id(row["owner_id"]))


@delete("/api/albums/{album_id:str}", status_code=204, action=access.DELETE)
async def delete_album(auth: ImmichAuth, album_id: str) -> None:
    await albums.delete_album(auth.principal, mapping.parse_uuid(album_id))


@delete("/api/albums/{album_id:str}/assets", status_code=200, action=access.DELETE)
async def remove_album_assets(auth: ImmichAuth, album_id: str, data: dtos.BulkIdsDto) -> list[dtos.BulkIdResponseDto]:
    asset_ids = [mapping.parse_uuid(a) for a in data.ids]
    removed = set(await albums.remove_assets(auth.principal, mapping.parse_uuid(album_id), asset_ids))
    return [dtos.BulkIdResponseDto(id=str(a), success=True) if a in removed
            else dtos.BulkIdResponseDto(id=str(a), success=False, error="not_found") for a in asset_ids]
