import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter

from app.api.params import check_includes, list_param
from app.api.schemas import StackPage, StackResponse, stack_response
from app.domain import ids, stacks
from app.domain.access import Principal
from app.domain import access

EMPTY: dict = {}


class StackCreate(msgspec.Struct, forbid_unknown_fields=True):
    asset_ids: list[str]
    library_id: str | None = None
    primary_asset_id: str | None = None


class StackCover(msgspec.Struct, forbid_unknown_fields=True):
    primary_asset_id: str


class AssetIdsBody(msgspec.Struct, forbid_unknown_fields=True):
    asset_ids: list[str]


class StackController(Controller):
    path = "/api/stacks"

    @get("/", action=access.READ)
    async def list_stacks(
        self, request: Request, principal: Principal, library_id: str | None = None, origin: str | None = None,
        primary_asset_id: str | None = None, limit: int = Parameter(default=20, ge=1, le=200),
        starting_after_id: str | None = None,
    ) -> StackPage:
        include = list_param(request, "include")
        check_includes(include, frozenset({"asset_ids"}))
        rows, has_more = await stacks.list_stacks(
            principal, library_id, stack_ids=list_param(request, "ids"), origin=origin,
            primary_asset_id=primary_asset_id, limit=limit, starting_after=starting_after_id,
        )
        members = await stacks.member_ids([r["id"] for r in rows]) if include else None
        return StackPage(
            data=[stack_response(r, None if members is None else members.get(r["id"], [])) for r in rows],
            has_more=has_more,
        )

    @post("/", status_code=200, action=access.WRITE)
    async def create_stack(self, principal: Principal, data: StackCreate) -> StackResponse:
        return stack_response(await stacks.create_stack(principal, data.library_id, data.asset_ids,
                                                        data.primary_asset_id))

    @get("/{stack_id:str}", action=access.READ)
    async def retrieve(self, principal: Principal, stack_id: str) -> StackResponse:
        return stack_response(await stacks.get_stack(principal, ids.decode(ids.STACK, stack_id)))

    @patch("/{stack_id:str}", action=access.WRITE)
    async def set_cover(self, principal: Principal, stack_id: str, data: StackCover) -> StackResponse:
        return stack_response(await stacks.set_cover(principal, ids.decode(ids.STACK, stack_id), data.primary_asset_id))

    @delete("/{stack_id:str}", status_code=200, action=access.DELETE)
    async def delete_stack(self, principal: Principal, stack_id: str) -> dict:
        await stacks.delete_stack(principal, ids.decode(ids.STACK, stack_id))
        return EMPTY

    @post("/{stack_id:str}/assets", status_code=200, action=access.WRITE)
    async def add_assets(self, principal: Principal, stack_id: str, data: AssetIdsBody) -> StackResponse:
        return stack_response(await stacks.add_assets(principal, ids.decode(ids.STACK, stack_id), data.asset_ids))

    @delete("/{stack_id:str}/assets", status_code=200, action=access.DELETE)
    async def remove_assets(self, principal: Principal, stack_id: str, data: AssetIdsBody) -> dict:
        await stacks.remove_assets(principal, ids.decode(ids.STACK, stack_id), data.asset_ids)
        return EMPTY
