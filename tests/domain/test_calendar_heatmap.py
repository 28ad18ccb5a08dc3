"""Immich's calendar heatmap (app/domain/calendar_heatmap.py): one count per UTC day."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from app.domain import calendar_heatmap as heatmap
from app.domain.errors import Forbidden, Invalid
from tests.domain import factories as f

DAY = date(2024, 3, 10)


def utc(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


async def test_uploads_and_captures_count_on_their_own_days():
    row = await f.new_user()
    me = f.principal_for(row)
    # Taken on the 9th (local wall clock), uploaded on the 10th late in the UTC day.
    await f.new_asset(row, taken=datetime(2024, 3, 9, 23, 30), created_at=utc(DAY, 23))
    await f.new_asset(row, taken=datetime(2024, 3, 10, 8, 0), created_at=utc(DAY, 9))
    await f.new_asset(row, taken=datetime(2024, 3, 10, 9, 0), created_at=utc(DAY, 10), trashed_at=utc(DAY, 11))
    await f.new_asset(row, taken=datetime(2024, 3, 10, 9, 0), created_at=utc(DAY, 10), visibility="locked")
    await f.new_asset(await f.new_user(), taken=datetime(2024, 3, 10, 9, 0), created_at=utc(DAY, 10))

    uploads = await heatmap.my_heatmap(me, heatmap.UPLOAD, date(2024, 3, 8), date(2024, 3, 11))
    assert uploads.series == [(date(2024, 3, 8), 0), (date(2024, 3, 9), 0), (DAY, 2), (date(2024, 3, 11), 0)]
    assert uploads.total == 2
    taken = await heatmap.my_heatmap(me, heatmap.TAKEN, date(2024, 3, 9), DAY)
    assert taken.series == [(date(2024, 3, 9), 1), (DAY, 1)]
    # The locked one counts only for its owner's unlocked session, never for an administrator.
    unlocked = await heatmap.my_heatmap(replace(me, elevated=True), heatmap.TAKEN, DAY, DAY)
    assert unlocked.series == [(DAY, 2)]
    admin = replace(f.principal_for(await f.new_user(is_admin=True)), elevated=True)
    assert (await heatmap.user_heatmap(admin, row["id"], heatmap.TAKEN, DAY, DAY)).series == [(DAY, 1)]
    with pytest.raises(Forbidden):
        await heatmap.user_heatmap(me, row["id"], heatmap.UPLOAD, DAY, DAY)


def test_the_default_period_is_52_weeks_ending_today():
    start, end = heatmap.period(None, None, today=date(2025, 1, 31))
    assert (start, end) == (date(2024, 2, 3), date(2025, 1, 31)) and (end - start).days + 1 == 364
    assert heatmap.period(date(2025, 1, 1), None, today=date(2025, 1, 31)) == (date(2025, 1, 1), date(2025, 1, 31))
    with pytest.raises(Invalid):
        heatmap.period(date(1900, 1, 1), date(2025, 1, 1))
    assert heatmap.period(None, date(1, 1, 2)) == (date(1, 1, 1), date(1, 1, 2))


async def test_an_empty_or_reversed_period_has_no_days():
    me = f.principal_for(await f.new_user())
    assert (await heatmap.my_heatmap(me, heatmap.UPLOAD, DAY, date(2024, 3, 1))).series == []


async def test_a_key_limited_to_one_library_counts_only_its_photos():
    row = await f.new_user()
    other = await f.new_library(row)
    await f.new_asset(row, taken=datetime(2024, 3, 10, 8, 0), created_at=utc(DAY, 9))
    await f.new_asset(row, taken=datetime(2024, 3, 10, 8, 0), created_at=utc(DAY, 9), library_id=other["id"])
    assert (await heatmap.my_heatmap(f.principal_for(row), heatmap.UPLOAD, DAY, DAY)).total == 2
    keyed = f.principal_for(row, library_scope=frozenset({row["default_library_id"]}))
    assert (await heatmap.my_heatmap(keyed, heatmap.UPLOAD, DAY, DAY)).total == 1
