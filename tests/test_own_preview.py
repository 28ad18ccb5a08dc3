"""A small JPEG as its own preview: its compressed pixels, none of its metadata (no server)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyexiv2
import pytest
import pyvips

from app.media import jpeg_segments
from app.media.images import DEFAULT_VARIANTS, Encoding, VariantOptions, render_image
from tests.media import SHARED_ASSETS

GPS = {"Exif.GPSInfo.GPSLatitudeRef": "N", "Exif.GPSInfo.GPSLatitude": "48/1 51/1 0/1",
       "Exif.GPSInfo.GPSLongitudeRef": "E", "Exif.GPSInfo.GPSLongitude": "2/1 21/1 0/1",
       "Exif.Image.Make": "SecretCam"}
# What follows a motion photo's picture: its video.
TRAILER = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


def _photo(width: int = 1200, height: int = 800, seed: int = 1) -> pyvips.Image:
    noise = pyvips.Image.perlin(width, height, cell_size=64, uchar=True, seed=seed)
    return noise.bandjoin([noise.rot180() if width == height else noise.fliphor(), noise.flipver()]) \
        .cast("uchar").copy(interpretation="srgb")


def _jpeg(tmp_path: Path, image: pyvips.Image | None = None, *, exif: dict | None = None, name: str = "p.jpg",
          trailer: bytes = b"", **save) -> Path:
    path = tmp_path / name
    (image or _photo()).jpegsave(str(path), **{"Q": 85, **save})
    if exif is not None:
        with pyexiv2.Image(str(path)) as meta:
            meta.modify_exif(exif)
            meta.modify_xmp({"Xmp.dc.description": "a private note"})
            meta.modify_iptc({"Iptc.Application2.City": "Paris"})
            meta.modify_comment("a comment")
    if trailer:
        with open(path, "ab") as fh:
            fh.write(trailer)
    return path


def _pixels(data: bytes) -> np.ndarray:
    image = pyvips.Image.new_from_buffer(data, "")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8, shape=(image.height, image.width, image.bands))


def _markers(data: bytes) -> list[int]:
    """The markers before the first scan, and that the file ends at EOI."""
    found, pos = [], 2
    while data[pos + 1] != 0xDA:
        found.append(data[pos + 1])
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return found


# --- jpeg_segments ------------------------------------------------------------------------


@pytest.mark.parametrize("save", [{}, {"interlace": True}, {"restart_interval": 3}, {"subsample_mode": "off"}],
                         ids=["baseline", "progressive", "restarts", "4:4:4"])
def test_stripped_jpeg_has_the_same_pixels_and_no_metadata(tmp_path, save):
    original = _jpeg(tmp_path, exif=GPS, trailer=TRAILER, **save).read_bytes()
    stripped = jpeg_segments.strip_metadata(original)
    assert stripped is not None
    assert (stripped.width, stripped.height, stripped.progressive) == (1200, 800, bool(save.get("interlace")))
    assert np.array_equal(_pixels(stripped.data), _pixels(original))
    assert stripped.data.endswith(b"\xff\xd9") and TRAILER not in stripped.data
    assert set(_markers(stripped.data)) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xC2, 0xDD}
    for secret in (b"Exif", b"SecretCam", b"private note", b"Paris", b"a comment", b"http://ns.adobe.com"):
        assert secret in original and secret not in stripped.data
    meta = pyexiv2.ImageData(stripped.data)
    try:
        assert meta.read_exif() == {} and meta.read_xmp() == {} and meta.read_iptc() == {}
    finally:
        meta.close()


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def test_the_headers_decoders_read_keep_only_their_fixed_fields(tmp_path):
    good = _photo(300, 200).jpegsave_buffer(Q=85, keep="none")
    assert good[2:4] == b"\xff\xdb"  # no header of its own: tables first
    # JFIF may carry an uncompressed thumbnail (here 2 x 1 pixels of "secret"), and bytes after it.
    jfif = _segment(0xE0, b"JFIF\x00\x01\x02\x00\x00\x48\x00\x48\x02\x01" + b"SECRET" + b"and more")
    adobe = _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01" + b"SECRET Adobe tail")
    other = _segment(0xEE, b"NotAdobe SECRET")
    jfxx = _segment(0xE0, b"JFXX\x00\x10" + b"SECRET thumbnail")
    # Fill bytes may come before any marker: a long run of them too.
    data = good[:2] + jfif + adobe + other + jfxx + b"\xff" * 1_000_000 + good[2:]
    stripped = jpeg_segments.strip_metadata(data)
    assert stripped is not None and b"SECRET" not in stripped.data
    assert np.array_equal(_pixels(stripped.data), _pixels(good))
    assert stripped.data[2:24] == (b"\xff\xe0\x00\x10JFIF\x00\x01\x02\x00\x00\x48\x00\x48\x00\x00"
                                   b"\xff\xee\x00\x0e")
    assert stripped.data[24:36] == b"Adobe\x00\x64\x00\x00\x00\x00\x01"
    # Coded data of a million stuffed 0xFFs still ends at its marker.
    stuffed = good[:-2] + b"\xff\x00" * 500_000 + b"\xff\xd9"
    assert jpeg_segments.strip_metadata(stuffed).data == jpeg_segments.strip_metadata(good).data[:-2] + \
        b"\xff\x00" * 500_000 + b"\xff\xd9"
    # Fill 0xFFs before the end marker stay with the coded data; the marker is found after them.
    filled = good[:-2] + b"\xff" * 1000 + b"\xff\xd9"
    assert jpeg_segments.strip_metadata(filled).data == jpeg_segments.strip_metadata(good).data[:-2] + \
        b"\xff" * 1001 + b"\xd9"


def test_what_it_does_not_pass_on(tmp_path):
    photo = _photo(300, 200)
    cmyk = photo.colourspace("cmyk").jpegsave_buffer()
    grey = photo.colourspace("b-w").jpegsave_buffer()
    good = photo.jpegsave_buffer()
    assert jpeg_segments.strip_metadata(good) is not None
    for data in (cmyk, grey, good[:-2], good[: len(good) // 2], good[2:], b"", b"\xff\xd8", photo.pngsave_buffer(),
                 good.replace(b"\xff\xc0", b"\xff\xc9", 1)):  # the same frame, marked arithmetic-coded
        assert jpeg_segments.strip_metadata(data) is None


def test_no_mangled_jpeg_makes_it_raise(tmp_path):
    good = _jpeg(tmp_path, _photo(200, 150), exif=GPS, interlace=True).read_bytes()
    rng = random.Random(7)
    passed = 0
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            if rng.random() < 0.5:
                data[at] = rng.randrange(256)
            else:
                del data[at:at + rng.randint(1, 40)]
        result = jpeg_segments.strip_metadata(bytes(data))
        passed += result is not None
    assert 0 < passed < 3000  # both outcomes were met


# --- render_image ---------------------------------------------------------------------------


def _render(path: Path, options: VariantOptions = DEFAULT_VARIANTS):
    rendered = render_image(path, "image/jpeg", options)
    return rendered, {r.kind: r for r in rendered.renditions}


def test_a_small_jpeg_is_its_own_preview_without_its_metadata(tmp_path):
    # Its size is judged on its picture alone: with the trailer, the file is over the bound.
    path = _jpeg(tmp_path, exif=GPS, trailer=TRAILER * 200)
    assert path.stat().st_size > 1200 * 800 * 0.4
    rendered, kinds = _render(path)
    preview, thumb = kinds["preview"], kinds["thumbnail"]
    assert (preview.mime_type, preview.width, preview.height) == ("image/jpeg", 1200, 800)
    assert np.array_equal(_pixels(preview.data), _pixels(path.read_bytes()))
    assert b"SecretCam" not in preview.data and TRAILER not in preview.data
    assert (thumb.mime_type, thumb.width, thumb.height) == ("image/webp", 375, 250)
    assert (rendered.width, rendered.height) == (1200, 800) and rendered.thumbhash and not rendered.warnings
    # The thumbnail looks like the one the usual path makes from a re-encoded preview.
    usual = render_image(path, "image/jpeg", VariantOptions(preview=Encoding("jpeg", progressive=True)))
    other = next(r for r in usual.renditions if r.kind == "thumbnail")
    difference = np.abs(_pixels(thumb.data).astype(int) - _pixels(other.data).astype(int))
    assert difference.mean() < 3


def _reencoded(path: Path, options: VariantOptions = DEFAULT_VARIANTS) -> bool:
    _, kinds = _render(path, options)
    preview = kinds["preview"]
    return jpeg_segments.strip_metadata(path.read_bytes()) is None or \
        preview.data != jpeg_segments.strip_metadata(path.read_bytes()).data


def test_previews_are_rendered_as_before_when_the_original_will_not_do(tmp_path):
    photo = _photo()
    # Turned by EXIF: the preview must be turned, and a stripped copy would lose the turn.
    turned = _jpeg(tmp_path, exif={"Exif.Image.Orientation": "6"}, name="turned.jpg")
    assert _reencoded(turned)
    assert (_render(turned)[1]["preview"].width, _render(turned)[1]["preview"].height) == (800, 1200)
    # A colour profile to convert from.
    profiled = tmp_path / "p3.jpg"
    photo.jpegsave(str(profiled), Q=85, profile=str(_srgb_profile(tmp_path)))
    assert pyvips.Image.new_from_file(str(profiled)).get_typeof("icc-profile-data")
    assert _reencoded(profiled)
    # Bigger than a preview.
    big = _jpeg(tmp_path, _photo(2000, 1500), name="big.jpg")
    assert _reencoded(big) and _render(big)[1]["preview"].height == 1440
    # Many bytes per pixel.
    heavy = _jpeg(tmp_path, pyvips.Image.gaussnoise(600, 400, sigma=80).bandjoin([
        pyvips.Image.gaussnoise(600, 400, sigma=80)] * 2).cast("uchar").copy(interpretation="srgb"),
        name="heavy.jpg", Q=100)
    assert heavy.stat().st_size > 600 * 400 * 0.4
    assert _reencoded(heavy)
    # Progressive originals when previews are baseline, and the reverse; WebP previews.
    progressive = _jpeg(tmp_path, name="progressive.jpg", interlace=True)
    assert _reencoded(progressive)
    assert not _reencoded(progressive, VariantOptions(preview=Encoding("jpeg", progressive=True)))
    plain = _jpeg(tmp_path, name="plain.jpg")
    assert not _reencoded(plain)
    assert _reencoded(plain, VariantOptions(preview=Encoding("jpeg", progressive=True)))
    assert _render(plain, VariantOptions(preview=Encoding("webp")))[1]["preview"].mime_type == "image/webp"


def _srgb_profile(tmp_path: Path) -> Path:
    """libvips' own sRGB profile, as a file jpegsave can embed."""
    data = _photo(16, 16).icc_transform("srgb").jpegsave_buffer(profile="srgb")
    profile = pyvips.Image.new_from_buffer(data, "").get("icc-profile-data")
    path = tmp_path / "srgb.icc"
    path.write_bytes(profile)
    return path


@pytest.mark.skipif(not SHARED_ASSETS.exists(), reason="shared test assets are not present")
def test_real_small_jpegs(tmp_path):
    own = 0
    for path in sorted(SHARED_ASSETS.rglob("*.jp*g")):
        header = pyvips.Image.new_from_file(str(path))
        if min(header.width, header.height) > 1440:
            continue
        _, kinds = _render(path)
        preview = kinds["preview"]
        assert (preview.width, preview.height) == (header.width, header.height), path
        own += np.array_equal(_pixels(preview.data), _pixels(path.read_bytes()))
        meta = pyexiv2.ImageData(preview.data)
        try:
            assert meta.read_exif() == {} and meta.read_xmp() == {}, path
        finally:
            meta.close()
    assert own >= 5
