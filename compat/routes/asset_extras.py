"""Immich's asset extras: copy, per-asset jobs, key/value metadata, OCR; and the stack search and
member removal of the Stacks tag."""

from __future__ import annotations

import msgspec
from litestar import delete, get, post, put

from app.api.state import Shared
from app.domain import access, asset_copy, asset_metadata, job_queues, stacks
from app.domain.errors import BadRequest, NotFound
from compat import dtos, mapping
from compat.auth import ImmichAuth
from compat.errors import refused_as
from compat.routes.stacks_keys import _stack_dto


def _flag(value) -> bool:
    return True if value is msgspec.UNSET else value  # every part is copied unless turned off


@put("/api/assets/copy", status_code=204, action=access.WRITE)
async def copy_asset(auth: ImmichAuth, shared: Shared, data: dtos.AssetCopyDto) -> None:
    parts = asset_copy.CopyParts(albums=_flag(data.albums), shared_links=_flag(data.sharedLinks),
                                 stack=_flag(data.stack), favorite=_flag(data.favorite), sidecar=_flag(data.sidecar))
    source, target = mapping.parse_uuid(data.sourceId), mapping.parse_uuid(data.targetId)
    with refused_as("asset.copy"):  # Immich's permission for both ids
        await asset_copy.check_access(auth.principal, source, target)
    await asset_copy.copy(auth.principal, shared.store, shared.queue, source, target, parts)


# Immich's asset job -> the step it runs here. Videos are played from their originals: there is no
# transcoding step, so that job is refused rather than answered as done.
_JOB_STEPS = {"refresh-metadata": "metadata", "regenerate-thumbnail": "thumbnails", "refresh-faces": "faces"}


@post("/api/assets/jobs", status_code=204, action=access.WRITE)
async def run_asset_jobs(auth: ImmichAuth, shared: Shared, data: dtos.AssetJobsDto) -> None:
    step = _JOB_STEPS.get(data.name)
    if step is None:
        raise BadRequest("This server does not transcode videos: it streams the originals")
    await job_queues.run_asset_step(auth.principal, shared.queue, step,
                                    [mapping.parse_uuid(a) for a in data.assetIds])


def _metadata(entry: asset_metadata.Entry) -> dtos.AssetMetadataResponseDto:
    return dtos.AssetMetadataResponseDto(key=entry.key, value=entry.value, updatedAt=entry.updated_at)


@get("/api/assets/{asset_id:str}/metadata", action=access.READ)
async def get_metadata(auth: ImmichAuth, asset_id: str) -> list[dtos.AssetMetadataResponseDto]:
    return [_metadata(e) for e in await asset_metadata.list_entries(auth.principal, mapping.parse_uuid(asset_id))]


@put("/api/assets/{asset_id:str}/metadata", status_code=200, action=access.WRITE)
async def update_metadata(auth: ImmichAuth, asset_id: str,
                          data: dtos.AssetMetadataUpsertDto) -> list[dtos.AssetMetadataResponseDto]:
    entries = await asset_metadata.set_entries(auth.principal, mapping.parse_uuid(asset_id),
                                               [(i.key, i.value) for i in data.items])
    return [_metadata(e) for e in entries]


@get("/api/assets/{asset_id:str}/metadata/{key:str}", action=access.READ)
async def get_metadata_key(auth: ImmichAuth, asset_id: str, key: str) -> dtos.AssetMetadataResponseDto:
    asset = mapping.parse_uuid(asset_id)
    try:
        return _metadata(await asset_metadata.get_entry(auth.principal, asset, key))
    except NotFound as exc:
        if exc.kind is not None:
            raise  # the asset itself: Immich's access answer
        raise BadRequest(exc.detail) from None  # Immich answers a missing key with 400


@delete("/api/assets/{asset_id:str}/metadata/{key:str}", status_code=204, action=access.WRITE)
async def delete_metadata_key(auth: ImmichAuth, asset_id: str, key: str) -> None:
    await asset_metadata.delete_entry(auth.principal, mapping.parse_uuid(asset_id), key)


@put("/api/assets/metadata", status_code=200, action=access.WRITE)
async def update_bulk_metadata(auth: ImmichAuth,
                               data: dtos.AssetMetadataBulkUpsertDto) -> list[dtos.AssetMetadataBulkResponseDto]:
    entries = await asset_metadata.set_many(
        auth.principal, [(mapping.parse_uuid(i.assetId), i.key, i.value) for i in data.items])
    return [dtos.AssetMetadataBulkResponseDto(assetId=str(e.asset_id), key=e.key, value=e.value,
                                              updatedAt=e.updated_at) for e in entries]


@delete("/api/assets/metadata", status_code=204, action=access.WRITE)
async def delete_bulk_metadata(auth: ImmichAuth, data: dtos.AssetMetadataBulkDeleteDto) -> None:
    await asset_metadata.delete_many(auth.principal, [(mapping.parse_uuid(i.assetId), i.key) for i in data.items])


@get("/api/assets/{asset_id:str}/ocr", action=access.READ)
async def get_ocr(auth: ImmichAuth, asset_id: str) -> list[dtos.AssetOcrResponseDto]:
    # The server has no OCR model (/api/server/features says ocr: false): no asset has text boxes.
    await access.load_asset(auth.principal, mapping.parse_uuid(asset_id), access.READ)
    return []


@get("/api/stacks", action=access.READ)
async def search_stacks(auth: ImmichAuth, primaryAssetId: str | None = None) -> list[dtos.StackResponseDto]:
    cover = None if primaryAssetId is None else mapping.parse_uuid(primaryAssetId, "primaryAssetId")
    library = await access.preferred_library(auth.principal)
    return [await _stack_dto(s) for s in await stacks.all_stacks(auth.principal, library, cover_id=cover)]


@delete("/api/stacks/{stack_id:str}/assets/{asset_id:str}", status_code=204, action=access.WRITE)
async def remove_stack_asset(auth: ImmichAuth, stack_id: str, asset_id: str) -> None:
    await stacks.remove_member(auth.principal, mapping.parse_uuid(stack_id), mapping.parse_uuid(asset_id, "assetId"))


ROUTES = [copy_asset, run_asset_jobs, get_metadata, update_metadata, get_metadata_key, delete_metadata_key,
          update_bulk_metadata, delete_bulk_metadata, get_ocr, search_stacks, remove_stack_asset]
