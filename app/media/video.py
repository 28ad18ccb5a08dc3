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
        # Counter-clockwise degrees to turn the coded picture for display (display matrix).
        # Decoding a frame over the pixel limits would be the bomb itself: the variants
        # step refuses such a video, and the container's own facts are still worth keeping.
        from app.media.images import MAX_PIXELS, UndecodableImage, _check_size

        try:
            _check_size(meta.raw_width or 1, meta.raw_height or 1, _frame_peak_bytes_per_pixel(stream.codec_context))
        except UndecodableImage:
            meta.rotation = None
        else:
            stream.thread_type = "SLICE"  # one frame: frame threads would only hold more of them
            stream.codec_context.options = {**stream.codec_context.options,
                                            "max_pixels": _ffmpeg_max_pixels(MAX_PIXELS)}
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


def _ffmpeg_max_pixels(limit: int) -> str:
    """FFmpeg's own check, for frames bigger than the container said. Decoders test the
    coded size, padded to their block alignment: 2% more keeps a frame at the limit legal,
    and the decoded frame is still checked exactly."""
    return str(limit + limit // 50)


def _frame_peak_bytes_per_pixel(context) -> float:
    """A decoded frame in its own pixel format, twice (the decoder keeps a reference frame);
    8-bit 4:2:0 is 1.5 bytes a pixel, so 3 (measured: 1.6 at 133 MP, MJPEG)."""
    try:
        bits = av.VideoFormat(context.pix_fmt).padded_bits_per_pixel if context.pix_fmt else 0
    except (ValueError, TypeError):
        bits = 0
    return max(3.0, 2 * bits / 8)


def poster_frame(path: Path, short_side: int | None = None) -> np.ndarray:
    """The first decodable frame as an RGB array at about `short_side` (the preview's size by
    default), rotated for display.

    The same pixel limits as images: the coded size is checked before decoding, and the
    frame is scaled while converting to RGB, so a huge frame never exists twice.
    """
    from app.media.images import MAX_PIXELS, PREVIEW_SHORT_SIDE, _check_size, _short_side_size

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise NoVideoStream("the file has no video stream")
        stream = container.streams.video[0]
        context = stream.codec_context
        peak = _frame_peak_bytes_per_pixel(context)
        if context.width and context.height:
            _check_size(context.width, context.height, peak)
        # One frame: frame threading would only hold more full-size frames at once.
        stream.thread_type = "SLICE"
        context.options = {**context.options, "max_pixels": _ffmpeg_max_pixels(MAX_PIXELS)}
        frame = _first_frame(container, stream)
        _check_size(frame.width, frame.height, peak)  # the header may not have said
        width, height = _short_side_size(frame.width, frame.height, short_side or PREVIEW_SHORT_SIDE)
        image = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
        turns = (int(frame.rotation or 0) // 90) % 4
    if turns:
        image = np.ascontiguousarray(np.rot90(image, k=turns))  # np.rot90 turns counter-clockwise
    return image

