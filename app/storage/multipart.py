"""Receive a multipart/form-data body without holding it in memory.

The file part streams into a StagedFile (hashing as it goes, in a worker thread
so the event loop stays free); the other parts are small text fields.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable, Protocol

from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from app.api.errors import InputError
from app.domain.errors import DomainError
from app.storage.blobstore import BlobStore, StagedFile

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 64
_BATCH = 1 << 20


class UploadTooLarge(DomainError):
    status = 413


class UploadStalled(DomainError):
    status = 408


class SizeCheck(Protocol):
    def check(self, size: int) -> None:
        """Raise when a file of `size` bytes can no longer be accepted."""


def check_declared_length(content_length: str | None, max_bytes: int | None) -> None:
    """Refuse a body whose declared length is over the limit, before a byte of it is read."""
    if max_bytes is None or not content_length:
        return
    try:
        declared = int(content_length)
    except ValueError:
        return  # the HTTP server has already refused a malformed length
    if declared > max_bytes:
        raise UploadTooLarge(f"The upload is larger than this server accepts ({max_bytes} bytes)")


async def _guarded(stream: AsyncIterator[bytes], max_bytes: int | None,
                   idle_timeout: float | None) -> AsyncIterator[bytes]:
    """The body's chunks, ended with an error when it grows over max_bytes or stalls for idle_timeout."""
    chunks = aiter(stream)
    total = 0
    try:
        while True:
            try:
                # A timeout context, not wait_for: no task per chunk on the upload's hot path.
                async with asyncio.timeout(idle_timeout):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UploadStalled(f"The upload sent nothing for {idle_timeout:g} seconds") from None
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:
                raise UploadTooLarge(f"The upload is larger than this server accepts ({max_bytes} bytes)")
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class ReceivedFile:
    def __init__(self, staged: StagedFile, filename: str, content_type: str | None):
        self.staged = staged
        self.filename = filename
        self.content_type = content_type


class ReceivedForm:
    def __init__(self) -> None:
        self.fields: dict[str, str] = {}  # last value of each field
        self.lists: dict[str, list[str]] = {}  # every value, for repeated fields
        self.files: dict[str, ReceivedFile] = {}

    def discard(self) -> None:
        for received in self.files.values():
            received.staged.discard()
        self.files.clear()


async def receive_multipart(
    stream: AsyncIterator[bytes], content_type: str | None, file_fields: tuple[str, ...], store: BlobStore,
    *, content_length: str | None = None, max_bytes: int | None = None, idle_timeout: float | None = None,
    allowance: Callable[[dict[str, str]], Awaitable[SizeCheck]] | None = None,
) -> ReceivedForm:
    """Parse the body; file parts named in file_fields are staged to disk, other fields kept as text.

    Limits: a declared `content_length` over `max_bytes` is refused before reading (413), as is a
    body that grows over it while streaming; a body that sends nothing for `idle_timeout` seconds
    is ended (408). `allowance` is asked, with the fields received so far, when the first of
    file_fields starts; its check() runs as that file grows, so a file over a storage cap stops
    the upload at once instead of after the whole body is on disk.

    On any error the staged file is removed before the error propagates.
    """
    mime, options = parse_options_header(content_type or "")
    boundary = options.get("boundary")
    if mime != "multipart/form-data" or not boundary:
        raise InputError("Expected a multipart/form-data body", "body")
    check_declared_length(content_length, max_bytes)
    stream = _guarded(stream, max_bytes, idle_timeout)
    size_check: SizeCheck | None = None
    file_size = 0

    form = ReceivedForm()
    loop = asyncio.get_running_loop()
    pending: asyncio.Future | None = None
    batch = bytearray()
    segment: MultipartSegment | None = None
    field_buf = bytearray()
    current: StagedFile | None = None

    async def flush() -> None:
        # Hand a full batch to a thread while the next one is received; at most
        # one batch is in flight, so memory stays bounded.
        nonlocal pending, batch
        if pending is not None:
            await pending
            pending = None
        if batch:
            data, batch = bytes(batch), bytearray()
            pending = loop.run_in_executor(None, current.write, data)

    try:
        # Leaving the `with` checks the body was complete (a truncated upload raises).
        with PushMultipartParser(boundary, max_segment_count=MAX_PARTS) as parser:
            async for chunk in stream:
                if not chunk:
                    continue
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment = event
                        field_buf.clear()
                        if event.name in file_fields and event.filename is not None and event.name not in form.files:
                            if event.name == file_fields[0] and allowance is not None:
                                size_check = await allowance(form.fields)
                                file_size = 0
                            current = store.stage()
                            form.files[event.name] = ReceivedFile(current, event.filename, event.content_type)
                    elif event is None:
                        if current is not None:
                            await flush()
                            if pending is not None:
                                await pending
                                pending = None
                            await loop.run_in_executor(None, current.finish)
                            current = None
                            size_check = None
                        elif segment is not None and segment.filename is None and segment.name:
                            value = field_buf.decode("utf-8", errors="replace")
                            form.fields[segment.name] = value
                            form.lists.setdefault(segment.name, []).append(value)
                        segment = None
                    elif current is not None:
                        if size_check is not None:
                            file_size += len(event)
                            size_check.check(file_size)
                        batch += event
                        if len(batch) >= _BATCH:
                            await flush()
                    else:
                        if segment is not None and segment.filename is None:
                            field_buf += event
                            if len(field_buf) > MAX_FIELD_BYTES:
                                raise InputError(f"Form field '{segment.name}' is too large", "body", segment.name)
        return form
    except MultipartError as exc:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        form.discard()
        raise InputError(f"Malformed multipart body: {exc}", "body") from None
    except BaseException:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        form.discard()
        raise
    finally:
        # Stop reading the request now, not when the abandoned generator is collected.
        await stream.aclose()
