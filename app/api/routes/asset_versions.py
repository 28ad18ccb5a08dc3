"""Native asset versions (`client.assets.versions`): an asset's renderings, original first."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.response import Response

from app.api import ids
from app.api.body_limits import reject_nul_form
from app.api.errors import InputError, domain_error
from app.api.file_serving import send_file
from app.api.params import base_url, check_includes, list_param, listed
from app.api.routes.assets import render_assets
from app.api.routes.media import CACHE
from app.api.schemas import AssetResponse, AssetVariant, asset_urls, b64
from app.api.state import Shared
from app.domain import access, asset_versions, asset_views
from app.domain.access import Principal
from app.domain.errors import DomainError
from app.storage.multipart import receive_multipart
from app.storage.signing import UrlSigner

VERSION_INCLUDES = frozenset({"variants"})
_VERSION_URL = "version"  # what a version URL's signature is bound to, next to the version id
_INCLUDE = listed("include", "Extra fields: variants.")


class AssetVersionResponse(msgspec.Struct):
    id: str
    position: int
    kind: str
    mime_type: str
    width: int
    height: int
    file_size_bytes: int
    checksum: str | None
    params: dict[str, Any] | None
    version_urls: dict[str, AssetVariant] | None


def _version_url(asset_id, version: asset_versions.Version, signer: UrlSigner, base: str) -> str:
    expires, sig = signer.sign(version.id, _VERSION_URL)
    return (f"{base}/media/assets/{ids.encode(ids.ASSET, asset_id)}/versions/"
            f"{ids.encode(ids.VERSION, version.id)}/original?exp={expires}&sig={sig}")


async def _responses(request: Request, shared: Shared, asset_id, versions: list[asset_versions.Version]
                     ) -> list[AssetVersionResponse]:
    """The current rendering's URLs are the asset's own (its variants are that rendering's); an older
    version has only its exact bytes."""
    base = base_url(request, shared.settings.public_url)
    [view] = await asset_views.views(await asset_views.rows_by_id([asset_id]))
    current = view.row["current_version_id"] or view.row["original_version_id"]
    out = []
    for v in versions:
        urls = (asset_urls(view, shared.signer, base) if v.id == current
                else {"original": AssetVariant(_version_url(asset_id, v, shared.signer, base), v.mime_type, v.width)})
        out.append(AssetVersionResponse(
            id=ids.encode(ids.VERSION, v.id), position=v.position, kind=v.kind, mime_type=v.mime_type,
            width=v.width, height=v.height, file_size_bytes=v.size_bytes, checksum=b64(v.checksum_sha256),
            params=v.params, version_urls=urls))
    return out


class AssetVersionController(Controller):
    path = "/api/assets/{asset_id:str}/versions"

    async def _rendering(self, request: Request, shared: Shared) -> asset_versions.NewRendering | Response:
        try:
            form = await receive_multipart(
                request.stream(), request.headers.get("content-type"), ("file",), shared.store,
                content_length=request.headers.get("content-length"),
                max_bytes=asset_versions.MAX_VERSION_BYTES + 1024 * 1024,
                idle_timeout=shared.settings.upload_idle_timeout_seconds)
        except DomainError as exc:
            refused = domain_error(request, exc)
            refused.headers["connection"] = "close"
            return refused
        try:
            reject_nul_form(form.lists, {name: received.filename for name, received in form.files.items()})
            received = form.files.get("file")
            if received is None:
                raise InputError("Field required: file (a file part)", "body", "file")
            for name in ("kind", "params"):
                if name not in form.fields:
                    raise InputError(f"Field required: {name}", "body", name)
            return asset_versions.NewRendering(
                received.staged, asset_versions.check_kind(form.fields["kind"]),
                asset_versions.parse_params(form.fields["params"]), received.content_type)
        except BaseException:
            form.discard()
            raise

    @get("/", action=access.READ)
    async def list_versions(self, request: Request, principal: Principal, shared: Shared, asset_id: str,
                            listed_include: list[str] | None = _INCLUDE) -> list[AssetVersionResponse]:
        check_includes(list_param(request, "include"), VERSION_INCLUDES)
        asset_uuid = ids.decode(ids.ASSET, asset_id)
        versions = await asset_versions.list_versions(principal, asset_uuid)
        return await _responses(request, shared, asset_uuid, versions)

    @post("/", status_code=200, request_max_body_size=None, action=access.WRITE)
    async def append(self, request: Request, principal: Principal, shared: Shared, asset_id: str,
                     listed_include: list[str] | None = _INCLUDE) -> Response[AssetVersionResponse]:
        check_includes(list_param(request, "include"), VERSION_INCLUDES)
        asset_uuid = ids.decode(ids.ASSET, asset_id)
        new = await self._rendering(request, shared)
        if isinstance(new, Response):
            return new
        version = await asset_versions.append(principal, shared.store, shared.queue, asset_uuid, new)
        return Response((await _responses(request, shared, asset_uuid, [version]))[0])

    @post("/{version_id:str}/replace", status_code=200, request_max_body_size=None, action=access.WRITE)
    async def replace(self, request: Request, principal: Principal, shared: Shared, asset_id: str, version_id: str,
                      listed_include: list[str] | None = _INCLUDE) -> Response[AssetVersionResponse]:
        check_includes(list_param(request, "include"), VERSION_INCLUDES)
        asset_uuid, version_uuid = ids.decode(ids.ASSET, asset_id), ids.decode(ids.VERSION, version_id)
        new = await self._rendering(request, shared)
        if isinstance(new, Response):
            return new
        version = await asset_versions.replace(principal, shared.store, shared.queue, asset_uuid, version_uuid, new)
        return Response((await _responses(request, shared, asset_uuid, [version]))[0])

    @post("/{version_id:str}/revert", status_code=200, action=access.WRITE)
    async def revert(self, request: Request, principal: Principal, shared: Shared, asset_id: str,
                     version_id: str) -> AssetResponse:
        asset_uuid = await asset_versions.revert(principal, shared.store, shared.queue, ids.decode(ids.ASSET, asset_id),
                                                 ids.decode(ids.VERSION, version_id))
        return (await render_assets(request, shared, await asset_views.rows_by_id([asset_uuid])))[0]

    @delete("/{version_id:str}", status_code=200, action=access.WRITE)
    async def delete_version(self, request: Request, principal: Principal, shared: Shared, asset_id: str,
                             version_id: str) -> AssetResponse:
        asset_uuid = await asset_versions.delete(principal, shared.store, shared.queue, ids.decode(ids.ASSET, asset_id),
                                                 ids.decode(ids.VERSION, version_id))
        return (await render_assets(request, shared, await asset_views.rows_by_id([asset_uuid])))[0]


@get("/media/assets/{asset_id:str}/versions/{version_id:str}/original", public=True)  # the signature is the credential
async def version_media(request: Request, shared: Shared, asset_id: str, version_id: str, exp: int,
                        sig: str) -> Response:
    asset_uuid, version_uuid = ids.try_decode(ids.ASSET, asset_id), ids.try_decode(ids.VERSION, version_id)
    if asset_uuid is None or version_uuid is None or not shared.signer.verify(version_uuid, _VERSION_URL, exp, sig):
        return Response({"detail": "Invalid or expired link"}, status_code=403)
    version = await asset_versions.version_file(asset_uuid, version_uuid)
    if version is None:
        return Response({"detail": "Asset version not found"}, status_code=404)
    path = asset_versions.file_path(shared.store, version)
    return send_file(request, path, media_type=version.mime_type,
                     etag=(version.checksum_sha256 or b"").hex() or None, cache_control=CACHE,
                     download_name=f"{version_id}{path.suffix}")
