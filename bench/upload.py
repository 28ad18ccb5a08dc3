"""Upload throughput and memory, over loopback, against this machine's own floor.

    python bench/upload.py [--big-mib 1024] [--small-count 1000] [--small-mib 3] [--concurrency 4]

Runs a fresh server (embedded Postgres and Valkey, its own DATA_DIR), then:
  (a) one large upload, streamed from disk by the client;
  (b) many small uploads with a few concurrent clients.
The floor, measured in the same run over the same bytes: one pass of hashlib SHA-256
and SHA-1, plus a plain file copy. The server must do at least that work per byte.
Peak RSS is the server process's, sampled during the large upload.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BenchServer, PeakRss, rss_kib  # noqa: E402

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x02\x00\x00\x00"
CHUNK = 1 << 20


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.write(PNG_HEAD)
        written = len(PNG_HEAD)
        while written < size:
            n = min(CHUNK, size - written)
            f.write(os.urandom(n))
            written += n


def floor_parts(path: Path, scratch: Path) -> tuple[float, float]:
    """One hashing pass (SHA-256 + SHA-1) plus one plain copy of the same file."""
    t0 = time.perf_counter()
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
    t1 = time.perf_counter()
    shutil.copyfile(path, scratch)
    with open(scratch, "rb+") as f:
        os.fsync(f.fileno())
    t2 = time.perf_counter()
    scratch.unlink()
    return t1 - t0, t2 - t1


def floor_seconds(path: Path, scratch: Path) -> float:
    return sum(floor_parts(path, scratch))


def multipart_stream(path: Path, name: str, boundary: str):
    fields = {"device_asset_id": name, "device_id": "bench",
              "file_created_at": "2024-01-01T00:00:00Z", "file_modified_at": "2024-01-01T00:00:00Z"}
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="asset_data"; filename="{name}"\r\n'
             f"Content-Type: image/png\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)

    def body():
        yield head
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
        yield tail

    return body(), length


def upload(client: httpx.Client, path: Path, name: str) -> int:
    boundary = uuid.uuid4().hex
    body, length = multipart_stream(path, name, boundary)
    r = client.post("/api/assets", content=body, headers={
        "content-type": f"multipart/form-data; boundary={boundary}", "content-length": str(length)})
    if r.status_code != 201:
        raise RuntimeError(f"upload failed: {r.status_code} {r.text[:300]}")
    return r.status_code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small-count", type=int, default=1000)
    parser.add_argument("--small-mib", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-upload-"))
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    bench = BenchServer(work)
    server, client = bench.proc, bench.client
    try:
        print(f"machine: {os.cpu_count()} cores, client and server on loopback; environment unchanged")
        upload(client, _small_file(inputs, "warmup", 64 * 1024), "warmup.png")

        # (a) one large upload
        big = inputs / "big.png"
        make_file(big, args.big_mib * CHUNK)
        size = big.stat().st_size
        hash_s, copy_s = floor_parts(big, work / "copy.tmp")
        floor_s = hash_s + copy_s
        with PeakRss(server.pid) as rss:
            t0 = time.perf_counter()
            upload(client, big, "big.png")
            elapsed = time.perf_counter() - t0
        idle_kib = rss.start_kib
        mib = size / CHUNK
        print(f"large upload: {mib:.0f} MiB in {elapsed:.2f} s = {mib / elapsed:.0f} MiB/s")
        print(f"large floor: sha256+sha1 pass {mib / hash_s:.0f} MiB/s, file copy+fsync {mib / copy_s:.0f} MiB/s, "
              f"together {mib / floor_s:.0f} MiB/s")
        print(f"large upload / floor: {floor_s / elapsed:.2f} (target >= 0.60)")
        print(f"server RSS idle: {idle_kib / 1024:.0f} MiB")
        print(f"server RSS peak during large upload: {rss.peak_kib / 1024:.0f} MiB (+{(rss.peak_kib - idle_kib) / 1024:.0f} MiB over idle, target <= +100)")
        big.unlink()

        # (b) many small uploads
        small_size = int(args.small_mib * CHUNK)
        files = [_small_file(inputs, f"s{i}", small_size) for i in range(args.small_count)]
        floor_small = sum(floor_seconds(f, work / "copy.tmp") for f in files[: min(50, len(files))])
        floor_small *= len(files) / min(50, len(files))
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda f: upload(client, f, f.name), files))
        elapsed = time.perf_counter() - t0
        total_mib = small_size * len(files) / CHUNK
        print(f"small uploads: {len(files)} x {args.small_mib:g} MiB, concurrency {args.concurrency}, in {elapsed:.1f} s = "
              f"{len(files) / elapsed:.1f} assets/s, {total_mib / elapsed:.0f} MiB/s")
        print(f"small floor (sha256+sha1 pass + file copy, serial): {len(files) / floor_small:.1f} assets/s, "
              f"{total_mib / floor_small:.0f} MiB/s")
        print(f"small uploads / floor: {floor_small / elapsed:.2f}")
        print(f"server RSS peak overall (VmHWM): {rss_kib(server.pid, 'VmHWM') / 1024:.0f} MiB")
    finally:
        bench.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def _small_file(folder: Path, name: str, size: int) -> Path:
    path = folder / f"{name}.png"
    make_file(path, size)
    return path


if __name__ == "__main__":
    main()
