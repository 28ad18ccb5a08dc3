"""Byte serving behind signed URLs (the role a CDN plays for the reference service)."""

from litestar import Request, get
from litestar.response import Response

from app.api.file_serving import send_file
from app.api.state import Shared
from app.db import engine as db
from app.domain import ids


@get("/media/assets/{asset_id:str}/{variant:str}")
async def asset_media(request: Request, shared: Shared, asset_id: str, variant: str, exp: int, sig: str) -> Response:
    asset_uuid = ids.try_decode(ids.ASSET, asset_id)
    if asset_uuid is None or not shared.signer.verify(asset_uuid, variant, exp, sig):
        return Response({"detail": "Invalid or expired link"}, status_code=403)
    if variant != "original":
        return Response({"detail": f"Variant '{variant}' does not exist"}, status_code=404)
    row = await db.fetchrow(
        "SELECT storage_key, mime_type, original_file_name, checksum_sha256 FROM assets WHERE id = $1", asset_uuid
    )
    if row is None:
        return Response({"detail": "Asset not found"}, status_code=404)
    return send_file(
        request,
        shared.store.path(row["storage_key"]),
        media_type=row["mime_type"],
        etag=row["checksum_sha256"].hex(),
        cache_control="private, max-age=86400, immutable",
        download_name=row["original_file_name"],
    )
