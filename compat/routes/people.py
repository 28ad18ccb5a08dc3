"""Immich people and faces, mapped onto the domain's people and faces.

Immich ids are bare UUIDs; face boxes are corners in an image of imageWidth x
imageHeight (here the asset's display size, where the domain keeps them).
"""

from __future__ import annotations

import uuid

import msgspec
from litestar import Request, delete, get, post, put
from litestar.params import Parameter
from litestar.response import Response

from app.api.file_serving import send_file
from app.api.state import Shared
from app.domain import access, faces, people, recognition
from app.domain.errors import BadRequest, DomainError, NotFound
from compat import dtos, mapping
from compat.auth import ImmichAuth

# Immich's caching for person thumbnails: always revalidate.
THUMBNAIL_CACHE = "private, no-cache, no-transform"


async def _library(auth: ImmichAuth) -> uuid.UUID:
    return await access.preferred_library(auth.principal)


async def _feature_face(auth: ImmichAuth, person_id: uuid.UUID, asset_id: str) -> uuid.UUID:
    """Immich names a thumbnail by asset: the person's face on that asset."""
    rows, _ = await faces.list_faces(auth.principal, await _library(auth), asset_id=mapping.parse_uuid(asset_id),
                                     person_id=person_id, limit=1)
    if not rows:
        raise BadRequest("The person has no face on that asset")
    return rows[0]["id"]


async def _update(auth: ImmichAuth, person_id: uuid.UUID, data: dtos.PersonUpdateDto | dtos.PeopleUpdateItem):
    patch = mapping.person_patch(data)
    if data.featureFaceAssetId:
        face = await _feature_face(auth, person_id, data.featureFaceAssetId)
        patch = msgspec.structs.replace(patch, thumbnail_face_id=face)
    return await people.update_person(auth.principal, person_id, patch)


@get("/api/people", action=access.READ)
async def list_people(auth: ImmichAuth, withHidden: bool = False, page: int = Parameter(default=1, ge=1),
                      size: int = Parameter(default=500, ge=1, le=1000),
                      closestPersonId: str | None = None, closestAssetId: str | None = None) -> dtos.PeopleResponseDto:
    for name, value in (("closestPersonId", closestPersonId), ("closestAssetId", closestAssetId)):
        if value is not None:
            mapping.parse_uuid(value, name)
    if closestPersonId or closestAssetId:
        raise BadRequest("Ordering people by similarity is not supported by this server")
    library = await _library(auth)
    rows, has_more = await people.list_people(
        auth.principal, library, include_hidden=withHidden, name_filter="all", sort="asset_count_desc",
        limit=size, offset=(page - 1) * size,
    )
    total, hidden = await people.count_people(auth.principal, library)
    return dtos.PeopleResponseDto(total=total, hidden=hidden, people=[mapping.person(r) for r in rows],
                                  hasNextPage=has_more)


@post("/api/people", status_code=201, action=access.WRITE)
async def create_person(auth: ImmichAuth, data: dtos.PersonCreateDto) -> dtos.PersonResponseDto:
    row, _ = await people.create_person(auth.principal, await _library(auth), mapping.person_patch(data))
    return mapping.person(row)


async def _bulk(ids_and_calls) -> list[dtos.BulkIdResponseDto]:
    out = []
    for item_id, call in ids_and_calls:
        try:
            await call()
            out.append(dtos.BulkIdResponseDto(id=item_id, success=True))
        except NotFound:
            out.append(dtos.BulkIdResponseDto(id=item_id, success=False, error="not_found"))
        except DomainError as exc:
            out.append(dtos.BulkIdResponseDto(id=item_id, success=False, error="unknown", errorMessage=exc.detail))
    return out


@put("/api/people", action=access.WRITE)
async def update_people(auth: ImmichAuth, data: dtos.PeopleUpdateDto) -> list[dtos.BulkIdResponseDto]:
    def call(item: dtos.PeopleUpdateItem):
        return lambda: _update(auth, mapping.parse_uuid(item.id), item)

    return await _bulk([(item.id, call(item)) for item in data.people])


@delete("/api/people", status_code=204, action=access.DELETE)
async def delete_people(auth: ImmichAuth, shared: Shared, data: dtos.BulkIdsDto) -> None:
    libraries = {await people.delete_person(auth.principal, mapping.parse_uuid(i)) for i in data.ids}
    for library in libraries:
        await recognition.enqueue_clustering(shared.queue, library)


@get("/api/people/{person_id:str}", action=access.READ)
async def get_person(auth: ImmichAuth, person_id: str) -> dtos.PersonResponseDto:
    return mapping.person(await people.get_person(auth.principal, mapping.parse_uuid(person_id)))


@put("/api/people/{person_id:str}", action=access.WRITE)
async def update_person(auth: ImmichAuth, person_id: str, data: dtos.PersonUpdateDto) -> dtos.PersonResponseDto:
    return mapping.person(await _update(auth, mapping.parse_uuid(person_id), data))


@delete("/api/people/{person_id:str}", status_code=204, action=access.DELETE)
async def delete_person(auth: ImmichAuth, shared: Shared, person_id: str) -> None:
    library = await people.delete_person(auth.principal, mapping.parse_uuid(person_id))
    await recognition.enqueue_clustering(shared.queue, library)


@post("/api/people/{person_id:str}/merge", status_code=200, action=access.WRITE)
async def merge_person(auth: ImmichAuth, person_id: str, data: dtos.MergePersonDto) -> list[dtos.BulkIdResponseDto]:
    primary = mapping.parse_uuid(person_id)
    await people.get_person(auth.principal, primary, access.WRITE)
    return await _bulk([(source, lambda s=source: people.merge(auth.principal, primary, [mapping.parse_uuid(s)]))
                        for source in data.ids])


@put("/api/people/{person_id:str}/reassign", action=access.WRITE)
async def reassign_faces(auth: ImmichAuth, shared: Shared, person_id: str,
                         data: dtos.AssetFaceUpdateDto) -> list[dtos.PersonResponseDto]:
    """Move the faces of each (asset, person) pair to this person."""
    target = mapping.parse_uuid(person_id)
    await people.get_person(auth.principal, target, access.WRITE)
    library = await _library(auth)
    changed = []
    for item in data.data:
        source = mapping.parse_uuid(item.personId)
        rows, _ = await faces.list_faces(auth.principal, library, asset_id=mapping.parse_uuid(item.assetId),
                                         person_id=source, limit=200)
        for row in rows:
            await faces.update_face(auth.principal, row["id"], faces.FacePatch(person_id=target))
        if rows:
            changed.append(source)
    result = [mapping.person(await people.get_person(auth.principal, target))]
    for source in dict.fromkeys(changed):
        try:
            result.append(mapping.person(await people.get_person(auth.principal, source)))
        except NotFound:
            pass
    return result


@get("/api/people/{person_id:str}/statistics", action=access.READ)
async def person_statistics(auth: ImmichAuth, person_id: str) -> dtos.PersonStatisticsResponseDto:
    row = await people.get_person(auth.principal, mapping.parse_uuid(person_id))
    return dtos.PersonStatisticsResponseDto(assets=row["asset_count"])


@get("/api/people/{person_id:str}/thumbnail", action=access.READ)
async def person_thumbnail(request: Request, auth: ImmichAuth, shared: Shared, person_id: str) -> Response:
    row = await people.get_person(auth.principal, mapping.parse_uuid(person_id))
    key = None if row["thumbnail_face_id"] is None else await faces.thumbnail_file(shared.store, row["thumbnail_face_id"])
    if key is None:
        raise NotFound("Person thumbnail not found")
    return send_file(request, shared.store.path(key), media_type="image/jpeg", etag=key.rsplit("/", 1)[-1],
                     cache_control=THUMBNAIL_CACHE)


@get("/api/search/person", action=access.READ)
async def search_person(auth: ImmichAuth, name: str | None = None,
                        withHidden: bool = False) -> list[dtos.PersonResponseDto]:
    if name is None:
        raise BadRequest("name is required")
    rows, _ = await people.list_people(auth.principal, await _library(auth), name=name, name_filter="named",
                                       include_hidden=withHidden, sort="name_asc", limit=200)
    return [mapping.person(r) for r in rows]


# --- faces ----------------------------------------------------------------------------------


@get("/api/faces", action=access.READ)
async def get_faces(auth: ImmichAuth, id: str) -> list[dtos.AssetFaceResponseDto]:
    rows = await faces.faces_of_asset(auth.principal, mapping.parse_uuid(id))
    persons = {}
    for row in rows:
        if row["person_id"] is not None and row["person_id"] not in persons:
            persons[row["person_id"]] = await people.view(row["person_id"])
    return [mapping.face(r, persons.get(r["person_id"])) for r in rows]


@post("/api/faces", status_code=201, action=access.WRITE)
async def create_face(auth: ImmichAuth, data: dtos.AssetFaceCreateDto) -> None:
    asset = await access.load_asset(auth.principal, mapping.parse_uuid(data.assetId), access.WRITE)
    if not asset["width"] or not asset["height"] or data.imageWidth <= 0 or data.imageHeight <= 0:
        raise BadRequest("The asset's dimensions are not known yet")
    sx, sy = asset["width"] / data.imageWidth, asset["height"] / data.imageHeight
    x, y = max(0, round(data.x * sx)), max(0, round(data.y * sy))
    box = faces.Box(x, y, min(asset["width"] - x, round(data.width * sx)),
                    min(asset["height"] - y, round(data.height * sy)))
    await faces.create_face(auth.principal, asset["library_id"],
                            faces.NewFace(asset_id=asset["id"], box=box, person_id=mapping.parse_uuid(data.personId)))


@put("/api/faces/{face_id:str}", action=access.WRITE)
async def reassign_face(auth: ImmichAuth, face_id: str, data: dtos.FaceDto) -> dtos.PersonResponseDto:
    person = mapping.parse_uuid(data.id)
    await faces.update_face(auth.principal, mapping.parse_uuid(face_id), faces.FacePatch(person_id=person))
    return mapping.person(await people.get_person(auth.principal, person))


@delete("/api/faces/{face_id:str}", status_code=204, action=access.DELETE)
async def delete_face(auth: ImmichAuth, face_id: str) -> None:
    await faces.delete_face(auth.principal, mapping.parse_uuid(face_id))


ROUTES = [
    list_people, create_person, update_people, delete_people, get_person, update_person, delete_person,
    merge_person, reassign_faces, person_statistics, person_thumbnail, search_person,
    get_faces, create_face, reassign_face, delete_face,
]
