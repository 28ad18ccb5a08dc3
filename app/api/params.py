"""Query-parameter conventions of the native API (repeated or comma-joined lists, includes)."""

from __future__ import annotations

from datetime import datetime

from litestar import Request

from app.domain.datetimes import parse_iso
from app.domain.errors import Invalid

ASSET_INCLUDES = frozenset({"metadata", "faces", "people", "file_data", "variants"})


def split_list(values: list[str] | None) -> list[str] | None:
    """`ids=a&ids=b` and `ids=a,b` (and `ids[]=a`) mean the same."""
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def list_param(request: Request, name: str) -> list[str] | None:
    values = request.query_params.getall(name, []) + request.query_params.getall(f"{name}[]", [])
    return split_list(values) if values else None


def check_includes(include: list[str] | None) -> None:
    unknown = set(include or []) - ASSET_INCLUDES
    if unknown:
        raise Invalid(f"Unknown include token(s): {', '.join(sorted(unknown))}", loc=("query", "include"))


def optional_datetime(value: str | None, name: str) -> datetime | None:
    return None if value is None else parse_iso(value, name, "query")


def base_url(request: Request, public_url: str | None) -> str:
    return public_url or str(request.base_url).rstrip("/")
