"""Immich duplicate groups: list, dissolve, resolve (app/domain/duplicates.py, duplicate_resolve.py)."""

from __future__ import annotations

import msgspec
from litestar import delete, get, post

from app.api.state import Shared
from app.domain import access, asset_views, duplicate_resolve, duplicates, tags
from compat import dtos, mapping
from compat.auth import ImmichAuth


def _exif_count(dto: dtos.AssetResponseDto) -> int:
    exif = dto.exifInfo
    return 0 if exif is msgspec.UNSET or exif is None else sum(1 for v in msgspec.to_builtins(exif).values() if v)


def suggested_keep(assets: list[dtos.AssetResponseDto]) -> list[str]:
    """Immich's suggestion: the largest file, then the one with the most EXIF fields set (the last
    of equals in the group's order, as Immich's sort leaves them)."""
    if not assets:
        return []

    def size(a: dtos.AssetResponseDto) -> int:
        exif = a.exifInfo
        return 0 if exif is msgspec.UNSET or exif is None else (exif.fileSizeInByte or 0)

    largest = max(size(a) for a in assets)
    biggest = [a for a in assets if size(a) == largest]
    most = max(_exif_count(a) for a in biggest)
    return [[a for a in biggest if _exif_count(a) == most][-1].id]


@get("/api/duplicates", action=access.READ)
async def get_duplicates(auth: ImmichAuth) -> list[dtos.DuplicateResponseDto]:
    out = []
    for duplicate_id, rows in await duplicates.list_groups(auth.principal):
        members = [mapping.asset(v) for v in await asset_views.views(rows)]
        out.append(dtos.DuplicateResponseDto(duplicateId=str(duplicate_id), assets=members,
                                             suggestedKeepAssetIds=suggested_keep(members)))
    return out


@delete("/api/duplicates", status_code=204, action=access.DELETE)
async def delete_duplicates(auth: ImmichAuth, data: dtos.BulkIdsDto) -> None:
    ids = [mapping.parse_uuid(d, "ids", i) for i, d in enumerate(data.ids)]
    await duplicates.dissolve(auth.principal, ids)


@delete("/api/duplicates/{duplicate_id:str}", status_code=204, action=access.DELETE)
async def delete_duplicate(auth: ImmichAuth, duplicate_id: str) -> None:
    await duplicates.dissolve(auth.principal, [mapping.parse_uuid(duplicate_id)])


@post("/api/duplicates/resolve", status_code=200, action=access.DELETE)
async def resolve_duplicates(auth: ImmichAuth, shared: Shared,
                             data: dtos.DuplicateResolveDto) -> list[dtos.BulkIdResponseDto]:
    groups = [(mapping.parse_uuid(g.duplicateId),
               [mapping.parse_uuid(a, "keepAssetIds", i) for i, a in enumerate(g.keepAssetIds)],
               [mapping.parse_uuid(a, "trashAssetIds", i) for i, a in enumerate(g.trashAssetIds)])
              for g in data.groups]
    results, retagged = await duplicate_resolve.resolve(auth.principal, groups)
    if retagged:
        await tags.write_sidecars(shared.store, retagged)
    out = []
    for r in results:
        dto = dtos.BulkIdResponseDto(id=str(r.duplicate_id), success=r.error is None)
        if r.error is not None:
            dto.error = r.error
        if r.message is not None:
            dto.errorMessage = r.message
        out.append(dto)
    return out


ROUTES = [get_duplicates, delete_duplicates, delete_duplicate, resolve_duplicates]
