"""Immich 3.x validates input with zod and answers 400 {"message": "Validation failed", "errors": [issue...]}.

Each issue here has the shape and the English text zod gives it (`code`, `path`, `message`, and the
code's own fields), so clients that show or match Immich's messages see the same ones. The issue for a
body field is worked out from the field's declared DTO type (with the spec's rules on it, see
tools/gen_immich_dtos.py) and the value that was sent.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from functools import lru_cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.params import ParameterKwarg
from msgspec import inspect as mi

from app.api.body_limits import CheckedRequest, type_error
from app.domain.system_config_schema import received as zod_received

# The pattern the spec (and Immich's z.uuidv4()) gives every id.
UUID_PATTERN = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12})$"
# The spec's email pattern (zod's HTML5 one, which Immich's toEmail uses).
EMAIL_PATTERN = (r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                 r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
MISSING = object()  # a field absent from the body: zod says it received `undefined`

Path = list[str | int]


def received(value: Any) -> str:
    """zod's name for what it was given; an absent field is `undefined`."""
    return "undefined" if value is MISSING else zod_received(value)


def invalid_type(expected: str, value: Any, path: Path) -> dict:
    return {"expected": expected, "code": "invalid_type", "path": path,
            "message": f"Invalid input: expected {expected}, received {received(value)}"}


def invalid_option(values: list, path: Path) -> dict:
    if len(values) == 1:
        message = f"Invalid input: expected {json.dumps(values[0])}"
    else:
        message = "Invalid option: expected one of " + "|".join(json.dumps(v) for v in values)
    return {"code": "invalid_value", "values": list(values), "path": path, "message": message}


def invalid_uuid(path: Path) -> dict:
    return {"origin": "string", "code": "invalid_format", "format": "uuid", "pattern": UUID_PATTERN,
            "path": path, "message": "Invalid UUID"}


def _typeof(value: Any) -> str:
    """JavaScript's typeof, which Immich's date helpers name in their messages."""
    return {"null": "object", "array": "object", "NaN": "number"}.get(received(value), received(value))


def invalid_datetime(value: Any, path: Path) -> dict:
    return {"origin": "string", "code": "invalid_format", "format": "datetime", "path": path,
            "message": f"Invalid input: expected ISO 8601 datetime string, received {_typeof(value)}"}


def invalid_date(value: Any, path: Path) -> dict:
    return {"origin": "string", "code": "invalid_format", "format": "date", "path": path,
            "message": f"Invalid input: expected ISO date string (YYYY-MM-DD), received {_typeof(value)}"}


def out_of_range(origin: str, bound: float, too_big: bool, path: Path) -> dict:
    unit = {"string": " characters", "array": " items"}.get(origin)
    relation = "<=" if too_big else ">="
    text = f"to have {relation}{_number(bound)}{unit}" if unit else f"to be {relation}{_number(bound)}"
    word, code, key = ("big", "too_big", "maximum") if too_big else ("small", "too_small", "minimum")
    return {"origin": origin, "code": code, key: bound, "inclusive": True, "path": path,
            "message": f"Too {word}: expected {origin} {text}"}


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def parse_path(text: str) -> Path:
    """msgspec's `a[0].b` location as zod's path list ["a", 0, "b"]."""
    path: Path = []
    for part in text.replace("[", ".[").split("."):
        if not part:
            continue
        path.append(int(part[1:-1]) if part.startswith("[") else part)
    return path


def value_at(body: Any, path: Path) -> Any:
    for part in path:
        try:
            body = body[part]
        except (KeyError, IndexError, TypeError):
            return MISSING
    return body


def body_issue(declared: Any, body: Any, path: Path, missing_field: str | None = None) -> dict | None:
    """The issue zod reports for the body field at `path` (a struct field that is missing when
    `missing_field` is given), or None when the declared type cannot be followed there."""
    node = mi.type_info(declared)
    if missing_field is not None:
        path = [*path, missing_field]
    for part in path:
        node = _step(node, part)
        if node is None:
            return None
    return _leaf_issue(node, value_at(body, path), path)


def _options(node: mi.Type) -> list[mi.Type]:
    types = node.types if isinstance(node, mi.UnionType) else (node,)
    return [t for t in types if not isinstance(t, mi.NoneType)]  # UNSET is no type here: just not required


def _step(node: mi.Type, part: str | int) -> mi.Type | None:
    for option in _options(node):
        if isinstance(option, mi.StructType) and isinstance(part, str):
            for field in option.fields:
                if field.encode_name == part:
                    return field.type
        if isinstance(option, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)) and isinstance(part, int):
            return option.item_type
        if isinstance(option, mi.DictType) and isinstance(part, str):
            return option.value_type
    return None


@lru_cache(maxsize=1)
def _enum_orders() -> dict[frozenset, list]:
    from compat import dtos

    return {frozenset(get_args(v)): list(get_args(v)) for v in vars(dtos).values() if get_origin(v) is Literal}


def _spec_order(values: tuple) -> list:
    """An enum's values in the spec's order (msgspec sorts them), which is the order Immich lists them in."""
    return _enum_orders().get(frozenset(values), list(values))


_EXPECTED = {mi.StrType: "string", mi.IntType: "number", mi.FloatType: "number", mi.BoolType: "boolean",
             mi.ListType: "array", mi.StructType: "object", mi.DictType: "record"}
_JSON_KIND = {"string": "string", "number": "number", "boolean": "boolean", "array": "array",
              "object": "object", "record": "object"}  # what `received` says of a value of that type
_ORIGIN = {mi.StrType: "string", mi.IntType: "number", mi.FloatType: "number", mi.ListType: "array"}


def _leaf_issue(node: mi.Type, value: Any, path: Path) -> dict:
    options = _options(node)
    nullable = isinstance(node, mi.UnionType) and any(isinstance(t, mi.NoneType) for t in node.types)
    kind = options[0] if options else node
    if isinstance(kind, mi.LiteralType):
        return invalid_option(_spec_order(kind.values), path)
    if isinstance(kind, mi.DateTimeType):
        return invalid_datetime(value, path)
    if isinstance(kind, mi.DateType):
        return invalid_date(value, path)
    expected = _EXPECTED.get(type(kind), "unknown")
    if isinstance(kind, mi.IntType) and isinstance(value, float) and not value.is_integer():
        return {**invalid_type("int", value, path), "format": "safeint"}
    if value is MISSING or (value is None and not nullable) or received(value) != _JSON_KIND.get(expected):
        return invalid_type(expected, value, path)
    return _rule_issue(kind, value, path)


def _rule_issue(kind: mi.Type, value: Any, path: Path) -> dict:
    """The value is of the right type, so one of the spec's rules on it failed."""
    origin = _ORIGIN.get(type(kind), "value")
    size = len(value) if isinstance(value, (str, list)) else value
    low = getattr(kind, "ge", None) if origin == "number" else getattr(kind, "min_length", None)
    high = getattr(kind, "le", None) if origin == "number" else getattr(kind, "max_length", None)
    if low is not None and size < low:
        return out_of_range(origin, low, False, path)
    if high is not None and size > high:
        return out_of_range(origin, high, True, path)
    pattern = getattr(kind, "pattern", None)
    if pattern is not None:
        return pattern_issue(pattern, path)
    return {"code": "custom", "path": path, "message": "Invalid input"}


def pattern_issue(pattern: str, path: Path) -> dict:
    """zod's issue for a string not matching the spec's pattern (an id, an e-mail or a plain regex)."""
    if pattern == UUID_PATTERN:
        return invalid_uuid(path)
    if pattern == EMAIL_PATTERN:
        return {"origin": "string", "code": "invalid_format", "format": "email", "path": path,
                "message": "Invalid input: expected email, received string"}
    return {"origin": "string", "code": "invalid_format", "format": "regex", "pattern": pattern, "path": path,
            "message": f"Invalid string: must match pattern /{pattern}/"}


def matches(pattern: str, value: str) -> bool:
    """JavaScript's test of a spec pattern: ASCII \\d, and `$` only at the very end (Python's `$` also
    matches before a final newline, so msgspec's pattern check lets "a@b.c\\n" through)."""
    return re.fullmatch(pattern, value, re.ASCII) is not None


def from_msgspec(declared: Any, body: Any, error: msgspec.ValidationError | str, where: str) -> dict:
    """The zod issue for a body msgspec refused with `error` at `where` (its `$.a[0].b` location)."""
    text = str(error)
    path = parse_path(where)
    missing = None
    if text.startswith("Object missing required field `"):
        missing = text.split("`")[1]
    issue = body_issue(declared, body, path, missing)
    if issue is None:
        return {"code": "custom", "path": path + ([missing] if missing else []), "message": text}
    return issue


def failed(*issues: dict) -> ValidationException:
    """Immich's 400 "Validation failed" with these issues (compat/errors.py renders it)."""
    return ValidationException(detail="Validation failed", extra=list(issues))


def parse_uuid(value: Any, *path: str | int) -> uuid.UUID:
    """An Immich id (a path parameter `id` unless named otherwise): a UUID v4, as Immich's z.uuidv4()."""
    if is_uuid(value):
        return uuid.UUID(value)
    raise failed(invalid_uuid(list(path) or ["id"]))


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(UUID_PATTERN, value) is not None


class ImmichRequest(CheckedRequest):
    """The Immich app's request class: a body not of its DTO's type fails with zod's issue for it."""

    __slots__ = ()

    @staticmethod
    def check_declared_type(value: Any, declared: Any) -> None:
        error = type_error(value, declared)
        if error is not None:
            issues: list[dict] = []
            _collect(declared, declared, value, value, [], issues)
            raise failed(*(issues or [from_msgspec(declared, value, error[1], error[0])]))


def _collect(root: Any, declared: Any, root_body: Any, value: Any, path: Path, out: list[dict]) -> None:
    """Every issue in `value` (at `path` of the body), as zod lists them all where msgspec stops at the first."""
    error = type_error(value, declared)
    if error is None:
        return
    found = len(out)
    struct, item = _inner(declared)
    if struct is not None and isinstance(value, dict):
        for f in msgspec.structs.fields(struct):
            if f.encode_name in value:
                _collect(root, f.type, root_body, value[f.encode_name], [*path, f.encode_name], out)
            elif f.required:
                out.append(body_issue(root, root_body, path, f.encode_name) or
                           invalid_type("value", MISSING, [*path, f.encode_name]))
    elif item is not None and isinstance(value, list):
        for i, element in enumerate(value):
            _collect(root, item, root_body, element, [*path, i], out)
    if len(out) == found:  # the value itself, not something inside it
        out.append(from_msgspec(root, root_body, error[1], _where(path, error[0])))


def _where(path: Path, inner: str) -> str:
    """msgspec's location of an error found in the value at `path`."""
    prefix = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return prefix + (("." if inner and not inner.startswith("[") and prefix else "") + inner)


def _inner(declared: Any) -> tuple[Any, Any]:
    """The struct class, or the list item type, that a (possibly optional, constrained) type declares."""
    for option in get_args(declared) if get_origin(declared) in (Union, UnionType) else (declared,):
        if get_origin(option) is Annotated:
            option = get_args(option)[0]
        if isinstance(option, type) and issubclass(option, msgspec.Struct):
            return option, None
        if get_origin(option) is list:
            return None, get_args(option)[0]
    return None, None


_NO_VALUE = object()


def _query_issue(annotation: Any, value: Any, key: str, kwarg: Any = None) -> dict | None:
    """zod's issue for one query parameter, held to Immich's rules for its declared type (and the
    range its Parameter(ge=..., le=...) declares)."""
    kinds = [a for a in (get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,))
             if a is not type(None)]
    if len(kinds) != 1:
        return None
    kind = kinds[0]
    if value is _NO_VALUE:
        return invalid_type("boolean" if kind is bool else "number" if kind in (int, float) else "string",
                            MISSING, [key])
    if kind is bool and value not in ("true", "false"):
        return invalid_option(["true", "false"], [key])  # Immich's stringbool: exactly "true" or "false"
    if get_origin(kind) is Literal and value not in get_args(kind):
        return invalid_option(list(get_args(kind)), [key])
    if kind in (int, float):
        try:
            number = float(value)
        except ValueError:
            return invalid_type("number", math.nan, [key])
        low, high = getattr(kwarg, "ge", None), getattr(kwarg, "le", None)
        if low is not None and number < low:
            return out_of_range("number", low, False, [key])
        if high is not None and number > high:
            return out_of_range("number", high, True, [key])
    return None


def _listed_options(annotation: Any) -> tuple | None:
    """The options of a query parameter that is a list of an enum (Immich: one value or many)."""
    for kind in get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,):
        if get_origin(kind) is list and get_origin(get_args(kind)[0]) is Literal:
            return get_args(get_args(kind)[0])
    return None


def invalid_union(path: Path) -> dict:
    """zod's issue when a value fits none of a union's options (Immich's `one value or a list of them`)."""
    return {"code": "invalid_union", "errors": [], "path": path, "message": "Invalid input"}


async def check_query(request: Request) -> None:
    """before_request: the route's query parameters (bool, number, enum, required) fail as Immich's
    query DTOs fail, before Litestar's laxer parsing ("1" and "yes" as true) sees them."""
    handler = request.route_handler
    skip = set(request.path_params) | set(handler.resolve_dependencies())
    issues = []
    for name, definition in handler.parsed_fn_signature.parameters.items():
        if name in request.path_params:
            if get_origin(definition.annotation) is Literal and request.path_params[name] not in get_args(
                    definition.annotation):  # a path enum, such as a queue's name
                issues.append(invalid_option(list(get_args(definition.annotation)), [name]))
            continue
        kwarg = definition.kwarg_definition
        if name in skip or name in _RESERVED or (kwarg is not None and not isinstance(kwarg, ParameterKwarg)):
            continue
        if kwarg is not None and (kwarg.header or kwarg.cookie):
            continue
        key = (kwarg and (getattr(kwarg, "name", None) or kwarg.query)) or name  # its alias, if it has one
        value = request.query_params.get(key, _NO_VALUE)
        if value is _NO_VALUE and definition.has_default:
            continue
        listed = _listed_options(definition.annotation)
        if listed is not None:
            if any(v not in listed for v in request.query_params.getall(key)):
                issues.append(invalid_union([key]))
            continue
        issue = _query_issue(definition.annotation, value, key, kwarg)
        if issue is not None:
            issues.append(issue)
    if issues:
        raise failed(*issues)


_RESERVED = {"request", "data", "state", "scope", "headers", "cookies", "query", "body", "socket"}
