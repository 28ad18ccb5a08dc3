"""Immich sign-in and its credentials: login, logout, admin sign-up, password change, PIN code and session
unlock. The 3.x mobile app authenticates by cookie only."""

from litestar import Request, delete, get, post, put
from litestar.datastructures import Cookie
from litestar.exceptions import ValidationException
from litestar.response import Response
from msgspec import UNSET

from app.api.state import Shared
from app.domain import access, pin_codes, sessions, users
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


# --- PIN code and session unlock (the locked folder) -------------------------------------------


def _pin(value, field: str) -> str | None:
    """An optional PIN from a body: absent is None, present must be Immich's six digits."""
    if value is UNSET or value is None:
        return None
    if not pin_codes.valid_pin(value):
        message = f"{field} must be a 6-digit numeric string"
        raise ValidationException(detail=message, extra=[{"source": "body", "key": field, "message": message}])
    return value


def _guard(request: Request, shared: Shared) -> pin_codes.Guard:
    # The peer address, never a forwarded header (as for sign-in).
    return pin_codes.Guard(shared.login_throttle, request.client.host if request.client else "unknown")


def _session_of(auth: ImmichAuth):
    if auth.session_id is None:
        raise BadRequest("This endpoint can only be used with a session token")
    return auth.session_id


@post("/api/auth/pin-code", status_code=204, action=access.WRITE)
async def set_up_pin_code(auth: ImmichAuth, data: dtos.PinCodeSetupDto) -> None:
    await pin_codes.set_up(auth.principal.user_id, _pin(data.pinCode, "pinCode"))


@put("/api/auth/pin-code", status_code=204, action=access.WRITE)
async def change_pin_code(request: Request, auth: ImmichAuth, shared: Shared, data: dtos.PinCodeChangeDto) -> None:
    new_pin = _pin(data.newPinCode, "newPinCode")
    await pin_codes.change(auth.principal.user_id, new_pin, pin=_pin(data.pinCode, "pinCode"),
                           password=data.password or None, guard=_guard(request, shared))


@delete("/api/auth/pin-code", status_code=204, action=access.DELETE)
async def reset_pin_code(request: Request, auth: ImmichAuth, shared: Shared, data: dtos.PinCodeResetDto) -> None:
    await pin_codes.reset(auth.principal.user_id, pin=_pin(data.pinCode, "pinCode"), password=data.password or None,
                          guard=_guard(request, shared))


@post("/api/auth/session/unlock", status_code=204, action=access.WRITE)
async def unlock_session(request: Request, auth: ImmichAuth, shared: Shared, data: dtos.SessionUnlockDto) -> None:
    pin = _pin(data.pinCode, "pinCode")
    await pin_codes.unlock_session(auth.principal.user_id, _session_of(auth), pin=pin, guard=_guard(request, shared))


@post("/api/auth/session/lock", status_code=204, action=access.WRITE)
async def lock_session(auth: ImmichAuth) -> None:
    await sessions.lock(auth.principal.user_id, _session_of(auth))


@get("/api/auth/status", action=access.READ)
async def auth_status(auth: ImmichAuth) -> dtos.AuthStatusResponseDto:
    found = await pin_codes.status(auth.principal.user_id, auth.session_id, elevated=auth.principal.elevated)
    return dtos.AuthStatusResponseDto(
        pinCode=found.has_pin, password=found.has_password, isElevated=found.elevated,
        expiresAt=found.expires_at.isoformat() if found.expires_at else UNSET,
        pinExpiresAt=found.pin_expires_at.isoformat() if found.pin_expires_at else UNSET,
    )


PIN_ROUTES = [set_up_pin_code, change_pin_code, reset_pin_code, unlock_session, lock_session, auth_status]


@post("/api/auth/change-password", status_code=200, action=access.WRITE)
async def change_password(request: Request, auth: ImmichAuth, shared: Shared,
                          data: dtos.ChangePasswordDto) -> dtos.UserAdminResponseDto:
    await sessions.change_password(auth.principal.user_id, data.password, data.newPassword,
                                   keep_session=auth.session_id, sign_out_others=data.invalidateSessions is True,
                                   throttle=shared.login_throttle,
                                   address=request.client.host if request.client else "unknown")
    return mapping.user_admin(await users.user_by_id(auth.principal.user_id))
