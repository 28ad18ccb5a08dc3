"""Watching external libraries' import paths (system config library.watch.enabled), as Immich does.

One worker of the deployment watches: the one holding a Postgres advisory lock (held on a
connection of its own for as long as it watches; another worker takes over when it goes). Changes
are debounced by watchfiles and handed to library_scan.sync_paths per library. The config and the
libraries are looked at every few seconds, so switching watching on or off, or changing a library's
paths, applies without a restart. When watching starts, every library is scanned once, so changes
made while nobody watched are caught.

A deleted file takes its asset offline (and into the trash), as a scan would. Immich's watcher
hard-deletes the asset instead; the issue asks for offline, so an asset whose file comes back keeps
its id, albums and faces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from app.db import engine as db
from app.domain import library_scan, system_config

log = logging.getLogger(__name__)

# The advisory lock the watching worker holds (an arbitrary constant no other lock uses).
LOCK_KEY = 0x6C69622D77617463
POLL_S = 3.0
DEBOUNCE_MS = 500
RETRY_S = 300  # a watcher that failed is started again after this long, or when the folders change


async def _wanted() -> dict[uuid.UUID, tuple[str, ...]]:
    """What should be watched now: each library's import paths (none when watching is off)."""
    if not (await system_config.current())["library"]["watch"]["enabled"]:
        return {}
    rows = await db.fetch("SELECT id, import_paths FROM external_libraries WHERE deleted_at IS NULL ORDER BY id")
    return {r["id"]: tuple(sorted(library_scan.usable_roots(list(r["import_paths"]), quiet=True))) for r in rows}


def _library_of(path: str, libraries: dict[uuid.UUID, tuple[str, ...]]) -> list[uuid.UUID]:
    return [lib for lib, roots in libraries.items()
            if any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)]


async def _watch(libraries: dict[uuid.UUID, tuple[str, ...]], queue: Any, stop: asyncio.Event) -> None:
    import watchfiles

    roots = sorted({r for paths in libraries.values() for r in paths})
    if not roots:
        await stop.wait()
        return
    if queue is not None:
        for lib in libraries:
            await library_scan.enqueue_scan(queue, lib)
    async for changes in watchfiles.awatch(*roots, watch_filter=None, debounce=DEBOUNCE_MS, step=50,
                                           stop_event=stop, ignore_permission_denied=True):
        by_library: dict[uuid.UUID, set[str]] = {}
        for _, path in changes:
            for lib in _library_of(path, libraries):
                by_library.setdefault(lib, set()).add(path)
        for lib, paths in by_library.items():
            try:
                summary = await library_scan.sync_paths(lib, sorted(paths), queue)
                log.info("library %s: %d changed paths synced: %s", lib, len(paths), summary.as_dict())
            except Exception:
                log.exception("library %s: syncing %d changed paths failed", lib, len(paths))


async def run(queue: Any) -> None:
    """Forever (cancel to stop): wait to be the watching worker, then watch what the config says."""
    while True:
        try:
            async with db.session_connection() as conn:
                if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                    await asyncio.sleep(POLL_S)
                    continue
                try:
                    await _lead(queue)
                finally:
                    with contextlib.suppress(Exception):
                        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("library watcher stopped; starting again", exc_info=True)
            await asyncio.sleep(POLL_S)


async def _lead(queue: Any) -> None:
    current: dict[uuid.UUID, tuple[str, ...]] | None = None
    stop = asyncio.Event()
    watcher: asyncio.Task | None = None
    failed_at: float | None = None  # when the watcher last ended on an error
    loop = asyncio.get_running_loop()
    try:
        while True:
            wanted = await _wanted()
            if watcher is not None and watcher.done() and failed_at is None:
                error = None if watcher.cancelled() else watcher.exception()
                if error is not None:
                    # e.g. the system's limit on watched folders: said once, and not retried (each
                    # start scans every library) until the folders change or RETRY_S has passed.
                    log.error("library watcher failed: %s; retrying in %d s or when the folders change",
                              error, RETRY_S, exc_info=error)
                    failed_at = loop.time()
            retry_due = failed_at is not None and loop.time() - failed_at >= RETRY_S
            if wanted != current or retry_due or (watcher is not None and watcher.done() and failed_at is None):
                if watcher is not None:
                    stop.set()
                    await asyncio.gather(watcher, return_exceptions=True)
                stop = asyncio.Event()
                current = wanted
                failed_at = None
                watcher = asyncio.create_task(_watch(wanted, queue, stop), name="library watcher") if wanted else None
            await asyncio.sleep(POLL_S)
    finally:
        if watcher is not None:
            stop.set()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
