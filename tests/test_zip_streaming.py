"""The streamed zip (app/api/zip_streaming.py) on real files: a file moved after the archive was
planned is read from where it went, so the archive stays whole and matches its Content-Length; the
read-ahead thread follows the reader and ends with the download."""

from __future__ import annotations

import asyncio
import io
import threading
import zipfile
from pathlib import Path

from app.api.zip_streaming import zip_stream


async def _body(response) -> bytes:
    return b"".join([part async for part in response.iterator])


def test_a_file_moved_after_planning_is_read_from_its_new_place(tmp_path: Path):
    old, new, kept = tmp_path / "a.jpg", tmp_path / "moved" / "a.jpg", tmp_path / "b.jpg"
    old.write_bytes(b"A" * 3000)
    kept.write_bytes(b"B" * 10)
    asked = []

    async def relocate(name: str) -> Path | None:
        asked.append(name)
        return new

    async def download() -> tuple[bytes, int]:
        response = zip_stream([("a.jpg", old), ("b.jpg", kept)], relocate)
        new.parent.mkdir()
        old.rename(new)  # what a storage template move does between planning and reading
        return await _body(response), int(response.headers["content-length"])

    body, length = asyncio.run(download())
    assert len(body) == length and asked == ["a.jpg"]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.read("a.jpg") == b"A" * 3000 and archive.read("b.jpg") == b"B" * 10


def test_the_read_ahead_thread_follows_the_reader_across_files_and_stops_when_closed(tmp_path: Path):
    from app.api import zip_streaming

    paths = [tmp_path / f"{i}.bin" for i in range(3)]
    for path in paths:
        path.write_bytes(b"x" * 5000)
    paths[1].unlink()  # a file gone before its turn: the others are still read ahead
    ahead = zip_streaming._ReadAhead()
    starts = [ahead.add(path, 5000) for path in paths]
    assert starts == [0, 5000, 10000]
    ahead.reached(0)
    thread = ahead._thread
    assert thread is not None and thread.name == "zip read-ahead"
    thread.join(timeout=5)  # 15000 bytes are within AHEAD_BYTES: it asks for all of them and ends
    assert not thread.is_alive()


def test_an_abandoned_download_stops_its_read_ahead_thread(tmp_path: Path, monkeypatch):
    from app.api import zip_streaming

    monkeypatch.setattr(zip_streaming, "AHEAD_BYTES", 4096)  # the thread waits for the reader early
    path = tmp_path / "big.bin"
    path.write_bytes(b"y" * 100_000)

    async def first_part_only():
        response = zip_stream([("big.bin", path)])
        parts = response.iterator
        await parts.__anext__()
        await parts.aclose()  # the client went away
        return response

    asyncio.run(first_part_only())
    threads = [t for t in threading.enumerate() if t.name == "zip read-ahead"]
    for thread in threads:
        thread.join(timeout=5)
        assert not thread.is_alive()
