"""Native faces and people routes: thin wrappers over app.domain.faces / people."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter
from litestar.response import Response

from app.api.params import base_url, check_includes, list_param
from app.api.schemas import FacePage, FaceResponse, PersonPage, PersonResponse, face_response, person_response
from app.api.state import Shared
from app.domain import faces, ids, people, recognition
from app.domain.access import Principal
from app.domain.errors import Invalid
from app.domain import access

EMPTY: dict = {}
FACE_INCLUDES = frozenset({"cluster_assignment"})
PERSON_INCLUDES = frozenset({"cluster_metrics"})


async def _faces(request: Request, shared: Shared, rows) -> list[FaceResponse]:
    include = list_param(request, "include")
    check_includes(include, FACE_INCLUDES)
    assignments = await faces.cluster_assignments(rows) if include and "cluster_assignment" in include else {}
    base = base_url(request, shared.settings.public_url)
    return [face_response(r, shared.signer, base, assignments.get(r["id"])) for r in rows]


def _person(request: Request, shared: Shared, row) -> PersonResponse:
    include = list_param(request, "include")
    return person_response(row, shared.signer, base_url(request, shared.settings.public_url),
                           with_metrics=bool(include and "cluster_metrics" in include))


def _bool(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise Invalid(f"{name} must be true or false", loc=("query", name))


class FaceController(Controller):
    path = "/api/faces"

    @get("/", action=access.READ)
    async def list_faces(
        self, request: Request, principal: Principal, shared: Shared, library_id: str | None = None,
        asset_id: str | None = None, person_id: str | None = None,
        limit: int = Parameter(default=20, ge=1, le=200), starting_after_id: str | None = None,
    ) -> FacePage:
        check_includes(list_param(request, "include"), FACE_INCLUDES)
        rows, has_more = await faces.list_faces(
            principal, library_id, asset_id=asset_id, face_ids=list_param(request, "ids"), person_id=person_id,
            limit=limit, starting_after=starting_after_id,
        )
        return FacePage(data=await _faces(request, shared, rows), has_more=has_more)

    @post("/", action=access.WRITE)
    async def create_face(self, request: Request, principal: Principal, shared: Shared,
                          data: dict[str, Any]) -> Response[FaceResponse]:
        row = await faces.create_face(principal, data)
        return Response((await _faces(request, shared, [row]))[0], status_code=201)

    @get("/{face_id:str}", action=access.READ)
    async def retrieve(self, request: Request, principal: Principal, shared: Shared, face_id: str,
                       library_id: str | None = None) -> FaceResponse:
        check_includes(list_param(request, "include"), FACE_INCLUDES)
        row = await faces.get_face(principal, ids.decode(ids.FACE, face_id), library_id)
        return (await _faces(request, shared, [row]))[0]

    @patch("/{face_id:str}", action=access.WRITE)
    async def update(self, request: Request, principal: Principal, shared: Shared, face_id: str,
                     data: dict[str, Any], library_id: str | None = None) -> FaceResponse:
        row, recluster = await faces.update_face(principal, ids.decode(ids.FACE, face_id), data, library_id)
        if recluster:
            await recognition.enqueue_clustering(shared.queue, row["library_id"])
        return (await _faces(request, shared, [row]))[0]

    @delete("/{face_id:str}", status_code=200, action=access.DELETE)
    async def delete_face(self, principal: Principal, face_id: str, library_id: str | None = None) -> dict:
        await faces.delete_face(principal, ids.decode(ids.FACE, face_id), library_id)
        return EMPTY


class PersonUpdate(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    change: dict[str, Any]


class PeopleBulkUpdate(msgspec.Struct, forbid_unknown_fields=True):
    updates: list[PersonUpdate]


class MergeBody(msgspec.Struct, forbid_unknown_fields=True):
    source_person_ids: list[str]


class PersonController(Controller):
    path = "/api/people"

    @get("/", action=access.READ)
    async def list_people(
        self, request: Request, principal: Principal, shared: Shared, library_id: str | None = None,
        album_id: str | None = None, asset_id: str | None = None, include_hidden: str | None = None,
        name: str | None = None, name_filter: str | None = None, sort: str | None = None,
        limit: int = Parameter(default=20, ge=1, le=200), starting_after_id: str | None = None,
    ) -> PersonPage:
        check_includes(list_param(request, "include"), PERSON_INCLUDES)
        rows, has_more = await people.list_people(
            principal, library_id, album_id=album_id, asset_id=asset_id, person_ids=list_param(request, "ids"),
            include_hidden=_bool(include_hidden, "include_hidden"), name=name, name_filter=name_filter,
            sort=sort, limit=limit, starting_after=starting_after_id,
        )
        return PersonPage(data=[_person(request, shared, r) for r in rows], has_more=has_more)

    @post("/", action=access.WRITE)
    async def create_person(self, request: Request, principal: Principal, shared: Shared,
                            data: dict[str, Any]) -> Response[PersonResponse]:
        row, created = await people.create_person(principal, data)
        return Response(_person(request, shared, row), status_code=201 if created else 200)

    @post("/bulk-update", status_code=200, action=access.WRITE)
    async def bulk_update(self, principal: Principal, data: PeopleBulkUpdate) -> dict:
        await people.bulk_update(principal, [{"id": u.id, "change": u.change} for u in data.updates])
        return EMPTY

    @get("/{person_id:str}", action=access.READ)
    async def retrieve(self, request: Request, principal: Principal, shared: Shared, person_id: str) -> PersonResponse:
        check_includes(list_param(request, "include"), PERSON_INCLUDES)
        return _person(request, shared, await people.get_person(principal, ids.decode(ids.PERSON, person_id)))

    @patch("/{person_id:str}", action=access.WRITE)
    async def update(self, request: Request, principal: Principal, shared: Shared, person_id: str,
                     data: dict[str, Any]) -> PersonResponse:
        row = await people.update_person(principal, ids.decode(ids.PERSON, person_id), data)
        return _person(request, shared, row)

    @delete("/{person_id:str}", status_code=200, action=access.DELETE)
    async def delete_person(self, principal: Principal, shared: Shared, person_id: str) -> dict:
        library = await people.delete_person(principal, ids.decode(ids.PERSON, person_id))
        await recognition.enqueue_clustering(shared.queue, library)
        return EMPTY

    @post("/{person_id:str}/merge", status_code=200, action=access.WRITE)
    async def merge(self, request: Request, principal: Principal, shared: Shared, person_id: str,
                    data: MergeBody) -> Response:
        row = await people.merge(principal, ids.decode(ids.PERSON, person_id), data.source_person_ids)
        if row is None:
            return Response(None, status_code=204)
        return Response(_person(request, shared, row), status_code=200)
