"""One month of a timeline as columns (a list per field, an entry per asset), shaped in the database.

The web client's timeline reads a month at a time and wants a handful of fields per asset. Reading
whole rows (assets, file metadata, files) and building each asset's full answer to keep six of its
fields cost most of that request's time, so this reads exactly those fields with one statement over
every library the caller shows: the filters' own WHERE clauses (app/domain/asset_filters.py, so the
tenancy, visibility, trash, album and tag rules stay in one place), the effective values from
app/domain/effective.py, the stack sizes as a subquery, and one array per field, in timeline order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from app.db import engine as db
from app.domain import effective
from app.domain.asset_filters import AssetFilter, Sql, check_references, where


def _iso_utc(column: str) -> str:
    """An instant as ISO 8601 in UTC with a Z, with microseconds only when it has some (Python's isoformat)."""
    return f"(replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || 'Z')"


# Per asset: the sort key, then each field (name, SQL over `a` = assets and `x` = its file metadata).
_FIELDS = (
    ("id", "a.id::text"),
    ("owner_id", "a.owner_id::text"),
    # width / height when both are known, else square (float8 division rounds as Python's does).
    ("ratio", "CASE WHEN a.width <> 0 AND a.height <> 0 THEN a.width::float8 / a.height ELSE 1.0::float8 END"),
    ("favorite", effective.favorite_sql("a")),
    ("image", "(a.media_type = 'image')"),
    ("trashed", "(a.trashed_at IS NOT NULL)"),
    # Standard base64 on one line (PostgreSQL breaks lines every 76 characters); none for no bytes.
    ("thumbhash", "nullif(translate(encode(a.thumbhash, 'base64'), E'\\n', ''), '')"),
    ("taken_at", _iso_utc("a.taken_at")),
    ("local_offset_minutes", "a.local_offset_minutes"),
    ("duration_ms", "a.duration_ms"),
    ("projection_type", "x.projection_type"),
    ("live_photo_video_id", "a.live_photo_video_id::text"),
    ("visibility", "a.visibility"),
    ("created_at", _iso_utc("a.created_at")),
    ("stack_id", "a.stack_id::text"),
    # The stack's live members, trashed ones left out (stacks.live_counts).
    ("stack_size", "CASE WHEN a.stack_id IS NOT NULL THEN"
                   " (SELECT count(*) FROM assets s WHERE s.stack_id = a.stack_id AND s.trashed_at IS NULL) END"),
)
_PLACE_FIELDS = (
    ("latitude", effective.latitude_sql("a", "x")),
    ("longitude", effective.longitude_sql("a", "x")),
    ("city", "x.city"),
    ("country", "x.country"),
)


@dataclass
class BucketColumns:
    """Each field of the month's assets, in order; ids and instants as text (canonical UUIDs, ISO UTC with Z)."""

    id: list[str]
    owner_id: list[str]
    ratio: list[float]
    favorite: list[bool]
    image: list[bool]
    trashed: list[bool]
    thumbhash: list[str | None]  # base64
    taken_at: list[str]
    local_offset_hours: list[float | int]  # 0 where the offset is unknown
    duration_ms: list[int | None]
    projection_type: list[str | None]
    live_photo_video_id: list[str | None]
    visibility: list[str]
    created_at: list[str]
    stack: list[list[str] | None]  # [stack id, live members as text]
    # With places only: where each was taken (none for all when the caller may not see where).
    latitude: list[float | None] | None = None
    longitude: list[float | None] | None = None
    city: list[str | None] | None = None
    country: list[str | None] | None = None


def _statement(filters: list[AssetFilter], order: str, fields: tuple[tuple[str, str], ...]) -> tuple[str, list]:
    """The one statement: each filter's assets (a UNION ALL branch per library), aggregated into arrays."""
    sql = Sql()
    select = ", ".join(f"{expression} AS {name}" for name, expression in fields)
    # OFFSET 0 keeps the metadata a per-asset index lookup: flattened into a join, the planner
    # would hash the whole table's metadata for a month of assets.
    branches = [
        f"SELECT a.local_datetime AS sort_key, a.id AS sort_id, {select} FROM assets a"
        " LEFT JOIN LATERAL (SELECT x.projection_type, x.latitude, x.longitude, x.city, x.country"
        " FROM asset_exif x WHERE x.asset_id = a.id OFFSET 0) x ON true"
        f" WHERE {where(f, sql)}"
        for f in filters
    ]
    direction = "ASC" if order == "asc" else "DESC"
    # The aggregates read the rows in the subquery's order (nothing above it joins or groups), and
    # one library's month comes in that order straight from the timeline index, with no sort.
    aggregates = ", ".join(f"array_agg(m.{name}) AS {name}" for name, _ in fields)
    return (f"SELECT {aggregates} FROM ({' UNION ALL '.join(branches)}"
            f" ORDER BY sort_key {direction}, sort_id {direction}) m"), sql.args

async def bucket_columns(filters: list[AssetFilter], *, after: datetime, before: datetime, order: str = "desc",
                         with_places: bool = False, hide_places: bool = False) -> BucketColumns:
    """The assets of `filters` (one per library, disjoint) captured between the exclusive bounds, merged
    in timeline order: capture wall clock, then id, newest first unless `order` is "asc"."""
    filters = [dataclasses.replace(f, after=after, before=before) for f in filters]
    for f in filters:
        await check_references(f)
    fields = _FIELDS + (_PLACE_FIELDS if with_places and not hide_places else ())
    query, args = _statement(filters, order, fields)
    row = await db.fetchrow(query, *args)
    column = {name: row[name] or [] for name, _ in fields}
    n = len(column["id"])
    places: dict[str, list | None] = {}
    if with_places:
        for name, _ in _PLACE_FIELDS:
            places[name] = column[name] if not hide_places else [None] * n
    return BucketColumns(
        id=column["id"], owner_id=column["owner_id"], ratio=column["ratio"], favorite=column["favorite"],
        image=column["image"], trashed=column["trashed"], thumbhash=column["thumbhash"], taken_at=column["taken_at"],
        local_offset_hours=[0 if m is None else m / 60 for m in column["local_offset_minutes"]],
        duration_ms=column["duration_ms"], projection_type=column["projection_type"],
        live_photo_video_id=column["live_photo_video_id"], visibility=column["visibility"],
        created_at=column["created_at"],
        stack=[None if s is None else [s, str(size)] for s, size in zip(column["stack_id"], column["stack_size"])],
        **places,
    )
