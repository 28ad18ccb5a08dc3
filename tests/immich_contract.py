"""Checking Immich responses against the 3.1.0 OpenAPI document's schemas."""

from __future__ import annotations

import json
from functools import lru_cache

from tests.media import SHARED_ASSETS

SPEC_PATH = SHARED_ASSETS.parent / "immich" / "immich-openapi-specs.json"


@lru_cache(maxsize=1)
def spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


def response_schema(path: str, method: str, status: int) -> dict | None:
    operation = spec()["paths"][path][method.lower()]
    content = operation["responses"][str(status)].get("content", {})
    media = content.get("application/json")
    return None if media is None else media["schema"]


def validate(path: str, method: str, status: int, body) -> None:
    """Raise if `body` does not match the schema the spec gives for that operation and status."""
    from openapi_schema_validator import OAS30Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schema = response_schema(path, method, status)
    assert schema is not None, f"no JSON schema for {method} {path} {status}"
    registry = Registry().with_resource("spec", Resource.from_contents(spec(), default_specification=DRAFT4))
    wrapped = {**schema, "components": spec()["components"]}
    OAS30Validator(wrapped, registry=registry).validate(body)
