from typing import Any

from litestar import Controller, get, patch

from app.api.schemas import UserResponse, user_response
from app.domain import access, users
from app.domain.access import Principal


class UserController(Controller):
    path = "/api/users"

    @get("/me", action=access.READ)
    async def me(self, principal: Principal) -> UserResponse:
        return user_response(await users.user_by_id(principal.user_id))

    @patch("/me", action=access.WRITE)
    async def update_me(self, principal: Principal, data: dict[str, Any]) -> UserResponse:
        return user_response(await users.update_me(principal, data))
