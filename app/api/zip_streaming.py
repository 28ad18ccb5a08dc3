"""Zip archives streamed as they are written (zipstream-ng): files are stored, not compressed (media
is already compressed), ZIP64 is used where sizes need it, and nothing is built in memory or on disk.

The archive's generator reads the files in large sequential reads; it runs in a worker thread a
batch at a time, so the event loop never waits on the disk or on CRC-32. One batch is read ahead
while the previous one is sent, and no further (the ASGI send waits while the client is slow:
backpressure), so a download holds at most two batches whatever its size.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path

import zipstream.ng
from isal import isal_zlib
from litestar.response import Stream
from zipstream import ZIP_STORED, ZipStream

log = logging.getLogger(__name__)

# zipstream-ng takes each entry's CRC-32 from zlib, about 1.5 GB/s on this hardware: the costliest
# step of a stored zip. ISA-L computes the same values several times faster (SIMD).
zipstream.ng.crc32 = isal_zlib.crc32

READ_BYTES = 1 << 20  # one read(); cold files read about twice as fast as with zipstream's own 64 KiB
BATCH_BYTES = 4 << 20  # what one thread hop reads ahead
AHEAD_BYTES = 32 << 20  # how far the disk reads ahead of the reader (see _ReadAhead)
_IDLE_SECONDS = 5  # the read-ahead thread looks again this often while the reader stands still


def zip_stream(files: Iterable[tuple[str, Path]], relocate: Relocate | None = None) -> Stream:
    """A 200 response streaming a zip of `files` (name inside the archive, path on disk), with its
    exact Content-Length, known in advance since every entry is stored. A file missing on disk is
    left out (and logged): the archive stays valid. Entries are dated when the archive is made.

    A file can move after the archive is planned and before the stream reaches it (the storage
    template moves originals): `relocate(name)` then answers where it is now, or None."""
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    find = _finder(relocate, asyncio.get_running_loop()) if relocate is not None else None
    ahead = _ReadAhead()
    for name, path in files:
        try:
            size = os.stat(path).st_size
            if not os.access(path, os.R_OK):  # an external folder's permissions changed, say
                raise PermissionError(f"cannot read {path}")
        except OSError as error:
            log.warning("zip download: %s (%s) cannot be read (%s); left out", name, path, error)
            continue
        archive.add(_read(path, name, find, ahead, ahead.add(path, size)), name, size=size)
    return Stream(_batches(iter(archive), ahead.close), media_type="application/zip",
                  headers={"content-length": str(len(archive))})


Relocate = Callable[[str], Awaitable[Path | None]]


def _finder(relocate: Relocate, loop: asyncio.AbstractEventLoop) -> Callable[[str], Path | None]:
    # The archive is read in worker threads; the lookup is a coroutine of the server's loop.
    return lambda name: asyncio.run_coroutine_threadsafe(relocate(name), loop).result(timeout=60)


class _ReadAhead:
    """Keeps the disk reading up to AHEAD_BYTES ahead of the archive's reader, across file
    boundaries, from a thread of its own: the kernel's read-ahead alone leaves the disk idle while
    the reader waits on the socket, and asking it for more (WILLNEED) blocks the asker until the
    pages are in. With the asking done here, the reader finds its pages in the page cache and a
    cold archive streams at about the disk's speed. Only the page cache holds what is read ahead
    (the kernel may drop it again under pressure), never this process's memory."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, int]] = []  # path, size, in archive order
        self._total = 0
        self._position = 0  # how far the reader has got, in file bytes in archive order
        self._closed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, path: Path, size: int) -> int:
        """Registers the next file; returns where its bytes start in the sequence."""
        self._files.append((path, size))
        self._total += size
        return self._total - size

    def reached(self, position: int) -> None:
        """The reader is at `position` (and starts the thread on its first call)."""
        with self._changed:
            self._position = position
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="zip read-ahead", daemon=True)
                self._thread.start()
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    def _run(self) -> None:
        asked = 0
        for path, size in self._files:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:  # gone or moved: its own read says so, or relocates it
                asked += size
                continue
            try:
                offset = 0
                while offset < size:
                    with self._changed:
                        while not self._closed and asked - self._position >= AHEAD_BYTES:
                            self._changed.wait(timeout=_IDLE_SECONDS)
                        if self._closed:
                            return
                    length = min(READ_BYTES, size - offset)
                    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
                    offset += length
                    asked += length
            except OSError:
                asked += size - offset
            finally:
                os.close(fd)


def _read(path: Path, name: str, find: Callable[[str], Path | None] | None, ahead: _ReadAhead,
          start: int) -> Iterator[bytes]:
    try:
        f = open(path, "rb", buffering=0)
    except FileNotFoundError:
        moved = find(name) if find is not None else None
        if moved is None:
            raise
        f = open(moved, "rb", buffering=0)
    with f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)  # a larger kernel read-ahead
        position = start
        ahead.reached(position)
        while chunk := f.read(READ_BYTES):
            position += len(chunk)
            ahead.reached(position)
            yield chunk


def _next_batch(parts: Iterator[bytes]) -> list[bytes]:
    batch, size = [], 0
    for part in parts:
        batch.append(part)
        size += len(part)
        if size >= BATCH_BYTES:
            break
    return batch


async def _batches(parts: Iterator[bytes], finished: Callable[[], None]) -> AsyncIterator[bytes]:
    """The archive in batches, the next one read (in a thread) while the current one is being sent:
    disk and CRC-32 overlap the socket, and at most two batches are ever held."""
    loop = asyncio.get_running_loop()
    upcoming = loop.run_in_executor(None, _next_batch, parts)
    try:
        while batch := await upcoming:
            upcoming = loop.run_in_executor(None, _next_batch, parts)
            for part in batch:  # sent as read: joining them would copy every byte once more
                yield part
    finally:
        finished()
        # A client gone mid-download: the thread still holds the generator; let it finish first.
        await asyncio.wait([upcoming])
