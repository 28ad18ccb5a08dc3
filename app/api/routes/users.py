import msgspec
from litestar import Controller, get, patch
from msgspec import UNSET, UnsetType

from app.api.schemas import UserResponse, user_response
from app.api import ids
from app.domain import access, users
from app.domain.access import Principal


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """The native form of users.UserPatch: the library is named by its native id."""

    demo_mode_enabled: bool | UnsetType = UNSET
    favorite_display_mode: str | None | UnsetType = UNSET
    face_detection_preference: bool | None | UnsetType = UNSET  # the SDK's Optional: null changes nothing
    home_country: str | None | UnsetType = UNSET
    home_subdivision: str | None | UnsetType = UNSET
    immich_library_id: str | None | UnsetType = UNSET


def _user_patch(data: UserUpdate) -> users.UserPatch:
    fields = msgspec.structs.asdict(data)
    if data.face_detection_preference is None:
        fields["face_detection_preference"] = UNSET
    if isinstance(data.immich_library_id, str):
        fields["immich_library_id"] = ids.decode(ids.LIBRARY, data.immich_library_id)
    return users.UserPatch(**fields)


class UserController(Controller):
    path = "/api/users"

    @get("/me", action=access.READ)
    async def me(self, principal: Principal) -> UserResponse:
        return user_response(await users.user_by_id(principal.user_id))

    @patch("/me", action=access.WRITE)
    async def update_me(self, principal: Principal, data: UserUpdate) -> UserResponse:
        return user_response(await users.update_me(principal, _user_patch(data)))
