"""Byte serving behind signed URLs (the role a CDN plays for the reference service)."""

from litestar import Request, get
from litestar.response import Response

from app.api.file_serving import send_file
from app.api.state import Shared
from app.api import ids
from app.domain import asset_versions, assets, faces
from app.storage.signing import media_state

# Immich's caching for asset media: private, a day fresh, long stale windows.
CACHE = "private, max-age=86400, no-transform, stale-while-revalidate=2592000, stale-if-error=2592000"


@get("/media/assets/{asset_id:str}/{variant:str}", public=True)  # the signature is the credential
async def asset_media(request: Request, shared: Shared, asset_id: str, variant: str, exp: int, sig: str) -> Response:
    asset_uuid = ids.try_decode(ids.ASSET, asset_id)
    if asset_uuid is None:
        return Response({"detail": "Invalid or expired link"}, status_code=403)
    found = await assets.media_file(asset_uuid, variant)
    # The signature covers the asset's trash state: trashing (or restoring) ends earlier URLs.
    state = media_state(found[0]["trashed_at"]) if found is not None else ""
    if not shared.signer.verify(asset_uuid, variant, exp, sig, state):
        return Response({"detail": "Invalid or expired link"}, status_code=403)
    if found is None:
        return Response({"detail": f"Asset media '{variant}' not found"}, status_code=404)
    asset, derived = found
    if derived is None:  # the bytes of the current rendering: the upload, or the version above it
        shown = await asset_versions.current_file(asset)
        return send_file(
            request,
            asset_versions.file_path(shared.store, shown),  # an external original: read in its folder
            media_type=shown.mime_type,
            etag=shown.checksum_sha256.hex(),
            cache_control=CACHE,
            download_name=asset["original_file_name"] if variant == "original" else None,
        )
    return send_file(
        request,
        shared.store.path(derived["storage_key"]),
        media_type=derived["mime_type"],
        etag=derived["checksum_sha1"].hex(),
        cache_control=CACHE,
    )


@get("/media/faces/{face_id:str}/thumbnail", public=True)  # the signature is the credential
async def face_media(request: Request, shared: Shared, face_id: str, exp: int, sig: str) -> Response:
    face_uuid = ids.try_decode(ids.FACE, face_id)
    if face_uuid is None or not shared.signer.verify(face_uuid, "face", exp, sig):
        return Response({"detail": "Invalid or expired link"}, status_code=403)
    key = await faces.thumbnail_file(shared.store, face_uuid)
    if key is None:
        return Response({"detail": "Face thumbnail not found"}, status_code=404)
    # The key names the face and its box, so it is a stable validator.
    return send_file(request, shared.store.path(key), media_type="image/jpeg", etag=key.rsplit("/", 1)[-1],
                     cache_control=CACHE)
