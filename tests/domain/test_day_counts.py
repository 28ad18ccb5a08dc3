"""Timeline counts from the per-day counters (assets.counts without a filter the counters cannot
answer) equal the counts of a scan of the assets, for every visibility rule the timeline uses,
after inserts, visibility changes, trashing, moves in time and deletes."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from app.db import engine as db
from app.domain import assets
from app.domain.asset_filters import SHOWN, AssetFilter
from app.domain.effective import RATINGS
from tests.domain import factories as f

DAY = datetime(2022, 3, 10, 12, 0)


async def _both(flt: AssetFilter, group_by: str = "day") -> tuple[list, list]:
    """(from the counters, from a scan): the scan is forced by a ratings filter that keeps every asset
    (ratings run 0-5, unrated counting as 0)."""
    assert assets._rollup_covers(flt) and not assets._rollup_covers(dataclasses.replace(flt, ratings=list(RATINGS)))
    fast, _ = await assets.counts(flt, group_by=group_by, order="desc", limit=1000, starting_after_bucket=None)
    scan, _ = await assets.counts(dataclasses.replace(flt, ratings=list(RATINGS)), group_by=group_by,
                                  order="desc", limit=1000, starting_after_bucket=None)
    return [tuple(r) for r in fast], [tuple(r) for r in scan]


async def test_counters_answer_as_a_scan_for_every_visibility_rule():
    owner = await f.new_user()
    library = owner["default_library_id"]
    made = []
    for i, visibility in enumerate(["timeline", "timeline", "archive", "hidden", "locked", "timeline", "archive"]):
        made.append(await f.new_asset(owner, taken=DAY + timedelta(days=i % 3, hours=i), visibility=visibility,
                                      media_type="video" if i % 4 == 3 else "image"))
    await f.new_asset(owner, taken=DAY - timedelta(days=40), trashed_at=DAY)
    # Changes after the fact: the statement triggers move each asset between counters.
    await db.execute("UPDATE assets SET visibility = 'archive' WHERE id = $1", made[0]["id"])
    await db.execute("UPDATE assets SET visibility = 'timeline' WHERE id = ANY($1::uuid[])",
                     [made[2]["id"], made[6]["id"]])
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", made[1]["id"])
    await db.execute("UPDATE assets SET local_datetime = local_datetime + interval '45 days' WHERE id = $1",
                     made[5]["id"])
    await db.execute("DELETE FROM assets WHERE id = $1", made[3]["id"])

    base = AssetFilter(library_id=library)
    filters = [
        base,
        dataclasses.replace(base, visibility="timeline"),
        dataclasses.replace(base, visibility="archive"),
        dataclasses.replace(base, visibilities=SHOWN),
        dataclasses.replace(base, visibility="timeline", media_type="image"),
        dataclasses.replace(base, state="trashed"),
        dataclasses.replace(base, state="all"),
        dataclasses.replace(base, elevated=True),  # an unlocked session sees its locked assets
        dataclasses.replace(base, elevated=True, visibility="locked"),
        dataclasses.replace(base, elevated=True, through_share=True),  # never through a share
    ]
    for flt in filters:
        for group_by in ("day", "month"):
            fast, scan = await _both(flt, group_by)
            assert fast == scan, (flt, group_by)
    # The locked asset shows only to the unlocked caller; the timeline excludes the archive.
    everything, _ = await _both(dataclasses.replace(base, elevated=True, state="all"), "month")
    hidden_locked, _ = await _both(dataclasses.replace(base, state="all"), "month")
    assert sum(c for _, c in everything) == sum(c for _, c in hidden_locked) + 1
    timeline, _ = await _both(dataclasses.replace(base, visibility="timeline"), "month")
    assert sum(c for _, c in timeline) == 3  # made[2], made[5] (moved), made[6]; made[1] is trashed


async def test_counter_rows_are_kept_per_visibility():
    """The counter rows hold the same totals as the assets, per visibility."""
    owner = await f.new_user()
    for visibility in ("timeline", "archive", "hidden"):
        await f.new_asset(owner, taken=DAY, visibility=visibility)
    rows = await db.fetch("SELECT visibility, sum(count)::int AS n FROM asset_day_counts WHERE library_id = $1"
                          " GROUP BY 1 ORDER BY 1", owner["default_library_id"])
    assert [(r["visibility"], r["n"]) for r in rows] == [("archive", 1), ("hidden", 1), ("timeline", 1)]
