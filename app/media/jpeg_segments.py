"""A JPEG's own bytes without its metadata: the same compressed pixels, nothing else.

A small JPEG already at preview size can serve as its own preview: re-encoding it would cost a
full decode and encode and only lose quality. What must not travel with it is what the original
says about the photo (EXIF with GPS, XMP, IPTC, comments, embedded thumbnails) and what follows
the picture (a motion photo's video, MPF's second images). This keeps the markers a decoder
needs and drops the rest; anything it does not recognise makes it give up, and the caller
renders the preview the usual way.
"""

from __future__ import annotations

from dataclasses import dataclass

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
# Huffman-coded frames, the kinds every browser decodes: baseline, extended sequential, progressive.
_HUFFMAN_FRAMES = {0xC0: False, 0xC1: False, 0xC2: True}  # marker -> progressive
_TABLES = {0xC4, 0xDB, 0xDD}  # DHT, DQT, DRI
_APP0, _APP14 = 0xE0, 0xEE  # JFIF header; Adobe's colour transform flag (RGB vs YCbCr)
_DROPPED = set(range(0xE1, 0xEE)) | {0xEF, 0xFE}  # other APPn (EXIF, XMP, ICC, MPF, IPTC...), COM


@dataclass(frozen=True)
class Stripped:
    data: bytes
    width: int
    height: int
    progressive: bool


def _scan_end(data: bytes, pos: int) -> int | None:
    """Where a scan's entropy-coded data ends: the first marker that is not a stuffed 0xFF
    (FF 00) or a restart (FF D0-D7). None if the data runs out first."""
    while True:
        at = data.find(b"\xff", pos)
        if at < 0 or at + 1 >= len(data):
            return None
        follower = data[at + 1]
        if follower == 0 or 0xD0 <= follower <= 0xD7:
            pos = at + 2
        elif follower == 0xFF:  # fill bytes before a marker
            pos = at + 1
        else:
            return at


def strip_metadata(data: bytes) -> Stripped | None:
    """The image as SOI, the frame's tables and scans, and EOI, if it is an 8-bit, three-component,
    Huffman-coded JPEG whose structure reads cleanly to its EOI; else None."""
    if not data.startswith(b"\xff\xd8"):
        return None
    kept = [data[:2]]
    frame: Stripped | None = None
    scanned = False
    pos, size = 2, len(data)
    while pos + 2 <= size:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            if frame is None or not scanned:
                return None
            kept.append(b"\xff\xd9")
            return Stripped(b"".join(kept), frame.width, frame.height, frame.progressive)
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
            frame = Stripped(b"", width, height, _HUFFMAN_FRAMES[marker])
            kept.append(segment)
        elif marker in _TABLES or marker == _APP14:
            kept.append(segment)
        elif marker == _APP0:
            if segment[4:9] == b"JFIF\x00":  # not JFXX, which carries a thumbnail
                kept.append(segment)
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
