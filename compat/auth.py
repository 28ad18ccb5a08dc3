"""Who is calling the Immich API: session tokens (cookie, headers, query), API keys, or, on the
routes that declare `shared_link=True`, a shared link's key or slug (with its password cookie)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from litestar import Request
from litestar.connection import ASGIConnection

from app.api import route_access
from app.domain import authentication, shared_links
from app.domain.access import Principal
from app.domain.errors import Unauthorized

ACCESS_COOKIE = "immich_access_token"
AUTH_TYPE_COOKIE = "immich_auth_type"
IS_AUTHENTICATED_COOKIE = "immich_is_authenticated"
SHARED_LINK_COOKIE = "immich_shared_link_token"  # password tokens of shared links, comma-separated


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


def password_tokens(request: ASGIConnection) -> list[str]:
    return [t for t in (request.cookies.get(SHARED_LINK_COOKIE) or "").split(",") if t]


async def _shared_link(request: ASGIConnection) -> ImmichAuth | None:
    """The link a request's key or slug names, on a route that accepts one (Immich checks these
    before any other credential); None when the route does not, or none is sent."""
    declared = route_access.declaration(request)
    if declared is None or not declared.shared_link:
        return None
    headers, query = request.headers, request.query_params
    key = headers.get("x-immich-share-key") or query.get("key")
    slug = headers.get("x-immich-share-slug") or query.get("slug")
    if not key and not slug:
        return None
    principal = await shared_links.authenticate(
        key=key or None, slug=None if key else slug, password_tokens=password_tokens(request),
        password_checked=not declared.shared_link_login)
    return ImmichAuth(principal, None)


async def resolve(request: ASGIConnection) -> ImmichAuth:
    """Any connection: REST requests and the socket.io handshake follow the same rules."""
    link = await _shared_link(request)
    if link is not None:
        return link
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
