"""Who is calling the Immich API: session tokens (cookie, headers, query) or API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from litestar import Request
from litestar.connection import ASGIConnection

from app.api import route_access
from app.domain import authentication
from app.domain.access import Principal
from app.domain.errors import Unauthorized

ACCESS_COOKIE = "immich_access_token"
AUTH_TYPE_COOKIE = "immich_auth_type"
IS_AUTHENTICATED_COOKIE = "immich_is_authenticated"


@dataclass(frozen=True)
class ImmichAuth:
    principal: Principal
    session_id: uuid.UUID | None  # None when an API key is used


def _session_token(request: ASGIConnection) -> str | None:
    headers, query = request.headers, request.query_params
    for candidate in (
        headers.get("x-immich-user-token"),
        headers.get("x-immich-session-token"),
        query.get("sessionKey"),
    ):
        if candidate:
            return candidate
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(ACCESS_COOKIE) or None


async def resolve(request: ASGIConnection) -> ImmichAuth:
    """Any connection: REST requests and the socket.io handshake follow the same rules."""
    token = _session_token(request)
    if token:
        if authentication.is_api_key(token):  # an API key sent as a bearer token
            return ImmichAuth(await authentication.authenticate_api_key(token), None)
        principal, session_id = await authentication.authenticate_session(token)
        return ImmichAuth(principal, session_id)
    api_key = request.headers.get("x-api-key") or request.query_params.get("apiKey")
    if api_key:
        try:
            return ImmichAuth(await authentication.authenticate_api_key(api_key), None)
        except Unauthorized:
            raise Unauthorized("Invalid API key") from None
    raise Unauthorized("Authentication required")


check_route_access = route_access.make_guard(resolve, lambda auth: auth.principal)


async def provide_auth(request: Request) -> ImmichAuth:
    return route_access.caller(request)
