"""What kind of media a file is: by its name for the declared type, by its bytes for the truth."""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass

import filetype

from app.domain.errors import Invalid

# Photo and video formats by file extension (beyond the common ones below).
_EXTRA_TYPES = {
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".hif": "image/heif",
    ".avif": "image/avif",
    ".jxl": "image/jxl",
    ".webp": "image/webp",
    ".dng": "image/x-adobe-dng",
    ".cr2": "image/x-canon-cr2",
    ".cr3": "image/x-canon-cr3",
    ".crw": "image/x-canon-crw",
    ".nef": "image/x-nikon-nef",
    ".nrw": "image/x-nikon-nrw",
    ".arw": "image/x-sony-arw",
    ".sr2": "image/x-sony-sr2",
    ".srf": "image/x-sony-srf",
    ".orf": "image/x-olympus-orf",
    ".rw2": "image/x-panasonic-rw2",
    ".raf": "image/x-fuji-raf",
    ".pef": "image/x-pentax-pef",
    ".srw": "image/x-samsung-srw",
    ".3fr": "image/x-hasselblad-3fr",
    ".iiq": "image/x-phaseone-iiq",
    ".erf": "image/x-epson-erf",
    ".kdc": "image/x-kodak-kdc",
    ".raw": "image/x-panasonic-raw",
    ".insp": "image/jpeg",
    ".jpe": "image/jpeg",
    ".jp2": "image/jp2",
    ".psd": "image/vnd.adobe.photoshop",
    ".mp4": "video/mp4",
    ".m4v": "video/x-m4v",
    ".mov": "video/quicktime",
    ".qt": "video/quicktime",
    ".3gp": "video/3gpp",
    ".3g2": "video/3gpp2",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".mts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".wmv": "video/x-ms-wmv",
    ".flv": "video/x-flv",
    ".insv": "video/mp4",
}
# Formats this server decodes (see app/media); other extensions are refused at upload.
_COMMON = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
    ".tif": "image/tiff", ".tiff": "image/tiff", ".bmp": "image/bmp",
}
SUPPORTED = {**_COMMON, **{e: m for e, m in _EXTRA_TYPES.items() if m not in ("image/jp2", "image/vnd.adobe.photoshop")}}

# RAW files are TIFF containers (or their own); the name is the more precise type.
_TIFF_LIKE = {"image/tiff", "image/x-canon-cr2"}


@dataclass(frozen=True)
class MediaKind:
    media_type: str  # "image" | "video"
    mime_type: str
    extension: str


def mime_from_name(filename: str) -> tuple[str | None, str]:
    ext = os.path.splitext(filename)[1].lower()
    return SUPPORTED.get(ext), ext


def _sniff(head: bytes) -> str | None:
    kind = filetype.guess(head)
    if kind is not None and kind.mime.split("/")[0] in ("image", "video"):
        return kind.mime
    # Formats filetype does not name: ISO-BMFF brands, JPEG XL, Fuji RAF, MPEG transport streams.
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "application/iso-bmff"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "image/jxl"
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return "image/x-fuji-raf"
    if len(head) >= 197 and head[4] == 0x47 and head[196] == 0x47:  # M2TS: 192-byte packets
        return "video/mp2t"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:  # TS: 188-byte packets
        return "video/mp2t"
    return None


def classify(filename: str, head: bytes) -> MediaKind:
    """Accept only files whose name declares image/video and whose bytes are media."""
    declared, ext = mime_from_name(filename)
    if declared is None:
        raise Invalid(
            f"'{filename}' is not a supported image or video file name (extension '{ext or '(none)'}')",
            "asset_data",
        )
    sniffed = _sniff(head)
    if sniffed is None:
        raise Invalid(f"The content of '{filename}' is not a recognised image or video", "asset_data")
    declared_class = declared.split("/")[0]
    if sniffed == "application/iso-bmff" or sniffed in _TIFF_LIKE:
        # The bytes prove a media container; the name says which flavour.
        return MediaKind(declared_class, declared, ext)
    # The bytes decide: a PNG named .jpg is a PNG (and is stored with a .png extension).
    extension = mimetypes.guess_extension(sniffed) or ext
    if declared == sniffed or ext in {e for e, m in _EXTRA_TYPES.items() if m == sniffed}:
        extension = ext
    return MediaKind(sniffed.split("/")[0], sniffed, extension)


def accepted_extensions() -> tuple[list[str], list[str]]:
    """File extensions uploads accept, as (images, videos), sorted."""
    images = sorted(e for e, m in SUPPORTED.items() if m.startswith("image/"))
    videos = sorted(e for e, m in SUPPORTED.items() if m.startswith("video/"))
    return images, videos
