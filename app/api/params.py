"""Query and form conventions of the native API: repeated or comma-joined lists, includes, filters."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from litestar import Request

from app.domain import access, ids
from app.domain.access import Principal
from app.domain.asset_filters import AssetFilter, parse_bbox, parse_center
from app.domain.datetimes import parse_iso
from app.api.errors import InputError

ASSET_INCLUDES = frozenset({"metadata", "faces", "people", "file_data", "variants"})
MAX_IDS = 200

# name -> every raw value given for it (query parameters or multipart fields)
Values = Callable[[str], list[str]]


def split_list(values: list[str] | None) -> list[str] | None:
    """`ids=a&ids=b`, `ids=a,b` and `ids[]=a` all mean the same."""
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def query_values(request: Request) -> Values:
    return lambda name: request.query_params.getall(name, []) + request.query_params.getall(f"{name}[]", [])


def form_values(lists: dict[str, list[str]]) -> Values:
    return lambda name: lists.get(name, []) + lists.get(f"{name}[]", [])


def list_param(request: Request, name: str) -> list[str] | None:
    values = query_values(request)(name)
    return split_list(values) if values else None


def _one(values: Values, name: str) -> str | None:
    found = values(name)
    return found[-1] if found else None


def _list(values: Values, name: str) -> list[str] | None:
    found = values(name)
    return split_list(found) if found else None


def check_includes(include: list[str] | None, allowed: frozenset[str] = ASSET_INCLUDES) -> None:
    unknown = set(include or []) - allowed
    if unknown:
        raise InputError(f"Unknown include token(s): {', '.join(sorted(unknown))}", "query", "include")


def optional_datetime(value: str | None, name: str) -> datetime | None:
    return None if value is None else parse_iso(value, name, "query")


def base_url(request: Request, public_url: str | None) -> str:
    return public_url or str(request.base_url).rstrip("/")


def int_param(values: Values, name: str, default: int, low: int, high: int) -> int:
    raw = _one(values, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name} must be an integer", "query", name) from None
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}", "query", name)
    return value


def _choice(values: Values, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    raw = _one(values, name)
    if raw is None:
        return default
    if raw not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}", "query", name)
    return raw


async def asset_filter(principal: Principal, values: Values) -> AssetFilter:
    """The filters every asset listing shares, from query parameters or form fields."""
    id_values = _list(values, "ids")
    if id_values is not None and len(id_values) > MAX_IDS:
        raise InputError(f"At most {MAX_IDS} ids", "query", "ids")
    person_values = _list(values, "person_ids")
    if person_values is not None and len(person_values) > MAX_IDS:
        raise InputError(f"At most {MAX_IDS} person ids", "query", "person_ids")
    ratings = None
    if (raw_ratings := _list(values, "ratings")) is not None:
        try:
            ratings = [int(r) for r in raw_ratings]
        except ValueError:
            raise InputError("ratings must be integers from 0 to 5", "query", "ratings") from None
    radius = _one(values, "radius")
    try:
        radius_m = None if radius in (None, "") else float(radius)
    except ValueError:
        raise InputError("radius must be a number of meters", "query", "radius") from None
    album = _one(values, "album_id")
    stack = _one(values, "stack_id")
    bbox = _one(values, "bbox")
    center = _one(values, "center")
    library_id = await access.library_for(principal, _one(values, "library_id") or None, access.READ)
    f = AssetFilter(
        library_id=library_id,
        state=_choice(values, "state", ("live", "trashed", "all"), "live"),
        ids=None if id_values is None else [ids.decode_filter(ids.ASSET, i, "ids") for i in id_values],
        after=optional_datetime(_one(values, "local_datetime_after"), "local_datetime_after"),
        before=optional_datetime(_one(values, "local_datetime_before"), "local_datetime_before"),
        media_type=_choice(values, "media_type", ("image", "video"), None),
        ratings=ratings,
        album_id=None if not album else ids.decode(ids.ALBUM, album),
        album_filter=_choice(values, "album_filter", ("all", "in_album", "not_in_album"), "all"),
        person_ids=None if person_values is None else [ids.decode_filter(ids.PERSON, p, "person_ids")
                                                       for p in person_values],
        stack_id=None if not stack else ids.decode(ids.STACK, stack),
        bbox=parse_bbox(bbox) if bbox else None,
        center=parse_center(center) if center else None,
        radius_m=radius_m,
    )
    f.validate()
    return f
