import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, get
from litestar.params import Parameter

from app.api.params import list_param, listed, optional_datetime
from app.db import engine as db
from app.api import ids
from app.domain import access, events
from app.domain.access import Principal
from app.domain.errors import BadRequest

_PREFIX = {
    "asset": ids.ASSET,
    "metadata": ids.ASSET,
    "album": ids.ALBUM,
    "album_asset": ids.ALBUM_ASSET,
    "stack": ids.STACK,
    "person": ids.PERSON,
    "face": ids.FACE,
    "library": ids.LIBRARY,
}
# Payloads store bare UUIDs; the native feed shows each as the prefixed id of what it names.
_PAYLOAD_PREFIX = {
    "album_id": ids.ALBUM,
    "asset_id": ids.ASSET,
    "album_cover_asset_id": ids.ASSET,
    "person_id": ids.PERSON,
    "previous_person_id": ids.PERSON,
    "stack_id": ids.STACK,
}


def native_payload(stored: bytes | str | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    payload = msgspec.json.decode(stored)
    for key, value in payload.items():
        prefix = _PAYLOAD_PREFIX.get(key)
        if prefix is not None and value is not None:
            payload[key] = ids.encode(prefix, uuid.UUID(value))
    return payload


class Event(msgspec.Struct):
    cursor: str
    entity_type: str
    entity_id: str
    event_type: str
    created_at: datetime
    payload: dict[str, Any] | None


class EventsPage(msgspec.Struct):
    data: list[Event]
    has_more: bool
    next_cursor: str | None
    as_of: str


@get("/api/events", action=access.READ)
async def get_events(
    request: Request,
    principal: Principal,
    library_id: str | None = None,
    after_cursor: str | None = None,
    as_of: str | None = None,
    created_at_gte: str | None = None,
    created_at_lt: str | None = None,
    limit: int = Parameter(default=20, ge=1, le=200),
    entity_types: list[str] | None = listed("entity_types", "Only events about these kinds of entity."),
) -> EventsPage:
    types = list_param(request, "entity_types")
    if types is not None:
        unknown = set(types) - set(events.FEED_ENTITY_TYPES)
        if unknown:
            raise BadRequest(f"Unknown entity_types: {', '.join(sorted(unknown))}")
    named = ids.decode(ids.LIBRARY, library_id) if library_id else None
    library = await access.library_for(principal, named, access.READ)
    after = events.decode_cursor(after_cursor) if after_cursor else None
    horizon = events.decode_horizon(as_of) if as_of else None
    async with db.connection() as conn:
        rows, has_more, bound = await events.read_feed(
            conn,
            library_id=library,
            after=after,
            horizon=horizon,
            entity_types=types,
            created_at_gte=optional_datetime(created_at_gte, "created_at_gte"),
            created_at_lt=optional_datetime(created_at_lt, "created_at_lt"),
            limit=limit,
        )
    data = [
        Event(
            cursor=events.encode_cursor(r["txid"], r["id"]),
            entity_type=r["entity_type"],
            entity_id=ids.encode(_PREFIX[r["entity_type"]], r["entity_id"]),
            event_type=r["event_type"],
            created_at=r["created_at"],
            payload=native_payload(r["payload"]),
        )
        for r in rows
    ]
    next_cursor = data[-1].cursor if data else after_cursor
    return EventsPage(data=data, has_more=has_more, next_cursor=next_cursor, as_of=events.encode_horizon(bound))
