"""The CLI asks which key it is using."""

from litestar import get

from app.domain import access, api_keys
from compat import dtos
from compat.auth import ImmichAuth

# Immich permissions our action scopes correspond to; a full key is simply "all".
_PERMISSIONS = {
    access.READ: ["asset.read", "asset.view", "asset.download", "asset.statistics", "album.read", "user.read"],
    access.WRITE: ["asset.upload", "asset.update", "album.create", "album.update"],
    access.DELETE: ["asset.delete", "album.delete"],
    access.DELETE_PERMANENTLY: [],
}


@get("/api/api-keys/me", action=access.READ)
async def my_api_key(auth: ImmichAuth) -> dtos.ApiKeyResponseDto:
    row = await api_keys.current_key(auth.principal)
    actions = set(row["actions"])
    if actions >= access.ALL_ACTIONS and auth.principal.library_scope is None:
        permissions = ["all"]
    else:
        permissions = sorted({p for a in actions for p in _PERMISSIONS.get(a, [])})
    return dtos.ApiKeyResponseDto(id=str(row["id"]), name=row["name"] or "", createdAt=row["created_at"],
                                  updatedAt=row["created_at"], permissions=permissions)
