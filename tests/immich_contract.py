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


def _template_of(path: str, method: str) -> str | None:
    """The spec's path template a concrete `/api/...` path matches, e.g. /albums/{id}/users."""
    parts = path.removeprefix("/api").strip("/").split("/")
    for template, operations in spec()["paths"].items():
        if method.lower() not in operations:
            continue
        pieces = template.strip("/").split("/")
        if len(pieces) == len(parts) and all(p == q or (p.startswith("{") and p.endswith("}"))
                                             for p, q in zip(pieces, parts)):
            return template
    return None


def validate_response(response) -> None:
    """Check one httpx response of the Immich listener: a 2xx JSON body must match the spec's schema for
    its operation (the schema of the operation's only JSON success status, for a status the spec does
    not list, such as a 200 for a like that already existed)."""
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    if not 200 <= response.status_code < 300 or media_type != "application/json":
        return  # no body to check, or not JSON (the sync stream's lines are checked line by line)
    method, path = response.request.method, response.request.url.path
    template = _template_of(path, method)
    assert template is not None, f"{method} {path} is not in the Immich spec"
    statuses = [s for s, r in spec()["paths"][template][method.lower()]["responses"].items()
                if s.startswith("2") and "application/json" in r.get("content", {})]
    status = str(response.status_code) if str(response.status_code) in statuses else None
    if status is None:
        assert len(statuses) == 1, f"{method} {template} answered {response.status_code}, spec has {statuses}"
        status = statuses[0]
    validate(template, method, int(status), response.json())


def checked_client(**kwargs):
    """An httpx.Client whose every 2xx JSON response is validated against the spec as it arrives."""
    import httpx

    def hook(response):
        response.read()
        validate_response(response)

    return httpx.Client(event_hooks={"response": [hook]}, **kwargs)
