"""A JPEG XL image's size from its header, without decoding it.

pillow-jxl decodes the whole picture inside Image.open(), so asking it for the size is
already the decompression bomb. The size is the codestream's first field (SizeHeader,
ISO/IEC 18181-1 section D.2), a few bits after the signature; in the ISOBMFF container
the codestream sits in a `jxlc` box or is split over `jxlp` boxes.
"""

from __future__ import annotations

import struct
from pathlib import Path

_CODESTREAM = b"\xff\x0a"
_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
# Width as a fraction of height for SizeHeader.ratio 1..7.
_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


class _Bits:
    """JPEG XL reads bits least-significant first within each byte."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def read(self, count: int) -> int:
        value = 0
        for i in range(count):
            byte = self.data[self.pos >> 3] if (self.pos >> 3) < len(self.data) else None
            if byte is None:
                raise ValueError("the JPEG XL header is truncated")
            value |= ((byte >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return value

    def u32_size(self) -> int:
        # U32(1 + u(9), 1 + u(13), 1 + u(18), 1 + u(30))
        return 1 + self.read((9, 13, 18, 30)[self.read(2)])


def _codestream_head(f, head_bytes: int) -> bytes:
    """The first bytes of the codestream, walking the container's boxes by seeking."""
    start = f.read(len(_CONTAINER))
    if start.startswith(_CODESTREAM):
        return start + f.read(head_bytes)
    if start != _CONTAINER:
        raise ValueError("not a JPEG XL file")
    pos = len(_CONTAINER)
    for _ in range(10_000):  # real files have a handful of boxes
        f.seek(pos)
        box = f.read(16)
        if len(box) < 8:
            break
        size, kind = struct.unpack(">I4s", box[:8])
        header = 8
        if size == 1:
            if len(box) < 16:
                break
            size, header = struct.unpack(">Q", box[8:16])[0], 16
        if size == 0:  # the box runs to the end of the file
            size = 1 << 62
        if size < header:
            raise ValueError("a JPEG XL container box is malformed")
        if kind == b"jxlc":
            f.seek(pos + header)
            return f.read(head_bytes)
        if kind == b"jxlp":  # the first part of the codestream, after a 4-byte part index
            f.seek(pos + header + 4)
            return f.read(head_bytes)
        pos += size
    raise ValueError("no JPEG XL codestream in the container")


def size(path: Path, head_bytes: int = 64) -> tuple[int, int]:
    """(width, height) of a JPEG XL file from its header; ValueError if it cannot be read."""
    with open(path, "rb") as f:
        stream = _codestream_head(f, head_bytes)
    if not stream.startswith(_CODESTREAM):
        raise ValueError("the JPEG XL codestream has no signature")
    bits = _Bits(stream[2:])
    div8 = bits.read(1)
    height = (bits.read(5) + 1) * 8 if div8 else bits.u32_size()
    ratio = bits.read(3)
    if ratio:
        num, den = _RATIOS[ratio]
        width = height * num // den
    else:
        width = (bits.read(5) + 1) * 8 if div8 else bits.u32_size()
    return width, height
