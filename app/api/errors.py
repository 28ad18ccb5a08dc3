"""Error bodies in the FastAPI shape the SDK and its users expect: {"detail": ...}."""

from __future__ import annotations

import logging

import asyncpg

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from app.domain.errors import Conflict, DomainError, Invalid

log = logging.getLogger(__name__)


def domain_error(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, Invalid):
        body = {"detail": [{"loc": list(exc.loc), "msg": exc.detail, "type": "value_error"}]}
        return Response(body, status_code=422)
    headers = {"x-should-retry": "false"} if isinstance(exc, Conflict) else None
    return Response({"detail": exc.detail}, status_code=exc.status, headers=headers)


def validation_error(request: Request, exc: ValidationException) -> Response:
    items = []
    for err in exc.extra or []:
        if isinstance(err, dict):
            loc = [err.get("source") or "body"]
            if err.get("key"):
                loc.append(err["key"])
            items.append({"loc": loc, "msg": err.get("message", exc.detail), "type": "value_error"})
    if not items:
        items.append({"loc": ["body"], "msg": exc.detail, "type": "value_error"})
    return Response({"detail": items}, status_code=422)


def http_error(request: Request, exc: HTTPException) -> Response:
    return Response({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def database_error(request: Request, exc: asyncpg.PostgresError) -> Response:
    if isinstance(exc, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)):
        # Two requests changed the same things at once: retrying this one will work.
        return Response({"detail": "A concurrent change got in the way; retry"}, status_code=409)
    if isinstance(exc, (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)):
        return Response({"detail": [{"loc": ["body"], "msg": "Text must not contain NUL characters",
                                     "type": "value_error"}]}, status_code=422)
    return unexpected_error(request, exc)


def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response({"detail": "Internal server error"}, status_code=500)


EXCEPTION_HANDLERS = {
    DomainError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    asyncpg.PostgresError: database_error,
    Exception: unexpected_error,
}
