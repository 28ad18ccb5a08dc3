"""Immich shared links: the owner's links (create, list, get, update, delete, their assets), and what
a visitor with a link's key or slug calls (`/me`, and `/login` with a link's password)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import asyncpg
import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.datastructures import Cookie
from litestar.response import Response

from app.domain import access, album_sharing, asset_views, shared_links, users
from app.domain.errors import BadRequest, NotFound
from compat import dtos, mapping
from compat.auth import SHARED_LINK_COOKIE, ImmichAuth, password_tokens
from compat.errors import refused_as

_COOKIE_AGE = 400 * 24 * 3600


class SharedLinkEdit(dtos.SharedLinkEditDto, kw_only=True):
    """SharedLinkEditDto plus changeExpiryTime, which Immich still reads: set with no expiresAt, it
    means "never expires" for clients that cannot send null."""

    changeExpiryTime: bool | msgspec.UnsetType = msgspec.UNSET


@contextmanager
def _link_not_found() -> Iterator[None]:
    """Immich answers a link that is missing or someone else's with 400 "Shared link not found"."""
    try:
        yield
    except NotFound as exc:
        if exc.kind is not None:
            raise
        raise BadRequest("Shared link not found") from None


def _set(value) -> bool:
    return value is not msgspec.UNSET


def _instant(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise BadRequest("expiresAt must be a date with a time zone")
    return value


async def _render(links: list[asyncpg.Record], *, strip: bool = False) -> list[dtos.SharedLinkResponseDto]:
    """SharedLinkResponseDtos: an ALBUM link with its album, an INDIVIDUAL one with its live assets
    (stripped of metadata when a visitor of a link that hides it asks)."""
    album_rows = await shared_links.link_albums(links)
    asset_rows = await shared_links.link_assets(links)
    album_users = await album_sharing.users_of(list(album_rows))
    owners = {owner_id: await users.user_by_id(owner_id) for owner_id in {r["owner_id"] for r in album_rows.values()}}
    out = []
    for link in links:
        assets = [mapping.asset(v) for v in await asset_views.views(asset_rows[link["id"]])]
        if strip:
            assets = [mapping.strip_metadata(a) for a in assets]
        dto = dtos.SharedLinkResponseDto(
            id=str(link["id"]), type=link["link_type"], userId=str(link["owner_id"]),
            key=shared_links.encode_key(link["key"]), slug=link["slug"], description=link["description"],
            password=link["password"], createdAt=link["created_at"], expiresAt=link["expires_at"],
            allowUpload=link["allow_upload"], allowDownload=link["allow_download"],
            showMetadata=link["show_metadata"], assets=assets,
        )
        album = album_rows.get(link["album_id"])
        if album is not None:
            dto.album = mapping.album(album, owners[album["owner_id"]], album_users.get(album["id"], ()))
        out.append(dto)
    return out


async def _one(link: asyncpg.Record, *, strip: bool = False) -> dtos.SharedLinkResponseDto:
    [dto] = await _render([link], strip=strip)
    return dto


@get("/api/shared-links", action=access.READ)
async def list_links(auth: ImmichAuth, albumId: str | None = None, id: str | None = None,
                     ) -> list[dtos.SharedLinkResponseDto]:
    rows = await shared_links.list_links(
        auth.principal, link_id=mapping.parse_uuid(id) if id is not None else None,
        album_id=mapping.parse_uuid(albumId, "albumId") if albumId is not None else None)
    return await _render(rows)


@post("/api/shared-links", status_code=201, action=access.WRITE)
async def create_link(auth: ImmichAuth, data: dtos.SharedLinkCreateDto) -> Response[dtos.SharedLinkResponseDto]:
    show_metadata = data.showMetadata if _set(data.showMetadata) else True
    settings = shared_links.LinkSettings(
        description=data.description if _set(data.description) else None,
        password=data.password if _set(data.password) else None,
        expires_at=_instant(data.expiresAt) if _set(data.expiresAt) else None,
        allow_upload=data.allowUpload if _set(data.allowUpload) else True,
        # Immich: a link that hides metadata never allows downloads (the original carries it all).
        allow_download=False if not show_metadata else (data.allowDownload if _set(data.allowDownload) else True),
        show_metadata=show_metadata,
        slug=data.slug if _set(data.slug) else None,
    )
    album_id = mapping.parse_uuid(data.albumId) if _set(data.albumId) and data.albumId else None
    asset_ids = [mapping.parse_uuid(a) for a in data.assetIds] if _set(data.assetIds) else []
    with refused_as("album.share" if data.type == shared_links.ALBUM else "asset.share"):
        row = await shared_links.create_link(auth.principal, data.type, settings, album_id=album_id,
                                             asset_ids=asset_ids)
    return Response(await _one(row), status_code=201)


def _with_token(request: Request, token: str) -> list[Cookie]:
    """The password cookie with this link's token added to those already held (one per link)."""
    held = password_tokens(request)
    if token not in held:
        held.append(token)
    secure = request.url.scheme == "https"
    return [Cookie(key=SHARED_LINK_COOKIE, value=",".join(held), httponly=True, path="/", samesite="lax",
                   max_age=_COOKIE_AGE, secure=secure)]


@post("/api/shared-links/login", status_code=201, action=access.READ, shared_link_login=True)
async def login(request: Request, auth: ImmichAuth, data: dtos.SharedLinkLoginDto,
                ) -> Response[dtos.SharedLinkResponseDto]:
    row, token = await shared_links.login(auth.principal, data.password)
    body = await _one(row, strip=not row["show_metadata"])
    return Response(body, status_code=201, cookies=_with_token(request, token))


@get("/api/shared-links/me", action=access.READ, shared_link=True)
async def my_link(auth: ImmichAuth) -> dtos.SharedLinkResponseDto:
    row = await shared_links.mine(auth.principal)
    return await _one(row, strip=not row["show_metadata"])


@get("/api/shared-links/{link_id:str}", action=access.READ)
async def get_link(auth: ImmichAuth, link_id: str) -> dtos.SharedLinkResponseDto:
    with _link_not_found():
        return await _one(await shared_links.get_link(auth.principal, mapping.parse_uuid(link_id)))


@patch("/api/shared-links/{link_id:str}", action=access.WRITE)
async def update_link(auth: ImmichAuth, link_id: str, data: SharedLinkEdit) -> dtos.SharedLinkResponseDto:
    link = mapping.parse_uuid(link_id)
    fields = {name for name, value in (("description", data.description), ("password", data.password),
                                       ("allow_upload", data.allowUpload), ("allow_download", data.allowDownload),
                                       ("show_metadata", data.showMetadata)) if _set(value)}
    fields.add("slug")  # Immich writes the slug on every update: left out, it is cleared
    expires_at = data.expiresAt if _set(data.expiresAt) else None
    if _set(data.expiresAt) or data.changeExpiryTime is True:
        fields.add("expires_at")
    settings = shared_links.LinkSettings(
        description=data.description if _set(data.description) else None,
        password=data.password if _set(data.password) else None,
        expires_at=_instant(expires_at),
        allow_upload=data.allowUpload is True, allow_download=data.allowDownload is True,
        show_metadata=data.showMetadata is True,
        slug=(data.slug or None) if _set(data.slug) else None,
    )
    with _link_not_found():
        row = await shared_links.update_link(auth.principal, link, settings, frozenset(fields))
    return await _one(row)


@delete("/api/shared-links/{link_id:str}", status_code=204, action=access.DELETE)
async def delete_link(auth: ImmichAuth, link_id: str) -> None:
    with _link_not_found():
        await shared_links.delete_link(auth.principal, mapping.parse_uuid(link_id))


def _outcomes(results: list[shared_links.AssetOutcome]) -> list[dtos.AssetIdsResponseDto]:
    return [dtos.AssetIdsResponseDto(assetId=str(r.asset_id), success=True) if r.success
            else dtos.AssetIdsResponseDto(assetId=str(r.asset_id), success=False, error=r.error) for r in results]


# Immich lets a link caller call these two too (its owner's id is the caller's); here they are the
# owner's alone, so a link cannot change what it shows.
@put("/api/shared-links/{link_id:str}/assets", action=access.WRITE)
async def add_assets(auth: ImmichAuth, link_id: str, data: dtos.AssetIdsDto) -> list[dtos.AssetIdsResponseDto]:
    asset_ids = [mapping.parse_uuid(a) for a in data.assetIds]
    with _link_not_found():
        return _outcomes(await shared_links.add_assets(auth.principal, mapping.parse_uuid(link_id), asset_ids))


@delete("/api/shared-links/{link_id:str}/assets", status_code=200, action=access.DELETE)
async def remove_assets(auth: ImmichAuth, link_id: str, data: dtos.AssetIdsDto) -> list[dtos.AssetIdsResponseDto]:
    asset_ids = [mapping.parse_uuid(a) for a in data.assetIds]
    with _link_not_found():
        return _outcomes(await shared_links.remove_assets(auth.principal, mapping.parse_uuid(link_id), asset_ids))


ROUTES = [list_links, create_link, login, my_link, get_link, update_link, delete_link, add_assets, remove_assets]
