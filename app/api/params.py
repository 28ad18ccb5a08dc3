"""Query and form conventions of the native API: repeated or comma-joined lists, includes, filters."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from litestar import Request
from litestar.di import Provide
from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import QueryParameter

from app.api.errors import InputError
from app.api import ids
from app.domain import access
from app.domain.access import Principal
from app.domain.asset_filters import AssetFilter, BBox
from app.domain.datetimes import parse_iso
from app.domain.errors import Invalid, NotFound

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


# Declared query parameters: what the OpenAPI document says the SDK may send.
_NULL = Schema(type=OpenAPIType.NULL)
STRING, NUMBER, INTEGER = (Schema(type=t) for t in (OpenAPIType.STRING, OpenAPIType.NUMBER, OpenAPIType.INTEGER))
INTEGERS, STRINGS = Schema(type=OpenAPIType.ARRAY, items=INTEGER), Schema(type=OpenAPIType.ARRAY, items=STRING)


def one_of(*choices: str) -> Schema:
    return Schema(type=OpenAPIType.STRING, enum=list(choices))


def documented(name: str, schema: Schema, description: str) -> Any:
    """The default of a query parameter `name` that a route declares as text (`str | None`, or `list[str] | None`
    for a list) for the OpenAPI document only. The document gives `schema`, the type the SDK sends; Litestar's
    parsing of text never fails, and the route reads and checks the raw values itself (list_param, asset_filter,
    int_param), with its own messages and forms (`a,b`, `name[]=`, an empty value). The handler's argument may
    go by another name, where the query's is one Litestar reserves (`state`, `query`) or the module uses (`ids`)."""
    if schema.type == OpenAPIType.ARRAY:
        description += f" Repeat the parameter, join values with commas, or use {name}[]=."
    return QueryParameter(name=name, default=None, description=description, schema_extra={"one_of": [schema, _NULL]})


def listed(name: str, description: str) -> Any:
    """A list of strings read by list_param, e.g. `ids` or `include`, declared as `list[str] | None`."""
    return documented(name, STRINGS, description)


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
    return None if value is None else parse_iso(value, name)


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


def library_uuid(value: Any) -> uuid.UUID | None:
    """The library a request names by its native id (None: the caller's only one). A malformed id,
    or whatever other JSON type a body put there, names no library: 404."""
    return ids.decode(ids.LIBRARY, value) if value else None


def body_asset_ids(values: list[str], field: str) -> list[uuid.UUID]:
    """Asset ids listed in a request body: at most MAX_IDS, and a malformed one is a 422 naming the field."""
    if len(values) > MAX_IDS:
        raise InputError(f"At most {MAX_IDS} ids per request", "body", field)
    out = []
    for value in values:
        decoded = ids.try_decode(ids.ASSET, value)
        if decoded is None:
            raise InputError(f"'{value}' is not a valid asset id", "body", field)
        out.append(decoded)
    return out


# The native id prefix of each kind of object a domain NotFound may name.
_PREFIXES = {"asset": ids.ASSET, "album": ids.ALBUM, "person": ids.PERSON, "face": ids.FACE, "stack": ids.STACK,
             "library": ids.LIBRARY}


@contextmanager
def native_ids_in_errors() -> Iterator[None]:
    """The domain names a missing object by its UUID; the native API says "Asset asset_XXXX not found"."""
    try:
        yield
    except NotFound as exc:
        prefix = _PREFIXES.get(exc.kind or "")
        if prefix is None or not exc.ids:
            raise
        raise NotFound(f"{exc.kind.capitalize()} {ids.encode(prefix, exc.ids[0])} not found",
                       kind=exc.kind, ids=exc.ids) from None


def parse_bbox(text: str, name: str = "bbox") -> BBox:
    try:
        west, south, east, north = (float(p) for p in text.split(","))
    except ValueError:
        raise InputError("bbox must be min_longitude,min_latitude,max_longitude,max_latitude", "query", name) from None
    return BBox(west, south, east, north)


def parse_center(text: str) -> tuple[float, float]:
    try:
        lon, lat = (float(p) for p in text.split(","))
    except ValueError:
        raise InputError("center must be longitude,latitude", "query", "center") from None
    return lon, lat


# Filter fields whose query parameter has another name.
_FILTER_PARAMS = {"radius_m": "radius", "after": "local_datetime_after", "before": "local_datetime_before"}


@contextmanager
def filter_errors() -> Iterator[None]:
    """A filter's (or a filtered query's) own checks, named as the query parameters that gave its values."""
    try:
        yield
    except Invalid as exc:
        if isinstance(exc, InputError):
            raise
        field = [_FILTER_PARAMS.get(str(exc.field[0]), exc.field[0]), *exc.field[1:]] if exc.field else []
        raise InputError(exc.detail, "query", tuple(field)) from None


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
    library_id = await access.library_for(principal, library_uuid(_one(values, "library_id")), access.READ)
    f = AssetFilter(
        library_id=library_id,
        elevated=principal.elevated,
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
    with filter_errors():
        f.validate()
    return f


async def _filter_values(
    request: Request,
    # Handler-side names differ where the query's name is one Litestar reserves (state) or this module uses (ids).
    library: str | None = documented("library_id", STRING, "The library to read (default: the caller's only one)."),
    state_filter: str | None = documented("state", one_of("live", "trashed", "all"),
                                          "Live assets (the default), trashed ones, or all."),
    asset_ids: list[str] | None = documented("ids", STRINGS, "Only these assets, by id (at most 200)."),
    local_datetime_after: str | None = documented("local_datetime_after", STRING,
                                                  "Only assets taken after this time (ISO 8601, offset optional)."),
    local_datetime_before: str | None = documented("local_datetime_before", STRING,
                                                   "Only assets taken before this time (ISO 8601, offset optional)."),
    media_type: str | None = documented("media_type", one_of("image", "video"), "Only images, or only videos."),
    ratings: list[str] | None = documented("ratings", INTEGERS, "Only assets with these ratings, 0 to 5."),
    album_id: str | None = documented("album_id", STRING, "Only the assets of this album."),
    album_filter: str | None = documented("album_filter", one_of("all", "in_album", "not_in_album"),
                                          "All assets (the default), those in some album, or those in none."),
    person_ids: list[str] | None = documented("person_ids", STRINGS, "Only assets showing every one of these people."),
    stack_id: str | None = documented("stack_id", STRING, "Only the assets of this stack."),
    bbox: str | None = documented("bbox", STRING, "Only assets located inside min_longitude,min_latitude,"
                                                  "max_longitude,max_latitude."),
    center: str | None = documented("center", STRING, "With radius: only assets located near longitude,latitude."),
    radius: str | None = documented("radius", NUMBER, "With center: the distance from it, in meters."),
) -> Values:
    """The raw query, which asset_filter reads; this signature declares the filter's parameters for the document."""
    return query_values(request)


# A route filtering assets by its query takes `filter_values: Values`, with `dependencies=ASSET_FILTER_PARAMS`.
ASSET_FILTER_PARAMS = {"filter_values": Provide(_filter_values)}
