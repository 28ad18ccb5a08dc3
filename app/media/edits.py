"""Renderings: reading a version's format and size, and applying Immich's edit list to an original."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyvips

from app.media import images
from app.storage.blobstore import StagedFile

JPEG_QUALITY = 92  # an edit replaces the original on screen: close to lossless, at a fraction of the size


def sniff(head: bytes) -> str | None:
    """The format the bytes are, whatever the client declared: versions are JPEG or PNG."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def display_size(path: Path) -> tuple[int, int] | None:
    """Pixels as shown (after any EXIF orientation), from the header alone."""
    try:
        header = pyvips.Image.new_from_file(str(path))
    except pyvips.Error:
        return None
    orientation = header.get("orientation") if "orientation" in header.get_fields() else 1
    return (header.height, header.width) if orientation in (5, 6, 7, 8) else (header.width, header.height)


def original_display_size(path: Path, mime: str) -> tuple[int, int] | None:
    if images.is_raw(mime) or mime == "image/jxl":
        return images.header_size(path, mime)
    return display_size(path)


def upright(path: Path, mime: str) -> pyvips.Image:
    """The whole picture, the right way up, for editing at full resolution."""
    if images.is_raw(mime):
        return images._load_raw(path, images.MAX_SIDE)
    header = pyvips.Image.new_from_file(str(path))
    images._check_size(header.width, header.height, images._peak_bytes_per_pixel(header))
    if header.get("vips-loader") == "heifload" or mime == "image/jxl":
        return images._load_with_pillow(path)
    return images._upright(pyvips.Image.new_from_file(str(path), access="random", fail_on="truncated"))


def apply(image: pyvips.Image, edits: list[dict[str, Any]]) -> pyvips.Image:
    """Immich's actions in order: crop (in the upright picture's pixels), quarter turns clockwise, mirrors."""
    for edit in edits:
        p = edit["parameters"]
        if edit["action"] == "crop":
            image = image.crop(p["x"], p["y"], p["width"], p["height"])
        elif edit["action"] == "rotate":
            turns = int(p["angle"]) // 90 % 4
            if turns:
                image = image.rot(f"d{turns * 90}")
        elif edit["action"] == "mirror":
            image = image.fliphor() if p["axis"] == "horizontal" else image.flipver()
    return image


def render_edited(path: Path, mime: str, edits: list[dict[str, Any]], staged: StagedFile) -> str:
    """Writes the edited original into `staged` (JPEG, or PNG where the picture has alpha); its mime type."""
    try:
        with images._big_decode(images.BIG_DECODE_PIXELS + 1):
            image = images._to_srgb(apply(upright(path, mime), edits))
            if image.hasalpha():
                data, out = image.pngsave_buffer(strip=True), "image/png"
            else:
                data, out = image.jpegsave_buffer(Q=JPEG_QUALITY, strip=True), "image/jpeg"
    except pyvips.Error as exc:
        raise images.UndecodableImage(f"cannot edit: {str(exc).strip().splitlines()[0]}") from exc
    staged.write(data)
    staged.finish()
    return out
