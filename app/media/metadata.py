"""Reading what a file says about itself: EXIF, XMP, IPTC (pyexiv2) and XMP sidecars.

Values come out of pyexiv2 as strings; every parser here returns None rather than
guessing when a value is missing or malformed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any
from xml.parsers import expat

import pyexiv2

from app.domain.effective import RATINGS, UNRATED

pyexiv2.set_log_level(4)  # exiv2 warnings (odd maker notes, bad pointers) must not abort a read


@dataclass
class Stamp:
    """A capture-time value: wall clock, UTC offset when known, and where it came from."""

    wall: datetime
    offset_minutes: int | None
    source: str
    is_utc: bool = False  # the value is an instant in UTC (GPS, container times), not a wall clock


@dataclass
class FileMetadata:
    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    f_number: float | None = None
    focal_length: float | None = None
    iso: int | None = None
    exposure_time: float | None = None
    exposure_bias: float | None = None
    orientation: int | None = None
    original: Stamp | None = None
    digitized: Stamp | None = None
    modified: Stamp | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    description: str | None = None
    rating: int | None = None
    projection_type: str | None = None
    live_photo_cid: str | None = None
    auto_stack_id: str | None = None
    fps: float | None = None
    raw_width: int | None = None
    raw_height: int | None = None
    duration_ms: int | None = None
    video_codec: str | None = None
    rotation: int | None = None
    tags: list[str] | None = None  # tag paths ("Travel/2024"), as Immich reads them (_tag_values)
    extra: dict[str, Any] = field(default_factory=dict)


# --- value parsers ------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if isinstance(value, dict):  # lang-alt: {'lang="x-default"': 'text'}
        value = value.get('lang="x-default"') or next(iter(value.values()), None)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).replace("\x00", "").strip()
    return text or None


def _number(value: Any) -> float | None:
    text = _text(value)
    if text is None:
        return None
    text = text.split()[0]
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            if float(den) == 0:
                return None
            number = float(Fraction(int(num), int(den)))
        else:
            number = float(text)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None  # 'nan' and '1e400' parse as floats


def _int(value: Any) -> int | None:
    """Whole numbers for integer columns: None outside int32 rather than a failed insert."""
    number = _number(value)
    if number is None or abs(number) > 2**31 - 1:
        return None
    return round(number)


def _dms(value: Any, ref: Any) -> float | None:
    """EXIF '37/1 46/1 741/25' or XMP '40,14.0786450N' to signed decimal degrees."""
    text = _text(value)
    if text is None:
        return None
    reference = (_text(ref) or "").upper()[:1]
    if "," in text:  # XMP GPSCoordinate: DDD,MM.mmk or DDD,MM,SSk
        if text[-1].upper() in "NSEW":
            reference = text[-1].upper()
            text = text[:-1]
        parts = [_number(p) for p in text.split(",")]
    else:
        parts = [_number(p) for p in text.split()]
    if not parts or any(p is None for p in parts):
        return None
    degrees = sum(p / 60**i for i, p in enumerate(parts[:3]))
    return -degrees if reference in ("S", "W") else degrees


_EXIF_DT = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def _offset(value: Any) -> int | None:
    text = _text(value)
    if not text:
        return None
    if text.upper() == "Z":
        return 0
    match = _OFFSET.match(text)
    if not match:
        return None
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    if minutes > 18 * 60:
        return None
    return -minutes if match.group(1) == "-" else minutes


def _in_range(wall: datetime) -> bool:
    """A wall clock that stays a datetime in UTC at any offset (up to 18 h): year 1 and 9999
    would overflow when converted (9999-12-31 23:59 at -14:00 failed the database insert)."""
    return 1 < wall.year < 9999


def _exif_datetime(value: Any, subsec: Any = None) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    match = _EXIF_DT.match(text)
    if not match:
        return None
    try:
        parsed = datetime(*(int(g) for g in match.groups()))
    except ValueError:  # 0000:00:00 00:00:00 and friends
        return None
    if not _in_range(parsed):
        return None
    digits = re.sub(r"\D", "", _text(subsec) or "")
    if digits:
        parsed = parsed.replace(microsecond=int(digits[:6].ljust(6, "0")))
    return parsed


def _iso_datetime(value: Any) -> tuple[datetime, int | None] | None:
    """XMP dates: 'YYYY-MM-DDThh:mm:ss[.s][Z|±hh:mm]' (date-only values are not capture times)."""
    text = _text(value)
    if not text or "T" not in text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if parsed.year < 1800 or not _in_range(parsed):
        return None
    if parsed.tzinfo is None:
        return parsed, None
    offset = int(parsed.utcoffset().total_seconds() // 60)
    if abs(offset) > 18 * 60:  # not a real zone: keep the wall clock, drop the offset
        return parsed.replace(tzinfo=None), None
    return parsed.replace(tzinfo=None), offset


# --- reading ---------------------------------------------------------------------------


def _read_tags(source: Path | bytes) -> dict[str, Any]:
    image = pyexiv2.Image(str(source)) if isinstance(source, Path) else pyexiv2.ImageData(source)
    try:
        tags: dict[str, Any] = {}
        for reader in (image.read_exif, image.read_iptc, image.read_xmp):
            try:
                tags.update(reader())
            except (RuntimeError, UnicodeDecodeError):
                continue
        return tags
    finally:
        image.close()


class RefusedSidecar(Exception):
    """The sidecar is not XMP this server will read; the file's own tags still count."""


def _refuse_dtd(*_args: Any) -> None:
    raise RefusedSidecar("it declares a DTD (XML entities are refused: XMP has no use for them)")


def _check_xml(data: bytes) -> None:
    """Well-formed XML with no DOCTYPE, checked with expat before exiv2 sees it.

    A DTD is how entity bombs ("billion laughs") and external entities get in, and XMP
    never needs one, so the parse stops at the declaration, before anything expands.
    """
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise RefusedSidecar(f"invalid XML: {expat.ErrorString(exc.code)} at line {exc.lineno}, "
                             f"column {exc.offset}") from exc


def read_sidecar(data: bytes) -> dict[str, Any]:
    """An XMP sidecar's tags; RefusedSidecar (with the reason) when it cannot be read.

    Sidecars from some tools are UTF-16 with a BOM: normalise to UTF-8.
    """
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            data = data.decode("utf-16").encode("utf-8")
        elif data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
    except UnicodeDecodeError as exc:
        raise RefusedSidecar(f"not valid UTF-16 text ({exc.reason})") from exc
    data = re.sub(rb'encoding="UTF-16(LE|BE)?"', b'encoding="UTF-8"', data, flags=re.I)
    _check_xml(data)
    try:
        return _read_tags(data)
    except (RuntimeError, UnicodeDecodeError) as exc:  # exiv2 does not take it for XMP
        raise RefusedSidecar(f"exiv2 cannot read it as XMP ({str(exc).strip()[:200]})") from exc


def read_tags(path: Path) -> dict[str, Any]:
    try:
        return _read_tags(path)
    except RuntimeError:
        return {}  # not a container exiv2 knows (e.g. MP4): other readers fill in


class _Tags:
    """Lookup with XMP sidecar values first, as Immich merges sidecar tags over embedded ones."""

    def __init__(self, embedded: dict[str, Any], sidecar: dict[str, Any]):
        self.embedded = embedded
        self.sidecar = sidecar

    def get(self, *keys: str) -> Any:
        for key in keys:
            if key.startswith("Xmp.") and key in self.sidecar:
                return self.sidecar[key]
        for key in keys:
            if key in self.embedded:
                return self.embedded[key]
        return None


def _stamps(t: _Tags) -> list[Stamp]:
    """Capture-time candidates in priority order (first usable one wins)."""
    out: list[Stamp] = []

    def exif(key: str, subsec: str, offset_key: str, name: str) -> None:
        wall = _exif_datetime(t.get(key), t.get(subsec))
        if wall is not None:
            out.append(Stamp(wall, _offset(t.get(offset_key)), name))

    def xmp(key: str, name: str) -> None:
        parsed = _iso_datetime(t.get(key))
        if parsed is not None:
            out.append(Stamp(parsed[0], parsed[1], name))

    # A sidecar's exif:DateTimeOriginal outranks the embedded one.
    if "Xmp.exif.DateTimeOriginal" in t.sidecar:
        xmp("Xmp.exif.DateTimeOriginal", "DateTimeOriginal")
    exif("Exif.Photo.DateTimeOriginal", "Exif.Photo.SubSecTimeOriginal", "Exif.Photo.OffsetTimeOriginal", "DateTimeOriginal")
    xmp("Xmp.exif.DateTimeOriginal", "DateTimeOriginal")
    if "Xmp.xmp.CreateDate" in t.sidecar:
        xmp("Xmp.xmp.CreateDate", "CreateDate")
    exif("Exif.Photo.DateTimeDigitized", "Exif.Photo.SubSecTimeDigitized", "Exif.Photo.OffsetTimeDigitized", "CreateDate")
    xmp("Xmp.xmp.CreateDate", "CreateDate")
    # IPTC date + time (DateTimeCreated), or XMP photoshop:DateCreated.
    iptc_date = _text(t.get("Iptc.Application2.DateCreated"))
    if iptc_date:
        try:
            day = date.fromisoformat(iptc_date)
            clock, offset = time(0, 0), None
            iptc_time = _text(t.get("Iptc.Application2.TimeCreated"))
            if iptc_time:
                clock = time.fromisoformat(iptc_time[:8])
                offset = _offset(iptc_time[8:]) if len(iptc_time) > 8 else None
            created = datetime.combine(day, clock)
            if _in_range(created):
                out.append(Stamp(created, offset, "DateTimeCreated"))
        except ValueError:
            pass
    xmp("Xmp.photoshop.DateCreated", "DateTimeCreated")
    # GPS time is UTC by definition.
    gps_day = _text(t.get("Exif.GPSInfo.GPSDateStamp"))
    gps_clock = _text(t.get("Exif.GPSInfo.GPSTimeStamp"))
    if gps_day and gps_clock:
        try:
            day = datetime.strptime(gps_day, "%Y:%m:%d")
            h, m, s = (_number(p) or 0 for p in gps_clock.split())
            wall = day + timedelta(hours=h, minutes=m, seconds=s)
            if _in_range(wall):
                out.append(Stamp(wall, 0, "GPSDateTime", is_utc=True))
        except (ValueError, OverflowError):  # a malformed or absurd time: not a capture time
            pass
    gps_xmp = _iso_datetime(t.get("Xmp.exif.GPSTimeStamp"))
    if gps_xmp is not None and gps_xmp[1] is not None:
        try:
            wall = gps_xmp[0] - timedelta(minutes=gps_xmp[1])
            out.append(Stamp(wall, 0, "GPSDateTime", is_utc=True))
        except OverflowError:  # 9999-12-31T23:00-14:00 is past datetime's range in UTC
            pass
    return out


def parse_tags(embedded: dict[str, Any], sidecar: dict[str, Any] | None = None) -> FileMetadata:
    t = _Tags(embedded, sidecar or {})
    meta = FileMetadata(
        make=_text(t.get("Exif.Image.Make", "Xmp.tiff.Make")),
        model=_text(t.get("Exif.Image.Model", "Xmp.tiff.Model")),
        lens_model=_text(t.get("Exif.Photo.LensModel", "Xmp.aux.Lens", "Xmp.exifEX.LensModel")),
        f_number=_number(t.get("Exif.Photo.FNumber", "Xmp.exif.FNumber")),
        focal_length=_number(t.get("Exif.Photo.FocalLength", "Xmp.exif.FocalLength")),
        iso=_int(t.get("Exif.Photo.ISOSpeedRatings", "Exif.Photo.PhotographicSensitivity", "Xmp.exif.ISOSpeedRatings")),
        exposure_time=_number(t.get("Exif.Photo.ExposureTime", "Xmp.exif.ExposureTime")),
        exposure_bias=_number(t.get("Exif.Photo.ExposureBiasValue", "Xmp.exif.ExposureBiasValue")),
        orientation=_int(t.get("Exif.Image.Orientation", "Xmp.tiff.Orientation")),
        description=_text(
            t.get("Xmp.dc.description", "Exif.Image.ImageDescription", "Iptc.Application2.Caption")
        ),
        projection_type=_text(t.get("Xmp.GPano.ProjectionType")),
        live_photo_cid=_text(t.get("Xmp.apple-fi.ContentIdentifier", "Exif.Apple.ContentIdentifier")),
    )
    if meta.orientation is not None and not 1 <= meta.orientation <= 8:
        meta.orientation = None
    rating = _int(t.get("Xmp.xmp.Rating", "Exif.Image.Rating"))
    if rating is not None:
        # XMP's -1 (rejected) and values off the scale read as unrated.
        meta.rating = rating if rating in RATINGS else UNRATED
    lat = _dms(t.get("Exif.GPSInfo.GPSLatitude", "Xmp.exif.GPSLatitude"), t.get("Exif.GPSInfo.GPSLatitudeRef"))
    lon = _dms(t.get("Exif.GPSInfo.GPSLongitude", "Xmp.exif.GPSLongitude"), t.get("Exif.GPSInfo.GPSLongitudeRef"))
    # (0, 0) is what broken GPS writers store for "no fix" (Immich drops it too).
    if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180 and (lat, lon) != (0, 0):
        meta.latitude, meta.longitude = lat, lon
        alt = _number(t.get("Exif.GPSInfo.GPSAltitude", "Xmp.exif.GPSAltitude"))
        if alt is not None:
            below = _text(t.get("Exif.GPSInfo.GPSAltitudeRef", "Xmp.exif.GPSAltitudeRef")) == "1"
            meta.altitude = -alt if below else alt
    meta.tags = _tag_values(t) or None
    stamps = _stamps(t)
    meta.original = stamps[0] if stamps else None
    meta.digitized = next((s for s in stamps if s.source == "CreateDate"), None)
    modified = _exif_datetime(t.get("Exif.Image.DateTime"), t.get("Exif.Photo.SubSecTime"))
    if modified is not None:
        meta.modified = Stamp(modified, _offset(t.get("Exif.Photo.OffsetTime")), "ModifyDate")
    else:
        parsed = _iso_datetime(t.get("Xmp.xmp.ModifyDate"))
        if parsed:
            meta.modified = Stamp(parsed[0], parsed[1], "ModifyDate")
    return meta


def _texts(value: Any) -> list[str]:
    """A list-valued tag (XMP bag or seq, repeated IPTC dataset) as its non-empty strings."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [text for text in (_text(item) for item in items) if text]


def _tag_values(t: _Tags) -> list[str]:
    """The file's tags as paths, from the first of these that has any (Immich's order): XMP
    TagsList (paths already), Lightroom's HierarchicalSubject ("a|b", a "/" inside a level kept as
    "|"), IPTC Keywords (flat)."""
    listed = _texts(t.get("Xmp.digiKam.TagsList"))
    if listed:
        return listed
    hierarchical = _texts(t.get("Xmp.lr.hierarchicalSubject"))
    if hierarchical:
        return ["/".join(level.replace("/", "|") for level in value.split("|")) for value in hierarchical]
    return _texts(t.get("Iptc.Application2.Keywords"))


# An empty XMP packet: what a sidecar starts from when the asset has none yet.
_EMPTY_XMP = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
              b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>'
              b'</x:xmpmeta>\n<?xpacket end="w"?>')


def with_tags_list(sidecar: bytes | None, values: list[str]) -> bytes:
    """The XMP sidecar with its TagsList set to `values` (the rest of it kept), or a new one.
    RefusedSidecar when the existing one cannot be read: it is left as it is rather than lost."""
    if sidecar:
        read_sidecar(sidecar)  # the same checks as on import (no DTD, well-formed, exiv2 reads it)
    image = pyexiv2.ImageData(sidecar or _EMPTY_XMP)
    try:
        image.modify_xmp({"Xmp.digiKam.TagsList": values})
        return image.get_bytes()
    finally:
        image.close()


def aware(stamp: Stamp) -> datetime:
    if stamp.offset_minutes is None:
        return stamp.wall
    return stamp.wall.replace(tzinfo=timezone(timedelta(minutes=stamp.offset_minutes)))
