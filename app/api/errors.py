"""Error bodies in the FastAPI shape the SDK and its users expect: {"detail": ...}."""

from __future__ import annotations

import logging
import re

import asyncpg

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from app.domain.errors import Conflict, DomainError, Invalid

log = logging.getLogger(__name__)


class InputError(Invalid):
    """An invalid value the HTTP layer itself found, where it knows the value came from."""

    def __init__(self, detail: str, source: str, field: str | tuple[str | int, ...] = ()):
        super().__init__(detail, field)
        self.source = source


def input_source(request: Request, exc: Invalid) -> str:
    """Where the field a domain error names came from: the route says so when its method
    does not (`input_source` in its opt); otherwise a GET's input is its query, any other
    method's its body."""
    source = getattr(exc, "source", None) or request.route_handler.opt.get("input_source")
    return source or ("query" if request.method in ("GET", "HEAD") else "body")


def domain_error(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, Invalid):
        loc = [input_source(request, exc), *exc.field]
        body = {"detail": [{"loc": loc, "msg": exc.detail, "type": "value_error"}]}
        return Response(body, status_code=422)
    headers = {"x-should-retry": "false"} if isinstance(exc, Conflict) else None
    return Response({"detail": exc.detail}, status_code=exc.status, headers=headers)


# Litestar names a bad value inside a typed body by its path: "updates[0].change.rating";
# a problem with the body as a whole (unknown or missing field) is keyed "data", the parameter.
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _key_loc(key: str, source: str) -> list:
    if source != "body":
        return [key]
    if key == "data":
        return []
    return [name if name else int(index) for name, index in _PATH_PART.findall(key)]


def validation_error(request: Request, exc: ValidationException) -> Response:
    items = []
    for err in exc.extra or []:
        if isinstance(err, dict):
            loc = [err.get("source") or "body"]
            if err.get("key"):
                loc += _key_loc(err["key"], loc[0])
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
