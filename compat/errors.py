"""Immich's error body: {"message", "error", "statusCode", "correlationId"}."""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from app.domain.errors import DomainError

log = logging.getLogger(__name__)


def immich_error(status: int, message: str | list[str]) -> Response:
    return Response(
        {
            "message": message,
            "error": HTTPStatus(status).phrase,
            "statusCode": status,
            "correlationId": uuid.uuid4().hex[:8],
        },
        status_code=status,
    )


def _domain(request: Request, exc: DomainError) -> Response:
    status = 400 if exc.status == 422 else exc.status
    return immich_error(status, exc.detail)


def _validation(request: Request, exc: ValidationException) -> Response:
    messages = [e.get("message", exc.detail) for e in (exc.extra or []) if isinstance(e, dict)]
    return immich_error(400, messages or exc.detail)


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
