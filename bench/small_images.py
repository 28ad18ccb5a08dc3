"""Background processing of many small photos, against a plain pool doing the same media work.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/small_images.py [--count 2000] [--concurrency N] [--budget]

Corpus: `--count` generated 1-3 MP JPEGs (photo-like smooth noise, Q85) with EXIF (make, model,
capture time, some with GPS, some turned by the orientation tag), made deterministically and
cached in bench/out/small between runs.

Measured in the same run:
  ours  = a fresh server (`serve --no-worker`) plus one worker process (`python -m app worker`,
          WORKER_CONCURRENCY=N, default: the server's own default), both started before the first
          upload; 4 clients upload every file through the Immich route (POST /api/assets on the
          Immich port); timed from the first upload until every asset has its EXIF row, a
          thumbnail, a preview and a thumbhash (the database is polled directly, so no API call
          competes for the CPU).
  floor = the same media work in a plain multiprocessing pool of N processes: pyexiv2 read of
          every tag, pyvips shrink-on-load decode, preview JPEG (short side 1440, Q80) and thumbnail
          WebP (short side 250, Q80) and the thumbhash (the pipeline's own function), per file.
          Our pipeline skips the preview's decode and encode for a JPEG that is its own preview
          (app/media/images.own_preview); the floor does not, and the corpus line says how many.
Prints assets/s for both and the ratio, the server's and the worker's peak RSS (VmHWM), the CPU
each part of ours used (worker, server, Postgres + Valkey, and this process's uploading threads),
their sum per asset and as cores busy on average, and the load average before and after.
With --budget, where that CPU goes: the uploads alone (a fresh server without a worker) and our
rendering alone (render_image over the same files in N threads, in this process) are measured
apart, and what is left of ours' CPU is the job system, the metadata step and their database work.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, BenchServer, rss_kib  # noqa: E402

sys.path.insert(0, str(ROOT))

OUT = Path(__file__).resolve().parent / "out" / "small"
SIZES = [(1200, 900), (1600, 1200), (2000, 1500), (1440, 1080), (1800, 1350)]  # 1.1 - 3.0 MP


def corpus(count: int) -> list[Path]:
    import pyexiv2

    OUT.mkdir(parents=True, exist_ok=True)
    files, base = [], None
    for i in range(count):
        path = OUT / f"small_{i:05d}.jpg"
        files.append(path)
        if path.exists():
            continue
        if base is None:
            base = sum(pyvips.Image.perlin(2300, 1800, cell_size=c, uchar=True, seed=s) / n
                       for c, n, s in ((256, 2, 1), (32, 4, 2), (4, 8, 3)))
            base = base.bandjoin([base.rot180(), base.fliphor()]).cast("uchar").copy(interpretation="srgb")
            base = base.copy_memory()
        w, h = SIZES[i % len(SIZES)]
        tile = base.crop((i * 37) % (2300 - w), (i * 53) % (1800 - h), w, h)
        tile = (tile * [1 + (i % 5) / 10, 1, 1 - (i % 3) / 10]).cast("uchar").copy(interpretation="srgb")
        tile.jpegsave(str(path), Q=85)
        exif = {"Exif.Image.Make": "BenchCam", "Exif.Image.Model": f"Model {i % 7}",
                "Exif.Photo.DateTimeOriginal": f"2023:{1 + i % 12:02d}:{1 + i % 28:02d} 12:{i % 60:02d}:00",
                "Exif.Photo.FNumber": "28/10", "Exif.Photo.ISOSpeedRatings": str(100 * (1 + i % 8)),
                "Exif.Image.Orientation": "6" if i % 10 == 0 else "1"}
        if i % 3 == 0:
            exif.update({"Exif.GPSInfo.GPSLatitudeRef": "N", "Exif.GPSInfo.GPSLatitude": "48/1 51/1 0/1",
                         "Exif.GPSInfo.GPSLongitudeRef": "E", "Exif.GPSInfo.GPSLongitude": "2/1 21/1 0/1"})
        with pyexiv2.Image(str(path)) as image:
            image.modify_exif(exif)
    return files


# --- floor --------------------------------------------------------------------------------


def _floor_one(path: str) -> int:
    import pyexiv2

    from app.media.images import thumbhash

    with pyexiv2.Image(path) as image:
        tags = {**image.read_exif(), **image.read_iptc(), **image.read_xmp()}
    preview = pyvips.Image.thumbnail(path, 10_000_000, height=1440, size="down")  # short side 1440
    if preview.width < preview.height:
        preview = pyvips.Image.thumbnail(path, 1440, height=10_000_000, size="down")
    preview = preview.copy_memory()
    data = preview.jpegsave_buffer(Q=80, strip=True)
    scale = 250 / min(preview.width, preview.height)
    thumb = preview.thumbnail_image(round(preview.width * scale), height=round(preview.height * scale), size="force")
    data2 = thumb.webpsave_buffer(Q=80, strip=True)
    return len(tags) + len(data) + len(data2) + len(thumbhash(thumb))


def _floor_init() -> None:
    pyvips.cache_set_max(0)


def floor_seconds(files: list[Path], concurrency: int) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the pool's processes."""
    with multiprocessing.get_context("spawn").Pool(concurrency, initializer=_floor_init) as pool:
        pool.map(_floor_one, [str(files[0])] * concurrency)  # warm: imports in each process
        pids = [p.pid for p in pool._pool]
        cpu0 = sum(cpu_seconds(p) for p in pids)
        start = time.perf_counter()
        pool.map(_floor_one, [str(f) for f in files], chunksize=4)
        return time.perf_counter() - start, sum(cpu_seconds(p) for p in pids) - cpu0


def render_cpu(files: list[Path], threads: int) -> tuple[float, float]:
    """Our own rendering of every file (the worker's render_image, with the default variants) in
    `threads` threads of this process: wall seconds and CPU seconds."""
    from app.media import vips_cache
    from app.media.images import render_image

    vips_cache.disable()  # as in the worker
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        cpu0, start = time.process_time(), time.perf_counter()
        for _ in pool.map(lambda f: render_image(f, "image/jpeg"), files):
            pass
        return time.perf_counter() - start, time.process_time() - cpu0


# --- ours ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def progress(url: str):
    import asyncpg

    async def query():
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchrow(
                """
                SELECT count(*) AS assets,
                       count(*) FILTER (WHERE a.thumbhash IS NOT NULL
                           AND EXISTS (SELECT 1 FROM asset_exif e WHERE e.asset_id = a.id)
                           AND (SELECT count(*) FROM asset_files f WHERE f.asset_id = a.id
                                AND f.kind IN ('preview', 'thumbnail')) = 2) AS done,
                       (SELECT count(*) FROM tasks WHERE status = 'failure') AS failed,
                       (SELECT count(*) FROM tasks WHERE status IN ('pending', 'started')) AS open_tasks
                FROM assets a
                """)
        finally:
            await conn.close()

    return asyncio.run(query())


def wait_for_worker(url: str) -> None:
    import asyncpg

    async def registered() -> bool:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT count(*) FROM workers") > 0
        finally:
            await conn.close()

    for _ in range(600):
        if asyncio.run(registered()):
            time.sleep(1)  # its first poll of the queue
            return
        time.sleep(0.2)
    raise RuntimeError("the worker did not start")


def task_timings(url: str) -> list:
    import asyncpg

    async def query():
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(
                "SELECT task_type, count(*) AS n,"
                " avg(extract(epoch FROM started_at - created_at)) * 1000 AS wait_ms,"
                " avg(extract(epoch FROM completed_at - started_at)) * 1000 AS run_ms"
                " FROM tasks GROUP BY task_type ORDER BY min(created_at)")
        finally:
            await conn.close()

    return asyncio.run(query())


def services_cpu(work: Path) -> float:
    """CPU seconds of the embedded Postgres (postmaster and its live backends) and Valkey."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            if str(work) in cmd and ("postgres" in cmd or "redis" in cmd or "valkey" in cmd):
                family = [proc, *proc.children(recursive=True)]
                total += sum(sum(p.cpu_times()[:2]) for p in family)
        except psutil.Error:
            continue
    return total


def upload_all(bench: BenchServer, files: list[Path], uploaders: int) -> None:
    """Every file through the Immich upload route, `uploaders` at a time."""
    immich = httpx.Client(base_url=f"http://127.0.0.1:{bench.env['IMMICH_PORT']}",
                          headers={"x-api-key": bench.key}, timeout=600)

    def upload(path: Path) -> None:
        with open(path, "rb") as fh:
            r = immich.post("/api/assets", files={"assetData": (path.name, fh, "image/jpeg")}, data={
                "deviceAssetId": path.stem, "deviceId": "bench",
                "fileCreatedAt": "2024-01-01T00:00:00.000Z", "fileModifiedAt": "2024-01-01T00:00:00.000Z"})
        if r.status_code != 201:
            raise RuntimeError(f"upload failed: {r.status_code} {r.text[:300]}")

    with immich, concurrent.futures.ThreadPoolExecutor(uploaders) as pool:
        for u in [pool.submit(upload, f) for f in files]:
            u.result()


def run_ours(work: Path, files: list[Path], concurrency: int | None, uploaders: int) -> dict:
    env = {} if concurrency is None else {"WORKER_CONCURRENCY": str(concurrency)}
    bench = BenchServer(work, "--no-worker", env=env)
    try:
        url = json.loads((work / "data" / "run" / "services.json").read_text())["database_url"]
        worker = bench.spawn("worker")
        wait_for_worker(url)  # its imports and start-up are not what is measured
        cpu0 = {p.pid: cpu_seconds(p.pid) for p in (bench.proc, worker)}
        client0 = time.process_time()
        services0 = services_cpu(work)
        start = time.perf_counter()
        upload_all(bench, files, uploaders)
        uploaded = time.perf_counter() - start
        client_cpu = time.process_time() - client0  # the uploading threads (this process)
        while True:
            row = progress(url)
            if row["done"] >= len(files):
                break
            if row["open_tasks"] == 0 and row["done"] < len(files):
                time.sleep(2)
                row = progress(url)
                if row["done"] < len(files) and row["open_tasks"] == 0:
                    print(f"stopped: {row['done']} of {len(files)} done, no task open, {row['failed']} failed")
                    break
            time.sleep(0.25)
        elapsed = time.perf_counter() - start
        for t in task_timings(url):
            print(f"  {t['task_type']}: {t['n']} tasks, {t['wait_ms']:.0f} ms from creation to start,"
                  f" {t['run_ms']:.0f} ms running (mean)")
        result = {
            "elapsed": elapsed, "uploaded": uploaded, "failed": row["failed"], "done": row["done"],
            "server_cpu": cpu_seconds(bench.proc.pid) - cpu0[bench.proc.pid],
            "worker_cpu": cpu_seconds(worker.pid) - cpu0[worker.pid],
            "services_cpu": services_cpu(work) - services0, "client_cpu": client_cpu,
            "server_peak": rss_kib(bench.proc.pid, "VmHWM"), "worker_peak": rss_kib(worker.pid, "VmHWM"),
        }
        worker.terminate()
        worker.wait(timeout=60)
        return result
    finally:
        bench.stop()


def upload_path_cpu(work: Path, files: list[Path], uploaders: int) -> tuple[float, float, float, float]:
    """The uploads alone, with no worker: wall seconds, and the CPU seconds of the server, of
    Postgres + Valkey and of this process's uploading threads. What ours spends before any
    processing, which the floor does not do."""
    bench = BenchServer(work, "--no-worker")
    try:
        server0, services0, client0 = cpu_seconds(bench.proc.pid), services_cpu(work), time.process_time()
        start = time.perf_counter()
        upload_all(bench, files, uploaders)
        return (time.perf_counter() - start, cpu_seconds(bench.proc.pid) - server0,
                services_cpu(work) - services0, time.process_time() - client0)
    finally:
        bench.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="WORKER_CONCURRENCY for the worker and the floor's pool size (default: the server's)")
    parser.add_argument("--uploaders", type=int, default=4)
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--budget", action="store_true",
                        help="also measure, apart, the uploads alone (a fresh server, no worker) and our"
                             " rendering alone (render_image in a pool of N threads), and print what is left")
    args = parser.parse_args()
    from app.settings import load_settings

    concurrency = args.concurrency or load_settings().worker_concurrency
    unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v not in os.environ]
    print(f"machine: {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f};"
          f" environment: {', '.join(unset) or 'nothing'} unset")
    files = corpus(args.count)
    mp = sum(pyvips.Image.new_from_file(str(f)).width * pyvips.Image.new_from_file(str(f)).height
             for f in files[:len(SIZES)]) / len(SIZES) / 1e6
    print(f"corpus: {len(files)} JPEGs, {sum(f.stat().st_size for f in files) / 1e6:.0f} MB, ~{mp:.1f} MP each;"
          f" worker concurrency {concurrency}, {args.uploaders} uploaders")
    from app.media.images import DEFAULT_VARIANTS, own_preview

    own = sum(own_preview(f, pyvips.Image.new_from_file(str(f)), DEFAULT_VARIANTS) is not None for f in files)
    print(f"  {own} of them are their own preview in our pipeline (within 1440 on the short side, upright;"
          " README, Variants); the floor re-encodes every one")
    floor = None
    if not args.skip_floor:
        floor, floor_cpu = floor_seconds(files, concurrency)
        print(f"floor: {len(files) / floor:.2f} assets/s ({floor:.1f} s, pool of {concurrency} processes:"
              f" pyexiv2 read + pyvips preview/thumbnail + thumbhash; {floor_cpu * 1000 / len(files):.0f} ms CPU"
              " per asset)")
    work = Path(tempfile.mkdtemp(prefix="bench-small-"))
    try:
        r = run_ours(work, files, args.concurrency, args.uploaders)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rate = r["done"] / r["elapsed"]
    print(f"ours: {rate:.2f} assets/s ({r['done']} done in {r['elapsed']:.1f} s from the first upload; uploads took"
          f" {r['uploaded']:.1f} s; {r['failed']} failed tasks)")
    if floor:
        print(f"ours / floor (assets/s): {rate / (len(files) / floor):.2f} (target >= 0.8)")
    print(f"CPU: worker {r['worker_cpu']:.0f} s (busy share {r['worker_cpu'] / r['elapsed'] / concurrency:.0%} of"
          f" {concurrency} slots), server {r['server_cpu']:.0f} s, Postgres + Valkey {r['services_cpu']:.0f} s,"
          f" upload client {r['client_cpu']:.0f} s, over {r['elapsed']:.0f} s; worker {r['worker_cpu'] * 1000 / max(1, r['done']):.0f} ms CPU per asset")
    total = r["worker_cpu"] + r["server_cpu"] + r["services_cpu"] + r["client_cpu"]
    print(f"all of it: {total:.0f} CPU s, {total * 1000 / max(1, r['done']):.0f} ms per asset, {total / r['elapsed']:.2f}"
          f" of {os.cpu_count()} cores busy on average")
    if args.budget:
        work = Path(tempfile.mkdtemp(prefix="bench-small-uploads-"))
        try:
            wall, server, services, client = upload_path_cpu(work, files, args.uploaders)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        up = server + services + client
        print(f"budget: uploads alone (no worker) {wall:.1f} s, {up * 1000 / len(files):.1f} ms CPU per asset"
              f" (server {server:.0f} s, Postgres + Valkey {services:.0f} s, upload client {client:.0f} s)")
        wall, render = render_cpu(files, concurrency)
        print(f"budget: our rendering alone (render_image, {concurrency} threads) {wall:.1f} s,"
              f" {render * 1000 / len(files):.1f} ms CPU per asset")
        rest = total - up - render
        print(f"budget: the rest of ours (jobs, tasks, metadata, their database work, contention):"
              f" {rest * 1000 / max(1, r['done']):.1f} ms CPU per asset")
        if floor:
            allowed = floor * 1.25 * os.cpu_count()  # finishing within 1.25x the floor's wall time
            print(f"budget: 0.8x the floor allows {allowed:.0f} CPU s ({allowed * 1000 / len(files):.1f} ms per"
                  f" asset) with all {os.cpu_count()} cores busy throughout")
    print(f"peak RSS: server {r['server_peak'] / 1024:.0f} MiB, worker {r['worker_peak'] / 1024:.0f} MiB"
          " (target < 250 MiB each)")
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
