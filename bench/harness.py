"""Shared bits of the benchmarks: a fresh server with its own DATA_DIR, an account, RSS readings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "app"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


class PeakRss:
    """The highest RSS of a process while the `with` block runs, sampled every 20 ms in a thread."""

    def __init__(self, pid: int):
        self.pid = pid
        self.start_kib = self.peak_kib = rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_kib(self) -> int:
        return self.peak_kib - self.start_kib


class BenchServer:
    """`python -m app serve` on embedded services in `work/data`, plus one account."""

    def __init__(self, work: Path, *serve_args: str, env: dict | None = None):
        self.work = work
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(DATA_DIR=str(work / "data"), API_PORT=str(self.port), IMMICH_PORT=str(free_port()),
                        HOST="127.0.0.1", **(env or {}))
        subprocess.run([*CLI, "admin", "create-user", "--email", "bench@example.com", "--password", "pw"],
                       cwd=ROOT, env=self.env, check=True, capture_output=True)
        self.key = subprocess.run(
            [*CLI, "admin", "create-api-key", "--email", "bench@example.com", "--name", "bench"],
            cwd=ROOT, env=self.env, check=True, capture_output=True, text=True,
        ).stdout.strip()
        self.log = open(work / "server.log", "ab")
        self.proc = subprocess.Popen([*CLI, "serve", *serve_args], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                if httpx.get(self.base_url + "/api/server/ping", timeout=1).text == "pong":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        self.client = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.key}"},
                                   timeout=600)

    def spawn(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*CLI, *args], cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
