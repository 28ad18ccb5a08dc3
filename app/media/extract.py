"""Everything the metadata job learns from one file, computed off the event loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from app.media import places
from app.media.images import header_size
from app.media.metadata import FileMetadata, RefusedSidecar, Stamp, parse_tags, read_sidecar, read_tags
from app.media.video import probe

log = logging.getLogger(__name__)


@dataclass
class Extracted:
    meta: FileMetadata
    local_wall: datetime | None
    local_offset: int | None
    timezone: str | None
    place: places.Place | None
    display_width: int | None
    display_height: int | None
    warnings: list[str] = field(default_factory=list)  # what was skipped, and why


def _capture_time(stamp: Stamp | None, zone: str | None) -> tuple[datetime | None, int | None]:
    """Local wall-clock time and offset of the capture, using the place's zone when the file lacks one."""
    if stamp is None:
        return None, None
    if stamp.is_utc:
        if zone:
            converted = places.utc_to_wall(zone, stamp.wall)
            if converted:
                return converted
        return stamp.wall, 0
    offset = stamp.offset_minutes
    if offset is None and zone:
        offset = places.offset_minutes_in(zone, stamp.wall)
    return stamp.wall, offset


def extract(
    path: Path,
    mime: str,
    media_type: str,
    sidecar: bytes | None,
    coordinates_override: tuple[float, float] | None,
) -> Extracted:
    warnings: list[str] = []
    sidecar_tags: dict = {}
    if sidecar:
        try:
            sidecar_tags = read_sidecar(sidecar)
        except RefusedSidecar as exc:
            # The sidecar only adds to what the file says: without it the file's own
            # EXIF date and GPS still count, so skip it and say why.
            log.warning("XMP sidecar skipped: %s", exc)
            warnings.append(f"XMP sidecar skipped: {exc}")
        else:
            if not sidecar_tags:  # exiv2 drops XMP it cannot parse without an error (e.g. absurd nesting)
                warnings.append("XMP sidecar skipped: exiv2 read no XMP properties from it")
    if media_type == "video":
        meta = probe(path)
        tags = parse_tags(read_tags(path), sidecar_tags)  # MOV/MP4 rarely carry XMP, but some do
        for name in ("make", "model", "description", "rating", "latitude", "longitude", "altitude", "tags"):
            if getattr(meta, name) is None and getattr(tags, name) is not None:
                setattr(meta, name, getattr(tags, name))
        if sidecar_tags and tags.original is not None:
            meta.original = tags.original  # a sidecar's date wins over the container's
        turned = (meta.rotation or 0) in (90, 270)
    else:
        meta = parse_tags(read_tags(path), sidecar_tags)
        size = header_size(path, mime)
        if size:
            meta.raw_width, meta.raw_height = size
        turned = (meta.orientation or 1) in (5, 6, 7, 8) and mime not in ("image/heic", "image/heif", "image/jxl")
    width, height = meta.raw_width, meta.raw_height
    if width and height and turned:
        width, height = height, width

    lat_lon = coordinates_override or (
        (meta.latitude, meta.longitude) if meta.latitude is not None and meta.longitude is not None else None
    )
    zone = places.timezone_for(*lat_lon) if lat_lon else None
    place = places.place_for(*lat_lon) if lat_lon else None
    wall, offset = _capture_time(meta.original, zone)
    return Extracted(meta, wall, offset, zone, place, width or None, height or None, warnings)
