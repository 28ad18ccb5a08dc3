"""Immich's error body: {"message", "error", "statusCode", "correlationId"}."""

from __future__ import annotations

import logging
import uuid

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from app.domain.errors import DomainError, InsufficientStorage

log = logging.getLogger(__name__)


def immich_error(status: int, message: str, errors: list | None = None) -> Response:
    # Immich 3.x: {"message"} (plus "errors" for validation), correlation id in a header.
    body: dict = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return Response(body, status_code=status, headers={"x-correlation-id": uuid.uuid4().hex[:12]})


def _domain(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, InsufficientStorage):
        return immich_error(400, "Quota has been exceeded!")  # the exact text the mobile app matches
    status = 400 if exc.status == 422 else exc.status
    return immich_error(status, exc.detail)


def _validation(request: Request, exc: ValidationException) -> Response:
    issues = [
        {"message": e.get("message", exc.detail), "path": [p for p in (e.get("key"),) if p]}
        for e in (exc.extra or []) if isinstance(e, dict)
    ]
    return immich_error(400, "Validation failed", issues)


def _http(request: Request, exc: HTTPException) -> Response:
    return immich_error(exc.status_code, exc.detail)


def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return immich_error(500, "Internal server error")


EXCEPTION_HANDLERS = {
    DomainError: _domain,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}
