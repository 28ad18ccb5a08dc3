"""Zip download throughput and memory, over loopback, against reading the same files from disk.

    python bench/download.py [--total-mib 2048] [--file-mib 16]

Runs a fresh server (embedded Postgres and Valkey, its own DATA_DIR, no worker so no media jobs run
alongside), uploads `--total-mib` of originals in files of `--file-mib`, then:
  floor = reading the stored originals from disk in 1 MiB reads, in this process (measured before
          and after the download; the faster of the two counts, so the floor is the harder one);
  ours  = POST /api/download/info for the user's timeline, then POST /api/download/archive of its
          one archive over the Immich listener, the client reading the zip to the end.
"From disk": the files' pages are dropped from the page cache (posix_fadvise DONTNEED on these
files only) before each floor and download pass; that pair is the target's. The same pair from the
page cache is printed too: it shows the cost of the server itself (HTTP, CRC-32) against memcpy,
and so is a plain loopback socket carrying the same bytes, the transport's own ceiling on this
machine (client and server share its cores).
The server's RSS (VmRSS of its process) is sampled during the download; growth is peak minus the
reading just before it. Targets (issue 15): ours / floor >= 0.80, RSS growth < 50 MB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BenchServer, PeakRss, rss_kib  # noqa: E402
from upload import CHUNK, make_file, upload  # noqa: E402


def evict(paths: list[Path]) -> None:
    """Drop these files' pages from the page cache (theirs only), so the next read comes from disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_all(paths: list[Path]) -> float:
    """Seconds to read every file to the end, 1 MiB at a time into one reused buffer."""
    buffer = bytearray(CHUNK)
    t0 = time.perf_counter()
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass
    return time.perf_counter() - t0


def loopback(size: int) -> float:
    """Seconds to push `size` bytes through a plain loopback TCP socket (a thread sends 1 MiB blocks,
    this one receives): what the machine's loopback gives, with no HTTP, zip or files at all."""
    block = os.urandom(CHUNK)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def send():
            conn, _ = listener.accept()
            with conn:
                for offset in range(0, size, CHUNK):
                    conn.sendall(block[: min(CHUNK, size - offset)])

        sender = threading.Thread(target=send)
        sender.start()
        buffer, received = bytearray(CHUNK), 0
        t0 = time.perf_counter()
        with socket.create_connection(listener.getsockname()) as s:
            while n := s.recv_into(buffer):
                received += n
        elapsed = time.perf_counter() - t0
        sender.join()
    return elapsed


def download(port: int, key: str, asset_ids: list[str]) -> tuple[int, int]:
    """Stream the archive and count its bytes; returns (bytes read, Content-Length). A plain
    http.client reading into one buffer: httpx (h11) alone would cap the rate well below the server's."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", "/api/download/archive", body=json.dumps({"assetIds": asset_ids}),
                     headers={"x-api-key": key, "content-type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"download failed: {response.status} {response.read()[:300]!r}")
        buffer, read = bytearray(CHUNK), 0
        while n := response.readinto(buffer):
            read += n
        return read, int(response.headers["content-length"])
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total-mib", type=int, default=2048)
    parser.add_argument("--file-mib", type=int, default=16)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-download-"))
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    bench = BenchServer(work, "--no-worker")
    server = bench.proc
    immich_url = f"http://127.0.0.1:{bench.env['IMMICH_PORT']}"
    try:
        print(f"machine: {os.cpu_count()} cores, client and server on loopback; environment unchanged")
        count = max(1, args.total_mib // args.file_mib)
        for i in range(count):
            path = inputs / f"photo{i:04d}.png"
            make_file(path, args.file_mib * CHUNK)
            upload(bench.client, path, path.name)
            path.unlink()
        stored = sorted((work / "data").rglob("originals/**/*.*"))
        stored = [p for p in stored if p.is_file()]
        size = sum(p.stat().st_size for p in stored)
        mib = size / CHUNK
        print(f"originals: {len(stored)} files, {mib:.0f} MiB")

        me = httpx.get(immich_url + "/api/users/me", headers={"x-api-key": bench.key}, timeout=30).json()
        info = httpx.post(immich_url + "/api/download/info", headers={"x-api-key": bench.key},
                          json={"userId": me["id"], "archiveSize": 2 * args.total_mib * CHUNK}, timeout=60).json()
        [archive] = info["archives"]  # archiveSize above the total: one archive, however large
        assert len(archive["assetIds"]) == len(stored) and archive["size"] == size, info

        port = int(bench.env["IMMICH_PORT"])

        def measured_download() -> tuple[float, int]:
            """Seconds for one download, and the server's RSS growth over it (KiB)."""
            with PeakRss(server.pid) as rss:
                t0 = time.perf_counter()
                read, length = download(port, bench.key, archive["assetIds"])
                elapsed = time.perf_counter() - t0
            assert read == length > size, (read, length, size)  # plus headers and the central directory
            return elapsed, rss.growth_kib

        # From disk: every pass starts with the files out of the page cache.
        evict(stored)
        floor_before = read_all(stored)
        evict(stored)
        cold_s, cold_growth = measured_download()
        evict(stored)
        floor_after = read_all(stored)
        floor_s = min(floor_before, floor_after)
        # From the page cache, for the record: the cost of the server itself.
        warm_floor_s = read_all(stored)
        warm_s, warm_growth = measured_download()
        loopback_s = loopback(size)

        print(f"server RSS idle: {rss_kib(server.pid) / 1024:.0f} MiB")
        print(f"from disk:  floor (read the files) {mib / floor_before:.0f} MiB/s before, {mib / floor_after:.0f} MiB/s "
              f"after; zip download {mib / cold_s:.0f} MiB/s")
        print(f"from disk:  zip download / floor: {floor_s / cold_s:.2f} (target >= 0.80)")
        print(f"from cache: floor {mib / warm_floor_s:.0f} MiB/s; zip download {mib / warm_s:.0f} MiB/s; "
              f"ratio {warm_floor_s / warm_s:.2f}")
        print(f"plain loopback socket, same bytes: {mib / loopback_s:.0f} MiB/s (the transport's own ceiling here)")
        print(f"server RSS growth during the download: +{cold_growth / 1024:.1f} MiB from disk, "
              f"+{warm_growth / 1024:.1f} MiB from cache (target < +50 MB)")
    finally:
        bench.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
