"""Video containers through PyAV: what the container says, and one poster frame."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import av
import numpy as np

from app.media.metadata import FileMetadata, Stamp


class NoVideoStream(Exception):
    pass


def _first_frame(container, stream):
    for frame in container.decode(stream):
        return frame
    raise NoVideoStream("the video stream has no decodable frame")


def _iso6709(text: str) -> tuple[float, float] | None:
    """Apple's location tag: '+37.7858-122.4064+012.345/'."""
    import re

    match = re.match(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)", text or "")
    if not match:
        return None
    return float(match.group(1)), float(match.group(2))


def probe(path: Path) -> FileMetadata:
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise NoVideoStream("the file has no video stream")
        stream = container.streams.video[0]
        meta = FileMetadata()
        meta.raw_width = stream.codec_context.width or None
        meta.raw_height = stream.codec_context.height or None
        meta.video_codec = stream.codec_context.name
        rate = stream.average_rate or stream.guessed_rate
        meta.fps = float(rate) if rate else None
        duration = None
        if container.duration:
            duration = container.duration / av.time_base
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        meta.duration_ms = int(round(duration * 1000)) if duration else None
        stream.thread_type = "AUTO"
        # Counter-clockwise degrees to turn the coded picture for display (display matrix).
        meta.rotation = int(_first_frame(container, stream).rotation or 0) % 360
        tags = {**(container.metadata or {}), **(stream.metadata or {})}
        created = tags.get("creation_time") or tags.get("com.apple.quicktime.creationdate")
        if created:
            try:
                parsed = datetime.fromisoformat(created.replace("Z", "+00:00"))
                if parsed.tzinfo is not None and tags.get("com.apple.quicktime.creationdate") == created:
                    offset = int(parsed.utcoffset().total_seconds() // 60)
                    meta.original = Stamp(parsed.replace(tzinfo=None), offset, "CreationDate")
                else:
                    utc = parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed
                    meta.original = Stamp(utc, 0, "MediaCreateDate", is_utc=True)
            except ValueError:
                pass
        location = tags.get("location") or tags.get("com.apple.quicktime.location.ISO6709")
        coords = _iso6709(location) if location else None
        if coords and coords != (0.0, 0.0):
            meta.latitude, meta.longitude = coords
        meta.make = tags.get("com.apple.quicktime.make") or tags.get("make")
        meta.model = tags.get("com.apple.quicktime.model") or tags.get("model")
        meta.live_photo_cid = tags.get("com.apple.quicktime.content.identifier")
        return meta


def poster_frame(path: Path) -> np.ndarray:
    """The first decodable frame as an RGB array, rotated for display."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise NoVideoStream("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frame = _first_frame(container, stream)
        image = frame.to_ndarray(format="rgb24")
        turns = (int(frame.rotation or 0) // 90) % 4
    if turns:
        image = np.ascontiguousarray(np.rot90(image, k=turns))  # np.rot90 turns counter-clockwise
    return image

