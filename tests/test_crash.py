"""Crash safety: SIGKILL of the whole server tree (server, embedded Postgres, embedded Valkey)
in the middle of uploads and media jobs, then restart on the same DATA_DIR.

The headline test runs an upload storm through both APIs, kills everything three times,
restarts, and checks that what was acknowledged is there exactly once and byte-identical,
that nothing is left over (originals without a row, temp files), and that every media
chain ends. The other tests construct each failure directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from tests.conftest import BASE_ENV, ROOT, free_port, run
from tests.helpers import upload, wait_processed
from tests.media import SHARED_ASSETS, png_bytes

REAL_FILES = [p for p in (SHARED_ASSETS / "formats").rglob("*") if p.is_file()] if SHARED_ASSETS.exists() else []


# --- a server we can kill ----------------------------------------------------------------


class KillableServer:
    """`python -m app serve` in its own session, on fixed ports across restarts."""

    def __init__(self, data_dir: Path, *args: str):
        self.data_dir = data_dir
        self.args = args
        self.port, self.immich_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.immich_url = f"http://127.0.0.1:{self.immich_port}"
        self.env = {**BASE_ENV, "DATA_DIR": str(data_dir), "API_PORT": str(self.port),
                    "IMMICH_PORT": str(self.immich_port), "HOST": "127.0.0.1", "WORKER_CONCURRENCY": "2"}
        self.env.pop("DATABASE_URL", None)
        self.env.pop("REDIS_URL", None)
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "KillableServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve", *self.args], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.base_url}/api/server/ping", timeout=1).text == "pong":
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()[-4000:]}")

    def tree(self) -> list[psutil.Process]:
        """The server, its children, and the embedded Postgres (daemonised: not a child) and Valkey."""
        procs: dict[int, psutil.Process] = {}

        def add(pid: int | None) -> None:
            if pid is None:
                return
            try:
                proc = psutil.Process(pid)
                procs[proc.pid] = proc
                for child in proc.children(recursive=True):
                    procs[child.pid] = child
            except psutil.NoSuchProcess:
                pass

        add(self.proc.pid if self.proc else None)
        add(self.postmaster_pid())
        valkey = self.data_dir / "redis" / "valkey.pid"
        if valkey.exists():
            add(int(valkey.read_text().split()[0]))
        return list(procs.values())

    def postmaster_pid(self) -> int | None:
        pidfile = self.data_dir / "postgres" / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def kill_tree(self) -> int:
        procs = self.tree()
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)
        self.proc.wait(timeout=10)
        return len(procs)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def database_url(self) -> str:
        return json.loads((self.data_dir / "run" / "services.json").read_text())["database_url"]

    def redis_url(self) -> str:
        return json.loads((self.data_dir / "run" / "services.json").read_text())["redis_url"]

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=self.env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def query(self, sql: str, *args):
        async def go():
            conn = await asyncpg.connect(self.database_url())
            try:
                return await conn.fetch(sql, *args)
            finally:
                await conn.close()

        return asyncio.run(go())


def _cleanup(srv: KillableServer) -> None:
    srv.stop()
    leftovers = srv.tree()  # a failed test must not leave its Postgres or Valkey running
    for proc in leftovers:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


# --- the upload storm --------------------------------------------------------------------


def _unique_image(rng: random.Random) -> tuple[str, bytes, str]:
    from PIL import Image

    size = rng.randint(24, 96)
    image = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
    out = io.BytesIO()
    if rng.random() < 0.5:
        image.save(out, "JPEG", quality=80)
        return f"gen-{uuid.uuid4().hex[:8]}.jpg", out.getvalue(), "image/jpeg"
    image.save(out, "PNG")
    return f"gen-{uuid.uuid4().hex[:8]}.png", out.getvalue(), "image/png"


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="3"/></rdf:RDF></x:xmpmeta>')


class Storm:
    """Uploaders in threads until stopped; every 2xx answer is recorded with the bytes sent."""

    def __init__(self, srv: KillableServer, api_key: str, seed: int, threads: int = 6):
        self.srv, self.key, self.threads = srv, api_key, threads
        self.rng = random.Random(seed)
        self.acked: list[dict] = []
        self.attempts = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def _one(self, http_native: httpx.Client, http_immich: httpx.Client, rng: random.Random) -> None:
        if REAL_FILES and rng.random() < 0.25:
            path = rng.choice(REAL_FILES)
            name, data, mime = path.name, path.read_bytes(), "application/octet-stream"
        else:
            name, data, mime = _unique_image(rng)
        when = "2024-03-04T05:06:07.000Z"
        try:
            if rng.random() < 0.5:
                files = {"asset_data": (name, data, mime)}
                if rng.random() < 0.3:
                    files["sidecar_data"] = (name + ".xmp", XMP, "application/xml")
                r = http_native.post("/api/assets", files=files, data={
                    "device_asset_id": name, "device_id": "storm", "file_created_at": when,
                    "file_modified_at": when})
                api = "native"
            else:
                r = http_immich.post("/api/assets", files={"assetData": (name, data, mime)}, data={
                    "deviceAssetId": name, "deviceId": "storm", "fileCreatedAt": when, "fileModifiedAt": when})
                api = "immich"
        except httpx.HTTPError:
            return  # killed mid-request: not acknowledged
        with self.lock:
            self.attempts += 1
            if 200 <= r.status_code < 300:
                self.acked.append({"api": api, "id": r.json()["id"], "sha256": hashlib.sha256(data).digest(),
                                   "data": data, "status": r.status_code})
            elif r.status_code >= 500:
                self.acked.append({"api": api, "error": r.status_code, "text": r.text})

    def _loop(self, n: int) -> None:
        rng = random.Random(self.rng.random() + n)
        with httpx.Client(base_url=self.srv.base_url, headers={"Authorization": f"Bearer {self.key}"},
                          timeout=30) as native, \
                httpx.Client(base_url=self.srv.immich_url, headers={"x-api-key": self.key}, timeout=30) as immich:
            while not self.stop.is_set():
                self._one(native, immich, rng)

    def run_until_killed(self, seconds: float) -> None:
        self.stop.clear()
        workers = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(self.threads)]
        for w in workers:
            w.start()
        time.sleep(seconds)
        self.srv.kill_tree()
        self.stop.set()
        for w in workers:
            w.join(timeout=40)


def _originals(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "library").rglob("originals/*/*") if p.is_file()]


def _derived_dirs(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "library").glob("*/derived/*") if p.is_dir()]


def test_sigkill_during_upload_storm_three_times(tmp_path):
    srv = KillableServer(tmp_path / "data").start()
    try:
        srv.cli("admin", "create-user", "--email", "storm@example.com", "--password", "storm-password")
        key = srv.cli("admin", "create-api-key", "--email", "storm@example.com", "--name", "storm")
        storm = Storm(srv, key, seed=11)
        for round_ in range(3):
            # The first round runs long enough to get past the start-up; later ones kill sooner.
            storm.run_until_killed(random.uniform(4.0, 6.0) if round_ == 0 else random.uniform(2.0, 4.0))
            assert not srv.postmaster_pid(), "postgres survived the kill"
            srv.start()
        restarted = time.time()

        errors = [a for a in storm.acked if "error" in a]
        assert not errors, errors[:3]
        acked = [a for a in storm.acked if "id" in a]
        assert len(acked) >= 20, f"the storm got too few uploads through ({len(acked)} of {storm.attempts})"

        user = srv.query("SELECT id FROM users WHERE email = 'storm@example.com'")[0]["id"]
        # Every acknowledged upload exists exactly once, and its original is byte-identical.
        for a in acked:
            rows = srv.query("SELECT id, storage_key FROM assets WHERE owner_id = $1 AND checksum_sha256 = $2",
                             user, a["sha256"])
            assert len(rows) == 1, a["id"]
            if a["api"] == "immich":
                assert str(rows[0]["id"]) == a["id"]
            assert (srv.data_dir / rows[0]["storage_key"]).read_bytes() == a["data"]

        # Within two minutes of the last restart: no orphans, no stale temp files, every chain ended.
        deadline = restarted + 120
        while True:
            assets = {r["id"]: r for r in srv.query("SELECT id, storage_key, media_type, visibility FROM assets")}
            keys = {r["storage_key"] for r in assets.values()}
            orphans = [p for p in _originals(srv.data_dir) if p.relative_to(srv.data_dir).as_posix() not in keys]
            orphan_dirs = [p for p in _derived_dirs(srv.data_dir) if uuid.UUID(hex=p.name) not in assets]
            temp = list((srv.data_dir / "tmp").iterdir())
            open_tasks = srv.query("SELECT * FROM tasks WHERE status IN ('pending', 'started')")
            types = {}
            for t in srv.query("SELECT asset_id, task_type, status FROM tasks"):
                types.setdefault(t["asset_id"], {})[t["task_type"]] = t["status"]
            unfinished = [a for a, r in assets.items()
                          if types.get(a, {}).get("thumbnail_generation") not in ("success", "failure")
                          or (types[a]["thumbnail_generation"] == "success" and r["visibility"] != "hidden"
                              and types[a].get("face_detection") not in ("success", "failure"))]
            if not (orphans or orphan_dirs or temp or open_tasks or unfinished):
                break
            if time.time() > deadline:
                raise AssertionError(
                    f"{len(orphans)} orphan originals {orphans[:3]}, {len(orphan_dirs)} orphan derived folders, "
                    f"{len(temp)} temp files {temp[:3]}, {len(open_tasks)} open tasks "
                    f"{[(t['task_type'], t['status'], t['worker_id']) for t in open_tasks[:5]]}, "
                    f"{len(unfinished)} unfinished chains")
            time.sleep(2)
        # Every media chain started by an upload ran to its thumbnail.
        missing_thumbs = srv.query(
            "SELECT a.id FROM assets a JOIN tasks t ON t.asset_id = a.id AND t.task_type = 'thumbnail_generation'"
            " AND t.status = 'success' WHERE NOT EXISTS (SELECT 1 FROM asset_files f WHERE f.asset_id = a.id"
            " AND f.kind = 'thumbnail')")
        assert not missing_thumbs
    finally:
        _cleanup(srv)
    # The embedded Postgres stops with the last process, even after three crashes left stale handles.
    assert not srv.postmaster_pid(), "postgres still runs after a clean stop"
