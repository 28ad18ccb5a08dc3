"""Real media for tests: generated files, and the shared sample photos when present."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

SHARED_ASSETS = Path(__file__).resolve().parents[2] / "shared" / "test-assets"
if not SHARED_ASSETS.exists():  # CI lays shared/ beside the clone
    SHARED_ASSETS = Path(os.environ.get("SHARED_TEST_ASSETS", Path.cwd().parent / "shared" / "test-assets"))


def png_bytes(seed: int, width: int = 8, height: int = 8) -> bytes:
    """A valid PNG whose pixels depend on seed, so every seed gives distinct bytes."""
    raw = b""
    for y in range(height):
        row = bytes(((seed * 31 + x * 7 + y * 13 + c * 101) % 256) for x in range(width) for c in range(3))
        raw += b"\x00" + row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    text = chunk(b"tEXt", b"seed\x00" + str(seed).encode())
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + text + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def mp4_bytes(seed: int) -> bytes:
    """An ISO-BMFF header (ftyp + free box): enough for content sniffing of a video upload."""
    ftyp = b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2avc1mp41"
    box = struct.pack(">I", 8 + len(ftyp)) + ftyp
    payload = seed.to_bytes(8, "big") * 16
    return box + struct.pack(">I", 8 + len(payload)) + b"free" + payload
