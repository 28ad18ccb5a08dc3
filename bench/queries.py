"""Query latency on a 1,000,000-asset library (rows only, no files), with the plans.

    python bench/queries.py [--assets 1000000] [--runs 40]

Starts a fresh embedded PostgreSQL in a temp dir, applies the migrations, generates
the library with SQL, then times the domain functions the API calls:
  - an asset list page (first page, and a page deep in the timeline via starting_after_id)
  - asset counts by month over the whole library
  - a 1,000-event page of the change feed (from the middle of 1M events)
  - a filtered search page (media type + rating + date window)
Baseline in the same run: `SELECT 1` round trips on the same pool, so the ratio
shows query cost over the floor of one database call from Python.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GENERATE = """
INSERT INTO assets (id, library_id, owner_id, media_type, mime_type, original_file_name, storage_key,
    file_size_bytes, checksum_sha256, checksum_sha1, device_asset_id, device_id, file_created_at,
    file_modified_at, local_datetime, local_offset_minutes, rating, file_rating, latitude, longitude, trashed_at)
SELECT gen_random_uuid(), $1, $2,
       CASE WHEN g % 10 = 0 THEN 'video' ELSE 'image' END,
       CASE WHEN g % 10 = 0 THEN 'video/mp4' ELSE 'image/jpeg' END,
       'IMG_' || g || '.jpg', 'bench/' || $1::uuid::text || '/' || g, 3000000,
       sha256(int8send(g)), substring(sha256(int8send(-g)) from 1 for 20), 'd' || g, 'bench',
       ts, ts, ts AT TIME ZONE 'UTC', CASE WHEN g % 3 = 0 THEN NULL ELSE 60 END,
       CASE WHEN g % 7 = 0 THEN 5 ELSE NULL END, CASE WHEN g % 11 = 0 THEN 3 ELSE NULL END,
       CASE WHEN g % 3 = 0 THEN -60 + (g % 120) ELSE NULL END,
       CASE WHEN g % 3 = 0 THEN -170 + (g % 340) ELSE NULL END,
       CASE WHEN g % 97 = 0 THEN now() ELSE NULL END
FROM (SELECT g, timestamptz '2005-01-01' + (g * interval '631 seconds') AS ts
      FROM generate_series(1, $3) AS g) s
"""

GENERATE_EVENTS = """
INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type)
SELECT $1, $2, 'asset', id, 'asset_created' FROM assets WHERE library_id = $1
"""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def timed(label: str, fn, runs: int, baseline: float | None = None) -> float:
    await fn()  # warm
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    p50, p95 = statistics.median(samples), pct(samples, 95)
    ratio = f", p50 = {p50 / baseline:.0f}x the SELECT 1 floor" if baseline else ""
    verdict = "" if baseline is None else (" (target p95 < 50 ms: met)" if p95 < 50 else " (target p95 < 50 ms: MISSED)")
    print(f"{label}: p50 {p50:.2f} ms, p95 {p95:.2f} ms over {runs} runs{ratio}{verdict}")
    return p50


async def main_async(args) -> None:
    from app.db import engine as db
    from app.db.migrate import apply_migrations
    from app.domain import assets, events, users
    from app.domain.asset_filters import AssetFilter

    await apply_migrations(os.environ["DATABASE_URL"])
    await db.open_pool(max_size=4)
    try:
        user = await users.create_user("bench@example.com", "pw")
        library = user["default_library_id"]
        t0 = time.perf_counter()
        async with db.connection() as conn:
            await conn.execute(GENERATE, library, user["id"], args.assets)
            await conn.execute(GENERATE_EVENTS, library, user["id"])
            await conn.execute("ANALYZE")
            n_assets = await conn.fetchval("SELECT count(*) FROM assets")
            n_events = await conn.fetchval("SELECT count(*) FROM events")
        print(f"generated {n_assets} assets and {n_events} events in {time.perf_counter() - t0:.1f} s")

        base = AssetFilter(library_id=library)
        deep = await db.fetchrow(
            "SELECT id FROM assets WHERE library_id = $1 AND trashed_at IS NULL ORDER BY local_datetime DESC, id DESC"
            " OFFSET $2 LIMIT 1", library, args.assets // 2)
        mid_event = await db.fetchrow("SELECT txid, id FROM events ORDER BY txid, id OFFSET $1 LIMIT 1", n_events // 2)
        search = AssetFilter(library_id=library, media_type="image", ratings=[5],
                             after=datetime(2008, 1, 1), before=datetime(2012, 1, 1))

        async def ping():
            await db.fetchval("SELECT 1")

        async def feed():
            async with db.connection() as conn:
                await events.read_feed(conn, library_id=library, after=(mid_event["txid"], mid_event["id"]),
                                       horizon=None, entity_types=None, created_at_gte=None, limit=1000)

        floor = await timed("floor: SELECT 1 round trip", ping, args.runs)
        await timed("asset list, first page of 100", lambda: assets.list_assets(base, limit=100), args.runs, floor)
        await timed("asset list, page of 100 from mid-timeline (starting_after_id)",
                    lambda: assets.list_assets(base, limit=100, starting_after=deep["id"]), args.runs, floor)
        await timed("counts by month, whole library", lambda: assets.counts(
            base, group_by="month", order="desc", limit=200, starting_after_bucket=None), args.runs, floor)
        await timed("event feed page of 1,000 from the middle", feed, args.runs, floor)
        await timed("filtered search page (image, rating 5, 2008-2012)",
                    lambda: assets.search_page(search, page=1, limit=20), args.runs, floor)

        print("\nquery plans (EXPLAIN ANALYZE):")
        plans = {
            "asset list page": ("SELECT a.* FROM assets a WHERE a.library_id = $1 AND a.trashed_at IS NULL"
                                " ORDER BY a.local_datetime DESC, a.id DESC LIMIT 101", [library]),
            "counts by month (per-day counters)": (
                "SELECT date_trunc('month', day::timestamp), sum(count)::bigint FROM asset_day_counts"
                " WHERE library_id = $1 AND trashed = false AND visibility <> 'locked'"
                " GROUP BY 1 HAVING sum(count) > 0 ORDER BY 1 DESC LIMIT 201",
                [library]),
            "filtered search page": (
                "SELECT a.* FROM assets a WHERE a.library_id = $1 AND a.trashed_at IS NULL AND a.media_type = 'image'"
                " AND a.local_datetime > '2008-01-01' AND a.local_datetime < '2012-01-01'"
                " AND coalesce(a.effective_rating, 0) = ANY('{5}'::int[])"
                " ORDER BY a.local_datetime DESC, a.id DESC LIMIT 21", [library]),
            "event feed page": ("SELECT * FROM events WHERE library_id = $1 AND txid < $2 AND (txid, id) > ($3, $4)"
                                " ORDER BY txid, id LIMIT 1001",
                                [library, 2**62, mid_event["txid"], mid_event["id"]]),
        }
        async with db.connection() as conn:
            for name, (sql, params) in plans.items():
                print(f"-- {name}")
                for row in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params):
                    print("   " + row[0])
    finally:
        await db.close_pool()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; environment unchanged (no numpy in these paths)")
    work = Path(tempfile.mkdtemp(prefix="bench-queries-"))
    from app.runtime import acquire_services
    from app.settings import load_settings

    os.environ["DATA_DIR"] = str(work)
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    services = acquire_services(load_settings(), need_redis=False)
    try:
        services.export_env()
        asyncio.run(main_async(args))
    finally:
        services.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
