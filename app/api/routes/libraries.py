from typing import Literal

import msgspec
from litestar import Controller, get, post
from litestar.params import QueryParameter
from litestar.response import Response

from app.api.schemas import LibraryResponse, library_response
from app.api import ids
from app.domain import access, libraries
from app.domain.access import Principal
from app.domain.errors import NotFound


class LibraryCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    description: str | None = None


async def _one(principal: Principal, library_id, state: str = "all") -> LibraryResponse:
    rows = await libraries.list_libraries(principal.user_id, state, principal.library_scope)
    for row in rows:
        if row["id"] == library_id:
            return library_response(row)
    raise NotFound("Library not found")


class LibraryController(Controller):
    path = "/api/libraries"

    @get("/", action=access.READ)
    async def list_libraries(
        self,
        principal: Principal,
        library_state: Literal["live", "trashed", "all"] = QueryParameter(name="state", default="live"),
    ) -> list[LibraryResponse]:
        rows = await libraries.list_libraries(principal.user_id, library_state, principal.library_scope)
        return [library_response(r) for r in rows]

    @post("/", action=access.WRITE)
    async def create_library(self, principal: Principal, data: LibraryCreate) -> Response[LibraryResponse]:
        library_id, created = await libraries.create_library(principal, data.name, data.description)
        return Response(await _one(principal, library_id), status_code=201 if created else 200)

    @get("/{library_id:str}", action=access.READ)
    async def retrieve_library(self, principal: Principal, library_id: str) -> LibraryResponse:
        decoded = ids.decode(ids.LIBRARY, library_id)
        if not principal.in_scope(decoded):
            raise NotFound("Library not found")
        return await _one(principal, decoded)
