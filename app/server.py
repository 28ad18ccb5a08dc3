"""Running the server: embedded services, migrations, HTTP listeners and workers in one loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import signal
import socket

import uvicorn

from app import malloc_tuning, realtime
from app.api.state import Shared
from app.runtime import Services, acquire_services
from app.settings import Settings

log = logging.getLogger(__name__)

_SECRET_QUERY = re.compile(r"((?:sessionKey|apiKey|key)=)[^&\s\"]+")


class _RedactSecrets(logging.Filter):
    """uvicorn logs each accepted websocket with its query string, which may carry a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(_SECRET_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


class PortUnavailable(Exception):
    """A listener's address could not be bound (port in use or not allowed, or an unknown host)."""


def bind_listener(host: str, port: int) -> list[socket.socket]:
    """The listening sockets, bound and listening before anything else starts. A port in use is
    then said at once, before the embedded services start; and the port is held from the start,
    so no connection the process itself makes during start-up can take it as its local port
    (which, with ports picked from the ephemeral range, let one listener come up and the other
    fail). Connections that arrive during start-up wait in the backlog and are served once the
    APIs are up. Every address the host resolves to gets a socket, IPv6 ones IPv6 only, as
    asyncio's create_server (which uvicorn used before) binds them."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sockets: list[socket.socket] = []
    try:
        for family, kind, _, _, address in dict.fromkeys(infos):
            # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on connections
            # accepted from a socket made with it. A first version made them with proto 0, and
            # each response written in two parts waited out the client's delayed ACK: 40 ms.
            sock = socket.socket(family, kind, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            # Listening now, not when uvicorn starts: with SO_REUSEADDR two binds of one port
            # both succeed (both APIs given the same port, say), and only listen() refuses.
            sock.listen(2048)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sockets


class _Listener(uvicorn.Server):
    """uvicorn without its own signal handling: this process handles signals once for all parts."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def _prepare(services: Services, step_pool: bool) -> None:
    from app.db import engine as db
    from app.db.migrate import apply_migrations
    from app.domain import system_config

    await apply_migrations(services.database_url)
    await db.open_pool(step_pool=step_pool)
    # A config file Immich's rules refuse stops the start here (ConfigFileInvalid), not each request.
    await system_config.current()


async def _reconcile(shared: Shared) -> None:
    from app.domain.ingest import reconcile_orphans

    try:
        await reconcile_orphans(shared.store)
    except Exception:  # the files stay; the next start tries again
        log.exception("reconciling stored files with assets failed")


async def _run(settings: Settings, services: Services, *, sockets: dict[str, list[socket.socket]],
               with_worker: bool) -> None:
    from app.api.app import create_native_app
    from app.db import engine as db
    from app.jobs.queue import JobQueue
    from app.jobs.worker import build_worker

    logging.getLogger("uvicorn.error").addFilter(_RedactSecrets())
    # A worker's pipeline steps get their own connections (db.step_plans).
    await _prepare(services, step_pool=with_worker)
    realtime.configure(services.redis_url)
    queue = await JobQueue.connect(services.redis_url)
    shared = Shared.build(settings, queue)
    removed = shared.store.sweep_stale_uploads()
    if removed:
        log.info("removed %d stale temporary uploads", removed)
    # Files a crash left without a row (see ingest.reconcile_orphans); in the background, as
    # it walks every original, and safe while other processes upload.
    reconciler = asyncio.create_task(_reconcile(shared), name="orphan reconciliation")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    tasks: list[asyncio.Task] = []
    listeners: list[_Listener] = []
    worker = None
    if sockets:
        from compat.app import create_immich_app

        for name, app in (("native API", create_native_app(shared)), ("Immich API", create_immich_app(shared))):
            listener = _Listener(uvicorn.Config(app, log_level="info", access_log=False,
                                                timeout_graceful_shutdown=10, lifespan="on"))
            listeners.append(listener)
            tasks.append(asyncio.create_task(listener.serve(sockets=sockets[name]), name=name))
            port = sockets[name][0].getsockname()[1]
            log.info("%s on http://%s:%d", name, settings.host, port)
    if with_worker:
        worker = build_worker(shared, services.redis_url)
        tasks.append(asyncio.create_task(worker.async_run(), name="worker"))
        log.info("worker running (concurrency %d)", settings.worker_concurrency)
        from app.faces.runtime import face_models

        # Load the face models now, so a missing model is said at start, not at the first photo.
        models = await face_models(settings.model_dir, settings.face_min_score)
        if models is not None:
            log.info("face recognition: %s models (%d-d embeddings) from %s", models.name, models.embedding_dim,
                     settings.model_dir)

    # Everything loaded by now (modules, app, models) lives as long as the process: out of the
    # collector's sight, a full collection no longer walks it again each time requests have
    # allocated enough (a sync stream of 100,000s of rows triggered dozens: half its CPU time).
    gc.collect()
    gc.freeze()
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not stopper and not t.cancelled() and t.exception()]
    log.info("shutting down")
    for listener in listeners:
        listener.should_exit = True
    if worker is not None:
        try:
            await worker.close()
        except asyncio.CancelledError:
            # arq cancels jobs still running at shutdown and re-raises that from close();
            # stopping is what was asked for, and their tasks are swept up again later.
            log.info("jobs running at shutdown were cancelled")
        from app.jobs.worker import stop_heartbeat

        await stop_heartbeat(worker)
    await asyncio.gather(*tasks, return_exceptions=True)
    reconciler.cancel()
    await asyncio.gather(reconciler, return_exceptions=True)
    stopper.cancel()
    await realtime.close()
    await queue.close()
    await db.close_pool()
    if failed:
        raise failed[0].exception()


def serve(settings: Settings, *, with_worker: bool = True) -> None:
    sockets: dict[str, list[socket.socket]] = {}
    try:
        for name, port in (("native API", settings.api_port), ("Immich API", settings.immich_port)):
            sockets[name] = bind_listener(settings.host, port)
        malloc_tuning.tune()
        # Redis even without an in-process worker: the API enqueues jobs for workers elsewhere.
        services = acquire_services(settings, need_redis=True, record=True)
        try:
            services.export_env()
            asyncio.run(_run(settings, services, sockets=sockets, with_worker=with_worker))
        finally:
            services.stop()
    finally:
        for sock in (s for group in sockets.values() for s in group):
            sock.close()


def run_worker(settings: Settings) -> None:
    # No malloc_tuning here: its large heap keeps HTTP transfer buffers warm, and a worker has no
    # transfers. In a worker its settings only kept freed memory resident (bench/small_images.py:
    # 261 -> 217 MiB peak without them). build_worker sets what a worker needs (memory.limit_arenas).
    services = acquire_services(settings, need_redis=True)
    try:
        services.export_env()
        asyncio.run(_run(settings, services, sockets={}, with_worker=True))
    finally:
        services.stop()
