"""Who calls the native API: the route guard authenticates, handlers read the result."""

from __future__ import annotations

from litestar import Request
from litestar.connection import ASGIConnection

from app.api import route_access
from app.domain.access import Principal
from app.domain.authentication import authenticate_bearer


async def authenticate(connection: ASGIConnection) -> Principal:
    return await authenticate_bearer(connection.headers.get("authorization"))


check_route_access = route_access.make_guard(authenticate, lambda principal: principal)


async def provide_principal(request: Request) -> Principal:
    return route_access.caller(request)
