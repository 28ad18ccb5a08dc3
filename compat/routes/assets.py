"""Immich asset routes: upload (mobile and CLI), duplicate checks, statistics."""

from __future__ import annotations

import base64
import uuid
from typing import get_args

from litestar import Request, delete, get, post, put
from litestar.response import Response

from app.api.body_limits import reject_nul_form
from app.api.state import Shared
from app.domain import access, asset_views, assets, duplicates, ingest, quotas, shared_links
from app.domain.datetimes import parse_iso
from app.domain.errors import BadRequest, DomainError, Invalid
from app.storage.multipart import receive_multipart
from compat import dtos, mapping, validation
from compat.auth import ImmichAuth
from compat.errors import EXCEPTION_HANDLERS


async def _existing_by_sha1(principal, library: uuid.UUID, checksums: list[str]) -> dict[str, object]:
    """base64 SHA-1 -> asset row, for the caller's library."""
    wanted = [c for c in checksums if c]
    if not wanted:
        return {}
    rows = await assets.existing_assets(principal, library, sha1s=[base64.b64decode(c) for c in wanted])
    return {mapping.b64(r["checksum_sha1"]): r for r in rows}


def _flag(fields: dict, name: str) -> bool:
    return fields.get(name, "").strip().lower() == "true"


def _form_datetime(fields: dict, name: str):
    """A date field of the upload form, refused as Immich's isoDatetimeToDate refuses it."""
    try:
        return parse_iso(fields[name], name)
    except (KeyError, Invalid):
        raise validation.failed(validation.invalid_datetime(fields.get(name, validation.MISSING), [name])) from None


@post("/api/assets", request_max_body_size=None, action=access.WRITE, shared_link=True)
async def upload_asset(request: Request, auth: ImmichAuth, shared: Shared) -> Response[dtos.AssetMediaResponseDto]:
    # Through a shared link that allows uploads, the upload acts as the link's owner in one library
    # (the album's), and lands in the link's album too, duplicate or not (as in Immich).
    principal, library = await shared_links.upload_target(auth.principal)
    header = request.headers.get("x-immich-checksum")
    if header and (sha1 := mapping.sha1_base64(header)):
        # Known bytes: answer before reading the body.
        found = (await _existing_by_sha1(principal, library, [sha1])).get(sha1)
        if found is not None:
            await shared_links.attach_upload(auth.principal, principal, found["id"])
            return Response(dtos.AssetMediaResponseDto(id=str(found["id"]), status="duplicate"), status_code=200)
    settings = shared.settings
    try:
        form = await receive_multipart(
            request.stream(), request.headers.get("content-type"), ("assetData", "sidecarData"), shared.store,
            content_length=request.headers.get("content-length"), max_bytes=settings.max_upload_bytes,
            idle_timeout=settings.upload_idle_timeout_seconds,
            allowance=lambda fields: quotas.upload_allowance(principal, library),
        )
    except DomainError as exc:
        # Immich's body and status for the error (a cap is 400 "Quota has been exceeded!"), then
        # close the connection rather than drain a body that may be partly unread.
        refused = EXCEPTION_HANDLERS[DomainError](request, exc)
        refused.headers["connection"] = "close"
        return refused
    try:
        reject_nul_form(form.lists, {name: received.filename for name, received in form.files.items()})
        asset_file = form.files.get("assetData")
        if asset_file is None:
            raise BadRequest("assetData is required")
        fields = form.fields
        created_at, modified_at = (_form_datetime(fields, name) for name in ("fileCreatedAt", "fileModifiedAt"))
        live = fields.get("livePhotoVideoId") or None
        live_id = mapping.parse_uuid(live, "livePhotoVideoId") if live else None
        visibility = fields.get("visibility") or "timeline"
        if visibility not in get_args(dtos.AssetVisibility):
            raise validation.failed(validation.invalid_option(list(get_args(dtos.AssetVisibility)), ["visibility"]))
        sidecar = form.files.get("sidecarData")
        upload = ingest.Upload(
            staged=asset_file.staged,
            filename=fields.get("filename") or asset_file.filename,
            # v3 clients no longer send device ids; they only matter to native existence checks.
            device_asset_id=fields.get("deviceAssetId") or str(uuid.uuid4()),
            device_id=fields.get("deviceId") or "immich",
            file_created_at=created_at,
            file_modified_at=modified_at,
            library_id=library,
            sidecar=sidecar.staged if sidecar else None,
            is_favorite=_flag(fields, "isFavorite"),
            visibility=visibility,
            live_photo_video_id=live_id,
        )
    except BaseException:
        form.discard()
        raise
    row, created = await ingest.ingest(principal, shared.store, upload, shared.queue)
    await shared_links.attach_upload(auth.principal, principal, row["id"])
    body = dtos.AssetMediaResponseDto(id=str(row["id"]), status="created" if created else "duplicate")
    return Response(body, status_code=201 if created else 200)


@post("/api/assets/bulk-upload-check", status_code=200, action=access.WRITE)
async def bulk_upload_check(auth: ImmichAuth, data: dtos.AssetBulkUploadCheckDto) -> dtos.AssetBulkUploadCheckResponseDto:
    library = await access.preferred_library(auth.principal)
    converted = [(item, mapping.sha1_base64(item.checksum)) for item in data.assets]
    if any(sha1 is None for _, sha1 in converted):
        raise Invalid("checksum must be a SHA-1 in hex (40 characters) or base64 (28 characters)")
    found = await _existing_by_sha1(auth.principal, library, [sha1 for _, sha1 in converted])
    results = []
    for item, sha1 in converted:
        row = found.get(sha1)
        if row is None:
            results.append(dtos.AssetBulkUploadCheckResult(id=item.id, action="accept"))
        else:
            results.append(dtos.AssetBulkUploadCheckResult(
                id=item.id, action="reject", reason="duplicate", assetId=str(row["id"]),
                isTrashed=row["trashed_at"] is not None))
    return dtos.AssetBulkUploadCheckResponseDto(results=results)


@get("/api/assets/statistics", action=access.READ)
async def asset_statistics(
    auth: ImmichAuth, isFavorite: bool | None = None, isTrashed: bool | None = None, visibility: str | None = None
) -> dtos.AssetStatsResponseDto:
    library = await access.preferred_library(auth.principal)
    row = await assets.statistics(auth.principal, library, favorite=isFavorite, trashed=isTrashed,
                                  visibility=visibility)
    return dtos.AssetStatsResponseDto(images=row["images"], videos=row["videos"], total=row["total"])




async def _render(principal, row) -> dtos.AssetResponseDto:
    from app.domain import faces, tags, users

    shown = (await faces.people_of_assets([row["id"]]))[row["id"]]
    dto = mapping.asset(await asset_views.view(row), await users.user_by_id(row["owner_id"]), shown)
    dto.tags = [mapping.tag(t) for t in (await tags.tags_of_assets([row["id"]])).get(row["id"], [])]
    if principal.shared_link is not None and not principal.shared_link.show_metadata:
        return mapping.strip_metadata(dto)
    return dto


@get("/api/assets/{asset_id:str}", action=access.READ, shared_link=True)
async def get_asset(auth: ImmichAuth, asset_id: str) -> dtos.AssetResponseDto:
    row = await access.load_asset(auth.principal, mapping.parse_uuid(asset_id), access.READ)
    return await _render(auth.principal, row)


@put("/api/assets/{asset_id:str}", action=access.WRITE)
async def update_asset(
    request: Request, auth: ImmichAuth, shared: Shared, asset_id: str, data: dtos.UpdateAssetDto
) -> dtos.AssetResponseDto:
    patch = mapping.asset_patch(data)  # the body is checked before the id is looked up
    row = await assets.update_asset(auth.principal, mapping.parse_uuid(asset_id), patch, shared.queue)
    return await _render(auth.principal, row)


@put("/api/assets", status_code=204, action=access.WRITE)
async def update_assets(request: Request, auth: ImmichAuth, shared: Shared, data: dtos.AssetBulkUpdateDto) -> None:
    patch = mapping.asset_patch(data)
    asset_ids = [mapping.parse_uuid(a) for a in data.ids]
    sets_group, duplicate_id = mapping.duplicate_id_update(data)
    await assets.bulk_update(auth.principal, [(a, patch) for a in asset_ids], shared.queue)
    if sets_group:
        await duplicates.set_duplicate_id(auth.principal, asset_ids, duplicate_id)


@delete("/api/assets", status_code=204, action=access.DELETE)
async def delete_assets(auth: ImmichAuth, shared: Shared, data: dtos.AssetBulkDeleteDto) -> None:
    library = await access.preferred_library(auth.principal)
    asset_ids = [mapping.parse_uuid(a) for a in data.ids]
    if data.force:
        await assets.delete_assets(auth.principal, shared.store, library, asset_ids)
    else:
        await assets.set_trashed(auth.principal, library, asset_ids, trashed=True)


@post("/api/trash/empty", status_code=200, action=access.DELETE_PERMANENTLY)
async def empty_trash(auth: ImmichAuth, shared: Shared) -> dtos.TrashResponseDto:
    library = await access.preferred_library(auth.principal)
    return dtos.TrashResponseDto(count=await assets.empty_trash(auth.principal, shared.store, library))


@post("/api/trash/restore", status_code=200, action=access.DELETE)
async def restore_trash(auth: ImmichAuth) -> dtos.TrashResponseDto:
    library = await access.preferred_library(auth.principal)
    return dtos.TrashResponseDto(count=await assets.restore_all(auth.principal, library))


@post("/api/trash/restore/assets", status_code=200, action=access.DELETE)
async def restore_assets(auth: ImmichAuth, data: dtos.BulkIdsDto) -> dtos.TrashResponseDto:
    library = await access.preferred_library(auth.principal)
    count = await assets.set_trashed(auth.principal, library, [mapping.parse_uuid(a) for a in data.ids],
                                     trashed=False)
    return dtos.TrashResponseDto(count=count)
