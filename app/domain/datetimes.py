"""Capture-time conventions: a wall-clock value plus an optional UTC offset."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

from app.domain.errors import Invalid


MAX_OFFSET = timedelta(hours=18)  # what real time zones (and our schema) allow


def parse_iso(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise Invalid(f"'{value}' is not an ISO 8601 datetime", field) from None
    offset = parsed.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        raise Invalid(f"'{value}' has a UTC offset beyond ±18:00", field)
    if not 1000 <= parsed.year <= 9000:
        raise Invalid(f"'{value}' is out of the supported range of years", field)
    return parsed


def split_wall_clock(value: datetime) -> tuple[datetime, int | None]:
    """(naive wall-clock time, offset in minutes or None when the value is naive)."""
    if value.tzinfo is None:
        return value, None
    offset = value.utcoffset()
    return value.replace(tzinfo=None), int(offset.total_seconds() // 60)


def join_wall_clock(wall: datetime, offset_minutes: int | None) -> datetime:
    """The inverse: an aware datetime when the offset is known, naive otherwise."""
    if offset_minutes is None:
        return wall
    return wall.replace(tzinfo=_offset(offset_minutes))


@functools.lru_cache(maxsize=256)
def _offset(minutes: int) -> timezone:
    # One object per offset: pages of hundreds of assets join a wall clock each.
    return timezone(timedelta(minutes=minutes))


def as_utc_instant(value: datetime) -> datetime:
    """Store naive inputs as UTC instants (timestamptz needs one)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def from_instant(instant: datetime, offset_minutes: int | None) -> datetime:
    """An instant shown in its original offset, or as naive UTC when there was none."""
    if offset_minutes is None:
        return instant.astimezone(timezone.utc).replace(tzinfo=None)
    return instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
