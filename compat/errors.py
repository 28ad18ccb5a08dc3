"""Immich's error body: {"message", "error", "statusCode", "correlationId"}."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException, ValidationException

from app.api.route_access import ACTION
from app.domain.errors import AccessRefused, BadRequest, DomainError, Forbidden, InsufficientStorage, NotFound
from app.domain.principal import DELETE, DELETE_PERMANENTLY, READ, WRITE
from compat.validation import parse_path

log = logging.getLogger(__name__)


def immich_error(status: int, message: str, errors: list | None = None) -> Response:
    # Immich 3.x: {"message"} (plus "errors" for validation), correlation id in a header.
    body: dict = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return Response(body, status_code=status, headers={"x-correlation-id": uuid.uuid4().hex[:12]})


# Immich refuses an object the caller cannot reach, missing or someone else's alike, with
# 400 "Not found or no <resource>.<permission> access" (its requireAccess). The resource each
# domain kind is, and the permission each route action asks for.
_IMMICH_RESOURCE = {"asset": "asset", "album": "album", "album_asset": "album", "person": "person",
                    "face": "face", "stack": "stack", "timeline": "timeline", "memory": "memory",
                    "tag": "tag"}
_IMMICH_PERMISSION = {READ: "read", WRITE: "update", DELETE: "delete", DELETE_PERMANENTLY: "delete"}


@contextmanager
def refused_as(permission: str) -> Iterator[None]:
    """For routes whose Immich permission is not the one their action names (album.share,
    albumAsset.create, activity.delete...): a missing object and one the caller may not act on both
    answer 400 `Not found or no <permission> access`."""
    try:
        yield
    except (NotFound, Forbidden):
        raise BadRequest(f"Not found or no {permission} access") from None


def _no_access(request: Request, kind: str) -> Response:
    action = (request.route_handler.opt or {}).get(ACTION)
    permission = _IMMICH_PERMISSION.get(action, "read")
    return immich_error(400, f"Not found or no {_IMMICH_RESOURCE[kind]}.{permission} access")


def _domain(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, InsufficientStorage):
        return immich_error(400, "Quota has been exceeded!")  # the exact text the mobile app matches
    kind = getattr(exc, "kind", None)
    if isinstance(exc, (NotFound, AccessRefused)) and kind in _IMMICH_RESOURCE:
        # Nothing in the answer says whether the object exists: the id is not echoed either.
        return _no_access(request, kind)
    status = 400 if exc.status == 422 else exc.status
    # A document checked field by field (the system config) carries zod's issues, one per value.
    response = immich_error(status, exc.detail, getattr(exc, "issues", None))
    retry_after = getattr(exc, "retry_after", None)  # a throttled password guess says when to retry
    if retry_after is not None:
        response.headers["retry-after"] = str(retry_after)
    return response


def _validation(request: Request, exc: ValidationException) -> Response:
    # Issues made in Immich's words (compat/validation.py) pass as they are; the limits both apps
    # share (NUL, depth) and Litestar's own parameter checks become zod "custom" issues naming the field.
    issues = [e if "code" in e else {"code": "custom", "path": _issue_path(e), "message": e.get("message", exc.detail)}
              for e in (exc.extra or []) if isinstance(e, dict)]
    return immich_error(400, "Validation failed", issues)


def _issue_path(error: dict) -> list:
    key = error.get("key")
    return parse_path(key) if isinstance(key, str) and error.get("source") == "body" else [p for p in (key,) if p]


def _unsupported(method: str, path: str) -> str | None:
    """The spec operation a request names, when no route here serves it."""
    for op_method, pattern, template in _operation_patterns():
        if op_method == method and pattern.fullmatch(path):
            return f"{method} {template}"
    return None


@lru_cache(maxsize=1)
def _operation_patterns():
    from compat.dtos import OPERATIONS

    return [(m, re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p))), p) for m, p in OPERATIONS]


def _http(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, (NotFoundException, MethodNotAllowedException)):
        operation = _unsupported(request.method, request.url.path)
        if operation is not None:
            return immich_error(501, f"{operation} is not supported by this server")
    return immich_error(exc.status_code, exc.detail)


def _database(request: Request, exc: asyncpg.PostgresError) -> Response:
    # A backstop: input is checked before it reaches SQL (app/api/body_limits.py), but text the
    # database cannot store is still the caller's fault, never a 500.
    if isinstance(exc, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)):
        return immich_error(409, "A concurrent change got in the way; retry")
    if isinstance(exc, (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)):
        return immich_error(400, "Text must not contain NUL (U+0000) characters")
    return _unexpected(request, exc)


def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return immich_error(500, "Internal server error")


EXCEPTION_HANDLERS = {
    DomainError: _domain,
    ValidationException: _validation,
    HTTPException: _http,
    asyncpg.PostgresError: _database,
    Exception: _unexpected,
}
