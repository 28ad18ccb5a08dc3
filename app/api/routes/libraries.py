"""Native libraries: the caller's own and those shared with them, and what an owner does to one."""

from typing import Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter, QueryParameter
from litestar.response import Response
from msgspec import UNSET, UnsetType

from app.api import ids
from app.api.library_schemas import MembershipPage, MembershipResponse, MemberUpdate, membership_response
from app.api.schemas import LibraryResponse, library_response
from app.api.state import Shared
from app.domain import access, libraries, library_admin, library_members
from app.domain.access import Principal

EMPTY: dict = {}


class LibraryCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    description: str | None = None


class LibraryUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """A null name or description leaves it as it is, as does leaving it out."""

    name: str | None | UnsetType = UNSET
    description: str | None | UnsetType = UNSET

    def patch(self) -> library_admin.LibraryPatch:
        return library_admin.LibraryPatch(name=UNSET if self.name is None else self.name,
                                          description=UNSET if self.description is None else self.description)


async def _one(principal: Principal, library_id) -> LibraryResponse:
    return library_response(await libraries.get_library(principal, library_id))


def _library(value: str):
    return ids.decode(ids.LIBRARY, value)


class LibraryController(Controller):
    path = "/api/libraries"

    @get("/", action=access.READ)
    async def list_libraries(
        self,
        principal: Principal,
        library_state: Literal["live", "trashed", "all"] = QueryParameter(name="state", default="live"),
    ) -> list[LibraryResponse]:
        return [library_response(r) for r in await libraries.list_libraries(principal, library_state)]

    @post("/", action=access.WRITE)
    async def create_library(self, principal: Principal, data: LibraryCreate) -> Response[LibraryResponse]:
        library_id, created = await libraries.create_library(principal, data.name, data.description)
        return Response(await _one(principal, library_id), status_code=201 if created else 200)

    @get("/{library_id:str}", action=access.READ)
    async def retrieve_library(self, principal: Principal, library_id: str) -> LibraryResponse:
        return await _one(principal, _library(library_id))

    @patch("/{library_id:str}", action=access.WRITE)
    async def update_library(self, principal: Principal, library_id: str, data: LibraryUpdate) -> LibraryResponse:
        decoded = _library(library_id)
        await library_admin.update_library(principal, decoded, data.patch())
        return await _one(principal, decoded)

    @post("/{library_id:str}/trash", status_code=200, action=access.DELETE)
    async def trash_library(self, principal: Principal, library_id: str) -> dict:
        await library_admin.trash_library(principal, _library(library_id))
        return EMPTY

    @post("/{library_id:str}/restore", status_code=200, action=access.DELETE)
    async def restore_library(self, principal: Principal, library_id: str) -> LibraryResponse:
        decoded = _library(library_id)
        await library_admin.restore_library(principal, decoded)
        return await _one(principal, decoded)

    @delete("/{library_id:str}", status_code=200, action=access.DELETE_PERMANENTLY)
    async def delete_library(self, principal: Principal, shared: Shared, library_id: str) -> dict:
        await library_admin.delete_library(principal, shared.store, _library(library_id))
        return EMPTY

    # Members (a signed-in session only; see app.domain.library_members).

    @get("/{library_id:str}/members", action=access.READ)
    async def list_members(
        self, principal: Principal, library_id: str, limit: int = Parameter(default=20, ge=1, le=200),
        starting_after_id: str | None = None,
        member_state: Literal["active", "left", "removed", "all"] = QueryParameter(name="state", default="active"),
    ) -> MembershipPage:
        rows, has_more = await library_members.list_members(
            principal, _library(library_id), state=member_state, limit=limit,
            starting_after=ids.decode_filter(ids.MEMBERSHIP, starting_after_id, "starting_after_id")
            if starting_after_id else None,
        )
        return MembershipPage(data=[membership_response(r) for r in rows], has_more=has_more)

    @patch("/{library_id:str}/members/{user_id:str}", action=access.WRITE)
    async def update_member(self, principal: Principal, library_id: str, user_id: str,
                            data: MemberUpdate) -> MembershipResponse:
        row = await library_members.update_role(principal, _library(library_id), ids.decode(ids.USER, user_id),
                                                data.role)
        return membership_response(row)

    @delete("/{library_id:str}/members/{user_id:str}", status_code=200, action=access.DELETE)
    async def remove_member(self, principal: Principal, library_id: str, user_id: str) -> MembershipResponse:
        row = await library_members.remove_member(principal, _library(library_id), ids.decode(ids.USER, user_id))
        return membership_response(row)

    @post("/{library_id:str}/leave", status_code=200, action=access.WRITE)
    async def leave_library(self, principal: Principal, library_id: str) -> MembershipResponse:
        return membership_response(await library_members.leave(principal, _library(library_id)))
