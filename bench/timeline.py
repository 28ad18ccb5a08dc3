"""Immich's timeline: one month's columnar bucket, and the month counts, through real HTTP.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/timeline.py [--assets 50000] [--runs 60]

Starts a fresh server (bench/harness.py: embedded PostgreSQL and Valkey, its own DATA_DIR) and
generates one user's library with SQL straight into its database (no files): assets about 100
minutes apart (so ~425 in a 30-day month), each with EXIF (camera, place for a third of them), a
thumbhash, sizes, every 10th a video with a duration, ratings (favourites), a few in the trash,
and every 25th paired with its neighbour in a stack. Then, after a warm-up, times:
  - GET /api/timeline/bucket?timeBucket=<a month in the middle>&withPartners=true  (the web app's call)
  - the same with withCoordinates=true
  - GET /api/timeline/buckets (the month counts)
p50/p95 over --runs requests each. Floor, same run, same database: the bucket's columns read by
one SQL statement (asyncpg, one row per asset) and encoded to the same JSON shape with msgspec.
Targets (issue #19): bucket p50 <= 2x the floor and <= 20 ms at low load. The server's RSS is
printed, and the load average (a shared machine skews every number); so is the CPU each request
costs the server process and PostgreSQL's backends, which a busy machine skews far less than latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import BenchServer, rss_kib  # noqa: E402
from sync import EXIF, assets_sql  # noqa: E402  (the sync bench's generators)

# Capture times 6,099 s apart (about 425 a month), places to six decimals (withCoordinates).
ASSETS = assets_sql("2015-01-01", 6099, precise_places=True)


# Every 25th asset (in capture order) and the one after it make a stack.
STACKS = """
WITH ordered AS (SELECT id, row_number() OVER (ORDER BY local_datetime, id) AS rn FROM assets WHERE library_id = $1),
     made AS (INSERT INTO stacks (library_id, owner_id, primary_asset_id)
              SELECT $1, $2, id FROM ordered WHERE rn % 25 = 0 RETURNING id, primary_asset_id),
     pairs AS (SELECT m.id AS stack_id, o.id AS asset_id FROM made m JOIN ordered p ON p.id = m.primary_asset_id
               JOIN ordered o ON o.rn IN (p.rn, p.rn + 1))
UPDATE assets a SET stack_id = pairs.stack_id FROM pairs WHERE a.id = pairs.asset_id
"""

MONTH = "2019-06-01"

# The floor: the bucket's columns, one row per asset, in one statement (what the endpoint cannot do less than).
# The metadata is looked up per asset (OFFSET 0): as a plain join the planner hashes all of asset_exif.
FLOOR = """
SELECT a.id::text, a.owner_id::text, a.width, a.height, a.effective_rating, a.media_type, a.trashed_at, a.thumbhash,
       a.taken_at, a.local_offset_minutes, a.duration_ms, e.projection_type, a.live_photo_video_id::text,
       a.visibility, a.created_at, a.stack_id::text,
       (SELECT count(*) FROM assets s WHERE s.stack_id = a.stack_id AND s.trashed_at IS NULL) AS stack_count
FROM assets a LEFT JOIN LATERAL (SELECT e.projection_type FROM asset_exif e WHERE e.asset_id = a.id OFFSET 0) e ON true
WHERE a.library_id = $1 AND a.trashed_at IS NULL AND a.visibility = 'timeline'
  AND a.local_datetime >= $2::timestamp AND a.local_datetime < $2::timestamp + interval '1 month'
ORDER BY a.local_datetime DESC, a.id DESC
"""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s(work: Path) -> float:
    """CPU seconds of the embedded PostgreSQL's backends (children of its postmaster) that are alive now."""
    postmaster = int((work / "data" / "postgres" / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if int(text.rsplit(")", 1)[1].split()[1]) == postmaster:
                total += cpu_s(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return total


def summary(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), pct(samples, 95)


async def generate(dsn: str, n: int) -> tuple[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        user = await conn.fetchrow("SELECT id, default_library_id FROM users WHERE email = 'bench@example.com'")
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.execute(ASSETS, user["default_library_id"], user["id"], n)
            await conn.execute(EXIF, user["default_library_id"])
            await conn.execute(STACKS, user["default_library_id"], user["id"])
        await conn.execute("ANALYZE")
        return user["default_library_id"], time.perf_counter() - t0
    finally:
        await conn.close()


async def floor(dsn: str, library, runs: int, work: Path) -> tuple[list[float], int, str, float, float]:
    """One SQL statement plus msgspec encoding of the same columns, on one open connection."""
    import base64
    from datetime import date, timezone

    conn = await asyncpg.connect(dsn)
    encoder = msgspec.json.Encoder()

    def iso(t):
        return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")

    async def once() -> bytes:
        rows = await conn.fetch(FLOOR, library, date.fromisoformat(MONTH))
        body = {
            "id": [r[0] for r in rows], "ownerId": [r[1] for r in rows],
            "ratio": [r[2] / r[3] if r[2] and r[3] else 1.0 for r in rows],
            "isFavorite": [r[4] == 5 for r in rows], "isImage": [r[5] == "image" for r in rows],
            "isTrashed": [r[6] is not None for r in rows],
            "thumbhash": [None if r[7] is None else base64.b64encode(r[7]).decode() for r in rows],
            "fileCreatedAt": [iso(r[8]) for r in rows],
            "localOffsetHours": [0 if r[9] is None else r[9] / 60 for r in rows],
            "duration": [r[10] for r in rows], "projectionType": [r[11] for r in rows],
            "livePhotoVideoId": [r[12] for r in rows], "visibility": [r[13] for r in rows],
            "createdAt": [iso(r[14]) for r in rows],
            "stack": [None if r[15] is None else [r[15], str(r[16])] for r in rows],
        }
        return encoder.encode(body)

    try:
        for _ in range(5):
            await once()
        samples = []
        cpu0, pg0 = time.process_time(), postgres_cpu_s(work)
        for _ in range(runs):
            t0 = time.perf_counter()
            body = await once()
            samples.append((time.perf_counter() - t0) * 1000)
        python_ms = (time.process_time() - cpu0) / runs * 1000
        pg_ms = (postgres_cpu_s(work) - pg0) / runs * 1000
        plan = "\n".join("   " + r[0] for r in await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + FLOOR, library, date.fromisoformat(MONTH)))
        return samples, len(json.loads(body)["id"]), plan, python_ms, pg_ms
    finally:
        await conn.close()


async def endpoint_plan(dsn: str, library) -> str:
    """The plan of the endpoint's own statement (app/domain/timeline.py), when this checkout has it."""
    try:
        from app.domain import timeline
        from app.domain.asset_filters import AssetFilter
    except ImportError:
        return "   (no app.domain.timeline in this checkout)"
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(MONTH)
    f = AssetFilter(library_id=library, visibility="timeline", after=start - timedelta(microseconds=1),
                    before=datetime(start.year, start.month + 1, 1))
    query, args = timeline._statement([f], "desc", timeline._FIELDS)
    conn = await asyncpg.connect(dsn)
    try:
        return "\n".join("   " + r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query, *args))
    finally:
        await conn.close()


def timed(client, path: str, params: dict, runs: int, pid: int, work: Path) -> tuple[list[float], bytes, str]:
    """Latencies, the last body, and the CPU per request of the server process and of PostgreSQL."""
    for _ in range(10):  # warm-up
        r = client.get(path, params=params)
        r.raise_for_status()
    samples = []
    cpu0, pg0 = cpu_s(pid), postgres_cpu_s(work)
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(path, params=params)
        samples.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    cpu = (f"CPU per request: server process {(cpu_s(pid) - cpu0) / runs * 1000:.1f} ms,"
           f" PostgreSQL {(postgres_cpu_s(work) - pg0) / runs * 1000:.1f} ms")
    return samples, r.content, cpu


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3, help="measurement rounds (shared machine: report the range)")
    args = parser.parse_args()
    unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, client and server on loopback;"
          f" OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE {'SET: ' + ', '.join(unset) if unset else 'unset'};"
          f" load average at start {loadavg()}")
    work = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    bench = BenchServer(work)
    try:
        dsn = json.loads((work / "data" / "run" / "services.json").read_text())["database_url"]
        library, gen_s = asyncio.run(generate(dsn, args.assets))
        immich = httpx.Client(base_url=f"http://127.0.0.1:{bench.env['IMMICH_PORT']}",
                              headers={"x-api-key": bench.key}, timeout=60)
        print(f"generated {args.assets} assets with EXIF and stacks in {gen_s:.1f} s")
        bucket = {"timeBucket": MONTH, "withPartners": "true", "visibility": "timeline"}
        for round_ in range(1, args.repeat + 1):
            print(f"-- round {round_} (load average {loadavg()})")
            floor_samples, floor_n, plan, floor_py, floor_pg = asyncio.run(floor(dsn, library, args.runs, work))
            f50, f95 = summary(floor_samples)
            print(f"floor: one SQL statement ({floor_n} rows) + msgspec encoding of the same columns:"
                  f" p50 {f50:.2f} ms, p95 {f95:.2f} ms; CPU per run: Python {floor_py:.1f} ms,"
                  f" PostgreSQL {floor_pg:.1f} ms")
            pid = bench.proc.pid
            samples, body, cpu = timed(immich, "/api/timeline/bucket", bucket, args.runs, pid, work)
            p50, p95 = summary(samples)
            n = len(json.loads(body)["id"])
            met = "met" if p50 <= 2 * f50 and p50 <= 20 else "MISSED"
            print(f"GET /api/timeline/bucket ({n} assets, {len(body)} bytes): p50 {p50:.2f} ms, p95 {p95:.2f} ms"
                  f" over {args.runs} runs; p50 = {p50 / f50:.2f}x the floor (target <= 2x and <= 20 ms: {met});"
                  f" {cpu}")
            samples, body, cpu = timed(immich, "/api/timeline/bucket", {**bucket, "withCoordinates": "true"},
                                       args.runs, pid, work)
            p50, p95 = summary(samples)
            print(f"GET /api/timeline/bucket withCoordinates ({len(body)} bytes): p50 {p50:.2f} ms,"
                  f" p95 {p95:.2f} ms; {p50 / f50:.2f}x the floor; {cpu}")
            samples, body, cpu = timed(immich, "/api/timeline/buckets",
                                       {"withPartners": "true", "visibility": "timeline"}, args.runs, pid, work)
            p50, p95 = summary(samples)
            print(f"GET /api/timeline/buckets ({len(json.loads(body))} months): p50 {p50:.2f} ms, p95 {p95:.2f} ms;"
                  f" {cpu}")
            samples, body, cpu = timed(immich, "/api/server/ping", {}, args.runs, pid, work)
            p50, p95 = summary(samples)
            print(f"GET /api/server/ping (the HTTP stack alone, no auth): p50 {p50:.2f} ms, p95 {p95:.2f} ms; {cpu}")
            print(f"server RSS {rss_kib(bench.proc.pid) / 1024:.0f} MiB")
        print("floor plan (EXPLAIN ANALYZE, BUFFERS):\n" + plan)
        print("endpoint statement plan (EXPLAIN ANALYZE, BUFFERS):\n" + asyncio.run(endpoint_plan(dsn, library)))
        print(f"load average at end {loadavg()}")
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
