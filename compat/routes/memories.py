"""Immich's Memories tag: the caller's memories of its Immich library ("on this day"), their photos
and counts. The mobile app reads memories through the sync stream; the web client and the home
screen widgets (`GET /memories?for=<date>`) call these."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime

import msgspec
from litestar import Response, delete, get, post, put
from litestar.params import Parameter, QueryParameter

from app.domain import access, asset_views, memories
from app.domain.datetimes import as_utc_instant
from compat import dtos, mapping, validation
from compat.auth import ImmichAuth
from compat.errors import refused_as
from compat.mapping import _utc

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day(value: str | None) -> date | None:
    """`for`: a calendar date (the spec's format: date), as zod's iso.date() reads one."""
    if value is None:
        return None
    try:
        if _DATE.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise validation.failed(validation.invalid_date(value, ["for"]))


def _filter(on: str | None, isSaved: bool | None, isTrashed: bool | None, kind: str | None, order: str | None,
            size: int | None) -> memories.MemoryFilter:
    return memories.MemoryFilter(on=_day(on), is_saved=isSaved, is_trashed=isTrashed, type=kind, order=order,
                                 size=size)


def _set(value):
    return None if value is msgspec.UNSET else value


def _instant(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc_instant(value)


async def _render(views: list[memories.MemoryView]) -> list[dtos.MemoryResponseDto]:
    rows = [a for v in views for a in v.assets]
    shown = {v.row["id"]: v for v in await asset_views.views(rows)} if rows else {}
    out = []
    for view in views:
        row = view.row
        data = row["data"] if isinstance(row["data"], dict) else msgspec.json.decode(row["data"])
        dto = dtos.MemoryResponseDto(
            id=str(row["id"]), ownerId=str(row["owner_id"]), type=row["type"],
            data=dtos.OnThisDayDto(year=data["year"]), isSaved=row["is_saved"],
            memoryAt=_utc(row["memory_at"]), createdAt=_utc(row["created_at"]), updatedAt=_utc(row["updated_at"]),
            assets=[mapping.asset(shown[a["id"]]) for a in view.assets],
        )
        # Immich leaves out the dates a memory does not have.
        for field, column in (("deletedAt", "deleted_at"), ("seenAt", "seen_at"), ("showAt", "show_at"),
                              ("hideAt", "hide_at")):
            if row[column] is not None:
                setattr(dto, field, _utc(row[column]))
        out.append(dto)
    return out


async def _one(view: memories.MemoryView) -> dtos.MemoryResponseDto:
    [dto] = await _render([view])
    return dto


def _outcomes(results: list[memories.AssetOutcome]) -> list[dtos.BulkIdResponseDto]:
    return [dtos.BulkIdResponseDto(id=str(r.asset_id), success=True) if r.error is None
            else dtos.BulkIdResponseDto(id=str(r.asset_id), success=False, error=r.error) for r in results]


@get("/api/memories", action=access.READ)
async def search_memories(auth: ImmichAuth, on: str | None = QueryParameter(name="for", default=None),
                          isSaved: bool | None = None, isTrashed: bool | None = None,
                          kind: dtos.MemoryType | None = QueryParameter(name="type", default=None),
                          order: dtos.MemorySearchOrder | None = None,
                          size: int | None = Parameter(default=None, ge=1, le=9007199254740991),
                          ) -> list[dtos.MemoryResponseDto]:
    flt = _filter(on, isSaved, isTrashed, kind, order, size)
    library = await access.preferred_library(auth.principal)
    return await _render(await memories.search(auth.principal, library, flt))


@get("/api/memories/statistics", action=access.READ)
async def memories_statistics(auth: ImmichAuth, on: str | None = QueryParameter(name="for", default=None),
                              isSaved: bool | None = None, isTrashed: bool | None = None,
                              kind: dtos.MemoryType | None = QueryParameter(name="type", default=None),
                              order: dtos.MemorySearchOrder | None = None,
                              size: int | None = Parameter(default=None, ge=1, le=9007199254740991),
                              ) -> dtos.MemoryStatisticsResponseDto:
    flt = _filter(on, isSaved, isTrashed, kind, order, size)
    library = await access.preferred_library(auth.principal)
    return dtos.MemoryStatisticsResponseDto(total=await memories.statistics(auth.principal, library, flt))


@post("/api/memories", status_code=201, action=access.WRITE)
async def create_memory(auth: ImmichAuth, data: dtos.MemoryCreateDto) -> Response[dtos.MemoryResponseDto]:
    new = memories.NewMemory(
        type=data.type, data={"year": data.data.year}, memory_at=as_utc_instant(data.memoryAt),
        is_saved=bool(_set(data.isSaved)), seen_at=_instant(_set(data.seenAt)),
        show_at=_instant(_set(data.showAt)), hide_at=_instant(_set(data.hideAt)),
        asset_ids=tuple(mapping.parse_uuid(a, "assetIds") for a in _set(data.assetIds) or ()),
    )
    library = await access.preferred_library(auth.principal)
    return Response(await _one(await memories.create_memory(auth.principal, library, new)), status_code=201)


@get("/api/memories/{memory_id:str}", action=access.READ)
async def get_memory(auth: ImmichAuth, memory_id: str) -> dtos.MemoryResponseDto:
    return await _one(await memories.get_memory(auth.principal, mapping.parse_uuid(memory_id)))


@put("/api/memories/{memory_id:str}", action=access.WRITE)
async def update_memory(auth: ImmichAuth, memory_id: str, data: dtos.MemoryUpdateDto) -> dtos.MemoryResponseDto:
    patch = memories.MemoryPatch(is_saved=_set(data.isSaved), seen_at=_instant(_set(data.seenAt)),
                                 memory_at=_instant(_set(data.memoryAt)))
    return await _one(await memories.update_memory(auth.principal, mapping.parse_uuid(memory_id), patch))


@delete("/api/memories/{memory_id:str}", status_code=204, action=access.DELETE)
async def delete_memory(auth: ImmichAuth, memory_id: str) -> None:
    await memories.delete_memory(auth.principal, mapping.parse_uuid(memory_id))


def _ids(data: dtos.BulkIdsDto) -> list[uuid.UUID]:
    return [mapping.parse_uuid(i, "ids") for i in data.ids]


@put("/api/memories/{memory_id:str}/assets", action=access.WRITE)
async def add_memory_assets(auth: ImmichAuth, memory_id: str, data: dtos.BulkIdsDto) -> list[dtos.BulkIdResponseDto]:
    memory = mapping.parse_uuid(memory_id)
    with refused_as("memory.read"):  # Immich checks the memory for reading before adding to it
        return _outcomes(await memories.add_assets(auth.principal, memory, _ids(data)))


@delete("/api/memories/{memory_id:str}/assets", status_code=200, action=access.WRITE)
async def remove_memory_assets(auth: ImmichAuth, memory_id: str,
                               data: dtos.BulkIdsDto) -> list[dtos.BulkIdResponseDto]:
    return _outcomes(await memories.remove_assets(auth.principal, mapping.parse_uuid(memory_id), _ids(data)))


ROUTES = [search_memories, memories_statistics, create_memory, get_memory, update_memory, delete_memory,
          add_memory_assets, remove_memory_assets]
