"""How many photos and videos an account added (or took) on each day of a period: Immich's
calendar heatmap.

Days are UTC days. "Upload" counts by when the server received the asset; "Taken" counts by its
local capture time (Immich's localDateTime), so a photo lands on the day its camera showed.
Counted are the account's own assets that are not in the trash. Locked assets count only when the
account itself asks from a session unlocked with its PIN; an administrator looking at someone else
never sees them counted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from app.db import engine as db
from app.domain.asset_filters import LOCKED
from app.domain.errors import Invalid
from app.domain.principal import READ, Principal

UPLOAD = "Upload"
TAKEN = "Taken"
DEFAULT_SPAN = timedelta(weeks=52) - timedelta(days=1)  # Immich's default: 52 weeks ending today
MAX_DAYS = 3660  # ten years a request: the answer has one entry per day

# The day an asset counts on, per type; built here, never from a caller's text.
_DAY_OF = {UPLOAD: "(a.created_at AT TIME ZONE 'UTC')", TAKEN: "a.local_datetime"}


@dataclass(frozen=True)
class Heatmap:
    start: date
    end: date
    series: list[tuple[date, int]]

    @property
    def total(self) -> int:
        return sum(count for _, count in self.series)


def period(start: date | None, end: date | None, *, today: date | None = None) -> tuple[date, date]:
    """The days asked for, with Immich's defaults: up to today, 52 weeks back from the end."""
    end = end or today or datetime.now(timezone.utc).date()
    try:
        start = start or end - DEFAULT_SPAN
    except OverflowError:  # an end in the first year of the calendar
        start = date.min
    if (end - start).days + 1 > MAX_DAYS:
        raise Invalid(f"A calendar heatmap covers at most {MAX_DAYS} days", "from")
    return start, end


async def _count(user_id: uuid.UUID, kind: str, start: date, end: date, *, with_locked: bool,
                 libraries: frozenset[uuid.UUID] | None = None) -> Heatmap:
    if kind not in _DAY_OF:
        raise Invalid("type must be one of the following values: Upload, Taken", "type")
    day = _DAY_OF[kind]
    rows = await db.fetch(
        f"""
        WITH counts AS (
            SELECT {day}::date AS day, count(*) AS n FROM assets a
            WHERE a.owner_id = $1 AND a.trashed_at IS NULL AND ($4 OR a.visibility <> '{LOCKED}')
              AND ($5::uuid[] IS NULL OR a.library_id = ANY($5::uuid[]))
              AND {day} >= $2::date AND {day} < $3::date + 1
            GROUP BY 1
        )
        SELECT d::date AS day, coalesce(c.n, 0)::bigint AS n
        FROM generate_series($2::date, $3::date, interval '1 day') d LEFT JOIN counts c ON c.day = d::date
        ORDER BY d
        """,
        user_id, start, end, with_locked, None if libraries is None else list(libraries),
    )
    return Heatmap(start, end, [(r["day"], r["n"]) for r in rows])


async def my_heatmap(principal: Principal, kind: str, start: date | None, end: date | None) -> Heatmap:
    principal.require(READ)
    # A credential limited to some libraries counts only their photos.
    return await _count(principal.user_id, kind, *period(start, end), with_locked=principal.elevated,
                        libraries=principal.library_scope)


async def user_heatmap(principal: Principal, user_id: uuid.UUID, kind: str, start: date | None,
                       end: date | None) -> Heatmap:
    """An administrator's view of an account (deleted or not); the caller checks that it exists."""
    principal.require_admin()
    return await _count(user_id, kind, *period(start, end), with_locked=False)
