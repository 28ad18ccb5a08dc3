"""Zip archives streamed as they are written (zipstream-ng): files are stored, not compressed (media
is already compressed), ZIP64 is used where sizes need it, and nothing is built in memory or on disk.

The archive's generator reads the files; it runs in a worker thread a batch at a time, so the event
loop never waits on the disk or on CRC-32, and the next batch is only read once the previous one was
sent (the ASGI send waits while the client is slow: backpressure). At most one batch is held.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import anyio
from litestar.response import Stream
from zipstream import ZIP_STORED, ZipStream

log = logging.getLogger(__name__)

BATCH_BYTES = 1 << 20  # what one thread hop reads and one ASGI send carries


def zip_stream(files: Iterable[tuple[str, Path]]) -> Stream:
    """A 200 response streaming a zip of `files` (name inside the archive, path on disk), with its
    exact Content-Length, known in advance since every entry is stored. A file missing on disk is
    left out (and logged): the archive stays valid."""
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    for name, path in files:
        try:
            archive.add_path(path, name, recurse=False)
        except FileNotFoundError:
            log.warning("zip download: %s (%s) is missing on disk; left out", name, path)
    return Stream(_batches(iter(archive)), media_type="application/zip",
                  headers={"content-length": str(len(archive))})


def _next_batch(parts: Iterator[bytes]) -> bytes:
    batch, size = [], 0
    for part in parts:
        batch.append(part)
        size += len(part)
        if size >= BATCH_BYTES:
            break
    return b"".join(batch)


async def _batches(parts: Iterator[bytes]) -> AsyncIterator[bytes]:
    while batch := await anyio.to_thread.run_sync(_next_batch, parts):
        yield batch
