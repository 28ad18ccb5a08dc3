"""A JPEG's own bytes without its metadata: the same compressed pixels, nothing else.

A small JPEG already at preview size can serve as its own preview: re-encoding it would cost a
full decode and encode and only lose quality. What must not travel with it is what the original
says about the photo (EXIF with GPS, XMP, IPTC, comments, embedded thumbnails) and what follows
the picture (a motion photo's video, MPF's second images). This keeps the markers a decoder
needs and drops the rest; anything it does not recognise makes it give up, and the caller
renders the preview the usual way. The two headers decoders read (JFIF, and Adobe's colour
transform flag) are rewritten to their fixed fields, since both may carry more. Bytes hidden
inside a scan's coded data, after its last block, cannot be told apart without decoding it;
decoders ignore them, and so they stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EOI, _SOS = 0xD9, 0xDA
# Huffman-coded frames, the kinds every browser decodes: baseline, extended sequential, progressive.
_HUFFMAN_FRAMES = {0xC0: False, 0xC1: False, 0xC2: True}  # marker -> progressive
_TABLES = {0xC4, 0xDB, 0xDD}  # DHT, DQT, DRI
_APP0, _APP14 = 0xE0, 0xEE  # JFIF header; Adobe's colour transform flag (RGB vs YCbCr)
_DROPPED = set(range(0xE1, 0xEE)) | {0xEF, 0xFE}  # other APPn (EXIF, XMP, ICC, MPF, IPTC...), COM
# A scan's coded data ends at the first marker: 0xFF (after any fill 0xFFs) followed by anything
# but a stuffed 0, a restart (D0-D7) or another 0xFF. Two bytes with no repetition: the search is
# linear whatever the bytes, and starting with a literal it runs at the regex engine's fast
# prefix scan (0.06 ms for a 2 MP photo's scan, against 2 ms for a pattern opening with a
# lookbehind). It stops on a fill run's last 0xFF, the one the marker's code follows.
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_FILL = re.compile(rb"\xff+")


@dataclass(frozen=True)
class Stripped:
    data: bytes
    width: int
    height: int
    progressive: bool


def _scan_end(data: bytes, pos: int) -> int | None:
    """Where a scan's entropy-coded data ends (the marker's last 0xFF); None if it never does."""
    found = _MARKER.search(data, pos)
    return None if found is None else found.start()


def _jfif(segment: bytes) -> bytes | None:
    """JFIF's fixed fields (version, density) with no thumbnail; None for JFXX and the like."""
    if segment[4:9] != b"JFIF\x00" or len(segment) < 18:
        return None
    return b"\xff\xe0\x00\x10" + segment[4:16] + b"\x00\x00"


def _adobe(segment: bytes) -> bytes | None:
    """Adobe's fixed fields (version, flags, colour transform); None for anyone else's APP14."""
    if segment[4:9] != b"Adobe" or len(segment) < 16:
        return None
    return b"\xff\xee\x00\x0e" + segment[4:16]


def strip_metadata(data: bytes) -> Stripped | None:
    """The image as SOI, the frame's tables and scans, and EOI, if it is an 8-bit, three-component,
    Huffman-coded JPEG whose structure reads cleanly to its EOI; else None."""
    if not data.startswith(b"\xff\xd8"):
        return None
    kept = [data[:2]]
    frame: tuple[int, int, bool] | None = None  # width, height, progressive
    scanned = False
    pos, size = 2, len(data)
    while pos + 2 <= size:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill bytes before a marker
            pos = _FILL.match(data, pos).end() - 1
            continue
        if marker == _EOI:
            if frame is None or not scanned:
                return None
            kept.append(b"\xff\xd9")
            return Stripped(b"".join(kept), *frame)
        if pos + 4 > size:
            return None
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if end <= pos + 3 or end > size:
            return None
        segment = data[pos:end]
        if marker in _HUFFMAN_FRAMES:
            if frame is not None or len(segment) < 10:
                return None
            precision, components = segment[4], segment[9]
            height, width = int.from_bytes(segment[5:7], "big"), int.from_bytes(segment[7:9], "big")
            if precision != 8 or components != 3 or not width or not height:
                return None
            frame = (width, height, _HUFFMAN_FRAMES[marker])
            kept.append(segment)
        elif marker in _TABLES:
            kept.append(segment)
        elif marker in (_APP0, _APP14):
            header = _jfif(segment) if marker == _APP0 else _adobe(segment)
            if header is not None:
                kept.append(header)
        elif marker in _DROPPED:
            pass
        elif marker == _SOS:
            if frame is None:
                return None
            scan_end = _scan_end(data, end)
            if scan_end is None:
                return None
            kept.append(data[pos:scan_end])
            scanned = True
            end = scan_end
        else:  # arithmetic coding, lossless, hierarchical, DNL, a stray restart or SOI: not ours to pass on
            return None
        pos = end
    return None
