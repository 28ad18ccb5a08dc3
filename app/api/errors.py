"""Error bodies in the FastAPI shape the SDK and its users expect: {"detail": ...}."""

from __future__ import annotations

import logging

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


def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response({"detail": "Internal server error"}, status_code=500)


EXCEPTION_HANDLERS = {
    DomainError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
