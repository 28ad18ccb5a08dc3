"""The streamed zip (app/api/zip_streaming.py) on real files: a file moved after the archive was
planned is read from where it went, so the archive stays whole and matches its Content-Length."""

from __future__ import annotations

import asyncio
import io
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
