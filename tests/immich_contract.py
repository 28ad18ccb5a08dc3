"""Checking Immich responses against the 3.1.0 OpenAPI document's schemas.

OpenAPI 3.0 marks nullability with `nullable: true`, which plain JSON Schema does not
know; the spec is converted once (nullable X becomes anyOf [null, X]) and checked with
a standard JSON Schema validator, so required fields, types, enums and patterns all count.
"""

from __future__ import annotations

import json
from functools import lru_cache

from tests.media import SHARED_ASSETS

SPEC_PATH = SHARED_ASSETS.parent / "immich" / "immich-openapi-specs.json"


def _to_json_schema(node):
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [{"type": "null"}, converted]}
    return converted


@lru_cache(maxsize=1)
def spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


@lru_cache(maxsize=1)
def _components() -> dict:
    return _to_json_schema(spec()["components"])


def response_schema(path: str, method: str, status: int) -> dict | None:
    operation = spec()["paths"][path][method.lower()]
    media = operation["responses"][str(status)].get("content", {}).get("application/json")
    return None if media is None else _to_json_schema(media["schema"])


def validate(path: str, method: str, status: int, body) -> None:
    """Raise if `body` does not match the schema the spec gives for that operation and status."""
    from jsonschema import Draft7Validator

    schema = response_schema(path, method, status)
    assert schema is not None, f"no JSON schema for {method} {path} {status}"
    Draft7Validator({**schema, "components": _components()}).validate(body)


def validate_component(name: str, body) -> None:
    """Raise if `body` does not match the spec's component schema `name` (payloads with no
    operation of their own, such as socket.io events)."""
    from jsonschema import Draft7Validator

    schema = _components()["schemas"][name]
    Draft7Validator({**schema, "components": _components()}).validate(body)
