"""Immich media: thumbnails, previews, originals and video playback, after Immich auth. A shared
link's key or slug opens them too (shared_link=True), for the assets the link shows; the original
only when the link allows downloads."""

from __future__ import annotations


from litestar import Request, get
from litestar.response import Redirect, Response

from app.api.file_serving import send_file
from app.api.routes.media import CACHE
from app.api.state import Shared
from app.domain import access, asset_versions, assets, originals, shared_links
from app.domain.errors import BadRequest, NotFound
from compat import mapping
from compat.auth import ImmichAuth
from compat.errors import refused_as

_NATIVE_VARIANT = {
    "image": {"thumbnail": "thumbnail", "preview": "preview", "fullsize": "fullsize"},
    "video": {"thumbnail": "thumbnail_image", "preview": "preview_image", "fullsize": "preview_image"},
}


_LINK_PARAMS = ("key", "slug")


def _redirect(request: Request, path: str, **params: str) -> Redirect:
    """A redirect that carries a shared link's key or slug along, so the link still opens the target."""
    query = {name: request.query_params[name] for name in _LINK_PARAMS if request.query_params.get(name)}
    return Redirect(path, query_params={**params, **query}, status_code=302)


async def _asset(auth: ImmichAuth, asset_id: str):
    return await access.load_asset(auth.principal, mapping.parse_uuid(asset_id), access.READ)


def _original(request: Request, shared: Shared, asset, shown=None) -> Response:
    """The uploaded file, or `shown` (the current rendering of an edited asset) when given."""
    if shown is not None:
        path = asset_versions.file_path(shared.store, shown)
        name = asset["original_file_name"].rsplit(".", 1)[0] + path.suffix
        return send_file(request, path, media_type=shown.mime_type,
                         etag=shown.checksum_sha256.hex(), cache_control=CACHE, inline_name=name)
    path = originals.original_file(shared.store, asset)  # an external asset's file in its folder
    if not path.is_file():  # an external file gone since the last scan (or a lost upload)
        raise NotFound("Asset media not found")
    return send_file(request, path, media_type=asset["mime_type"],
                     etag=asset["checksum_sha256"].hex(), cache_control=CACHE,
                     inline_name=asset["original_file_name"])


@get("/api/assets/{asset_id:str}/thumbnail", action=access.READ, shared_link=True)
async def thumbnail(request: Request, auth: ImmichAuth, shared: Shared, asset_id: str,
                    size: str = "thumbnail", edited: bool = False) -> Response:
    asset = await _asset(auth, asset_id)
    if size == "original":  # deprecated spelling: the original endpoint serves it
        return _redirect(request, f"/api/assets/{asset['id']}/original")
    variant = _NATIVE_VARIANT[asset["media_type"]].get(size)
    if variant is None:
        raise BadRequest("size must be thumbnail, preview, fullsize or original")
    found = await assets.media_file(asset["id"], variant)
    if found is None:
        if size == "fullsize":  # no full-size rendition: the preview is the best there is
            return _redirect(request, f"/api/assets/{asset['id']}/thumbnail", size="preview")
        raise NotFound("Asset media not found")
    _, derived = found
    if derived is None:  # a browser shows this original as it is
        if not shared_links.may_see_original_bytes(auth.principal):  # such a link gets the preview
            return _redirect(request, f"/api/assets/{asset['id']}/thumbnail", size="preview")
        # As Immich: the edited rendering when asked for, else the upload. (Thumbnails and previews
        # are always the current rendering's: the upload's are not kept beside an edit's.)
        shown = await asset_versions.current_file(asset) if edited and asset["current_version_id"] else None
        return _original(request, shared, asset, shown)
    name = f"{asset['original_file_name'].rsplit('.', 1)[0]}_{size}.{derived['storage_key'].rsplit('.', 1)[-1]}"
    return send_file(request, shared.store.path(derived["storage_key"]), media_type=derived["mime_type"],
                     etag=derived["checksum_sha1"].hex(), cache_control=CACHE, inline_name=name)


@get("/api/assets/{asset_id:str}/original", action=access.READ, shared_link=True)
async def original(request: Request, auth: ImmichAuth, shared: Shared, asset_id: str,
                   edited: bool = False) -> Response:
    asset = await _asset(auth, asset_id)
    with refused_as("asset.download"):
        shared_links.require_download(auth.principal)
    shown = await asset_versions.current_file(asset) if edited and asset["current_version_id"] else None
    return _original(request, shared, asset, shown)


@get("/api/assets/{asset_id:str}/video/playback", action=access.READ, shared_link=True)
async def video_playback(request: Request, auth: ImmichAuth, shared: Shared, asset_id: str) -> Response:
    asset = await _asset(auth, asset_id)
    if asset["media_type"] != "video":
        raise NotFound("Asset is not a video")
    return _original(request, shared, asset)  # no transcodes: the original streams with Range


