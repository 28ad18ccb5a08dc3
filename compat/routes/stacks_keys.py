"""Immich stacks and API key management, mapped onto the domain's."""

from __future__ import annotations

import msgspec
from litestar import delete, get, post, put

from app.domain import access, api_keys, asset_views, stacks
from app.domain.errors import BadRequest, NotFound
from compat import dtos, mapping
from compat.auth import ImmichAuth
from compat.routes.api_keys import _PERMISSIONS


async def _stack_dto(stack_row) -> dtos.StackResponseDto:
    rows = await stacks.live_members(stack_row["id"])
    members = [mapping.asset(v) for v in await asset_views.views(rows)]
    primary = stack_row["primary_asset_id"] or (rows[0]["id"] if rows else None)
    return dtos.StackResponseDto(id=str(stack_row["id"]), primaryAssetId=str(primary) if primary else "",
                                 assets=members)


@post("/api/stacks", status_code=201, action=access.WRITE)
async def create_stack(auth: ImmichAuth, data: dtos.StackCreateDto) -> dtos.StackResponseDto:
    library = await access.preferred_library(auth.principal)
    members = [mapping.parse_uuid(a) for a in data.assetIds]
    try:
        # Immich makes the first asset the primary one.
        row = await stacks.create_stack(auth.principal, library, members, members[0] if members else None)
    except NotFound:
        # Immich checks asset.update access on every id first: unknown and foreign ids both get this 400.
        raise BadRequest("Not found or no asset.update access") from None
    return await _stack_dto(row)


@get("/api/stacks/{stack_id:str}", action=access.READ)
async def get_stack(auth: ImmichAuth, stack_id: str) -> dtos.StackResponseDto:
    return await _stack_dto(await stacks.get_stack(auth.principal, mapping.parse_uuid(stack_id)))


@put("/api/stacks/{stack_id:str}", action=access.WRITE)
async def update_stack(auth: ImmichAuth, stack_id: str, data: dtos.StackUpdateDto) -> dtos.StackResponseDto:
    stack = mapping.parse_uuid(stack_id)
    if data.primaryAssetId is msgspec.UNSET:  # nothing to change
        return await _stack_dto(await stacks.get_stack(auth.principal, stack))
    return await _stack_dto(await stacks.set_cover(auth.principal, stack, mapping.parse_uuid(data.primaryAssetId)))


@delete("/api/stacks/{stack_id:str}", status_code=204, action=access.DELETE)
async def delete_stack(auth: ImmichAuth, stack_id: str) -> None:
    await stacks.delete_stack(auth.principal, mapping.parse_uuid(stack_id))


@delete("/api/stacks", status_code=204, action=access.DELETE)
async def delete_stacks(auth: ImmichAuth, data: dtos.BulkIdsDto) -> None:
    for stack_id in data.ids:
        await stacks.delete_stack(auth.principal, mapping.parse_uuid(stack_id))


# --- API keys ------------------------------------------------------------------------------------


def _actions(permissions: list[str]) -> list[str]:
    if "all" in permissions:
        return sorted(access.ALL_ACTIONS)
    wanted = {action for action, perms in _PERMISSIONS.items() if set(perms) & set(permissions)}
    if wanted - {access.READ}:
        wanted.add(access.READ)
    if not wanted:
        raise BadRequest("These permissions map to no action this server knows; use 'all' or asset/album ones")
    return sorted(wanted)


def _key_dto(row) -> dtos.ApiKeyResponseDto:
    actions = set(row["actions"])
    permissions = ["all"] if actions >= access.ALL_ACTIONS and row["library_scope_mode"] == "all_libraries" else (
        sorted({p for a in actions for p in _PERMISSIONS.get(a, [])}))
    return dtos.ApiKeyResponseDto(id=str(row["id"]), name=row["name"] or "", createdAt=row["created_at"],
                                  updatedAt=row["created_at"], permissions=permissions)


@get("/api/api-keys", action=access.READ)
async def list_keys(auth: ImmichAuth) -> list[dtos.ApiKeyResponseDto]:
    return [_key_dto(r) for r in await api_keys.list_keys(auth.principal) if r["is_active"]]


@post("/api/api-keys", status_code=201, action=access.WRITE)
async def create_key(auth: ImmichAuth, data: dtos.ApiKeyCreateDto) -> dtos.ApiKeyCreateResponseDto:
    name = "API Key" if data.name is msgspec.UNSET else data.name
    row, secret = await api_keys.create_key(auth.principal, name, _actions(data.permissions),
                                            "all_libraries", None)
    return dtos.ApiKeyCreateResponseDto(secret=secret, apiKey=_key_dto(row))


@get("/api/api-keys/{key_id:str}", action=access.READ)
async def get_key(auth: ImmichAuth, key_id: str) -> dtos.ApiKeyResponseDto:
    wanted = mapping.parse_uuid(key_id)
    for row in await api_keys.list_keys(auth.principal):
        if row["id"] == wanted and row["is_active"]:
            return _key_dto(row)

    raise NotFound("API key not found")


@put("/api/api-keys/{key_id:str}", action=access.WRITE)
async def rename_key(auth: ImmichAuth, key_id: str, data: dtos.ApiKeyUpdateDto) -> dtos.ApiKeyResponseDto:
    if data.name is msgspec.UNSET:
        raise BadRequest("Only the name of a key can be changed here")
    return _key_dto(await api_keys.rename_key(auth.principal, mapping.parse_uuid(key_id), data.name))


@delete("/api/api-keys/{key_id:str}", status_code=204, action=access.DELETE)
async def delete_key(auth: ImmichAuth, key_id: str) -> None:
    await api_keys.revoke_key(auth.principal, mapping.parse_uuid(key_id))
