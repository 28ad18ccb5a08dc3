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


class ReceivedForm:
    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.file: StagedFile | None = None
        self.filename: str | None = None
        self.file_content_type: str | None = None

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()
            self.file = None


async def receive_multipart(
    stream: AsyncIterator[bytes], content_type: str | None, file_field: str, store: BlobStore
) -> ReceivedForm:
    """Parse the body; the part named file_field is staged to disk, others kept as text.

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
    in_file = False

    async def flush() -> None:
        # Hand a full batch to a thread while the next one is received; at most
        # one batch is in flight, so memory stays bounded.
        nonlocal pending, batch
        if pending is not None:
            await pending
            pending = None
        if batch:
            data, batch = bytes(batch), bytearray()
            pending = loop.run_in_executor(None, form.file.write, data)

    try:
        # Leaving the `with` checks the body was complete (a truncated upload raises).
        with PushMultipartParser(boundary, max_segment_count=MAX_PARTS) as parser:
            async for chunk in stream:
                if not chunk:
                    continue
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment = event
                        if event.name == file_field and event.filename is not None and form.file is None:
                            in_file = True
                            form.file = store.stage()
                            form.filename = event.filename
                            form.file_content_type = event.content_type
                        else:
                            in_file = False
                            field_buf.clear()
                    elif event is None:
                        if in_file:
                            in_file = False
                        elif segment is not None and segment.filename is None and segment.name:
                            form.fields[segment.name] = field_buf.decode("utf-8", errors="replace")
                        segment = None
                    elif in_file:
                        batch += event
                        if len(batch) >= _BATCH:
                            await flush()
                    else:
                        if segment is not None and segment.filename is None:
                            field_buf += event
                            if len(field_buf) > MAX_FIELD_BYTES:
                                raise Invalid(f"Form field '{segment.name}' is too large", loc=("body", segment.name))
        await flush()
        if pending is not None:
            await pending
            pending = None
        if form.file is not None:
            await loop.run_in_executor(None, form.file.finish)
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
