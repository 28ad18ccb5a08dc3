"""Immich `POST /api/search/metadata`, pages of 250, on a generated library.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/metadata_search.py [--assets 20000] [--runs 60]

Starts a fresh server (bench/harness.py: embedded PostgreSQL and Valkey, its own DATA_DIR), generates
assets with EXIF rows by SQL straight into its database (bench/sync.py's generator), then times
`POST /api/search/metadata` {size: 250} over HTTP with an API key: page 1 and a page from the middle,
with `withExif` false and true; p50/p95 over --runs after warm-up, response sizes, server RSS.
Floor, same run, same database: the same page's rows (the asset and EXIF columns the response
carries) read by one SQL query on a direct asyncpg connection and encoded to JSON with msgspec;
each server request is followed by one floor read, so both see the same load on a shared machine;
the ratio server p50 / floor p50 is printed (target: <= 2x).
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
import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BenchServer, rss_kib  # noqa: E402
from sync import ASSETS, EXIF  # noqa: E402

PAGE = 250

# What one item of the response needs: the asset's own columns, and with withExif its EXIF row.
FLOOR_ASSET = ("a.id, a.owner_id, a.checksum_sha1, a.media_type, a.original_file_name, a.mime_type,"
               " a.original_path, a.taken_at, a.file_modified_at, a.created_at, a.updated_at, a.local_datetime,"
               " a.duration_ms, a.width, a.height, a.thumbhash, a.effective_rating, a.visibility, a.trashed_at,"
               " a.is_offline, a.current_version_id, a.live_photo_video_id, a.external_library_id, a.duplicate_id")
FLOOR_EXIF = (", x.make, x.model, x.lens_model, x.f_number, x.focal_length, x.iso, x.exposure_time, x.orientation,"
              " x.original_datetime, x.original_offset_minutes, x.modified_datetime, x.modified_offset_minutes,"
              " x.timezone, x.latitude, x.longitude, x.city, x.state, x.country, x.description, x.projection_type,"
              " x.raw_width, x.raw_height")

FLOOR_EDITS = (", a.file_size_bytes, a.user_description, a.user_latitude, a.user_longitude, a.user_original_datetime,"
               " a.user_original_offset_minutes")


def floor_sql(with_exif: bool) -> str:
    """The page of assets, then (only for its rows, one index probe each) their EXIF or whether they
    have any."""
    if with_exif:
        exif = FLOOR_EXIF
        join = " LEFT JOIN LATERAL (SELECT * FROM asset_exif x WHERE x.asset_id = a.id LIMIT 1) x ON true"
    else:
        exif = ", (SELECT true FROM asset_exif x WHERE x.asset_id = a.id) IS NOT NULL AS has_exif"
        join = ""
    edits = FLOOR_EDITS if with_exif else ""
    order = "ORDER BY a.local_datetime DESC, a.id DESC"
    return (f"SELECT a.*{exif} FROM (SELECT {FLOOR_ASSET}{edits} FROM assets a"
            f" WHERE a.library_id = $1 AND a.trashed_at IS NULL AND a.visibility <> 'locked' {order}"
            f" LIMIT $2 OFFSET $3) a{join} {order}")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def generate(dsn: str, n: int):
    conn = await asyncpg.connect(dsn)
    try:
        user = await conn.fetchrow("SELECT id, default_library_id FROM users WHERE email = 'bench@example.com'")
        library = user["default_library_id"]
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.execute(ASSETS, library, user["id"], n)
            await conn.execute(EXIF, library)
        await conn.execute("ANALYZE")
        print(f"generated {n} assets with EXIF rows in {time.perf_counter() - t0:.1f} s")
        return library
    finally:
        await conn.close()


def cpu_ms(pid: int) -> float:
    """User + system CPU time a process has used, in ms (clock ticks of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


async def measure(immich_url: str, key: str, dsn: str, library, runs: int, page: int, with_exif: bool,
                  server_pid: int, size: int = PAGE) -> dict:
    """Server request and floor query taken in turns, so both see the same load on a shared machine.
    Besides wall times, the CPU each side spent per page: the server process's (from /proc), and this
    process's for the floor (asyncpg decoding, dicts, encoding); CPU time barely depends on how
    busy the machine is, wall time does."""
    conn = await asyncpg.connect(dsn)
    sql, offset = floor_sql(with_exif), (page - 1) * size
    body = {"size": size, "page": page, "withExif": with_exif}
    out = {"server": [], "floor": [], "server_size": 0, "floor_size": 0, "server_cpu": 0.0, "floor_cpu": 0.0}
    try:
        async with httpx.AsyncClient(base_url=immich_url, headers={"x-api-key": key}, timeout=60) as client:
            for i in range(runs + 5):  # the first 5 of each warm up
                if i == 5:
                    server_cpu0 = cpu_ms(server_pid)
                t0 = time.perf_counter()
                r = await client.post("/api/search/metadata", json=body)
                t1 = time.perf_counter()
                c1 = time.process_time()
                rows = await conn.fetch(sql, library, size + 1, offset)
                encoded = msgspec.json.encode({"items": [dict(r) for r in rows[:size]]})
                t2 = time.perf_counter()
                if i >= 5:
                    out["floor_cpu"] += (time.process_time() - c1) * 1000 / runs
                r.raise_for_status()
                assert r.json()["assets"]["count"] == size
                if i >= 5:
                    out["server"].append((t1 - t0) * 1000)
                    out["floor"].append((t2 - t1) * 1000)
                out["server_size"], out["floor_size"] = len(r.content), len(encoded)
            out["server_cpu"] = (cpu_ms(server_pid) - server_cpu0) / runs
    finally:
        await conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every measurement (the machine is shared)")
    args = parser.parse_args()
    unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE"
          f" {'SET: ' + ', '.join(unset) if unset else 'unset'}; load average at start {loadavg()}")
    work = Path(tempfile.mkdtemp(prefix="bench-msearch-"))
    bench = BenchServer(work)
    try:
        immich_url = f"http://127.0.0.1:{bench.env['IMMICH_PORT']}"
        dsn = json.loads((work / "data" / "run" / "services.json").read_text())["database_url"]
        library = asyncio.run(generate(dsn, args.assets))
        mid_page = max(1, args.assets // PAGE // 2)
        cases = [(page, with_exif) for page in (1, mid_page) for with_exif in (False, True)]
        # What any request costs (HTTP, the API key, the access checks): a page of one asset.
        fixed = asyncio.run(measure(immich_url, bench.key, dsn, library, args.runs, 1, False, bench.proc.pid,
                                    size=1))
        print(f"a page of 1 asset (the per-request overhead): server p50 {statistics.median(fixed['server']):.2f} ms,"
              f" CPU {fixed['server_cpu']:.2f} ms/request")
        results: dict[tuple, list] = {case: [] for case in cases}
        for round_ in range(args.repeat):
            print(f"-- round {round_ + 1}/{args.repeat}, load average {loadavg()}")
            for page, with_exif in cases:
                m = asyncio.run(measure(immich_url, bench.key, dsn, library, args.runs, page, with_exif,
                                        bench.proc.pid))
                s50, s95 = statistics.median(m["server"]), pct(m["server"], 95)
                f50, f95 = statistics.median(m["floor"]), pct(m["floor"], 95)
                results[(page, with_exif)].append((s50, f50, m["server_cpu"], m["floor_cpu"]))
                print(f"page {page:>3} withExif={str(with_exif):5}: server p50 {s50:6.2f} ms p95 {s95:6.2f} ms,"
                      f" {m['server_size'] / 1000:6.1f} KB, CPU {m['server_cpu']:5.2f} ms/page"
                      f" | floor (1 SQL + msgspec) p50 {f50:5.2f} ms p95 {f95:5.2f} ms,"
                      f" {m['floor_size'] / 1000:6.1f} KB, CPU {m['floor_cpu']:5.2f} ms/page"
                      f" | ratio p50 {s50 / f50:4.2f}x  (runs {args.runs})")
        print(f"server RSS after: {rss_kib(bench.proc.pid) / 1024:.0f} MiB; load average at end {loadavg()}")
        print("summary (range over rounds):")
        for (page, with_exif), values in results.items():
            s = [v[0] for v in values]
            r = [v[0] / v[1] for v in values]
            cpu = [v[2] for v in values]
            fcpu = [v[3] for v in values]
            print(f"  page {page:>3} withExif={str(with_exif):5}: server p50 {min(s):.2f}-{max(s):.2f} ms,"
                  f" ratio to floor {min(r):.2f}-{max(r):.2f}x (target <= 2x); server CPU"
                  f" {min(cpu):.2f}-{max(cpu):.2f} ms/page, floor client CPU {min(fcpu):.2f}-{max(fcpu):.2f} ms/page")
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
