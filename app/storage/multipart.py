"""Receive a multipart/form-data body without holding it in memory.

The file part streams into a StagedFile (hashing as it goes, in a worker thread
so the event loop stays free); the other parts are small text fields.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from app.domain.errors import Invalid
from app.storage.blobstore import BlobStore, StagedFile

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 64
_BATCH = 1 << 20


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
    stream: AsyncIterator[bytes], content_type: str | None, file_fields: tuple[str, ...], store: BlobStore
) -> ReceivedForm:
    """Parse the body; file parts named in file_fields are staged to disk, other fields kept as text.

    On any error the staged file is removed before the error propagates.
    """
    mime, options = parse_options_header(content_type or "")
    boundary = options.get("boundary")
    if mime != "multipart/form-data" or not boundary:
        raise Invalid("Expected a multipart/form-data body", loc=("body",))

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
                        elif segment is not None and segment.filename is None and segment.name:
                            value = field_buf.decode("utf-8", errors="replace")
                            form.fields[segment.name] = value
                            form.lists.setdefault(segment.name, []).append(value)
                        segment = None
                    elif current is not None:
                        batch += event
                        if len(batch) >= _BATCH:
                            await flush()
                    else:
                        if segment is not None and segment.filename is None:
                            field_buf += event
                            if len(field_buf) > MAX_FIELD_BYTES:
                                raise Invalid(f"Form field '{segment.name}' is too large", loc=("body", segment.name))
        return form
    except MultipartError as exc:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        form.discard()
        raise Invalid(f"Malformed multipart body: {exc}", loc=("body",)) from None
    except BaseException:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        form.discard()
        raise
