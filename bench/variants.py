"""Media pipeline throughput and memory against libvips' own CLI, on this machine.

    python bench/variants.py [--count 200] [--concurrency 2]

Corpus: `--count` generated 24 MP JPEGs (6000x4000, smooth photo-like content, Q90),
plus the shared test assets when ../shared/test-assets exists. Generated files are
cached in bench/out/corpus between runs.

Measured here, in the same run:
  ours  = a worker process (`python -m app worker`, WORKER_CONCURRENCY=N) running the
          full metadata + variants chain for every uploaded file, from worker start
          until every task has ended; peak RSS is that worker's VmHWM.
  floor = `vipsthumbnail` producing the same two sizes (preview JPEG short side 1440
          and thumbnail WebP short side 250, Q80) from the same files, N processes at
          a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, BenchServer, rss_kib  # noqa: E402

sys.path.insert(0, str(ROOT))
from app.domain.media_types import mime_from_name  # noqa: E402
from app.media.images import header_size  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "test-assets"
SHARED_FILES = [
    "formats/jpg/el_torcal_rocks.jpg", "formats/heic/IMG_2682.heic", "formats/avif/8bit-sRGB.avif",
    "formats/avif/10bit-HDR-P3-nclx.avif", "formats/webp/denali.webp", "formats/png/density_plot.png",
    "formats/jxl/8bit-sRGB.jxl", "formats/jxl/16bit-HDR-P3-nclx.jxl", "metadata/faces/portrait.jpg",
    "metadata/dates/datetimeoriginal-gps.jpg", "metadata/gps-position/empty_gps.jpg",
]


def corpus(count: int) -> list[Path]:
    folder = OUT / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    base = None
    for i in range(count):
        path = folder / f"photo_{i:04d}.jpg"
        if not path.exists():
            if base is None:
                # Smooth noise at several scales looks more like a photo than white noise does.
                base = sum(pyvips.Image.perlin(6400, 4400, cell_size=c, uchar=True) / n
                           for c, n in ((512, 2), (64, 4), (8, 8)))
                base = base.bandjoin([base.rot180(), base.fliphor()]).cast("uchar").copy(interpretation="srgb")
                base = base.copy_memory()
            tile = base.crop((i * 37) % 400, (i * 53) % 400, 6000, 4000)
            tile = (tile * [1 + (i % 5) / 10, 1, 1 - (i % 3) / 10]).cast("uchar").copy(interpretation="srgb")
            tile.jpegsave(str(path), Q=90)
        files.append(path)
    return files


def short_side_box(path: Path, short: int) -> str:
    w, h = header_size(path, mime_from_name(path.name)[0])
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image = pyvips.Image.new_from_file(str(path))
        if image.get_typeof("orientation") and image.get("orientation") in (5, 6, 7, 8):
            w, h = h, w
    scale = min(1.0, short / min(w, h))
    return f"{max(1, round(w * scale))}x{max(1, round(h * scale))}"


def floor_seconds(files: list[Path], concurrency: int, out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, f in enumerate(files):
        jobs.append(["vipsthumbnail", str(f), "-s", short_side_box(f, 1440), "-o", f"{out}/p{i}.jpg[Q=80,strip]"])
        jobs.append(["vipsthumbnail", str(f), "-s", short_side_box(f, 250), "-o", f"{out}/t{i}.webp[Q=80,strip]"])
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda cmd: subprocess.run(cmd, capture_output=True), jobs))
    elapsed = time.perf_counter() - start
    failed = [r for r in results if r.returncode != 0]
    if failed:
        print(f"floor: {len(failed)} vipsthumbnail runs failed: {failed[0].stderr.decode()[:200]}")
    return elapsed


def count_ended(bench: BenchServer) -> tuple[int, int]:
    import asyncio
    import json

    import asyncpg

    url = json.loads((bench.work / "data" / "run" / "services.json").read_text())["database_url"]

    async def query():
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE task_type IN ('thumbnail_generation', 'video_thumbnail_extract')"
                " AND status IN ('success', 'failure')) AS ended, count(*) FILTER (WHERE status = 'failure') AS failed"
                " FROM tasks")
        finally:
            await conn.close()

    row = asyncio.run(query())
    return row["ended"], row["failed"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("vipsthumbnail") is None:
        sys.exit("vipsthumbnail is missing: apt-get install libvips-tools")
    pyvips.cache_set_max(0)

    files = corpus(args.count)
    total_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"machine: {os.cpu_count()} cores; corpus {len(files)} files ({args.count} generated 24 MP JPEGs"
          f" + {len(files) - args.count} shared samples), {total_mb:.0f} MB; environment unchanged")
    vips_tool = subprocess.run(["vips", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"floor tool: vipsthumbnail ({vips_tool}); ours: pyvips {pyvips.version(0)}.{pyvips.version(1)}."
          f"{pyvips.version(2)}")

    work = Path(tempfile.mkdtemp(prefix="bench-variants-"))
    try:
        if files:
            floor = floor_seconds(files, args.concurrency, work / "floor")
            print(f"floor: {len(files) / floor:.2f} assets/s ({floor:.1f} s, {args.concurrency} at a time)")
            elapsed, peak, failures = run_ours(work / "ours", files, args.concurrency)
            print(f"ours: {len(files) / elapsed:.2f} assets/s ({elapsed:.1f} s from worker start, metadata + variants,"
                  f" {args.concurrency} concurrent jobs, {failures} failed tasks)")
            print(f"ours / floor time: {elapsed / floor:.2f}x (target <= 1.3x)")
            print(f"worker peak RSS: {peak / 1024:.0f} MiB (target < 600 MiB)")
        if SHARED.exists():
            samples = [SHARED / f for f in SHARED_FILES]
            elapsed, peak, failures = run_ours(work / "samples", samples, args.concurrency)
            print(f"shared samples (HEIC, AVIF 8/10-bit, JXL 8/16-bit, WebP, PNG, JPEG): {len(samples)} files in"
                  f" {elapsed:.1f} s, {failures} failed tasks, worker peak RSS {peak / 1024:.0f} MiB"
                  " (no floor: this vipsthumbnail lacks HEIC and JXL)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_ours(work: Path, files: list[Path], concurrency: int) -> tuple[float, int, int]:
    """Upload with no worker running, then time one worker process through every file."""
    work.mkdir(parents=True)
    bench = BenchServer(work, "--no-worker", env={"WORKER_CONCURRENCY": str(concurrency)})
    try:
        for i, f in enumerate(files):
            with open(f, "rb") as fh:
                r = bench.client.post("/api/assets", files={"asset_data": (f.name, fh)}, data={
                    "device_asset_id": str(i), "device_id": "bench",
                    "file_created_at": "2024-01-01T00:00:00Z", "file_modified_at": "2024-01-01T00:00:00Z"})
            assert r.status_code == 201, r.text
        start = time.perf_counter()
        worker = bench.spawn("worker")
        peak = 0
        while True:  # poll the database directly: the API would compete for the CPU
            ended, failures = count_ended(bench)
            peak = max(peak, rss_kib(worker.pid, "VmHWM"))
            if ended == len(files):
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - start
        worker.terminate()
        worker.wait(timeout=60)
        return elapsed, peak, failures
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
