"""Pixels: decode once, derive every size from that, encode. pyvips does the work.

Decoders: libvips (pyvips-binary) for JPEG, PNG, WebP, AVIF, GIF, TIFF; pillow-heif
for HEIC/HEIF (pyvips-binary has no HEVC decoder); pillow-jxl-plugin for JPEG XL;
rawpy (LibRaw) for DNG and camera RAW. Video poster frames arrive as RGB arrays.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyvips

from app.media import jpeg_segments, jxl
from app.media.thumbhash_encoder import rgba_to_thumbhash

log = logging.getLogger(__name__)

THUMBNAIL_SHORT_SIDE = 250
PREVIEW_SHORT_SIDE = 1440
# The long side of a preview or thumbnail: WebP's limit. Without it a 10,000,000 x 20 PNG
# (200 MP, a few kB) kept its full size as "preview": 1.6 GB of RSS, then a JPEG error.
MAX_RENDITION_SIDE = 16383
QUALITY = 80
# Decompression-bomb limits, so that the worst file a worker accepts decodes in under 1 GB of
# RSS (tests/test_poison.py measures the worst case of each decoder in a subprocess):
# - no image or video frame over 200 MP or 65,500 pixels across, whatever the decoder;
# - JPEG, WebP and non-interlaced PNG decode a few rows at a time while shrinking (~250 MB
#   at 200 MP), so the pixel count is their only limit;
# - every other decode holds the whole picture, plus its decoder's working copies: its
#   estimated peak (pixels x the path's measured bytes per pixel, see _check_size callers)
#   may be at most MAX_DECODE_BYTES. That allows about: TIFF, GIF, interlaced PNG and
#   libvips' AVIF 116 MP of 8-bit RGB / 87 MP RGBA / 43 MP 16-bit RGBA; HEIC 58 MP; AVIF
#   through Pillow 46 MP (35 MP with alpha); JPEG XL 35 MP; RAW 116 MP of sensor; video
#   frames of 8-bit 4:2:0 up to the 200 MP cap.
MAX_PIXELS = 200_000_000
MAX_DECODE_BYTES = 700_000_000
# libvips works in strips the full width of the image, so its caches grow with the width
# (a 10,000,000 x 20 PNG took 7 GB). No camera or stitcher's output is wider than JPEG allows.
MAX_SIDE = 65_500

# A JPEG already within the preview's size is its own preview, metadata stripped, unless its
# bytes are many more than a preview's: this is about where re-encoding at Q80 roughly halves
# them (photos at Q80 take about 0.1-0.25 bytes per pixel, at Q95 0.4-0.6).
MAX_OWN_PREVIEW_BYTES_PER_PIXEL = 0.4
MAX_OWN_PREVIEW_FILE_BYTES = 64 << 20

# Originals a browser cannot show get a full-resolution JPEG.
NEEDS_FULLSIZE = {"image/heic", "image/heif", "image/tiff", "image/jxl"}
RAW_PREFIXES = ("image/x-",)


class UndecodableImage(Exception):
    """The file's pixels cannot be read; retrying will not help."""


@dataclass
class Rendition:
    kind: str  # thumbnail | preview | fullsize
    data: bytes
    mime_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Encoding:
    """How one rendition is written: Immich's image format (jpeg | webp), quality and, for JPEG,
    progressive scan."""

    format: str = "jpeg"
    quality: int = QUALITY
    progressive: bool = False

    @property
    def mime_type(self) -> str:
        return f"image/{self.format}"


@dataclass(frozen=True)
class VariantOptions:
    """The sizes (short side, in pixels) and encodings of the renditions; the defaults are Immich's."""

    thumbnail_side: int = THUMBNAIL_SHORT_SIDE
    thumbnail: Encoding = Encoding("webp")
    preview_side: int = PREVIEW_SHORT_SIDE
    preview: Encoding = Encoding("jpeg")
    fullsize: Encoding = Encoding("jpeg")

    @property
    def decode_side(self) -> int:
        """The short side a decode needs to serve every rendition."""
        return max(self.thumbnail_side, self.preview_side)


DEFAULT_VARIANTS = VariantOptions()


@dataclass
class Rendered:
    renditions: list[Rendition]
    thumbhash: bytes | None  # None when it could not be computed (see warnings)
    width: int  # display space
    height: int
    warnings: list[str] = field(default_factory=list)  # what was skipped, and why


def needs_fullsize(mime: str) -> bool:
    return mime in NEEDS_FULLSIZE or is_raw(mime)


def is_raw(mime: str) -> bool:
    return mime.startswith(RAW_PREFIXES) and mime not in ("image/x-icon", "image/x-ms-bmp")


def _from_array(array: np.ndarray) -> pyvips.Image:
    if array.ndim == 2:
        array = array[:, :, None]
    array = np.ascontiguousarray(array)
    height, width, bands = array.shape
    fmt = "ushort" if array.dtype == np.uint16 else "uchar"
    image = pyvips.Image.new_from_memory(array.data, width, height, bands, fmt)
    if fmt == "ushort":
        image = image.copy(interpretation="rgb16" if bands >= 3 else "grey16")
    return image


def _check_size(width: int, height: int, peak_bytes_per_pixel: float | None = None) -> None:
    """Refuse before decoding. peak_bytes_per_pixel: what the decode holds at its peak, for
    decoders that hold the whole picture (None: it streams)."""
    if width <= 0 or height <= 0:
        raise UndecodableImage("the image has no pixels")
    pixels = width * height
    if max(width, height) > MAX_SIDE:
        raise UndecodableImage(f"{width}x{height} is more than {MAX_SIDE} pixels across (decompression bomb)")
    if pixels > MAX_PIXELS:
        raise UndecodableImage(f"{width}x{height} is {pixels / 1e6:.0f} MP, more than the "
                               f"{MAX_PIXELS // 1_000_000} MP limit (decompression bomb)")
    if peak_bytes_per_pixel and pixels * peak_bytes_per_pixel > MAX_DECODE_BYTES:
        raise UndecodableImage(
            f"{width}x{height} must be decoded whole, about {pixels * peak_bytes_per_pixel / 1e6:.1f} MB: more "
            f"than the {MAX_DECODE_BYTES // 1_000_000} MB a decode may take (decompression bomb)")


def _peak_bytes_per_pixel(image: pyvips.Image) -> int:
    """A whole-picture libvips decode: the decoder's buffer (its own sample format) or the
    8-bit sRGB(A) copy _encode keeps (grey turns into three bands), whichever is larger,
    twice over for the decoder's and the encoders' working memory (measured: ~1.3x)."""
    decoded = image.bands * {"uchar": 1, "char": 1, "ushort": 2, "short": 2}.get(image.format, 4)
    return 2 * max(decoded, 4 if image.hasalpha() else 3)


def _streams(header: pyvips.Image) -> bool:
    """The loader decodes a few rows at a time (with access="sequential"), never the whole picture."""
    loader = header.get("vips-loader")
    if loader.startswith(("jpegload", "webpload")):
        return True
    interlaced = "interlaced" in header.get_fields() and header.get("interlaced")
    return loader.startswith("pngload") and not interlaced  # Adam7 needs every pass in memory


def _pillow_pixels(path: Path) -> tuple[np.ndarray, bytes | None]:
    """Decoded 8-bit RGB(A) pixels and the colour profile. Returning drops every Pillow
    object, so only the numpy copy outlives this call."""
    import pillow_heif
    import pillow_jxl  # noqa: F401  (importing it registers the JPEG XL opener)
    from PIL import Image

    pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with Image.open(path) as im:
        # The decoder's planes, Pillow's image and the numpy copy: measured at 3.3-3.4x the
        # 8-bit RGB(A) size for HEIC (8 and 10 bit), 3.7x for AVIF, 4.2-4.3x for JPEG XL.
        factor = 4 if im.format == "HEIF" else 5
        _check_size(*im.size, peak_bytes_per_pixel=factor * (4 if "A" in im.getbands() else 3))
        # The container's own transforms are applied by the decoder; EXIF orientation
        # in HEIF/JXL is informational and must not be applied twice.
        icc = im.info.get("icc_profile")
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        return np.asarray(im), icc


def _load_with_pillow(path: Path) -> pyvips.Image:
    try:
        pixels, icc = _pillow_pixels(path)
    except UndecodableImage:
        raise
    except Exception as exc:
        raise UndecodableImage(f"cannot decode: {exc}") from exc
    image = _from_array(pixels)
    if icc:  # keep the colour profile so the sRGB conversion can honour it
        image = image.copy()
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    return image


def _load_raw(path: Path, short_side: int) -> pyvips.Image:
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            # LibRaw holds the 16-bit mosaic (2 bytes per sensor pixel), a 4 x 16-bit working
            # image (2 at half size) and the 8-bit output: measured ~4.7, so 6.
            _check_size(raw.sizes.raw_width, raw.sizes.raw_height, peak_bytes_per_pixel=6)
            half = min(raw.sizes.width, raw.sizes.height) >= 2 * short_side
            rgb = raw.postprocess(use_camera_wb=True, half_size=half, output_bps=8)
    except UndecodableImage:
        raise
    except Exception as exc:
        raise UndecodableImage(f"cannot decode RAW: {exc}") from exc
    return _from_array(rgb)


def _to_srgb(image: pyvips.Image) -> pyvips.Image:
    try:
        if image.get_typeof("icc-profile-data"):
            image = image.icc_transform("srgb", embedded=True, intent="perceptual")
    except pyvips.Error:
        pass  # a broken profile: fall back to a plain conversion
    if image.interpretation not in ("srgb",) or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _short_side_size(width: int, height: int, short: int) -> tuple[int, int]:
    scale = min(1.0, short / min(width, height), MAX_RENDITION_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrink(image: pyvips.Image, short: int) -> pyvips.Image:
    width, height = _short_side_size(image.width, image.height, short)
    if (width, height) == (image.width, image.height):
        return image
    return image.thumbnail_image(width, height=height, size="force")


def _flatten(image: pyvips.Image) -> pyvips.Image:
    return image.flatten(background=[255, 255, 255]) if image.hasalpha() else image


# A ThumbHash keeps at most 7 cosine terms a side, so an input of 64 pixels a side holds all it
# can show; the numpy encoder's cost grows with the pixels (2.2 ms at 100 x 75, 0.6 at 64 x 48).
THUMBHASH_INPUT_SIDE = 64


def thumbhash(image: pyvips.Image) -> bytes:
    """The ThumbHash of an image (a thumbnail: it is shrunk to THUMBHASH_INPUT_SIDE first)."""
    if image.bands == 3 and image.format == "uchar":
        # The common case, an opaque colour thumbnail: means over whole k x k blocks in numpy
        # (the last k - 1 rows or columns, if any, left out) cost less than a libvips resize
        # and the band and format operations around it, each a pipeline of its own.
        k = -(-max(image.width, image.height) // THUMBHASH_INPUT_SIDE)
        rows, cols = image.height // k, image.width // k
        if rows and cols:
            pixels = np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                                shape=(image.height, image.width, 3))
            means = pixels[:rows * k, :cols * k].reshape(rows, k, cols, k, 3).mean(axis=(1, 3))
            rgba = np.full((rows, cols, 4), 255, np.uint8)
            rgba[..., :3] = np.rint(means)
            return rgba_to_thumbhash(rgba)
    small = image.thumbnail_image(THUMBHASH_INPUT_SIDE, height=THUMBHASH_INPUT_SIDE)
    if small.bands <= 2:  # grey or grey + alpha: the encoder wants RGBA
        grey = small[0]
        small = grey.bandjoin([grey, grey] + ([small[1]] if small.bands == 2 else []))
    if not small.hasalpha():
        small = small.bandjoin(255)
    small = small[:4].cast("uchar")  # straight (not premultiplied) alpha, as ThumbHash expects
    pixels = np.ndarray(buffer=small.write_to_memory(), dtype=np.uint8, shape=(small.height, small.width, 4))
    return rgba_to_thumbhash(pixels)


def _optional_thumbhash(thumb: pyvips.Image) -> tuple[bytes | None, list[str]]:
    """The thumbhash, or None and why: losing it must not lose the renditions already made."""
    try:
        return thumbhash(thumb), []
    except Exception as exc:
        log.warning("no thumbhash: %s", exc, exc_info=True)
        return None, [f"thumbhash skipped: {type(exc).__name__}: {exc}"[:300]]


def _save(kind: str, image: pyvips.Image, encoding: Encoding) -> Rendition:
    if encoding.format == "webp":
        data = image.webpsave_buffer(Q=encoding.quality, strip=True)
    else:  # JPEG has no alpha: flattened onto white
        image = _flatten(image)
        data = image.jpegsave_buffer(Q=encoding.quality, strip=True, interlace=encoding.progressive)
    return Rendition(kind, data, encoding.mime_type, image.width, image.height)


def _encode(base: pyvips.Image, with_fullsize: bool, options: VariantOptions,
            in_memory: bool = False) -> Rendered:
    """in_memory: base already wraps a decoded array; a second full-size copy would only
    save re-running the (lazy) sRGB conversion for each size, at the cost of RSS."""
    base = _to_srgb(base)
    if not in_memory:
        base = base.copy_memory()  # decoded once; every size comes from this buffer
    renditions = []
    if with_fullsize:
        renditions.append(_save("fullsize", base, options.fullsize))
    preview = _shrink(base, options.preview_side).copy_memory()
    renditions.append(_save("preview", preview, options.preview))
    # The thumbnail comes from the preview when that is big enough, which is cheaper.
    thumb = _shrink(preview if options.thumbnail_side <= options.preview_side else base, options.thumbnail_side)
    renditions.append(_save("thumbnail", thumb, options.thumbnail))
    thumbhash, warnings = _optional_thumbhash(thumb)
    return Rendered(renditions, thumbhash, base.width, base.height, warnings)


def own_preview(path: Path, header: pyvips.Image, options: VariantOptions) -> Rendition | None:
    """The original as its own preview, when re-encoding it would only cost time and quality:
    a plain sRGB JPEG (no ICC profile to convert from, no EXIF turn to apply, the configured
    scan type) whose short side is within the preview's and whose size is modest. Its
    metadata and anything after the picture are dropped (jpeg_segments)."""
    fields = header.get_fields()
    if (options.preview.format != "jpeg" or header.get("vips-loader") != "jpegload"
            or header.bands != 3 or header.format != "uchar" or header.interpretation != "srgb"
            or "icc-profile-data" in fields
            or ("orientation" in fields and header.get("orientation") not in (0, 1))
            or min(header.width, header.height) > options.preview_side
            or max(header.width, header.height) > MAX_RENDITION_SIDE
            or ("interlaced" in fields) != options.preview.progressive):
        return None
    pixels = header.width * header.height
    try:
        # The file may carry more than its picture (a motion photo's video): read a bounded amount.
        if path.stat().st_size > MAX_OWN_PREVIEW_FILE_BYTES:
            return None
        stripped = jpeg_segments.strip_metadata(path.read_bytes())
    except OSError:
        return None
    if (stripped is None or (stripped.width, stripped.height) != (header.width, header.height)
            or len(stripped.data) > pixels * MAX_OWN_PREVIEW_BYTES_PER_PIXEL):
        return None
    return Rendition("preview", stripped.data, "image/jpeg", stripped.width, stripped.height)


def _encode_from_own_preview(path: Path, header: pyvips.Image, preview: Rendition,
                             options: VariantOptions) -> Rendered:
    """The thumbnail and thumbhash from a decode shrunk to the thumbnail's size: without a
    preview to encode, nothing needs the full-size pixels."""
    small = _to_srgb(_load_shrunk(path, header, options.thumbnail_side)).copy_memory()
    thumb = _shrink(small, options.thumbnail_side)
    thumbhash, warnings = _optional_thumbhash(thumb)
    return Rendered([preview, _save("thumbnail", thumb, options.thumbnail)], thumbhash, header.width,
                    header.height, warnings)


def header_size(path: Path, mime: str) -> tuple[int, int] | None:
    """Stored (pre-orientation) pixel size without decoding pixels, where the decoder allows."""
    try:
        if is_raw(mime):
            import rawpy

            with rawpy.imread(str(path)) as raw:
                return raw.sizes.raw_width, raw.sizes.raw_height
        if mime == "image/jxl":
            return jxl.size(path)  # pillow-jxl would decode the whole picture to tell
        image = pyvips.Image.new_from_file(str(path))
        return image.width, image.height
    except Exception:
        return None


def _load_shrunk(path: Path, header: pyvips.Image, side: int) -> pyvips.Image:
    """Decode at about `side` (short side): the JPEG/WebP decoders scale while decoding.

    Loading through the format's own loader (not thumbnail()) lets fail_on reject
    truncated files instead of returning a half-grey picture.
    """
    loader = header.get("vips-loader")
    short = min(header.width, header.height)
    options: dict = {"access": "sequential", "fail_on": "truncated"}
    if loader.startswith("jpegload"):
        shrink = 1
        while shrink < 8 and short / (shrink * 2) >= side:
            shrink *= 2
        options["shrink"] = shrink
    elif loader.startswith("webpload") and short > side:
        options["scale"] = side / short
    image = pyvips.Image.new_from_file(str(path), **options)
    # Shrink first (the short side is the same either way up), then turn the small copy.
    return _upright(_shrink(image, side))


def _upright(image: pyvips.Image) -> pyvips.Image:
    """Apply the EXIF orientation. A sequential decode cannot be read bottom-up or sideways,
    so a turned image is materialised first (small here: callers shrink before this)."""
    orientation = image.get("orientation") if "orientation" in image.get_fields() else 1
    if orientation in (0, 1):
        return image.autorot()
    return image.copy_memory().autorot()


def render_image(path: Path, mime: str, options: VariantOptions = DEFAULT_VARIANTS) -> Rendered:
    fullsize = needs_fullsize(mime)
    try:
        if is_raw(mime) or mime == "image/jxl":
            size = header_size(path, mime)
            if size is None:
                raise UndecodableImage("cannot read the image header")
            # RAW: LibRaw's sizes are read without decoding, in _load_raw. JPEG XL: pillow-jxl
            # decodes as it opens, so the limit is checked here, on the header's size,
            # assuming alpha (the header reader stops before the extra channels).
            _check_size(*size, peak_bytes_per_pixel=None if is_raw(mime) else 5 * 4)
            with _big_decode(size[0] * size[1]):
                base = _load_raw(path, options.decode_side) if is_raw(mime) else _load_with_pillow(path)
                return _encode(base, True, options, in_memory=True)
        header = pyvips.Image.new_from_file(str(path))
        loader = header.get("vips-loader")
        streams = _streams(header) and not fullsize
        _check_size(header.width, header.height, None if streams else _peak_bytes_per_pixel(header))
        compression = header.get("heif-compression") if "heif-compression" in header.get_fields() else None
        # HEVC: pyvips-binary cannot decode it. AV1: Pillow's libavif decodes it in about
        # a quarter of the time and half the memory libheif needs (20 MP 10-bit: 0.6 s, 290 MB).
        via_pillow = loader == "heifload" and (compression == "hevc" or (compression == "av1" and _pillow_avif()))
        with _big_decode(0 if streams else header.width * header.height):
            if via_pillow:
                return _encode(_load_with_pillow(path), fullsize, options, in_memory=True)
            if fullsize:
                base = _upright(pyvips.Image.new_from_file(str(path), access="sequential", fail_on="truncated"))
            elif (own := own_preview(path, header, options)) is not None:
                return _encode_from_own_preview(path, header, own, options)
            else:
                base = _load_shrunk(path, header, options.decode_side)
            return _encode(base, fullsize, options)
    except UndecodableImage:
        raise
    except pyvips.Error as exc:
        message = str(exc).strip().splitlines()
        raise UndecodableImage(f"cannot decode: {' '.join(message[:3])}") from exc


def _pillow_avif() -> bool:
    from PIL import features

    return bool(features.check("avif"))


# Full-resolution decodes of big images (HDR AVIF, 16-bit JXL, RAW, TIFF) can take
# hundreds of MB each; one at a time per process keeps a worker's memory bounded.
BIG_DECODE_PIXELS = 8_000_000
_big_decodes = threading.BoundedSemaphore(1)


@contextmanager
def _big_decode(pixels: int):
    if pixels <= BIG_DECODE_PIXELS:
        yield
        return
    with _big_decodes:
        yield


def render_frame(rgb: np.ndarray, options: VariantOptions = DEFAULT_VARIANTS) -> Rendered:
    return _encode(_from_array(rgb), with_fullsize=False, options=options, in_memory=True)
