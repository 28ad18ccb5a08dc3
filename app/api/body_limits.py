"""Input limits both apps apply before a handler sees the input.

Three kinds of input used to reach a 500 from any route that takes them:
- JSON nested deeper than the interpreter's recursion limit: the decoder raises RecursionError;
  nested a little less, later code that walks the value (conversion, rendering) does.
- U+0000 in a JSON string or key, or in a multipart field or file name: Postgres `text` cannot hold
  it, so the insert fails deep in the domain.
- U+0000 in the URL (a path segment or query parameter, written %00), for the same reason.
All are refused here, once, as a validation error naming the field; each app renders that in its
own error shape (native 422 `{"detail": [...]}`, Immich 400 `{"message", "errors"}`).

A typed JSON body is also held to its declared type strictly here: Litestar converts bodies
leniently ("3" becomes 3, "true" becomes True), while both APIs refuse a value of the wrong JSON type,
as Immich's validators do.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.types import ASGIApp, Receive, Scope, Send

# No body of either API nests more than a few levels (Immich's face reassignment, {"data": [{...}]},
# is three); 32 leaves room and stays far below the decoder's recursion limit.
MAX_JSON_DEPTH = 32


def _field(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "body"


def _invalid(path: tuple, message: str) -> ValidationException:
    field = _field(path)
    return ValidationException(
        detail=f"{field}: {message}", extra=[{"source": "body", "key": field, "message": message}]
    )


def _printable(key: str) -> str:
    return key.replace("\x00", "\\u0000")


def check_json(value: Any) -> None:
    """Raise ValidationException for nesting beyond MAX_JSON_DEPTH or a NUL in any key or string.

    Iterative, so the check itself cannot overflow the stack it is protecting.
    """
    stack: list[tuple[Any, int, tuple]] = [(value, 0, ())]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise _invalid(path, "must not contain NUL (U+0000) characters")
        elif isinstance(node, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise _invalid(path, f"JSON is nested more than {MAX_JSON_DEPTH} levels deep")
            if isinstance(node, dict):
                for key, item in node.items():
                    if isinstance(key, str) and "\x00" in key:
                        raise _invalid(path + (_printable(key),), "keys must not contain NUL (U+0000) characters")
                    stack.append((item, depth + 1, path + (key,)))
            else:
                stack.extend((item, depth + 1, path + (i,)) for i, item in enumerate(node))


def reject_nul(value: str | None, field: str) -> str | None:
    """For text that does not arrive as JSON (form fields, file names): NUL is refused the same way."""
    if value is not None and "\x00" in value:
        raise ValidationException(
            detail=f"{field}: must not contain NUL (U+0000) characters",
            extra=[{"source": "body", "key": field, "message": "must not contain NUL (U+0000) characters"}],
        )
    return value


def reject_nul_form(fields: dict[str, str] | dict[str, list[str]], filenames: dict[str, str]) -> None:
    """A multipart form's text fields (one value or all of them) and file names, checked like JSON strings."""
    for name, values in fields.items():
        reject_nul(name, "form field name")
        for value in values if isinstance(values, list) else [values]:
            reject_nul(value, name)
    for name, filename in filenames.items():
        reject_nul(filename, f"{name} filename")


_LOOSE = (Any, str, bytes, dict)  # body annotations with nothing to hold strictly
# msgspec says where a value failed: "Expected `int`, got `str` - at `$.updates[0].change.rating`".
_ERROR_AT = re.compile(r" - at `\$\.?(.*)`$")


def _declared_body(request: Request) -> Any:
    """The type the route declares for its JSON body (its `data` parameter), if any."""
    handler = request.scope.get("route_handler")
    signature = getattr(handler, "parsed_fn_signature", None)
    field = signature.parameters.get("data") if signature is not None else None
    if field is None or field.annotation in _LOOSE or getattr(field.annotation, "__origin__", None) is dict:
        return None
    return field.annotation


def type_error(value: Any, declared: Any) -> tuple[str, str] | None:
    """Where and why a JSON value is not of its declared type (msgspec's `a[0].b` location, "" for
    the whole value, and its message), or None when it is."""
    try:
        msgspec.convert(value, declared)  # strict: JSON types only, as a JSON decoder would
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _ERROR_AT.search(text)
        return (found.group(1) if found else ""), (text[: found.start()] if found else text)
    return None


def check_declared_type(value: Any, declared: Any) -> None:
    """Raise ValidationException, naming the field, for a value not of its declared JSON type."""
    error = type_error(value, declared)
    if error is not None:
        key = error[0] or "data"
        raise ValidationException(detail=f"{key}: {error[1]}",
                                  extra=[{"source": "body", "key": key, "message": error[1]}])


class CheckedRequest(Request):
    """The request class of both apps: its JSON body is checked as soon as it is decoded."""

    __slots__ = ()
    check_declared_type = staticmethod(check_declared_type)  # the Immich app words its errors its own way

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:  # the decoder's own limit (~1,000 levels) is hit before ours is seen
            raise _invalid((), f"JSON is nested more than {MAX_JSON_DEPTH} levels deep") from None
        check_json(value)
        declared = _declared_body(self)
        if declared is not None:
            self.check_declared_type(value, declared)
        return value


def reject_nul_in_url(app: ASGIApp) -> ASGIApp:
    """Middleware: a %00 in the path or query string is refused before the handler runs.

    It only looks at the URL (no body is read), so it costs nothing ahead of authentication.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if "\x00" in scope.get("path", ""):
                raise ValidationException(
                    detail="path: must not contain NUL (U+0000) characters",
                    extra=[{"source": "path", "message": "must not contain NUL (U+0000) characters"}],
                )
            query = scope.get("query_string", b"")
            if b"%00" in query and b"\x00" in unquote_to_bytes(query):
                name = next((k for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
                             if "\x00" in k or "\x00" in v), "query")
                name = _printable(name)
                raise ValidationException(
                    detail=f"{name}: must not contain NUL (U+0000) characters",
                    extra=[{"source": "query", "key": name, "message": "must not contain NUL (U+0000) characters"}],
                )
        await app(scope, receive, send)

    return middleware
