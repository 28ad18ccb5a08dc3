"""Sign-in for Immich clients: the 3.x mobile app authenticates by cookie only."""

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.response import Response

from app.api.state import Shared
from app.domain import access, sessions, users
from app.domain.errors import BadRequest
from compat import dtos, mapping
from compat.auth import ACCESS_COOKIE, AUTH_TYPE_COOKIE, IS_AUTHENTICATED_COOKIE, ImmichAuth

_COOKIE_AGE = 400 * 24 * 3600


def _cookies(request: Request, token: str, max_age: int = _COOKIE_AGE) -> list[Cookie]:
    secure = request.url.scheme == "https"  # never Secure over plain HTTP, or the app drops it
    common = dict(path="/", samesite="lax", max_age=max_age, secure=secure)
    return [
        Cookie(key=ACCESS_COOKIE, value=token, httponly=True, **common),
        Cookie(key=AUTH_TYPE_COOKIE, value="password" if token else "", httponly=True, **common),
        Cookie(key=IS_AUTHENTICATED_COOKIE, value="true" if token else "", httponly=False, **common),
    ]


@post("/api/auth/login", status_code=201, public=True)
async def login(request: Request, data: dtos.LoginCredentialDto, shared: Shared) -> Response[dtos.LoginResponseDto]:
    if "@" not in data.email:
        raise BadRequest("email must be an email")
    # The peer address, never a forwarded header: a client could name any address it likes there.
    address = request.client.host if request.client else "unknown"
    # A throttled guess raises Throttled: the listener's error handler answers 429 with Retry-After.
    row, token = await sessions.login(
        data.email, data.password,
        throttle=shared.login_throttle,
        address=address,
        device_type=request.headers.get("devicetype", ""),
        device_os=request.headers.get("devicemodel", ""),
        app_version=request.headers.get("user-agent"),
    )
    return Response(mapping.login(row, token), status_code=201, cookies=_cookies(request, token))


@post("/api/auth/logout", status_code=200, action=access.READ)
async def logout(request: Request, auth: ImmichAuth) -> Response[dtos.LogoutResponseDto]:
    if auth.session_id is not None:
        await sessions.logout(auth.session_id)
    body = dtos.LogoutResponseDto(successful=True, redirectUri="/auth/login?autoLaunch=0")
    return Response(body, cookies=_cookies(request, "", max_age=0))


@post("/api/auth/validateToken", status_code=200, action=access.READ)
async def validate_token(auth: ImmichAuth) -> dtos.ValidateAccessTokenResponseDto:
    return dtos.ValidateAccessTokenResponseDto(authStatus=True)


@post("/api/auth/admin-sign-up", status_code=201, public=True)
async def admin_sign_up(data: dtos.SignUpDto) -> dtos.UserAdminResponseDto:
    row = await sessions.admin_sign_up(data.email, data.password, data.name)
    return mapping.user_admin(await users.user_by_id(row["id"]))


@get("/api/users/me", action=access.READ)
async def my_user(auth: ImmichAuth) -> dtos.UserAdminResponseDto:
    return mapping.user_admin(await users.user_by_id(auth.principal.user_id))


@get("/api/users/me/preferences", action=access.READ)
async def my_preferences(auth: ImmichAuth) -> dict:
    return mapping.preferences(await users.user_by_id(auth.principal.user_id))
