"""Immich albums (what the CLI's --album and the web client use), and their sharing with other
users (album users with a role). An ALBUM shared link reads its album (and confirms its uploads
are in it); activities are not offered."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import QueryParameter
from litestar.response import Response

from app.domain import access, album_sharing, albums, emails, search, shared_links, users
from app.domain.asset_filters import SHOWN
from app.domain.errors import BadRequest
from compat import dtos, mapping, validation
from compat.auth import ImmichAuth
from compat.errors import refused_as

ME = "me"  # Immich's name for the caller in /albums/{id}/user/{userId} (deprecated in v3, still sent)


async def _render(principal: access.Principal, rows: list) -> list[dtos.AlbumResponseDto]:
    """AlbumResponseDtos for album rows, with their owners and users, in a few queries for the lot."""
    shared_with = await album_sharing.users_of([r["id"] for r in rows])
    linked = await shared_links.albums_with_links([r["id"] for r in rows])
    owners = {owner_id: await users.user_by_id(owner_id) for owner_id in {r["owner_id"] for r in rows}}
    out = [mapping.album(r, owners[r["owner_id"]], shared_with.get(r["id"], ()), principal.user_id) for r in rows]
    for dto in out:
        dto.hasSharedLink = uuid.UUID(dto.id) in linked
    return out


async def _one(principal: access.Principal, album_id: uuid.UUID) -> dtos.AlbumResponseDto:
    [dto] = await _render(principal, [await albums.get_album(principal, album_id)])
    return dto


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
                      isShared: bool | None = None, isOwned: bool | None = None,
                      legacy_shared: bool | None = QueryParameter(name="shared", default=None),
                      ) -> list[dtos.AlbumResponseDto]:
    """The caller's albums (its Immich library's) and those shared with it; isOwned picks one side,
    isShared keeps the albums that have (true) or lack (false) other users. assetId ignores both.
    `shared` is what Immich before v2 called isShared; older mobile apps still send it (its Python
    name differs because `shared` names the app state dependency)."""
    if isShared is None:
        isShared = legacy_shared
    asset = mapping.parse_uuid(assetId, "assetId") if assetId else None
    if asset is not None:
        isShared = isOwned = None
    rows = []
    if isOwned is not False:
        rows += await _all_albums(auth.principal, await access.preferred_library(auth.principal), asset)
    if isOwned is not True:
        seen = {r["id"] for r in rows}  # a library member can also be an album user of the same album
        rows += [r for r in await albums.shared_albums(auth.principal, asset) if r["id"] not in seen]
    if name is not None:  # Immich matches the whole name here
        rows = [r for r in rows if r["name"] == name]
    out = await _render(auth.principal, rows)
    return out if isShared is None else [a for a in out if a.shared == isShared]


@post("/api/albums", status_code=201, action=access.WRITE)
async def create_album(auth: ImmichAuth, request: Request, data: dtos.CreateAlbumDto) -> Response[dtos.AlbumResponseDto]:
    library = await access.preferred_library(auth.principal)
    asset_ids = [mapping.parse_uuid(a) for a in data.assetIds or ()]
    # Immich leaves the creator out of its own album's users, and checks the rest before creating.
    sharing = [(mapping.parse_uuid(u.userId), u.role) for u in data.albumUsers or ()
               if mapping.parse_uuid(u.userId) != auth.principal.user_id]
    for user_id, _ in sharing:
        if await users.user_by_id(user_id) is None:
            raise BadRequest("User not found")
    description = None if data.description is msgspec.UNSET else data.description
    # Immich makes a new album each time, named as given (its web app starts with an empty name).
    row = await albums.create_new_album(auth.principal, library, data.albumName, description)
    if asset_ids:
        await albums.add_assets(auth.principal, row["id"], asset_ids)
    if sharing:
        await album_sharing.add_users(auth.principal, row["id"], sharing)
        emails.album_invites_later(auth.principal, row["id"], [u for u, _ in sharing],
                                   mapping.web_address(request.base_url))
    return Response(await _one(auth.principal, row["id"]), status_code=201)


@put("/api/albums/{album_id:str}/assets", action=access.WRITE, shared_link=True)
async def add_album_assets(auth: ImmichAuth, album_id: str, data: dtos.BulkIdsDto) -> list[dtos.BulkIdResponseDto]:
    asset_ids = [mapping.parse_uuid(a) for a in data.ids]
    if auth.principal.shared_link is not None:  # after an upload through a link, which put it there already
        with refused_as("albumAsset.create"):
            present = await shared_links.uploaded_in_album(auth.principal, mapping.parse_uuid(album_id), asset_ids)
        return [dtos.BulkIdResponseDto(id=str(a), success=False, error="duplicate" if a in present else "no_permission")
                for a in asset_ids]
    with refused_as("albumAsset.create"):  # a viewer, or a stranger
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


@put("/api/albums/assets", action=access.WRITE)
async def add_assets_to_albums(auth: ImmichAuth, data: dtos.AlbumsAddAssetsDto) -> dtos.AlbumsAddAssetsResponseDto:
    """Every asset into every album, one verdict for the lot as Immich gives it: success once any
    link was made; otherwise no_permission when no album (or no asset) could take part, else
    duplicate (all were there already)."""
    results = await albums.add_assets_to_albums(auth.principal, [mapping.parse_uuid(a) for a in data.albumIds],
                                                [mapping.parse_uuid(a) for a in data.assetIds])
    if any(r.added for r in results.values()):
        return dtos.AlbumsAddAssetsResponseDto(success=True)
    if not any(r.duplicate for r in results.values()):
        return dtos.AlbumsAddAssetsResponseDto(success=False, error="no_permission")
    return dtos.AlbumsAddAssetsResponseDto(success=False, error="duplicate")


@get("/api/albums/statistics", action=access.READ)
async def album_statistics(auth: ImmichAuth) -> dtos.AlbumStatisticsResponseDto:
    own = await _render(auth.principal, await _all_albums(auth.principal, await access.preferred_library(auth.principal), None))
    theirs = await albums.shared_albums(auth.principal)
    own_ids = {a.id for a in own}
    not_shared = sum(1 for a in own if not a.shared)
    shared = len(own) - not_shared + sum(1 for r in theirs if str(r["id"]) not in own_ids)
    return dtos.AlbumStatisticsResponseDto(owned=len(own), shared=shared, notShared=not_shared)


@get("/api/albums/{album_id:str}", action=access.READ, shared_link=True)  # an ALBUM link's album
async def get_album(auth: ImmichAuth, album_id: str) -> dtos.AlbumResponseDto:
    return await _one(auth.principal, mapping.parse_uuid(album_id))


@get("/api/albums/{album_id:str}/map-markers", action=access.READ, shared_link=True)
async def album_map_markers(auth: ImmichAuth, album_id: str) -> list[dtos.MapMarkerResponseDto]:
    """The album's geotagged live photos as the caller may read the album; a link that hides
    metadata hides where they were taken."""
    f = await albums.contents_filter(auth.principal, mapping.parse_uuid(album_id), visibilities=SHOWN)
    link = auth.principal.shared_link
    if link is not None and not link.show_metadata:
        return []
    return [dtos.MapMarkerResponseDto(id=str(r["id"]), lat=r["latitude"], lon=r["longitude"], city=r["city"],
                                      state=r["state"], country=r["country"])
            for r in await search.album_markers(auth.principal, f)]


@patch("/api/albums/{album_id:str}", action=access.WRITE)
async def update_album(auth: ImmichAuth, album_id: str, data: dtos.UpdateAlbumDto) -> dtos.AlbumResponseDto:
    album = mapping.parse_uuid(album_id)
    with refused_as("album.update"):  # the owner's, as in Immich: an album user's is refused
        # Immich's names: kept as given, blank or shared with another album.
        row = await albums.update_album(auth.principal, album, mapping.album_patch(data), any_name=True)
    return await _one(auth.principal, row["id"])


@delete("/api/albums/{album_id:str}", status_code=204, action=access.DELETE)
async def delete_album(auth: ImmichAuth, album_id: str) -> None:
    with refused_as("album.delete"):
        await albums.delete_album(auth.principal, mapping.parse_uuid(album_id))


@delete("/api/albums/{album_id:str}/assets", status_code=200, action=access.DELETE)
async def remove_album_assets(auth: ImmichAuth, album_id: str, data: dtos.BulkIdsDto) -> list[dtos.BulkIdResponseDto]:
    asset_ids = [mapping.parse_uuid(a) for a in data.ids]
    with refused_as("albumAsset.delete"):  # an album user, or a stranger
        removed = set(await albums.remove_assets(auth.principal, mapping.parse_uuid(album_id), asset_ids))
    return [dtos.BulkIdResponseDto(id=str(a), success=True) if a in removed
            else dtos.BulkIdResponseDto(id=str(a), success=False, error="not_found") for a in asset_ids]


# --- album users ---


def _user_param(auth: ImmichAuth, user_id: str) -> uuid.UUID:
    if user_id == ME:
        return auth.principal.user_id
    if not validation.is_uuid(user_id):
        raise validation.failed({"code": "custom", "path": ["userId"], "message": 'Must be a UUID v4 or "me"'})
    return uuid.UUID(user_id)


@put("/api/albums/{album_id:str}/users", action=access.WRITE)
async def add_album_users(auth: ImmichAuth, request: Request, album_id: str, data: dtos.AddUsersDto) -> dtos.AlbumResponseDto:
    album = mapping.parse_uuid(album_id)
    additions = [(mapping.parse_uuid(u.userId), access.ALBUM_EDITOR if u.role is msgspec.UNSET else u.role)
                 for u in data.albumUsers]  # Immich's default role is editor
    with refused_as("album.share"):
        await album_sharing.add_users(auth.principal, album, additions)
    # Immich e-mails each new album user (when e-mail is enabled and their preferences take it).
    emails.album_invites_later(auth.principal, album, [u for u, _ in additions], mapping.web_address(request.base_url))
    return await _one(auth.principal, album)


@put("/api/albums/{album_id:str}/user/{user_id:str}", status_code=204, action=access.WRITE)
async def update_album_user(auth: ImmichAuth, album_id: str, user_id: str, data: dtos.UpdateAlbumUserDto) -> None:
    with refused_as("album.share"):
        await album_sharing.update_user(auth.principal, mapping.parse_uuid(album_id), _user_param(auth, user_id),
                                        data.role)


@delete("/api/albums/{album_id:str}/user/{user_id:str}", status_code=204, action=access.DELETE)
async def remove_album_user(auth: ImmichAuth, album_id: str, user_id: str) -> None:
    with refused_as("album.share"):
        await album_sharing.remove_user(auth.principal, mapping.parse_uuid(album_id), _user_param(auth, user_id))


ALBUM_USER_HANDLERS = [add_album_users, update_album_user, remove_album_user]
