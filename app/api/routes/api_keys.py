from datetime import datetime

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.response import Response

from app.api import ids
from app.domain import access, api_keys
from app.domain.access import Principal

EMPTY: dict = {}


class APIKeyResponse(msgspec.Struct):
    id: str
    created_at: datetime
    is_active: bool
    name: str | None
    last_used_at: datetime | None
    actions: list[str] | None
    library_scope_mode: str | None
    selected_library_count: int | None


class APIKeyCreateResponse(APIKeyResponse):
    api_key: str


class APIKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    actions: list[str]
    library_scope_mode: str
    library_ids: list[str] | None = None


class APIKeyRename(msgspec.Struct, forbid_unknown_fields=True):
    name: str


_ORDER = ("read", "write", "delete", "delete_permanently")


def _fields(row) -> dict:
    selected = row["library_scope_mode"] == "selected_libraries"
    return dict(
        id=ids.encode(ids.API_KEY, row["id"]),
        created_at=row["created_at"],
        is_active=row["is_active"],
        name=row["name"],
        last_used_at=row["last_used_at"],
        actions=[a for a in _ORDER if a in row["actions"]] if row["is_active"] else None,
        library_scope_mode=row["library_scope_mode"] if row["is_active"] else None,
        selected_library_count=len(row["library_ids"]) if selected and row["is_active"] else None,
    )


class ApiKeyController(Controller):
    path = "/api/api-keys"

    @get("/", action=access.READ)
    async def list_keys(self, principal: Principal) -> list[APIKeyResponse]:
        return [APIKeyResponse(**_fields(r)) for r in await api_keys.list_keys(principal)]

    @post("/", action=access.WRITE)
    async def create_key(self, principal: Principal, data: APIKeyCreate) -> Response[APIKeyCreateResponse]:
        libraries = None if data.library_ids is None else [ids.decode(ids.LIBRARY, lib) for lib in data.library_ids]
        row, secret = await api_keys.create_key(principal, data.name, data.actions, data.library_scope_mode, libraries)
        return Response(APIKeyCreateResponse(**_fields(row), api_key=secret), status_code=201)

    @patch("/{key_id:str}", action=access.WRITE)
    async def rename(self, principal: Principal, key_id: str, data: APIKeyRename) -> APIKeyResponse:
        return APIKeyResponse(**_fields(await api_keys.rename_key(principal, ids.decode(ids.API_KEY, key_id), data.name)))

    @delete("/{key_id:str}", status_code=200, action=access.DELETE)
    async def revoke(self, principal: Principal, key_id: str) -> dict:
        await api_keys.revoke_key(principal, ids.decode(ids.API_KEY, key_id))
        return EMPTY
