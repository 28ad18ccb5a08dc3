"""Poison files: inputs that used to break the media pipeline (issue #11, findings 10-11) and
the decoding limits. Unit tests call app/media directly; pipeline tests upload over real HTTP
to the `server` fixture and read the tasks' records."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips
from PIL import Image

from app.media import images
from app.media.extract import extract
from app.media.metadata import RefusedSidecar, read_sidecar
from app.media.thumbhash_encoder import rgba_to_thumbhash
from tests.helpers import upload, wait_processed
from tests.media import SHARED_ASSETS

needs_assets = pytest.mark.skipif(not SHARED_ASSETS.exists(), reason="shared test assets are not present")
GPS_JPEG = SHARED_ASSETS / "metadata/dates/datetimeoriginal-gps.jpg"  # EXIF 2025-12-01 11:30, GPS 39 N 108 W


def _post(account, name: str, data: bytes, sidecar: bytes | None = None, mime: str = "application/octet-stream"):
    """Upload through gumnut-sdk, or over plain HTTP with the optional `sidecar_data` part (the
    SDK has no parameter for it); wait for the pipeline; return the asset and its tasks."""
    if sidecar is None:
        raw = upload(account, name, data, content_type=mime)
        assert raw.status_code == 201, raw.http_response.text
        asset_id = raw.parse().id
    else:
        files = {"asset_data": (name, data, mime), "sidecar_data": (name + ".xmp", sidecar, "application/xml")}
        with account.http() as http:
            r = http.post("/api/assets", files=files, data={
                "device_asset_id": name, "device_id": "pytest",
                "file_created_at": "2024-01-01T00:00:00Z", "file_modified_at": "2024-01-01T00:00:00Z"})
        assert r.status_code == 201, r.text
        asset_id = r.json()["id"]
    found = {t.task_type: t for t in wait_processed(account, asset_id)}
    with account.http() as http:
        body = http.get(f"/api/assets/{asset_id}").json()
    return body, found


# --- finding 10: transparency and the thumbhash ----------------------------------------------


def _grid(w: int, h: int):
    y, x = np.mgrid[0:h, 0:w]
    return x, y


def _vector_images() -> dict[str, np.ndarray]:
    out = {}
    x, y = _grid(32, 24)
    out["opaque_gradient"] = np.stack([(x * 8) % 256, (y * 10) % 256, (x * y) % 256, np.full_like(x, 255)], -1)
    x, y = _grid(40, 30)
    out["varying_alpha"] = np.stack([(x * 6) % 256, (y * 8) % 256, ((x + y) * 5) % 256, (x * 6 + y * 3) % 256], -1)
    x, y = _grid(50, 50)
    inside = (x - 25) ** 2 + (y - 25) ** 2 < 400
    out["opaque_disc"] = np.stack([np.full_like(x, 200), np.full_like(x, 40), np.full_like(x, 90),
                                   np.where(inside, 255, 0)], -1)
    x, y = _grid(30, 45)
    out["grey_alpha"] = np.stack([y * 5, y * 5, y * 5, (x * 8) % 256], -1)
    x, y = _grid(100, 7)
    out["wide_half_clear"] = np.stack([(x * 2 + y * y) % 256, (x * x + y * 17) % 256, (y * 30 + x) % 256,
                                       np.where(x < 50, 255, (x * y) % 256)], -1)
    out["all_clear"] = np.zeros((16, 16, 4), dtype=np.int64)
    return {name: pixels.astype(np.uint8) for name, pixels in out.items()}


# Produced by the reference encoder, rgbaToThumbHash from the npm package thumbhash 0.1.1,
# on exactly these pixels (node 20).
REFERENCE_HASHES = {
    "opaque_gradient": "db180e1d9a6076877088888688678887f3a40ff788",
    "varying_alpha": "e216861490187089707da6778809dea16f07b075b275887707",
    "opaque_disc": "db38830500372767888884f9b8078770700807588788808958",
    "grey_alpha": "1b088e03003777b0787778000000000070778788887878",
    "wide_half_clear": "5cc789298a3b507650878786cf0867788f759677866878",
    "all_clear": "00088205000000000000000000000000000000000000000000",
}


@pytest.mark.parametrize("name", sorted(REFERENCE_HASHES))
def test_thumbhash_matches_the_reference_encoder(name):
    assert rgba_to_thumbhash(_vector_images()[name]).hex() == REFERENCE_HASHES[name]


def _has_alpha(thumbhash: bytes) -> bool:
    return bool(thumbhash[2] & 0x80)  # bit 23 of the 24-bit header


def _alpha_dc(thumbhash: bytes) -> float:
    return (thumbhash[5] & 15) / 15


def _png(mode: str) -> bytes:
    """A 120x80 PNG of the given mode whose left half is opaque and right half clear."""
    x, y = _grid(120, 80)
    opaque = x < 60
    if mode == "RGBA":
        pixels = np.stack([x * 2, y * 3, np.full_like(x, 90), np.where(opaque, 255, 0)], -1).astype(np.uint8)
        image = Image.fromarray(pixels, "RGBA")
    elif mode == "LA":
        pixels = np.stack([y * 3, np.where(opaque, 255, 0)], -1).astype(np.uint8)
        image = Image.fromarray(pixels, "LA")
    else:  # "P" with a tRNS chunk: palette index 0 is fully transparent
        index = np.where(opaque, 1 + (y % 4), 0).astype(np.uint8)
        image = Image.fromarray(index, "P")
        image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0])
        image.info["transparency"] = 0
    out = io.BytesIO()
    image.save(out, "PNG", transparency=0) if mode == "P" else image.save(out, "PNG")
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).mode == mode
    if mode == "P":
        assert b"tRNS" in data
    return data


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_png_renders_with_an_alpha_thumbhash(tmp_path, mode):
    path = tmp_path / f"{mode}.png"
    path.write_bytes(_png(mode))
    rendered = images.render_image(path, "image/png")
    assert [r.kind for r in rendered.renditions] == ["preview", "thumbnail"]
    assert rendered.warnings == []
    assert _has_alpha(rendered.thumbhash)
    assert abs(_alpha_dc(rendered.thumbhash) - 0.5) <= 1 / 15  # half the picture is clear
    thumb = pyvips.Image.new_from_buffer(rendered.renditions[1].data, "")
    assert thumb.hasalpha()  # the WebP thumbnail keeps the transparency


def test_opaque_image_thumbhash_has_no_alpha(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(_vector_images()["opaque_gradient"][:, :, :3], "RGB").save(path)
    assert not _has_alpha(images.render_image(path, "image/png").thumbhash)


def test_a_failing_thumbhash_keeps_the_renditions(tmp_path, monkeypatch):
    """The thumbhash is optional: whatever makes it fail must not cost the thumbnail and preview."""
    def broken(_image):
        raise TypeError("type tuple doesn't define __round__ method")  # what thumbhash 0.1.2 raised

    monkeypatch.setattr(images, "thumbhash", broken)
    path = tmp_path / "rgba.png"
    path.write_bytes(_png("RGBA"))
    rendered = images.render_image(path, "image/png")
    assert [r.kind for r in rendered.renditions] == ["preview", "thumbnail"]
    assert rendered.thumbhash is None
    assert rendered.warnings == ["thumbhash skipped: TypeError: type tuple doesn't define __round__ method"]


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_png_upload_gets_variants_and_thumbhash(account, mode):
    import base64

    body, found = _post(account, f"clear-{mode}.png", _png(mode))
    variants = found["thumbnail_generation"]
    assert variants.status == "success", variants.error_message
    assert "thumbnail" in variants.result and "skipped" not in variants.result
    assert _has_alpha(base64.b64decode(body["thumbhash"]))
    thumb = httpx.get(body["asset_urls"]["thumbnail"]["url"])
    assert thumb.status_code == 200 and pyvips.Image.new_from_buffer(thumb.content, "").hasalpha()


# --- finding 11: sidecars exiv2 refuses -------------------------------------------------------

ENTITY_BOMB = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%s;" % (b"" if i == 1 else str(i - 1).encode())) * 10)
               for i in range(1, 10))
    + b']>\n<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    b' xmlns:exif="http://ns.adobe.com/exif/1.0/"><dc:title>&lol9;</dc:title>'
    b"<exif:DateTimeOriginal>2001-01-01T00:00:00</exif:DateTimeOriginal>"
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)
MALFORMED_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/">'
    b"<exif:DateTimeOriginal>2001-01-01T00:00:00</exif:DateTime></rdf:RDF>"
)
NOT_XMP = b'<?xml version="1.0"?><photo><taken>2001-01-01T00:00:00</taken></photo>'
DEEP_XMP = (  # well-formed, but nested 50,000 deep: exiv2 gives up without saying so
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:subject>'
    + b"<rdf:Bag><rdf:li>" * 50_000 + b"x" + b"</rdf:li></rdf:Bag>" * 50_000
    + b"</dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
)
SIDECARS = {"entity-bomb": (ENTITY_BOMB, "declares a DTD"), "malformed": (MALFORMED_XMP, "invalid XML")}
ALL_SIDECARS = {**SIDECARS, "not-xmp": (NOT_XMP, "exiv2 cannot read it as XMP"),
                "deep": (DEEP_XMP, "exiv2 read no XMP properties")}


@pytest.mark.parametrize("case", sorted(SIDECARS))
def test_refused_sidecar_says_why(case):
    data, reason = SIDECARS[case]
    with pytest.raises(RefusedSidecar, match=reason):
        read_sidecar(data)


@needs_assets
@pytest.mark.parametrize("case", sorted(ALL_SIDECARS))
def test_refused_sidecar_keeps_the_files_own_exif(case):
    data, reason = ALL_SIDECARS[case]
    ex = extract(GPS_JPEG, "image/jpeg", "image", data, None)
    assert (ex.meta.latitude, ex.meta.longitude) == (39.0, -108.0)
    assert ex.meta.original.source == "DateTimeOriginal" and ex.local_wall.isoformat() == "2025-12-01T11:30:00"
    assert ex.timezone == "America/Denver"
    assert len(ex.warnings) == 1 and ex.warnings[0].startswith("XMP sidecar skipped:") and reason in ex.warnings[0]


@needs_assets
@pytest.mark.parametrize("case", sorted(SIDECARS))
def test_refused_sidecar_upload_keeps_exif_date_and_gps(account, case):
    data, reason = SIDECARS[case]
    body, found = _post(account, f"side-{case}.jpg", GPS_JPEG.read_bytes(), sidecar=data)
    task = found["metadata_extract"]
    assert task.status == "success", task.error_message
    assert "capture time from DateTimeOriginal" in task.result
    assert "XMP sidecar skipped" in task.result and reason in task.result
    assert body["local_datetime"] == "2025-12-01T11:30:00-07:00"  # not the bomb's 2001
    m = body["metadata"]
    assert (m["latitude"], m["longitude"]) == (39.0, -108.0)
    assert m["city"] == "Cedaredge"
    assert found["thumbnail_generation"].status == "success"


# --- decoding limits: the worst accepted file of each decoder stays under 1 GB of RSS ---------

ROOT = Path(__file__).resolve().parents[1]
ONE_GB = 1_000_000_000

# Runs in a fresh interpreter, so its peak RSS is this one decode's (plus imports): the
# worker's own code path (processing._render, with the worker's malloc arena limit).
_CHILD = r"""
import json, sys, time
from pathlib import Path
from app.media import memory
memory.limit_arenas()  # as app/jobs/worker.py does
from app.domain.processing import _render
started = time.monotonic()
try:
    rendered = _render({"media_type": sys.argv[3], "mime_type": sys.argv[2]}, Path(sys.argv[1]), sys.argv[2])
    out = {"kinds": [r.kind for r in rendered.renditions], "error": None}
except Exception as exc:
    out = {"kinds": [], "error": f"{type(exc).__name__}: {exc}"}
out["seconds"] = time.monotonic() - started
# VmHWM, not ru_maxrss: the kernel carries ru_maxrss over exec from the forking (pytest) process.
status = Path("/proc/self/status").read_text()
out["peak_bytes"] = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:"))) * 1024
print(json.dumps(out))
"""


def _decode_in_subprocess(path: Path, mime: str, media_type: str = "image") -> dict:
    import json
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-W", "ignore", "-c", _CHILD, str(path), mime, media_type],
                       check=False, cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _size(pixels: int, kind: str = "") -> tuple[int, int]:
    """A 4:3 width x height with at most `pixels` pixels, as close to it as whole rows allow
    (for "-wide" kinds: as wide as MAX_SIDE allows)."""
    width = images.MAX_SIDE if kind.endswith("-wide") else int((pixels * 4 / 3) ** 0.5)
    return width, pixels // width


def _pattern(width: int, height: int, bands: int, fmt: str = "uchar", flat: bool = False) -> pyvips.Image:
    """Cheap non-uniform pixels (a flat image would flatter the decoders' working memory),
    or a flat grey where only the header matters (much faster to encode)."""
    if flat:
        image = pyvips.Image.black(width, height, bands=bands) + 90
    else:
        xy = pyvips.Image.xyz(width, height)
        planes = [((xy[0] * (3 + b) + xy[1] * (5 + 2 * b)) % 251) for b in range(bands)]
        image = planes[0].bandjoin(planes[1:]) if bands > 1 else planes[0]
    if fmt == "ushort":
        return (image * 256).cast("ushort").copy(interpretation="rgb16" if bands >= 3 else "grey16")
    return image.cast("uchar").copy(interpretation="srgb" if bands >= 3 else "b-w")


def _write_mjpeg_mov(path: Path, width: int, height: int, flat: bool = False) -> None:
    """A one-frame Motion-JPEG QuickTime: a video stream at any size, made without a video encoder."""
    import av

    jpeg = _pattern(width, height, 3, flat=flat).jpegsave_buffer(Q=50, subsample_mode="on")
    with av.open(io.BytesIO(jpeg), format="jpeg_pipe") as src, av.open(str(path), "w", format="mov") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size == 0:
                continue
            packet.stream, packet.pts, packet.dts = stream, 0, 0
            dst.mux(packet)


def _write_dng(path: Path, width: int, height: int) -> None:
    """A minimal uncompressed 16-bit Bayer DNG that LibRaw reads. The pixels are a sparse run
    of zeros: LibRaw's memory does not depend on them, and the file costs no disk or time."""
    import struct

    def field(tag, kind, values):
        if kind == 2:  # ASCII
            return tag, kind, len(values), values
        fmt = {1: "B", 3: "H", 4: "I", 10: "i"}[kind]
        count = len(values) // 2 if kind == 10 else len(values)
        return tag, kind, count, struct.pack(f"<{len(values)}{fmt}", *values)

    fields = [
        field(254, 4, [0]), field(256, 4, [width]), field(257, 4, [height]), field(258, 3, [16]),
        field(259, 3, [1]), field(262, 3, [32803]), field(271, 2, b"Poison\0"), field(272, 2, b"Bomb\0"),
        field(273, 4, [0]), field(277, 3, [1]), field(278, 4, [height]), field(279, 4, [width * height * 2]),
        field(33421, 3, [2, 2]), field(33422, 1, [0, 1, 1, 2]), field(50706, 1, [1, 4, 0, 0]),
        field(50708, 2, b"Poison Bomb\0"), field(50721, 10, [1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1]),
        field(50778, 3, [21]),
    ]
    cursor = 8 + 2 + 12 * len(fields) + 4  # out-of-line values follow the one IFD
    blobs, offsets = b"", []
    for _, _, _, data in fields:
        offsets.append(cursor + len(blobs) if len(data) > 4 else None)
        if len(data) > 4:
            blobs += data + b"\0" * (len(data) % 2)
    strip = (cursor + len(blobs) + 15) // 16 * 16
    ifd = struct.pack("<H", len(fields))
    for (tag, kind, count, data), offset in zip(fields, offsets):
        data = struct.pack("<I", strip) if tag == 273 else data
        ifd += struct.pack("<HHI", tag, kind, count) + (struct.pack("<I", offset) if offset else data.ljust(4, b"\0"))
    with open(path, "wb") as f:
        f.write((b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + blobs).ljust(strip, b"\0"))
        f.truncate(strip + width * height * 2)


def _write(kind: str, path: Path, width: int, height: int, flat: bool = False) -> None:
    if kind == "jpeg":
        _pattern(width, height, 3, flat=flat).jpegsave(str(path), Q=60)
    elif kind in ("png", "png-wide"):
        _pattern(width, height, 3, flat=flat).pngsave(str(path), compression=1)
    elif kind == "png-interlaced-rgba8":
        _pattern(width, height, 4, flat=flat).pngsave(str(path), compression=1, interlace=True)
    elif kind == "png-interlaced-rgba16":
        _pattern(width, height, 4, "ushort", flat=flat).pngsave(str(path), compression=1, interlace=True)
    elif kind == "gif":
        _pattern(width, height, 1, flat=flat).gifsave(str(path), effort=1)
    elif kind == "tiff":
        _pattern(width, height, 3, flat=flat).tiffsave(str(path), compression="deflate", tile=True)
    elif kind == "avif-rgba":
        _pattern(width, height, 4, flat=flat).heifsave(str(path), compression="av1", Q=30, effort=0)
    elif kind == "heic":
        import pillow_heif

        pixels = np.ndarray(buffer=_pattern(width, height, 3, flat=flat).write_to_memory(), dtype=np.uint8,
                            shape=(height, width, 3))
        heif = pillow_heif.from_bytes(mode="RGB", size=(width, height), data=pixels.tobytes())
        heif.save(str(path), quality=30, enc_params={"preset": "ultrafast"})
    elif kind == "jxl":
        import pillow_jxl  # noqa: F401

        pixels = np.ndarray(buffer=_pattern(width, height, 3, flat=flat).write_to_memory(), dtype=np.uint8,
                            shape=(height, width, 3))
        Image.fromarray(pixels, "RGB").save(path, "JXL", effort=1, quality=50)
    elif kind == "mjpeg":
        _write_mjpeg_mov(path, width, height, flat)
    elif kind == "dng":
        _write_dng(path, width, height)
    else:
        raise AssertionError(kind)


# kind -> (file name, mime, media type, the most pixels this path accepts). The whole-picture
# paths' limits follow from MAX_DECODE_BYTES and the bytes per pixel app/media charges them.
def _limits() -> dict[str, tuple[str, str, str, int]]:
    cap, budget = images.MAX_PIXELS, images.MAX_DECODE_BYTES
    return {
        "jpeg": ("cap.jpg", "image/jpeg", "image", cap),  # shrinks while decoding
        "png": ("cap.png", "image/png", "image", cap),  # streams rows
        "png-wide": ("wide.png", "image/png", "image", cap),  # as wide as allowed: libvips' strips are full-width
        "png-interlaced-rgba8": ("cap-i8.png", "image/png", "image", budget // (2 * 4)),
        "png-interlaced-rgba16": ("cap-i16.png", "image/png", "image", budget // (2 * 8)),
        "gif": ("cap.gif", "image/gif", "image", budget // (2 * 4)),
        "tiff": ("cap.tif", "image/tiff", "image", budget // (2 * 3)),  # + a full-size JPEG
        "avif-rgba": ("cap.avif", "image/avif", "image", budget // (5 * 4)),  # Pillow's libavif
        "heic": ("cap.heic", "image/heic", "image", budget // (4 * 3)),  # pillow-heif
        "jxl": ("cap.jxl", "image/jxl", "image", budget // (5 * 4)),  # pillow-jxl
        "mjpeg": ("cap.mov", "video/quicktime", "video", cap),  # poster frame via PyAV
        "dng": ("cap.dng", "image/x-adobe-dng", "image", budget // 6),  # rawpy (LibRaw)
    }


@pytest.mark.parametrize("kind", list(_limits()))
def test_worst_accepted_image_decodes_under_1gb(tmp_path, kind):
    name, mime, media_type, pixels = _limits()[kind]
    width, height = _size(pixels, kind)
    path = tmp_path / name
    _write(kind, path, width, height)
    out = _decode_in_subprocess(path, mime, media_type)
    assert out["error"] is None, out
    assert "thumbnail" in out["kinds"] and "preview" in out["kinds"]
    print(f"{kind} {width}x{height}: peak RSS {out['peak_bytes'] / 1e6:.0f} MB in {out['seconds']:.1f} s")
    assert out["peak_bytes"] < ONE_GB, f"{kind} {width}x{height}: peak RSS {out['peak_bytes'] / 1e6:.0f} MB"


# Over the limit by a few rows: refused from the header, before any pixel is decoded.
OVER_LIMIT = ["png", "png-interlaced-rgba8", "gif", "tiff", "avif-rgba", "jxl", "mjpeg", "dng"]


def test_image_wider_than_the_limit_is_refused_from_its_header(tmp_path):
    """10,000,000 x 20 is under 200 MP and a few kB, and took 7 GB in libvips' full-width strips."""
    path = tmp_path / "line.png"
    _pattern(10_000_000, 20, 3, flat=True).pngsave(str(path), compression=9)
    out = _decode_in_subprocess(path, "image/png")
    assert out["error"] == ("UndecodableImage: 10000000x20 is more than 65500 pixels across (decompression bomb)")
    assert out["seconds"] < 2.0 and out["peak_bytes"] < 300_000_000, out


@pytest.mark.parametrize("kind", OVER_LIMIT)
def test_image_over_the_limit_is_refused_from_its_header(tmp_path, kind):
    name, mime, media_type, pixels = _limits()[kind]
    width, height = _size(pixels, kind)
    path = tmp_path / name
    _write(kind, path, width, height + 2, flat=True)
    out = _decode_in_subprocess(path, mime, media_type)
    assert out["error"] and out["error"].startswith("UndecodableImage:"), out
    assert "decompression bomb" in out["error"]
    assert out["seconds"] < 2.0, out
    assert out["peak_bytes"] < 300_000_000, out


def test_over_cap_upload_is_refused_quickly_and_the_asset_and_original_stay(account, tmp_path):
    width, height = _size(images.MAX_PIXELS)
    path = tmp_path / "bomb.png"
    _pattern(width, height + 2, 3, flat=True).pngsave(str(path), compression=9)
    data = path.read_bytes()
    assert len(data) < 2_000_000  # a small file that would decode to 600 MB
    body, found = _post(account, "bomb.png", data, mime="image/png")
    variants = found["thumbnail_generation"]
    assert variants.status == "failure"
    assert "decompression bomb" in variants.error_message and f"{width}x{height + 2}" in variants.error_message
    import datetime as dt

    took = dt.datetime.fromisoformat(str(variants.completed_at)) - dt.datetime.fromisoformat(str(variants.started_at))
    assert took.total_seconds() < 5, took  # refused from the header, not after a decode
    assert found["metadata_extract"].status == "success"
    assert (body["width"], body["height"]) == (width, height + 2)  # from the header, no decode
    original = httpx.get(body["asset_urls"]["original"]["url"])
    assert original.status_code == 200 and original.content == data
    with account.http() as http:
        assert http.get(f"/api/assets/{body['id']}").status_code == 200


# --- the JPEG XL header reader ----------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (9, 7), (64, 48), (300, 600), (513, 1024), (1200, 1000),
                                  (4000, 2250), (12, 10), (3000, 1)])
def test_jxl_size_from_the_header_matches_the_decoder(tmp_path, size):
    import pillow_jxl  # noqa: F401

    from app.media import jxl

    path = tmp_path / "x.jxl"
    Image.new("RGB", size, (10, 20, 30)).save(path, "JXL", effort=1)
    assert path.read_bytes().startswith(b"\xff\x0a")
    assert jxl.size(path) == size


@needs_assets
def test_jxl_size_in_a_container(tmp_path):
    from app.media import jxl

    path = SHARED_ASSETS / "formats/jxl/16bit-HDR-P3-nclx.jxl"
    assert path.read_bytes()[4:8] == b"JXL "  # the ISOBMFF container, not a bare codestream
    assert jxl.size(path) == (5667, 3685)
    truncated = tmp_path / "cut.jxl"
    truncated.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ValueError):
        jxl.size(truncated)
    assert images.header_size(truncated, "image/jxl") is None


# --- tag values that broke the metadata step (same class as finding 11) ------------------------


def _tag_keys() -> list[str]:
    """Every EXIF/XMP/IPTC key app/media/metadata.py reads."""
    import re

    from app.media import metadata

    return sorted(set(re.findall(r'"((?:Exif|Xmp|Iptc)\.[A-Za-z0-9_.-]+)"', Path(metadata.__file__).read_text())))


ODD_VALUES = ["", "abc", "1/0", "0/0", "nan", "1e400", "-1e400", "99999999999/1 0/1 0/1", "40,,N", "40,abc",
              ",", "99999999999999999999", "-99999999999999999999/1", "9999:12:31 23:59:59",
              "0001:01:01 00:00:00", "9999-12-31T23:59:59-14:00", "0000:00:00 00:00:00", "+99:99", "-14:00",
              "+14:00", {}, [], ["1", "2"], {'lang="x-default"': "nan"}, "1" * 5000, "\x00"]


@pytest.mark.parametrize("where", ["embedded", "sidecar"])
def test_no_tag_value_breaks_parse_tags(where):
    import datetime as dt

    from app.media.metadata import aware, parse_tags

    keys = _tag_keys()
    assert len(keys) > 40
    for key in keys:
        for value in ODD_VALUES:
            tags = {key: value}
            # Pairs that are read together, so the combined branches run as well.
            context = {"Exif.GPSInfo.GPSDateStamp": "9999:12:31", "Exif.GPSInfo.GPSTimeStamp": "23/1 59/1 59/1",
                       "Iptc.Application2.DateCreated": "9999-12-31",
                       "Exif.Photo.DateTimeOriginal": "9999:12:31 23:59:59"}
            embedded = {**context, **tags} if where == "embedded" else context
            meta = parse_tags(embedded, tags if where == "sidecar" else {})
            if meta.iso is not None:
                assert abs(meta.iso) < 2**31  # an integer column
            for name in ("f_number", "focal_length", "exposure_time", "exposure_bias", "latitude", "altitude"):
                number = getattr(meta, name)
                assert number is None or abs(number) < float("inf"), (key, value, name, number)
            for stamp in (meta.original, meta.digitized, meta.modified):
                if stamp is not None:  # the database stores it as an instant: it must have one
                    aware(stamp).astimezone(dt.timezone(dt.timedelta(hours=-18)))
                    aware(stamp).astimezone(dt.timezone(dt.timedelta(hours=18)))


def _jpeg_with_exif(tags: dict[str, str]) -> bytes:
    import pyexiv2

    image = pyexiv2.ImageData(_pattern(64, 48, 3).jpegsave_buffer(Q=80))
    try:
        image.modify_exif(tags)
        return image.get_bytes()
    finally:
        image.close()


def test_capture_time_at_the_end_of_the_calendar_does_not_fail_the_metadata_step(account):
    """9999-12-31 23:59:59 at -14:00 is past year 9999 in UTC, which datetime cannot hold."""
    data = _jpeg_with_exif({"Exif.Photo.DateTimeOriginal": "9999:12:31 23:59:59",
                            "Exif.Photo.OffsetTimeOriginal": "-14:00", "Exif.Photo.ISOSpeedRatings": "65535"})
    body, found = _post(account, "end-of-time.jpg", data, mime="image/jpeg")
    task = found["metadata_extract"]
    assert task.status == "success", task.error_message
    assert body["metadata"]["iso"] == 65535
    assert found["thumbnail_generation"].status == "success"


def _dc_fields(thumbhash: bytes) -> tuple[int, int, int]:
    header24 = thumbhash[0] | thumbhash[1] << 8 | thumbhash[2] << 16
    return header24 & 63, header24 >> 6 & 63, header24 >> 12 & 63  # luminance, two colour axes


@pytest.mark.parametrize("size", [(250, 188), (188, 250), (250, 250), (40, 30)])
def test_a_colour_thumbnails_thumbhash_says_what_the_picture_shows(size):
    """Colour thumbnails take the block-mean way to the encoder's input; its hash carries the same
    average colour and shape as one from a libvips resize, within a quantisation step."""
    from tests.media import SHARED_ASSETS

    thumb = pyvips.Image.thumbnail(str(SHARED_ASSETS / "formats" / "jpg" / "el_torcal_rocks.jpg"), size[0],
                                   height=size[1], size="force").copy_memory()
    assert thumb.bands == 3
    ours = images.thumbhash(thumb)
    resized = thumb.thumbnail_image(images.THUMBHASH_INPUT_SIDE, height=images.THUMBHASH_INPUT_SIDE).bandjoin(255)
    reference = rgba_to_thumbhash(np.ndarray(buffer=resized.write_to_memory(), dtype=np.uint8,
                                             shape=(resized.height, resized.width, 4)))
    assert all(abs(a - b) <= 1 for a, b in zip(_dc_fields(ours), _dc_fields(reference)))
    assert ours[3] & 7 == reference[3] & 7 and ours[4] >> 7 == reference[4] >> 7  # terms a side, landscape
    assert not _has_alpha(ours)


def test_a_thumbnail_too_thin_for_blocks_still_gets_a_thumbhash():
    strip = (pyvips.Image.black(250, 2, bands=3) + [200, 40, 40]).cast("uchar")  # 2 rows < a 4-pixel block
    assert len(images.thumbhash(strip)) >= 5
