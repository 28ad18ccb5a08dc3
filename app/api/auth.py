"""The one dependency every authenticated native route takes."""

from __future__ import annotations

from litestar import Request

from app.domain.access import Principal, authenticate_bearer


async def provide_principal(request: Request) -> Principal:
    return await authenticate_bearer(request.headers.get("authorization"))
