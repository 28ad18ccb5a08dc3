"""Native faces and people routes: thin wrappers over app.domain.faces / people.

Native ids are decoded here, at the edge: a malformed id naming one object is simply not
found; a malformed id used as a list filter is a validation error of that query parameter.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.response import Response
from msgspec import UNSET, UnsetType

from app.api.params import base_url, check_includes, library_uuid, list_param, listed
from app.api.schemas import FacePage, FaceResponse, PersonPage, PersonResponse, face_response, person_response
from app.api.state import Shared
from app.api import ids
from app.domain import access, faces, people, recognition
from app.domain.access import Principal

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


def _filter(prefix: str, value: str | None, name: str) -> uuid.UUID | None:
    return ids.decode_filter(prefix, value, name) if value else None


def _filters(prefix: str, values: list[str] | None, name: str) -> list[uuid.UUID] | None:
    return None if values is None else [ids.decode_filter(prefix, v, name) for v in values]


class BoundingBox(msgspec.Struct, forbid_unknown_fields=True):
    """A face box in display-space pixels: left, top, width and height."""

    x: int
    y: int
    w: int
    h: int


class FaceCreate(msgspec.Struct, kw_only=True):
    asset_id: str
    bounding_box: BoundingBox
    person_id: str | None = None
    library_id: Any = None


class FaceUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    person_id: str | None | UnsetType = UNSET


def _face_patch(data: FaceUpdate) -> faces.FacePatch:
    person = data.person_id
    return faces.FacePatch(person_id=ids.decode(ids.PERSON, person) if isinstance(person, str) else person)


class FaceController(Controller):
    path = "/api/faces"

    @get("/", action=access.READ)
    async def list_faces(
        self, request: Request, principal: Principal, shared: Shared, library_id: str | None = None,
        asset_id: str | None = None, person_id: str | None = None,
        limit: int = Parameter(default=20, ge=1, le=200), starting_after_id: str | None = None,
        listed_ids: list[str] | None = listed("ids", "Only these faces, by id."),
        listed_include: list[str] | None = listed("include", "Extra fields: cluster_assignment."),
    ) -> FacePage:
        check_includes(list_param(request, "include"), FACE_INCLUDES)
        rows, has_more = await faces.list_faces(
            principal, library_uuid(library_id), asset_id=_filter(ids.ASSET, asset_id, "asset_id"),
            face_ids=_filters(ids.FACE, list_param(request, "ids"), "ids"),
            person_id=_filter(ids.PERSON, person_id, "person_id"), limit=limit,
            starting_after=_filter(ids.FACE, starting_after_id, "starting_after_id"),
        )
        return FacePage(data=await _faces(request, shared, rows), has_more=has_more)

    @post("/", action=access.WRITE)
    async def create_face(self, request: Request, principal: Principal, shared: Shared,
                          data: FaceCreate) -> Response[FaceResponse]:
        box = data.bounding_box
        face = faces.NewFace(
            asset_id=ids.decode(ids.ASSET, data.asset_id), box=faces.Box(box.x, box.y, box.w, box.h),
            person_id=None if data.person_id is None else ids.decode(ids.PERSON, data.person_id),
        )
        row = await faces.create_face(principal, library_uuid(data.library_id), face)
        return Response((await _faces(request, shared, [row]))[0], status_code=201)

    @get("/{face_id:str}", action=access.READ)
    async def retrieve(self, request: Request, principal: Principal, shared: Shared, face_id: str,
                       library_id: str | None = None,
                       listed_include: list[str] | None = listed("include", "Extra fields: cluster_assignment."),) -> FaceResponse:
        check_includes(list_param(request, "include"), FACE_INCLUDES)
        row = await faces.get_face(principal, ids.decode(ids.FACE, face_id), library_uuid(library_id))
        return (await _faces(request, shared, [row]))[0]

    @patch("/{face_id:str}", action=access.WRITE)
    async def update(self, request: Request, principal: Principal, shared: Shared, face_id: str,
                     data: FaceUpdate, library_id: str | None = None) -> FaceResponse:
        face = ids.decode(ids.FACE, face_id)
        row, recluster = await faces.update_face(principal, face, _face_patch(data), library_uuid(library_id))
        if recluster:
            await recognition.enqueue_clustering(shared.queue, row["library_id"])
        return (await _faces(request, shared, [row]))[0]

    @delete("/{face_id:str}", status_code=200, action=access.DELETE)
    async def delete_face(self, principal: Principal, face_id: str, library_id: str | None = None) -> dict:
        await faces.delete_face(principal, ids.decode(ids.FACE, face_id), library_uuid(library_id))
        return EMPTY


class PersonChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The fields of a person the native API changes; an omitted one stays as it is."""

    name: str | None | UnsetType = UNSET
    birth_date: dt.date | None | UnsetType = UNSET
    # The SDK types these flags Optional: null leaves the flag as it is (false for a new person).
    is_favorite: bool | None | UnsetType = UNSET
    is_hidden: bool | None | UnsetType = UNSET
    thumbnail_face_id: str | None | UnsetType = UNSET


class PersonCreate(PersonChange, forbid_unknown_fields=True, kw_only=True):
    """A new person, in the library named (or the caller's only one)."""

    library_id: Any = None


def _person_patch(data: PersonChange) -> people.PersonPatch:
    thumbnail = data.thumbnail_face_id
    return people.PersonPatch(
        name=data.name, birth_date=data.birth_date,
        is_favorite=UNSET if data.is_favorite is None else data.is_favorite,
        is_hidden=UNSET if data.is_hidden is None else data.is_hidden,
        thumbnail_face_id=ids.decode(ids.FACE, thumbnail) if isinstance(thumbnail, str) else thumbnail,
    )


class PersonUpdate(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    change: PersonChange


class PeopleBulkUpdate(msgspec.Struct, forbid_unknown_fields=True):
    updates: list[PersonUpdate]


class MergeBody(msgspec.Struct, forbid_unknown_fields=True):
    source_person_ids: list[str]


class PersonController(Controller):
    path = "/api/people"

    @get("/", action=access.READ)
    async def list_people(
        self, request: Request, principal: Principal, shared: Shared, library_id: str | None = None,
        album_id: str | None = None, asset_id: str | None = None, include_hidden: bool | None = None,
        name: str | None = None, name_filter: str | None = None, sort: str | None = None,
        limit: int = Parameter(default=20, ge=1, le=200), starting_after_id: str | None = None,
        listed_ids: list[str] | None = listed("ids", "Only these people, by id (hidden ones too, unless"
                                                     " include_hidden=false)."),
        listed_include: list[str] | None = listed("include", "Extra fields: cluster_metrics."),
    ) -> PersonPage:
        check_includes(list_param(request, "include"), PERSON_INCLUDES)
        rows, has_more = await people.list_people(
            principal, library_uuid(library_id), album_id=_filter(ids.ALBUM, album_id, "album_id"),
            asset_id=_filter(ids.ASSET, asset_id, "asset_id"),
            person_ids=_filters(ids.PERSON, list_param(request, "ids"), "ids"),
            include_hidden=include_hidden, name=name, name_filter=name_filter,
            sort=sort, limit=limit, starting_after=_filter(ids.PERSON, starting_after_id, "starting_after_id"),
        )
        return PersonPage(data=[_person(request, shared, r) for r in rows], has_more=has_more)

    @post("/", action=access.WRITE)
    async def create_person(self, request: Request, principal: Principal, shared: Shared,
                            data: PersonCreate) -> Response[PersonResponse]:
        row, created = await people.create_person(principal, library_uuid(data.library_id), _person_patch(data))
        return Response(_person(request, shared, row), status_code=201 if created else 200)

    @post("/bulk-update", status_code=200, action=access.WRITE)
    async def bulk_update(self, principal: Principal, data: PeopleBulkUpdate) -> dict:
        updates = [(ids.decode(ids.PERSON, u.id), _person_patch(u.change)) for u in data.updates]
        await people.bulk_update(principal, updates)
        return EMPTY

    @get("/{person_id:str}", action=access.READ)
    async def retrieve(self, request: Request, principal: Principal, shared: Shared, person_id: str,
                       listed_include: list[str] | None = listed("include", "Extra fields: cluster_metrics."),) -> PersonResponse:
        check_includes(list_param(request, "include"), PERSON_INCLUDES)
        return _person(request, shared, await people.get_person(principal, ids.decode(ids.PERSON, person_id)))

    @patch("/{person_id:str}", action=access.WRITE)
    async def update(self, request: Request, principal: Principal, shared: Shared, person_id: str,
                     data: PersonChange) -> PersonResponse:
        row = await people.update_person(principal, ids.decode(ids.PERSON, person_id), _person_patch(data))
        return _person(request, shared, row)

    @delete("/{person_id:str}", status_code=200, action=access.DELETE)
    async def delete_person(self, principal: Principal, shared: Shared, person_id: str) -> dict:
        library = await people.delete_person(principal, ids.decode(ids.PERSON, person_id))
        await recognition.enqueue_clustering(shared.queue, library)
        return EMPTY

    @post("/{person_id:str}/merge", status_code=200, action=access.WRITE, responses={
        204: ResponseSpec(None, description="The primary and every source were unnamed and faceless: the primary "
                                            "was deleted too, and there is no person to return."),
    })
    async def merge(self, request: Request, principal: Principal, shared: Shared, person_id: str,
                    data: MergeBody) -> Response[PersonResponse]:
        sources = [ids.decode(ids.PERSON, s) for s in data.source_person_ids]
        row = await people.merge(principal, ids.decode(ids.PERSON, person_id), sources)
        if row is None:
            return Response(None, status_code=204)
        return Response(_person(request, shared, row), status_code=200)
