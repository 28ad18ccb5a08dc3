"""Sending stored files with Range, ETag and caching headers (shared by both APIs)."""

from __future__ import annotations

import os
import re
from urllib.parse import quote
from pathlib import Path
from typing import AsyncIterator

import anyio
from litestar import Request
from litestar.response import Response, Stream

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 256 * 1024


async def _read(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as f:
        await f.seek(start)
        remaining = length
        while remaining > 0:
            chunk = await f.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def _disposition(kind: str, name: str) -> str:
    """An ASCII fallback name plus the exact UTF-8 one (RFC 6266): headers must stay Latin-1."""
    clean = name.replace("\r", "").replace("\n", "")
    ascii_name = clean.encode("ascii", "replace").decode().replace('"', "").replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(clean)}"


def send_file(
    request: Request,
    path: Path,
    *,
    media_type: str,
    etag: str,
    cache_control: str,
    download_name: str | None = None,
    inline_name: str | None = None,
) -> Response:
    # nosniff: a browser must take the stored type as given, never guess HTML or script from bytes.
    headers = {"etag": f'"{etag}"', "cache-control": cache_control, "accept-ranges": "bytes",
               "x-content-type-options": "nosniff"}
    if download_name is not None:
        headers["content-disposition"] = _disposition("attachment", download_name)
    elif inline_name is not None:
        headers["content-disposition"] = _disposition("inline", inline_name)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and (if_none_match.strip() == "*" or f'"{etag}"' in if_none_match):
        return Response(b"", status_code=304, headers=headers)
    try:
        size = os.stat(path).st_size
        if not os.access(path, os.R_OK):  # an external library's file whose permissions changed
            raise PermissionError(path)
    except (FileNotFoundError, NotADirectoryError):
        return Response({"detail": "File not found"}, status_code=404)
    except OSError:
        return Response({"detail": "File cannot be read"}, status_code=404)

    start, end, status = 0, size - 1, 200
    range_header = request.headers.get("range")
    if range_header and (not request.headers.get("if-range") or request.headers.get("if-range") == f'"{etag}"'):
        match = _RANGE.match(range_header.strip())
        if match and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if first:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
            else:  # suffix range: the last N bytes
                start = max(size - int(last), 0)
            if start >= size or start > end:
                return Response(
                    b"", status_code=416, headers={**headers, "content-range": f"bytes */{size}"}
                )
            status = 206
            headers["content-range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1
    headers["content-length"] = str(length)
    return Stream(_read(path, start, length), status_code=status, media_type=media_type, headers=headers)
