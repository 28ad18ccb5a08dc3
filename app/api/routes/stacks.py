import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter

from app.api.errors import InputError
from app.api.params import MAX_IDS, check_includes, library_uuid, list_param, listed, native_ids_in_errors
from app.api.schemas import StackPage, StackResponse, stack_response
from app.api import ids
from app.domain import access, stacks
from app.domain.access import Principal
from app.domain.errors import NotFound

EMPTY: dict = {}


class StackCreate(msgspec.Struct, forbid_unknown_fields=True):
    asset_ids: list[str]
    library_id: str | None = None
    primary_asset_id: str | None = None


class StackCover(msgspec.Struct, forbid_unknown_fields=True):
    primary_asset_id: str


class AssetIdsBody(msgspec.Struct, forbid_unknown_fields=True):
    asset_ids: list[str]


def _members(values: list[str]) -> list:
    """Asset ids for a stack: a malformed one names no asset, so it is not found like an unknown one."""
    if len(values) > MAX_IDS:
        raise InputError(f"At most {MAX_IDS} asset ids", "body", "asset_ids")
    out = []
    for value in values:
        decoded = ids.try_decode(ids.ASSET, value)
        if decoded is None:
            raise NotFound(f"Asset {value} not found")
        out.append(decoded)
    return out


def _filter_id(prefix: str, value: str | None, name: str):
    return ids.decode_filter(prefix, value, name) if value else None


class StackController(Controller):
    path = "/api/stacks"

    @get("/", action=access.READ)
    async def list_stacks(
        self, request: Request, principal: Principal, library_id: str | None = None, origin: str | None = None,
        primary_asset_id: str | None = None, limit: int = Parameter(default=20, ge=1, le=200),
        starting_after_id: str | None = None,
        listed_ids: list[str] | None = listed("ids", "Only these stacks, by id (at most 200)."),
        listed_include: list[str] | None = listed("include", "Extra fields: asset_ids."),
    ) -> StackPage:
        include = list_param(request, "include")
        check_includes(include, frozenset({"asset_ids"}))
        library = library_uuid(library_id)
        stack_ids = list_param(request, "ids")
        if stack_ids is not None and len(stack_ids) > MAX_IDS:
            raise InputError(f"At most {MAX_IDS} ids", "query", "ids")
        if origin is not None and origin not in stacks.ORIGINS:
            raise InputError("origin must be auto_burst or user", "query", "origin")
        rows, has_more = await stacks.list_stacks(
            principal, library,
            stack_ids=None if stack_ids is None else [ids.decode_filter(ids.STACK, i, "ids") for i in stack_ids],
            origin=origin, primary_asset_id=_filter_id(ids.ASSET, primary_asset_id, "primary_asset_id"),
            limit=limit, starting_after=_filter_id(ids.STACK, starting_after_id, "starting_after_id"),
        )
        members = await stacks.member_ids([r["id"] for r in rows]) if include else None
        return StackPage(
            data=[stack_response(r, None if members is None else members.get(r["id"], [])) for r in rows],
            has_more=has_more,
        )

    @post("/", status_code=200, action=access.WRITE)
    async def create_stack(self, principal: Principal, data: StackCreate) -> StackResponse:
        library = library_uuid(data.library_id)
        members = _members(data.asset_ids)
        primary = None
        if data.primary_asset_id is not None:
            primary = ids.try_decode(ids.ASSET, data.primary_asset_id)
            if primary not in members:  # a malformed id is in no list
                raise InputError("primary_asset_id must be one of asset_ids", "body", "primary_asset_id")
        with native_ids_in_errors():
            return stack_response(await stacks.create_stack(principal, library, members, primary))

    @get("/{stack_id:str}", action=access.READ)
    async def retrieve(self, principal: Principal, stack_id: str) -> StackResponse:
        return stack_response(await stacks.get_stack(principal, ids.decode(ids.STACK, stack_id)))

    @patch("/{stack_id:str}", action=access.WRITE)
    async def set_cover(self, principal: Principal, stack_id: str, data: StackCover) -> StackResponse:
        # A malformed cover id names no member: the domain refuses it once the stack is found.
        primary = ids.try_decode(ids.ASSET, data.primary_asset_id)
        return stack_response(await stacks.set_cover(principal, ids.decode(ids.STACK, stack_id), primary))

    @delete("/{stack_id:str}", status_code=200, action=access.DELETE)
    async def delete_stack(self, principal: Principal, stack_id: str) -> dict:
        await stacks.delete_stack(principal, ids.decode(ids.STACK, stack_id))
        return EMPTY

    @post("/{stack_id:str}/assets", status_code=200, action=access.WRITE)
    async def add_assets(self, principal: Principal, stack_id: str, data: AssetIdsBody) -> StackResponse:
        stack = ids.decode(ids.STACK, stack_id)
        members = _members(data.asset_ids)
        with native_ids_in_errors():
            return stack_response(await stacks.add_assets(principal, stack, members))

    @delete("/{stack_id:str}/assets", status_code=200, action=access.DELETE)
    async def remove_assets(self, principal: Principal, stack_id: str, data: AssetIdsBody) -> dict:
        if len(data.asset_ids) > MAX_IDS:
            raise InputError(f"At most {MAX_IDS} asset ids", "body", "asset_ids")
        # Ids naming no member are ignored, malformed ones too.
        members = [m for m in (ids.try_decode(ids.ASSET, v) for v in data.asset_ids) if m is not None]
        await stacks.remove_assets(principal, ids.decode(ids.STACK, stack_id), members)
        return EMPTY
