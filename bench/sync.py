"""Immich sync stream: initial sync of a big generated library, a fast and a slow reader.

    python bench/sync.py [--assets 100000] [--albums 2000] [--per-album 10] [--faces 20000]
        [--people 1000] [--slow-rate 1000000] [--slow-seconds 30] [--workdir DIR]

Starts a fresh server (bench/harness.py: embedded PostgreSQL and Valkey, its own DATA_DIR),
generates rows with SQL straight into its database (assets with EXIF, albums with ~per-album
links each, people, faces, and the change-log events that make them visible; no files),
signs in through the Immich API for a session, then:
  run 1: one full `POST /api/sync/stream` with the 22 types the 3.1 app sends, read as fast
         as possible; lines by type, seconds, lines/s, MB/s; server RSS sampled every 50 ms.
  run 2: a new session (no checkpoints) reading the same stream at --slow-rate bytes/s for
         at most --slow-seconds, then hanging up mid-stream; RSS over time, then checks that
         the server let go of the stream (no open transaction, CPU quiet), still answers ping
         and serves a new stream.
Floor, same run, same database: the same rows (one per line the stream sends) read with
asyncpg server-side cursors in one snapshot, no change log and no JSON; the ratio
stream lines/s / floor rows/s is printed. Also the stream's own SQL (change log + current
state) read the same way, to split the gap between SQL and the Python/JSON work.
Targets (issue): >= 20,000 lines/s; server RSS growth < 150 MB in both runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import shortuuid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BenchServer, rss_kib  # noqa: E402

# What the 3.1 app requests from a >= 3.0.0 server (tests/test_immich_sync.py).
APP_TYPES = ["AuthUsersV1", "UsersV1", "AssetsV2", "AssetExifsV1", "AssetEditsV1", "AssetMetadataV1", "PartnersV1",
             "PartnerAssetsV2", "PartnerAssetExifsV1", "AlbumsV2", "AlbumUsersV1", "AlbumAssetsV2",
             "AlbumAssetExifsV1", "AlbumToAssetsV1", "MemoriesV1", "MemoryToAssetsV1", "StacksV1", "PartnerStacksV1",
             "UserMetadataV1", "PeopleV1", "AssetFacesV2", "AssetOcrV1"]
MB = 1_000_000

# bench/queries.py's generator, plus the columns an AssetV2 line carries (size, thumbhash, capture time).
def assets_sql(start: str = "2005-01-01", every_s: int = 631, precise_places: bool = False) -> str:
    """The INSERT of $3 generated assets ($1 library, $2 owner), capture times `every_s` apart from
    `start`; a third of them with a place, in whole degrees unless `precise_places`."""
    fractions = (" + 0.123456", " + 0.654321") if precise_places else ("", "")
    return _ASSETS.format(start=start, every_s=every_s, latitude_fraction=fractions[0],
                          longitude_fraction=fractions[1])


_ASSETS = """
INSERT INTO assets (id, library_id, owner_id, media_type, mime_type, original_file_name, storage_key,
    file_size_bytes, checksum_sha256, checksum_sha1, device_asset_id, device_id, file_created_at,
    file_modified_at, local_datetime, local_offset_minutes, captured_at, width, height, duration_ms, thumbhash,
    rating, file_rating, latitude, longitude, trashed_at)
SELECT gen_random_uuid(), $1, $2,
       CASE WHEN g % 10 = 0 THEN 'video' ELSE 'image' END,
       CASE WHEN g % 10 = 0 THEN 'video/mp4' ELSE 'image/jpeg' END,
       'IMG_' || g || '.jpg', 'bench/' || $1::uuid::text || '/' || g, 3000000,
       sha256(int8send(g)), substring(sha256(int8send(-g)) from 1 for 20), 'd' || g, 'bench',
       ts, ts, ts AT TIME ZONE 'UTC', CASE WHEN g % 3 = 0 THEN NULL ELSE 60 END, ts,
       CASE WHEN g % 4 = 0 THEN 3000 ELSE 4000 END, CASE WHEN g % 4 = 0 THEN 4000 ELSE 3000 END,
       CASE WHEN g % 10 = 0 THEN 12000 END, substring(sha256(int8send(g + 7)) from 1 for 25),
       CASE WHEN g % 7 = 0 THEN 5 ELSE NULL END, CASE WHEN g % 11 = 0 THEN 3 ELSE NULL END,
       CASE WHEN g % 3 = 0 THEN -60 + (g % 120){latitude_fraction} ELSE NULL END,
       CASE WHEN g % 3 = 0 THEN -170 + (g % 340){longitude_fraction} ELSE NULL END,
       CASE WHEN g % 97 = 0 THEN now() ELSE NULL END
FROM (SELECT g, timestamptz '{start}' + (g * interval '{every_s} seconds') AS ts
      FROM generate_series(1, $3) AS g) s
"""
ASSETS = assets_sql()

EXIF = """
INSERT INTO asset_exif (asset_id, make, model, lens_model, f_number, focal_length, iso, exposure_time, orientation,
    original_datetime, original_offset_minutes, timezone, latitude, longitude, altitude, city, state, country,
    country_code, fps, date_source)
SELECT a.id, (ARRAY['Canon', 'NIKON CORPORATION', 'Apple', 'SONY', 'FUJIFILM'])[1 + h % 5],
       (ARRAY['EOS 5D Mark IV', 'D750', 'iPhone 15 Pro', 'ILCE-7M3', 'X-T4'])[1 + h % 5],
       CASE WHEN h % 2 = 0 THEN 'EF24-105mm f/4L IS USM' END, 1.8 + (h % 8), 24 + (h % 100), 100 * (1 + h % 32),
       1.0 / (30 + h % 970), 1, a.local_datetime, a.local_offset_minutes,
       CASE WHEN a.local_offset_minutes IS NOT NULL THEN 'Europe/Paris' END,
       a.latitude, a.longitude, CASE WHEN a.latitude IS NOT NULL THEN 35.5 END,
       CASE WHEN a.latitude IS NOT NULL THEN (ARRAY['Paris', 'Lyon', 'Berlin', 'Kyoto', 'Lima'])[1 + h % 5] END,
       CASE WHEN a.latitude IS NOT NULL
            THEN (ARRAY['Ile-de-France', 'Auvergne-Rhone-Alpes', 'Berlin', 'Kyoto', 'Lima'])[1 + h % 5] END,
       CASE WHEN a.latitude IS NOT NULL THEN (ARRAY['France', 'France', 'Germany', 'Japan', 'Peru'])[1 + h % 5] END,
       CASE WHEN a.latitude IS NOT NULL THEN (ARRAY['FR', 'FR', 'DE', 'JP', 'PE'])[1 + h % 5] END,
       CASE WHEN a.media_type = 'video' THEN 29.97 END, 'exif_original'
FROM (SELECT *, abs(hashtext(id::text)) AS h FROM assets WHERE library_id = $1) a
"""

ALBUMS = """
INSERT INTO albums (library_id, owner_id, name, description, created_at, updated_at)
SELECT $1, $2, 'Album ' || i, CASE WHEN i % 4 = 0 THEN 'Trip number ' || i END,
       now() - i * interval '1 hour', now() - i * interval '1 hour'
FROM generate_series(1, $3) AS i
"""

# Album r gets per-album +- 5 links (about per-album on average), spread over the timeline.
LINKS = """
WITH a AS (SELECT id, row_number() OVER (ORDER BY local_datetime, id) - 1 AS rn FROM assets WHERE library_id = $1),
     al AS (SELECT id, row_number() OVER (ORDER BY created_at, id) - 1 AS rn FROM albums WHERE library_id = $1)
INSERT INTO album_assets (album_id, asset_id, library_id)
SELECT al.id, a.id, $1
FROM al CROSS JOIN generate_series(0, $2 + 4) AS k
JOIN a ON a.rn = ((al.rn * ($2 + 5) + k) * $3) % $4
WHERE k < $2 - 5 + (al.rn % 11)
"""

PEOPLE = """
INSERT INTO people (library_id, owner_id, name, color, created_at, updated_at)
SELECT $1, $2, CASE WHEN i % 3 = 0 THEN 'Person ' || i END, CASE WHEN i % 2 = 0 THEN '#4f46e5' END,
       now() - i * interval '1 minute', now() - i * interval '1 minute'
FROM generate_series(1, $3) AS i
"""

# One face per 1/step of assets; 80% assigned to a person by clustering, the rest not yet.
FACES = """
WITH a AS (SELECT id, row_number() OVER (ORDER BY local_datetime, id) - 1 AS rn FROM assets WHERE library_id = $1),
     p AS (SELECT id, row_number() OVER (ORDER BY created_at, id) - 1 AS rn FROM people WHERE library_id = $1)
INSERT INTO faces (asset_id, library_id, owner_id, person_id, source, box_x, box_y, box_w, box_h,
    image_width, image_height, confidence, assigned_by, cluster_state)
SELECT a.id, $1, $2, CASE WHEN g % 5 = 4 THEN NULL ELSE p.id END, 'automatic',
       100 + g % 2000, 200 + g % 1500, 300 + g % 200, 360 + g % 200, 4000, 3000, 0.9,
       CASE WHEN g % 5 = 4 THEN 'none' ELSE 'cluster' END, 'considered'
FROM generate_series(0, $3 - 1) AS g
JOIN a ON a.rn = (g * $4) % $5
JOIN p ON p.rn = g % $6
ORDER BY g
"""

PEOPLE_STATS = """
UPDATE people p SET face_count = s.n, thumbnail_face_id = s.f
FROM (SELECT person_id, count(*) AS n, (array_agg(id ORDER BY seq))[1] AS f FROM faces
      WHERE library_id = $1 AND person_id IS NOT NULL GROUP BY person_id) s
WHERE s.person_id = p.id
"""


def events_sql(entity_type: str, event_type: str, table: str, entity: str, order: str) -> str:
    return (f"INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type)"
            f" SELECT $1, $2, '{entity_type}', {entity}, '{event_type}' FROM {table}"
            f" WHERE library_id = $1 ORDER BY {order}")


async def generate(dsn: str, args) -> tuple[dict, float]:
    conn = await asyncpg.connect(dsn)
    try:
        user = await conn.fetchrow("SELECT id, default_library_id FROM users WHERE email = 'bench@example.com'")
        owner = user["id"]
        library = await conn.fetchval("SELECT id FROM libraries WHERE owner_id = $1 AND id = $2",
                                      owner, user["default_library_id"])
        t0 = time.perf_counter()
        # A few transactions; each gets its own txid, all committed before streaming.
        async with conn.transaction():
            await conn.execute(ASSETS, library, owner, args.assets)
            await conn.execute(EXIF, library)
            await conn.execute(events_sql("asset", "asset_created", "assets", "id", "local_datetime, id"),
                               library, owner)
            await conn.execute(events_sql("metadata", "metadata_updated", "assets", "id", "local_datetime, id"),
                               library, owner)
        step = max(1, args.assets // (args.albums * args.per_album))
        async with conn.transaction():
            await conn.execute(ALBUMS, library, owner, args.albums)
            await conn.execute(LINKS, library, args.per_album, step, args.assets)
            await conn.execute(events_sql("album", "album_created", "albums", "id", "created_at, id"), library, owner)
            # Links carry the same payload the API writes (album and asset as native ids).
            links = await conn.fetch("SELECT id, album_id, asset_id FROM album_assets WHERE library_id = $1"
                                     " ORDER BY album_id, id", library)
            await conn.copy_records_to_table(
                "events", columns=["library_id", "owner_id", "entity_type", "entity_id", "event_type", "payload"],
                records=[(library, owner, "album_asset", r["id"], "album_asset_added",
                          json.dumps({"album_id": "album_" + shortuuid.encode(r["album_id"]),
                                      "asset_id": "asset_" + shortuuid.encode(r["asset_id"])})) for r in links])
        async with conn.transaction():
            await conn.execute(PEOPLE, library, owner, args.people)
            await conn.execute(FACES, library, owner, args.faces, max(1, args.assets // args.faces), args.assets,
                               args.people)
            await conn.execute(PEOPLE_STATS, library)
            await conn.execute(events_sql("person", "person_created", "people", "id", "created_at, id"), library, owner)
            await conn.execute(events_sql("face", "face_created", "faces", "id", "seq"), library, owner)
        await conn.execute("ANALYZE")
        elapsed = time.perf_counter() - t0
        counts = {}
        for table in ("assets", "asset_exif", "albums", "album_assets", "people", "faces", "events"):
            counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
        counts["library"] = library
        return counts, elapsed
    finally:
        await conn.close()


# --- the floor: the same rows straight from PostgreSQL ---------------------------------------

# One query per line type the stream sends from the change log, so rows == lines.
FLOOR = [
    ("AssetV2", "SELECT a.* FROM assets a WHERE a.library_id = $1"),
    ("AlbumV2", "SELECT al.* FROM albums al WHERE al.library_id = $1"),
    ("AlbumUserV1", "SELECT al.id, al.owner_id FROM albums al WHERE al.library_id = $1"),
    ("AlbumToAssetV1", "SELECT aa.id, aa.album_id, aa.asset_id FROM album_assets aa WHERE aa.library_id = $1"),
    ("AssetExifV1", "SELECT a.id, a AS asset, x AS exif FROM assets a LEFT JOIN asset_exif x ON x.asset_id = a.id"
                    " WHERE a.library_id = $1"),
    ("PersonV1", "SELECT p.* FROM people p WHERE p.library_id = $1"),
    ("AssetFaceV2", "SELECT f.* FROM faces f WHERE f.library_id = $1"),
]


async def read_all(dsn: str, queries: list[tuple[str, list]]) -> tuple[int, float]:
    """Rows of every query through server-side cursors (batches of 1,000, as the stream reads), one snapshot."""
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.perf_counter()
        n = 0
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for sql, params in queries:
                async for _ in conn.cursor(sql, *params, prefetch=1000):
                    n += 1
        return n, time.perf_counter() - t0
    finally:
        await conn.close()


# --- the client -----------------------------------------------------------------------------


class Sampler:
    """The server's RSS (and CPU time) every `every` seconds from a thread."""

    def __init__(self, pid: int, every: float = 0.05):
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.perf_counter()
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - t0, rss_kib(self.pid)))
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_kib(self) -> int:
        return max(k for _, k in self.samples)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def login(immich_url: str) -> str:
    r = httpx.post(immich_url + "/api/auth/login", json={"email": "bench@example.com", "password": "pw"}, timeout=30)
    if r.status_code != 201:
        raise RuntimeError(f"login failed: {r.status_code} {r.text[:300]}")
    return r.json()["accessToken"]


def read_stream(immich_url: str, token: str, types: list[str], rate: float | None = None,
                max_seconds: float | None = None) -> dict:
    """One sync stream; lines counted by type from the `{"type":"X",` head of each line.

    rate (bytes/s) paces the reads; max_seconds hangs up mid-stream."""
    counts: Counter = Counter()
    first = last = b""
    tail = b""
    size = 0
    ttfb = None
    complete = False
    with httpx.Client(base_url=immich_url, cookies={"immich_access_token": token}, timeout=600) as http:
        t0 = time.perf_counter()
        with http.stream("POST", "/api/sync/stream", json={"types": types}) as response:
            if response.status_code != 200:
                raise RuntimeError(f"stream: {response.status_code} {response.read()[:300]!r}")
            for chunk in response.iter_raw():
                if ttfb is None:
                    ttfb = time.perf_counter() - t0
                size += len(chunk)
                lines = (tail + chunk).split(b"\n")
                tail = lines.pop()
                for line in lines:
                    counts[line[9:line.index(b'"', 9)]] += 1
                if lines:
                    first = first or lines[0]
                    last = lines[-1]
                now = time.perf_counter() - t0
                if rate is not None:
                    ahead = size / rate - now
                    if ahead > 0:
                        time.sleep(ahead)
                if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                    break
            else:
                complete = True
        elapsed = time.perf_counter() - t0
    return {"counts": {k.decode(): v for k, v in counts.items()}, "bytes": size, "seconds": elapsed, "ttfb": ttfb,
            "complete": complete, "first": json.loads(first) if first else None,
            "last": json.loads(last) if last else None, "leftover": tail}


async def db_sessions(dsn: str) -> dict[str, int]:
    """Other connections to the database by state (an abandoned stream would sit 'idle in transaction')."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT coalesce(state, '?') AS state, count(*) AS n FROM pg_stat_activity"
                                " WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1")
        return {r["state"]: r["n"] for r in rows}
    finally:
        await conn.close()


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--albums", type=int, default=2_000)
    parser.add_argument("--per-album", type=int, default=10)
    parser.add_argument("--faces", type=int, default=20_000)
    parser.add_argument("--people", type=int, default=1_000)
    parser.add_argument("--slow-rate", type=float, default=1 * MB, help="bytes/s of the slow reader")
    parser.add_argument("--slow-seconds", type=float, default=30)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    wall0 = time.perf_counter()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, client and server on loopback;"
          f" load average at start {loadavg()} (shared machine: other work skews every number)")
    bench = BenchServer(work)
    ok = True
    try:
        pid = bench.proc.pid
        immich_url = f"http://127.0.0.1:{bench.env['IMMICH_PORT']}"
        dsn = json.loads((work / "data" / "run" / "services.json").read_text())["database_url"]

        counts, gen_s = asyncio.run(generate(dsn, args))
        library = counts.pop("library")
        print(f"generated in {gen_s:.1f} s: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        expected = {"AssetV2": counts["assets"], "AssetExifV1": counts["assets"], "AlbumV2": counts["albums"],
                    "AlbumUserV1": counts["albums"], "AlbumToAssetV1": counts["album_assets"],
                    "PersonV1": counts["people"], "AssetFaceV2": counts["faces"], "AuthUserV1": 1, "UserV1": 1,
                    "UserMetadataV1": 1, "SyncCompleteV1": 1}

        # Floor first, twice: the first pass also warms the cache for everything after it.
        floor_q = [(sql, [library]) for _, sql in FLOOR]
        asyncio.run(read_all(dsn, floor_q))
        floor_rows, floor_s = asyncio.run(read_all(dsn, floor_q))

        # Run 1: fast reader.
        token = login(immich_url)
        time.sleep(1)
        idle = rss_kib(pid)
        cpu0, client0 = cpu_seconds(pid), time.process_time()
        with Sampler(pid) as s1:
            fast = read_stream(immich_url, token, APP_TYPES)
        cpu1, client_cpu = cpu_seconds(pid), time.process_time() - client0
        lines = sum(fast["counts"].values())
        rate = lines / fast["seconds"]
        print("run 1 (fast reader): one POST /api/sync/stream, 22 app types, fresh session")
        for t in sorted(fast["counts"], key=lambda t: -fast["counts"][t]):
            want = expected.get(t)
            mark = "" if want is None else (" (expected)" if fast["counts"][t] == want else f" (EXPECTED {want})")
            print(f"  lines {t}: {fast['counts'][t]}{mark}")
        missing = [t for t in expected if t not in fast["counts"]]
        counts_ok = not missing and all(fast["counts"].get(t) == n for t, n in expected.items())
        last_ok = fast["last"] is not None and fast["last"]["type"] == "SyncCompleteV1" and not fast["leftover"]
        print(f"  line types missing: {missing or 'none'}; last line: {fast['last'] and fast['last']['type']}"
              f" ({'ok' if last_ok else 'NOT SyncCompleteV1'})")
        print(f"  total lines: {lines}; time to first byte {fast['ttfb']:.2f} s; total {fast['seconds']:.2f} s")
        print(f"  lines/s: {rate:,.0f} (target >= 20,000: {'met' if rate >= 20_000 else 'MISSED'})")
        print(f"  bytes: {fast['bytes'] / MB:.1f} MB, {fast['bytes'] / MB / fast['seconds']:.1f} MB/s,"
              f" {fast['bytes'] / lines:.0f} bytes/line")
        print(f"  server CPU during the stream: {cpu1 - cpu0:.1f} s"
              f" ({(cpu1 - cpu0) / fast['seconds'] * 100:.0f}% of one core); this client's CPU {client_cpu:.1f} s")
        g1 = s1.peak_kib - idle
        print(f"  server RSS idle {mib(idle)}, peak {mib(s1.peak_kib)}, growth {g1 / 1024:+.0f} MiB"
              f" (target < 150 MB: {'met' if g1 * 1024 < 150 * MB else 'MISSED'})")
        print(f"floor: the same {floor_rows} rows (one per line above: assets, assets+exif as the stream reads them,"
              f" albums x2, album links, people, faces) read with asyncpg cursors (1,000/batch) in one snapshot, no"
              f" change log, no JSON: {floor_s:.2f} s = {floor_rows / floor_s:,.0f} rows/s")
        print(f"stream / floor: {rate / (floor_rows / floor_s):.2f} (stream lines/s over floor rows/s)")

        # Run 2: slow reader on a new session, hanging up mid-stream.
        token2 = login(immich_url)
        time.sleep(1)
        idle2 = rss_kib(pid)
        cpu0 = cpu_seconds(pid)
        with Sampler(pid) as s2:
            slow = read_stream(immich_url, token2, APP_TYPES, rate=args.slow_rate, max_seconds=args.slow_seconds)
        cpu1 = cpu_seconds(pid)
        slow_lines = sum(slow["counts"].values())
        ended = "read the whole body" if slow["complete"] else f"hung up after {slow['seconds']:.1f} s"
        print(f"run 2 (slow reader, {args.slow_rate / MB:g} MB/s, new session): {ended}")
        print(f"  read {slow['bytes'] / MB:.1f} MB of {fast['bytes'] / MB:.1f} MB, {slow_lines} lines,"
              f" {slow['bytes'] / MB / slow['seconds']:.2f} MB/s average")
        print(f"  server CPU while the client lagged: {cpu1 - cpu0:.1f} s over {slow['seconds']:.1f} s"
              f" ({(cpu1 - cpu0) / slow['seconds'] * 100:.0f}% of one core)")
        timeline = ", ".join(f"{t:.0f}s {k / 1024:.0f}" for t, k in s2.samples[:: max(1, int(5 / 0.05))])
        print(f"  server RSS every ~5 s (MiB): {timeline}")
        g2 = s2.peak_kib - idle2
        print(f"  server RSS idle {mib(idle2)}, peak {mib(s2.peak_kib)}, growth {g2 / 1024:+.0f} MiB"
              f" (target < 150 MB: {'met' if g2 * 1024 < 150 * MB else 'MISSED'})")

        # After the hang-up: the stream's snapshot must be released and the generator stopped.
        time.sleep(1.0)
        cpu_a = cpu_seconds(pid)
        time.sleep(2.0)
        cpu_quiet = cpu_seconds(pid) - cpu_a
        states = asyncio.run(db_sessions(dsn))
        ping = httpx.get(immich_url + "/api/server/ping", timeout=10)
        native_ping = httpx.get(bench.base_url + "/api/server/ping", timeout=10).text
        print(f"after hang-up: server CPU {cpu_quiet:.2f} s over the next 2 s; other DB connections by state: {states}")
        print(f"after hang-up: Immich ping {ping.status_code} {ping.text.strip()}, native ping {native_ping}")
        again = read_stream(immich_url, login(immich_url), ["AlbumsV2", "AlbumUsersV1"])
        again_ok = (again["counts"].get("AlbumV2") == counts["albums"] and again["last"]["type"] == "SyncCompleteV1")
        print(f"after hang-up: a new stream (new session, AlbumsV2+AlbumUsersV1): {again['counts']},"
              f" {'ok' if again_ok else 'WRONG'}")
        errors = sum(1 for line in (work / "server.log").read_text(errors="replace").splitlines()
                     if "Traceback" in line or " ERROR " in line or "failed" in line)
        print(f"server log: {errors} error/traceback lines")
        hung_up_ok = "idle in transaction" not in states and "active" not in states and cpu_quiet < 0.5
        ok = (counts_ok and last_ok and rate >= 20_000 and g1 * 1024 < 150 * MB and g2 * 1024 < 150 * MB
              and ping.status_code == 200 and again_ok and hung_up_ok)
        print(f"{'PASS' if ok else 'FAIL'}: lines/s {rate:,.0f} (>= 20,000), RSS growth fast {g1 / 1024:+.0f} MiB /"
              f" slow {g2 / 1024:+.0f} MiB (< 150 MB), counts {'ok' if counts_ok and last_ok else 'WRONG'},"
              f" hang-up {'handled' if hung_up_ok and again_ok else 'NOT handled'}")
        print(f"wall time: {time.perf_counter() - wall0:.0f} s; load average at end {loadavg()}")
    finally:
        bench.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
