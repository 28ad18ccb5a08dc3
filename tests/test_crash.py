"""Crash safety: SIGKILL of the whole server tree (server, embedded Postgres, embedded Valkey)
in the middle of uploads and media jobs, then restart on the same DATA_DIR.

The headline test runs an upload storm through both APIs, kills everything three times,
restarts, and checks that what was acknowledged is there exactly once and byte-identical,
that nothing is left over (originals without a row, temp files), and that every media
chain ends. The other tests construct each failure directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
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

from tests.conftest import ROOT, ServerProcess, run
from tests.helpers import upload, wait_processed
from tests.media import SHARED_ASSETS, png_bytes

REAL_FILES = [p for p in (SHARED_ASSETS / "formats").rglob("*") if p.is_file()] if SHARED_ASSETS.exists() else []


# --- a server we can kill ----------------------------------------------------------------


class KillableServer(ServerProcess):
    """`python -m app serve` in its own session, on fixed ports across restarts, on its own embedded services."""

    def __init__(self, data_dir: Path, *args: str):
        super().__init__(data_dir, extra_env={"WORKER_CONCURRENCY": "2"})
        self.args = args
        self.env.pop("DATABASE_URL", None)
        self.env.pop("REDIS_URL", None)
        self.popen_options = {"start_new_session": True}
        self.workers: list[subprocess.Popen] = []

    def start_worker(self) -> None:
        """An extra `python -m app worker` on the same DATA_DIR, database and Redis."""
        with open(self.log_path.with_name(self.log_path.stem + "-worker.log"), "ab") as log:
            self.workers.append(subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, env=self.env,
                                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def start(self, timeout: float = 90) -> "KillableServer":
        super().start(*self.args, timeout=timeout)
        return self

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
        for worker in self.workers:
            add(worker.pid)
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
        for worker in self.workers:
            worker.wait(timeout=10)
        self.workers.clear()
        return len(procs)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        super().stop()

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
        # A second process starts on the same DATA_DIR while uploads stream into the first: its
        # start-up sweeps (temp files, rowless originals) must not touch the live uploads.
        time.sleep(1.0)
        self.srv.start_worker()
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
        srv.start_worker()
        restarted = time.time()

        errors = [a for a in storm.acked if "error" in a]
        assert not errors, errors[:3]
        acked = [a for a in storm.acked if "id" in a]
        assert len(acked) >= 20, f"the storm got too few uploads through ({len(acked)} of {storm.attempts})"
        print(f"{len(acked)} uploads acknowledged of {storm.attempts} answered")

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
                    f"{[(t['task_type'], t['status'], dict(t).get('worker_id')) for t in open_tasks[:5]]}, "
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


# --- finding 8: a step's end and its successor commit together ---------------------------


def _refuse_task_insert(asset_id: uuid.UUID, task_type: str) -> tuple[str, str]:
    """SQL for a trigger that makes inserting this asset's next task fail, and SQL to drop it."""
    name = f"crash_test_refuse_{uuid.uuid4().hex[:12]}"
    create = f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.asset_id = '{asset_id}'::uuid AND NEW.task_type = '{task_type}' THEN
                RAISE EXCEPTION 'the next step cannot be created';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER {name} BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION {name}();
    """
    return create, f"DROP TRIGGER {name} ON tasks; DROP FUNCTION {name}();"


def _processed_asset(account, name: str, seed: int):
    from app.db import engine as db
    from app.api import ids

    native = upload(account, name, png_bytes(seed, 24, 24), content_type="image/png").parse().id
    wait_processed(account, native)
    return run(db.fetchrow("SELECT * FROM assets WHERE id = $1", ids.decode(ids.ASSET, native)))


async def _run_step_with_successor_refused(asset, step: str, successor: str, clear_sql: str, run_step) -> dict:
    """Clear what the step writes, run it while its successor's task insert fails, return its task."""
    from app.db import engine as db
    from app.domain import processing

    create, drop = _refuse_task_insert(asset["id"], successor)
    await db.execute(clear_sql, asset["id"])
    task_id = await processing.new_task(asset, step)
    await db.execute(create)
    try:
        with pytest.raises(asyncpg.RaiseError):
            await run_step(task_id)
    finally:
        await db.execute(drop)
    return await db.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)


def test_metadata_step_does_not_end_without_its_successor(server, account):
    from app.db import engine as db
    from app.domain import processing
    from app.storage.blobstore import BlobStore

    asset = _processed_asset(account, "chain-metadata.png", 9101)

    async def go():
        task = await _run_step_with_successor_refused(
            asset, "metadata", "thumbnail_generation", "DELETE FROM asset_exif WHERE asset_id = $1",
            lambda task_id: processing.run_metadata(BlobStore(server.data_dir), task_id, None, chain=True))
        return (task,
                await db.fetchval("SELECT count(*) FROM asset_exif WHERE asset_id = $1", asset["id"]),
                await db.fetchval("SELECT count(*) FROM tasks WHERE asset_id = $1 AND task_type = 'thumbnail_generation'",
                                  asset["id"]))

    task, exif_rows, variant_tasks = run(go())
    # Nothing of the step committed: it is still open (a sweep runs it again), not done.
    assert task["status"] == "started"
    assert exif_rows == 0
    assert variant_tasks == 1  # only the upload's own


def test_variants_step_does_not_end_without_its_successor(server, account):
    from app.db import engine as db
    from app.domain import processing
    from app.storage.blobstore import BlobStore

    asset = _processed_asset(account, "chain-variants.png", 9102)

    async def go():
        task = await _run_step_with_successor_refused(
            asset, "variants", "face_detection", "DELETE FROM asset_files WHERE asset_id = $1 AND kind <> 'sidecar'",
            lambda task_id: processing.run_variants(BlobStore(server.data_dir), task_id, chain=True))
        return task, await db.fetchval("SELECT count(*) FROM asset_files WHERE asset_id = $1", asset["id"])

    task, file_rows = run(go())
    assert task["status"] == "started"
    assert file_rows == 0


# --- finding 7: interrupted, poison and slow tasks ---------------------------------------


def _redis(server):
    import redis.asyncio as redis

    return redis.from_url(server.services()["redis_url"])


def _task_of_gone_worker(asset, attempts: int) -> tuple[uuid.UUID, str]:
    """A metadata task as a killed worker leaves it: started, its worker's heartbeat long stale."""
    from app.db import engine as db
    from app.domain import processing

    async def go():
        task_id = await processing.new_task(asset, "metadata")
        worker = f"gone-{uuid.uuid4().hex}"
        await db.execute("INSERT INTO workers (id, hostname, pid, seen_at)"
                         " VALUES ($1, 'gone', 1, now() - interval '5 minutes')", worker)
        await db.execute("UPDATE tasks SET status = 'started', worker_id = $2, attempts = $3, started_at = now()"
                         " WHERE id = $1", task_id, worker, attempts)
        return task_id, await db.fetchval("SELECT job_id FROM tasks WHERE id = $1", task_id)

    return run(go())


def _wait_task(task_id: uuid.UUID, statuses: tuple[str, ...], timeout: float):
    from app.db import engine as db

    deadline = time.time() + timeout
    while True:
        task = run(db.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id))
        if task["status"] in statuses:
            return task
        assert time.time() < deadline, dict(task)
        time.sleep(1)


def test_task_of_a_killed_worker_runs_again_within_a_minute(server, account):
    from arq.constants import in_progress_key_prefix

    from app.domain import processing
    from app.jobs.queue import JobQueue

    asset = _processed_asset(account, "interrupted.png", 9103)
    task_id, job_id = _task_of_gone_worker(asset, attempts=1)

    async def leave_job_marked():
        # What arq keeps after the kill: the job queued, and marked in progress for the job timeout.
        r = _redis(server)
        await r.psetex(in_progress_key_prefix + job_id, 3600 * 1000, b"1")
        await r.aclose()
        queue = await JobQueue.connect(server.services()["redis_url"])
        await queue.enqueue(processing.METADATA_JOB, task_id, job_id)
        await queue.close()

    asyncio.run(leave_job_marked())
    task = _wait_task(task_id, ("success", "failure"), timeout=60)
    assert task["status"] == "success" and task["attempts"] == 2
    assert not task["worker_id"].startswith("gone-")


def test_task_that_kills_its_worker_every_time_ends_failed(server, account):
    from app.domain import tasks

    asset = _processed_asset(account, "poison.png", 9104)
    task_id, _ = _task_of_gone_worker(asset, attempts=tasks.MAX_ATTEMPTS)
    task = _wait_task(task_id, ("success", "failure", "pending"), timeout=40)
    assert task["status"] == "failure"
    assert "died" in task["error_message"]


def test_task_of_a_live_slow_worker_is_not_taken_over(server, account):
    from app.db import engine as db
    from app.domain import processing, tasks

    asset = _processed_asset(account, "slow.png", 9105)

    async def go():
        task_id = await processing.new_task(asset, "metadata")
        await db.execute("INSERT INTO workers (id, hostname, pid) VALUES ('slow-worker', 'here', 1)"
                         " ON CONFLICT (id) DO UPDATE SET seen_at = now()")
        tasks.WORKER.set("slow-worker")
        assert await tasks.start(task_id, 1) is not None
        tasks.WORKER.set("another-worker")
        refused = await tasks.start(task_id, 1)  # a re-delivered job while the first still runs
        await db.execute("UPDATE workers SET seen_at = now() - interval '5 minutes' WHERE id = 'slow-worker'")
        taken = await tasks.start(task_id, 1)  # once its worker is gone
        await db.execute("DELETE FROM workers WHERE id = 'slow-worker'")
        await tasks.finish(task_id, ok=True)
        return refused, taken

    refused, taken = run(go())
    assert refused is None
    assert taken is not None and taken["worker_id"] == "another-worker" and taken["attempts"] == 2


# --- finding 6: originals without a row --------------------------------------------------


def test_reconciliation_removes_rowless_files_but_not_in_flight_or_committed_ones(server, account):
    from app.db import engine as db
    from app.domain import ingest
    from app.storage.blobstore import BlobStore

    store = BlobStore(server.data_dir)
    kept = _processed_asset(account, "committed.png", 9106)
    library_id = kept["library_id"]
    orphan, in_flight = uuid.uuid4(), uuid.uuid4()
    paths = {}
    for asset_id in (orphan, in_flight):
        key = store.original_key(library_id, asset_id, ".jpg")
        store.path(key).parent.mkdir(parents=True, exist_ok=True)
        store.path(key).write_bytes(b"bytes of an upload that never committed")
        sidecar = store.path(f"{store.derived_prefix(library_id, asset_id)}/sidecar.xmp")
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        sidecar.write_bytes(XMP)
        paths[asset_id] = (store.path(key), sidecar.parent)

    async def go():
        # Another process's upload of in_flight: renamed, holding the lock, not yet committed.
        other = await asyncpg.connect(server.services()["database_url"])
        tx = other.transaction()
        await tx.start()
        await ingest.lock_blobs(other, in_flight, wait=True)
        first = await ingest.reconcile_orphans(store)
        in_flight_kept = paths[in_flight][0].exists() and paths[in_flight][1].exists()
        await tx.rollback()  # it failed (or its process died): now it is an orphan too
        await other.close()
        second = await ingest.reconcile_orphans(store)
        return first, in_flight_kept, second

    first, in_flight_kept, second = run(go())
    assert in_flight_kept
    assert first >= 2 and second >= 2
    for original, derived in paths.values():
        assert not original.exists() and not derived.exists()
    assert store.path(kept["storage_key"]).exists()
    assert run(db.fetchval("SELECT count(*) FROM asset_files WHERE asset_id = $1", kept["id"])) > 0
    assert store.path(store.derived_prefix(library_id, kept["id"])).is_dir()


# --- finding 9: temp files of crashed processes ------------------------------------------


_STAGER = """
import sys, time
from pathlib import Path
from app.storage.blobstore import BlobStore
staged = BlobStore(Path(sys.argv[1])).stage()
staged.write(b"half an upload")
print(staged.path, flush=True)
time.sleep(120)
"""


def test_temp_files_of_dead_processes_go_at_start_live_ones_stay(tmp_path):
    from app.storage.blobstore import BlobStore

    procs = [subprocess.Popen([sys.executable, "-c", _STAGER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        dead_file, live_file = (Path(p.stdout.readline().strip()) for p in procs)
        procs[0].kill()
        procs[0].wait()
        store = BlobStore(tmp_path)
        own = store.stage()
        own.write(b"mine, still arriving")
        legacy = tmp_path / "tmp" / f"upload-{uuid.uuid4().hex}"  # an older version's name: kept for a day
        legacy.write_bytes(b"?")

        assert store.sweep_stale_uploads() == 1
        assert not dead_file.exists()
        assert live_file.exists() and own.path.exists() and legacy.exists()
        assert len(list((tmp_path / "run" / "uploads").iterdir())) == 2  # the dead owner's lock file went too

        procs[1].kill()
        procs[1].wait()
        assert store.sweep_stale_uploads() == 1 and not live_file.exists()
        own.discard()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_task_started_too_often_is_not_started_again(server, account):
    """However a task came back (crash sweeps, arq retries, job timeouts), its starts are bounded."""
    from app.db import engine as db
    from app.domain import processing, tasks

    asset = _processed_asset(account, "bounded.png", 9107)

    async def go():
        task_id = await processing.new_task(asset, "metadata")
        await db.execute("UPDATE tasks SET attempts = $2, error_message = 'attempt 5: timed out' WHERE id = $1",
                         task_id, tasks.MAX_ATTEMPTS)
        claimed = await processing.run_metadata(processing.BlobStore(server.data_dir), task_id, None)
        return claimed, await db.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)

    outcome, task = run(go())
    assert outcome.startswith("not run")
    assert task["status"] == "failure" and "gave up after 5 starts" in task["error_message"]
