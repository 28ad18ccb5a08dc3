"""Immich DTOs as they go on the wire, checked against the Immich 3.1 OpenAPI component schemas."""

from __future__ import annotations

from typing import Any

import msgspec

from tests.immich_contract import validate_component


def wire(value: Any) -> Any:
    """What a client receives: the JSON encoding (unset fields left out, datetimes as ISO strings)."""
    return msgspec.json.decode(msgspec.json.encode(value))


def conforms(component: str, value: Any) -> dict:
    """The value's JSON, after checking it against the spec's `component` schema."""
    body = wire(value)
    validate_component(component, body)
    return body
