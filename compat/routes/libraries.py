"""Immich's Libraries tag: an administrator's external libraries (folders indexed in place).

The rules live in app.domain.external_libraries; these routes translate Immich's bodies and errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from litestar import delete, get, post, put
from msgspec import UNSET

from app.api.state import Shared
from app.domain import access, external_libraries
from app.domain.errors import BadRequest, NotFound
from compat import dtos, mapping, validation
from compat.auth import ImmichAuth


@contextmanager
def unknown_library_is_bad_request() -> Iterator[None]:
    """Immich answers an unknown (or deleted) library id with 400 `Library not found`."""
    try:
        yield
    except NotFound as missing:
        if getattr(missing, "kind", None) != "external_library":
            raise
        raise BadRequest("Library not found") from None


def check_lists(data: dtos.CreateLibraryDto | dtos.UpdateLibraryDto | dtos.ValidateLibraryDto) -> None:
    """Immich 3.1's refinements of importPaths and exclusionPatterns, which its spec does not carry:
    no blank item, no item twice (both said when both fail)."""
    issues = []
    for field in ("importPaths", "exclusionPatterns"):
        values = getattr(data, field)
        if values is UNSET:
            continue
        if any(value.strip() == "" for value in values):
            issues.append({"code": "custom", "path": [field], "message": "Array items must not be empty"})
        if len(set(values)) != len(values):
            issues.append({"code": "custom", "path": [field], "message": "Array must have unique items"})
    if issues:
        raise validation.failed(*issues)


def library(row: asyncpg.Record) -> dtos.LibraryResponseDto:
    return dtos.LibraryResponseDto(
        id=str(row["id"]), ownerId=str(row["owner_id"]), name=row["name"],
        importPaths=list(row["import_paths"]), exclusionPatterns=list(row["exclusion_patterns"]),
        createdAt=row["created_at"], updatedAt=row["updated_at"], refreshedAt=row["refreshed_at"],
        assetCount=row["asset_count"],
    )


def _given(value):
    return None if value is UNSET else value


@get("/api/libraries", action=access.READ, admin=True)
async def get_all_libraries(auth: ImmichAuth) -> list[dtos.LibraryResponseDto]:
    return [library(r) for r in await external_libraries.list_libraries(auth.principal)]


@post("/api/libraries", status_code=201, action=access.WRITE, admin=True)
async def create_library(auth: ImmichAuth, data: dtos.CreateLibraryDto) -> dtos.LibraryResponseDto:
    check_lists(data)
    row = await external_libraries.create(
        auth.principal, mapping.parse_uuid(data.ownerId, "ownerId"), name=_given(data.name),
        import_paths=_given(data.importPaths), exclusion_patterns=_given(data.exclusionPatterns),
    )
    return library(row)


@get("/api/libraries/{library_id:str}", action=access.READ, admin=True)
async def get_library(auth: ImmichAuth, library_id: str) -> dtos.LibraryResponseDto:
    with unknown_library_is_bad_request():
        return library(await external_libraries.get(auth.principal, mapping.parse_uuid(library_id)))


@put("/api/libraries/{library_id:str}", action=access.WRITE, admin=True)
async def update_library(auth: ImmichAuth, shared: Shared, library_id: str,
                         data: dtos.UpdateLibraryDto) -> dtos.LibraryResponseDto:
    target = mapping.parse_uuid(library_id)
    check_lists(data)
    change = external_libraries.LibraryChange(name=data.name, import_paths=data.importPaths,
                                              exclusion_patterns=data.exclusionPatterns)
    with unknown_library_is_bad_request():
        return library(await external_libraries.update(auth.principal, target, change, shared.settings.data_dir))


@delete("/api/libraries/{library_id:str}", status_code=204, action=access.DELETE, admin=True)
async def delete_library(auth: ImmichAuth, shared: Shared, library_id: str) -> None:
    target = mapping.parse_uuid(library_id)
    with unknown_library_is_bad_request():
        await external_libraries.delete(auth.principal, shared.queue, target)


@post("/api/libraries/{library_id:str}/scan", status_code=204, action=access.WRITE, admin=True)
async def scan_library(auth: ImmichAuth, shared: Shared, library_id: str) -> None:
    target = mapping.parse_uuid(library_id)
    with unknown_library_is_bad_request():
        await external_libraries.queue_scan(auth.principal, shared.queue, target)


@get("/api/libraries/{library_id:str}/statistics", action=access.READ, admin=True)
async def get_library_statistics(auth: ImmichAuth, library_id: str) -> dtos.LibraryStatsResponseDto:
    target = mapping.parse_uuid(library_id)
    with unknown_library_is_bad_request():
        row = await external_libraries.statistics(auth.principal, target)
    return dtos.LibraryStatsResponseDto(photos=row["photos"], videos=row["videos"], total=row["total"], usage=row["usage"])


@post("/api/libraries/{library_id:str}/validate", status_code=200, action=access.READ, admin=True)
async def validate_library(auth: ImmichAuth, shared: Shared, library_id: str,
                           data: dtos.ValidateLibraryDto) -> dtos.ValidateLibraryResponseDto:
    mapping.parse_uuid(library_id)  # any well-formed id: Immich does not look the library up
    check_lists(data)
    results = external_libraries.validate(auth.principal, _given(data.importPaths) or [], shared.settings.data_dir)
    return dtos.ValidateLibraryResponseDto(importPaths=[
        dtos.ValidateLibraryImportPathResponseDto(importPath=path, isValid=problem is None,
                                                  message=UNSET if problem is None else problem)
        for path, problem in results
    ])


ROUTES = [
    get_all_libraries,
    create_library,
    get_library,
    update_library,
    delete_library,
    scan_library,
    get_library_statistics,
    validate_library,
]
