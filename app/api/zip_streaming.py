"""Zip archives streamed as they are written (zipstream-ng): files are stored, not compressed (media
is already compressed), ZIP64 is used where sizes need it, and nothing is built in memory or on disk.

The archive's generator reads the files; it runs in a worker thread a batch at a time, so the event
loop never waits on the disk or on CRC-32. One batch is read ahead while the previous one is sent,
and no further (the ASGI send waits while the client is slow: backpressure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

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
    """The archive in batches, the next one read (in a thread) while the current one is being sent:
    disk and CRC-32 overlap the socket, and at most two batches are ever held."""
    loop = asyncio.get_running_loop()
    upcoming = loop.run_in_executor(None, _next_batch, parts)
    try:
        while batch := await upcoming:
            upcoming = loop.run_in_executor(None, _next_batch, parts)
            yield batch
    finally:
        # A client gone mid-download: the thread still holds the generator; let it finish first.
        await asyncio.wait([upcoming])
