"""The media pipeline end to end: upload, arq jobs in the server's worker, then the API's view."""

from __future__ import annotations

import datetime as dt
import struct
import zlib

import av
import httpx
import numpy as np
import pytest
import pyvips

from tests.helpers import upload, wait_processed
from tests.media import SHARED_ASSETS, png_bytes

needs_assets = pytest.mark.skipif(not SHARED_ASSETS.exists(), reason="shared test assets are not present")


def _process(account, name: str, data: bytes, **kwargs):
    raw = upload(account, name, data, **kwargs)
    assert raw.status_code == 201, raw.http_response.text
    asset_id = raw.parse().id
    found = wait_processed(account, asset_id)
    with account.http() as http:
        body = http.get(f"/api/assets/{asset_id}").json()
    return body, {t.task_type: t for t in found}


def _fetch(url: str) -> httpx.Response:
    r = httpx.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:200])
    return r


def _image(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


# --- metadata, golden values --------------------------------------------------------------


@needs_assets
def test_exif_datetime_with_gps_gets_the_places_zone_and_name(account):
    body, found = _process(account, "dto.jpg", (SHARED_ASSETS / "metadata/dates/datetimeoriginal-gps.jpg").read_bytes())
    assert found["metadata_extract"].status == "success"
    m = body["metadata"]
    assert body["local_datetime"] == "2025-12-01T11:30:00-07:00"
    assert m["original_datetime"] == "2025-12-01T11:30:00-07:00"
    assert m["timezone"] == "America/Denver"
    assert (m["latitude"], m["longitude"]) == (39.0, -108.0)
    assert (m["city"], m["state"], m["country"], m["country_code"]) == ("Cedaredge", "Colorado", "United States", "US")
    assert m["display_label"] == "Cedaredge, Colorado"


@needs_assets
def test_gps_time_only_becomes_local_time_at_the_place(account):
    body, _ = _process(account, "gps.jpg", (SHARED_ASSETS / "metadata/dates/gps-datetime.jpg").read_bytes())
    assert body["local_datetime"] == "2023-11-15T04:30:00-08:00"
    assert body["metadata"]["city"] == "San Francisco"
    assert body["metadata"]["timezone"] == "America/Los_Angeles"


@needs_assets
def test_date_priority_and_no_zone(account):
    body, _ = _process(account, "prio.jpg", (SHARED_ASSETS / "metadata/dates/date-priority-test.jpg").read_bytes())
    assert body["local_datetime"] == "2023-02-02T02:00:00"  # DateTimeOriginal wins; no offset, no GPS fix
    assert body["metadata"]["digitized_datetime"] == "2023-04-04T04:00:00"
    assert body["metadata"]["latitude"] is None


@needs_assets
def test_file_without_a_capture_date_keeps_the_upload_time(account):
    created = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    body, _ = _process(account, "tc.jpg", (SHARED_ASSETS / "metadata/dates/time-created.jpg").read_bytes(), created=created)
    assert body["local_datetime"] == "2021-03-04T05:06:07+01:00"
    assert (body["metadata"]["make"], body["metadata"]["model"]) == ("Canon", "EOS R5")
    assert body["metadata"]["original_datetime"] is None


@needs_assets
def test_camera_fields_and_empty_gps(account):
    body, _ = _process(account, "moto.jpg", (SHARED_ASSETS / "metadata/gps-position/empty_gps.jpg").read_bytes())
    m = body["metadata"]
    assert (m["make"], m["model"]) == ("motorola", "moto g(9) plus")
    assert (m["f_number"], m["iso"], m["exposure_time"], m["focal_length"], m["exposure_bias"]) == (1.8, 234, 0.025, 5.53, 0.0)
    assert m["latitude"] is None and m["city"] is None and m["orientation"] == 1
    assert body["local_datetime"].startswith("2025-06-01T16:59:26")


@needs_assets
def test_heic_metadata_variants_and_fullsize(account):
    body, found = _process(account, "IMG_2682.heic", (SHARED_ASSETS / "formats/heic/IMG_2682.heic").read_bytes())
    assert found["thumbnail_generation"].status == "success"
    m = body["metadata"]
    assert (m["make"], m["model"], m["f_number"], m["iso"]) == ("Apple", "iPhone 7", 1.8, 20)
    assert (body["width"], body["height"]) == (4032, 3024) == (m["raw_width"], m["raw_height"])
    assert body["local_datetime"] == "2019-03-21T11:04:22.348000-05:00"
    urls = body["asset_urls"]
    assert set(urls) == {"original", "thumbnail", "preview", "fullsize"}
    full = _fetch(urls["fullsize"]["url"])
    assert full.headers["content-type"] == "image/jpeg"
    assert (_image(full.content).width, _image(full.content).height) == (4032, 3024)
    preview = _image(_fetch(urls["preview"]["url"]).content)
    assert (preview.width, preview.height) == (1920, 1440)
    thumb = _fetch(urls["thumbnail"]["url"])
    assert thumb.headers["content-type"] == "image/webp"
    assert (_image(thumb.content).width, _image(thumb.content).height) == (333, 250)
    assert body["thumbhash"] and len(body["thumbhash"]) > 20



@needs_assets
@pytest.mark.parametrize("year", [2000, 2010, 2020])
def test_utf16_xmp_sidecar_sets_the_capture_time(account, year):
    sidecar = (SHARED_ASSETS / f"metadata/xmp/dates/{year}.xmp").read_bytes()
    assert sidecar.startswith(b"\xff\xfe")  # UTF-16LE with a BOM, as the fixture promises
    with account.http() as http:
        r = http.post("/api/assets", files={
            "asset_data": (f"side{year}.png", png_bytes(7000 + year), "image/png"),
            "sidecar_data": (f"side{year}.png.xmp", sidecar, "application/xml"),
        }, data={"device_asset_id": str(year), "device_id": "pytest",
                 "file_created_at": "2024-01-01T00:00:00Z", "file_modified_at": "2024-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    wait_processed(account, r.json()["id"])
    with account.http() as http:
        body = http.get(f"/api/assets/{r.json()['id']}").json()
    assert body["local_datetime"] == f"{year}-09-27T14:35:33+02:00"


@needs_assets
def test_xmp_sidecar_with_iso_list_and_gps(account):
    sidecar = (SHARED_ASSETS / "problems/xmp/iso-value-array/iso-value-array.xmp").read_bytes()
    with account.http() as http:
        r = http.post("/api/assets", files={
            "asset_data": ("iso.png", png_bytes(7999), "image/png"),
            "sidecar_data": ("iso.xmp", sidecar, "application/xml"),
        }, data={"device_asset_id": "iso", "device_id": "pytest",
                 "file_created_at": "2024-01-01T00:00:00Z", "file_modified_at": "2024-01-01T00:00:00Z"})
    wait_processed(account, r.json()["id"])
    with account.http() as http:
        m = http.get(f"/api/assets/{r.json()['id']}").json()["metadata"]
    assert m["iso"] == 160 and (m["make"], m["model"]) == ("Canon", "Canon PowerShot SX120 IS")
    assert round(m["latitude"], 4) == 40.2346 and round(m["longitude"], 4) == -76.2871
    assert m["f_number"] == 2.8 and m["exposure_time"] == 0.0008


# --- variants -----------------------------------------------------------------------


@needs_assets
@pytest.mark.parametrize(
    "relative, fullsize",
    [
        ("formats/jpg/el_torcal_rocks.jpg", False),
        ("formats/avif/8bit-sRGB.avif", False),
        ("formats/avif/10bit-HDR-P3-nclx.avif", False),
        ("formats/webp/denali.webp", False),
        ("formats/png/density_plot.png", False),
        ("formats/jxl/8bit-sRGB.jxl", True),
    ],
)
def test_variants_for_each_format(account, relative, fullsize):
    body, found = _process(account, relative.split("/")[-1], (SHARED_ASSETS / relative).read_bytes())
    assert found["thumbnail_generation"].status == "success", found["thumbnail_generation"].error_message
    urls = body["asset_urls"]
    thumb = _image(_fetch(urls["thumbnail"]["url"]).content)
    preview = _image(_fetch(urls["preview"]["url"]).content)
    assert min(thumb.width, thumb.height) == min(250, body["width"], body["height"])
    assert min(preview.width, preview.height) == min(1440, body["width"], body["height"])
    assert abs(preview.width / preview.height - body["width"] / body["height"]) < 0.01
    assert urls["thumbnail"]["width"] == thumb.width
    if fullsize:
        assert _fetch(urls["fullsize"]["url"]).headers["content-type"] == "image/jpeg"
    else:  # browsers show these originals as they are
        assert _fetch(urls["fullsize"]["url"]).content == (SHARED_ASSETS / relative).read_bytes()


@pytest.mark.parametrize("suffix, saver", [(".gif", "gifsave_buffer"), (".tif", "tiffsave_buffer")])
def test_generated_gif_and_tiff(account, suffix, saver):
    image = pyvips.Image.black(640, 480).add([200, 40, 40]).cast("uchar").copy(interpretation="srgb")
    body, found = _process(account, "gen" + suffix, getattr(image, saver)())
    assert found["thumbnail_generation"].status == "success"
    assert (body["width"], body["height"]) == (640, 480)
    assert ("fullsize" in body["asset_urls"]) and set(body["asset_urls"]) >= {"thumbnail", "preview"}
    if suffix == ".tif":
        assert _fetch(body["asset_urls"]["fullsize"]["url"]).headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_gives_display_dimensions(account, orientation):
    image = pyvips.Image.black(400, 300).add([30, 200, 90]).cast("uchar").copy(interpretation="srgb").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    body, _ = _process(account, f"o{orientation}.jpg", image.jpegsave_buffer(Q=90))
    turned = orientation in (6, 8)
    assert (body["width"], body["height"]) == ((300, 400) if turned else (400, 300))
    assert body["metadata"]["orientation"] == orientation
    assert (body["metadata"]["raw_width"], body["metadata"]["raw_height"]) == (400, 300)
    preview = _image(_fetch(body["asset_urls"]["preview"]["url"]).content)
    assert (preview.width, preview.height) == (body["width"], body["height"])


def _video(path, *, seconds=1.0, rotation=None, created="2021-05-06T07:08:09.000000Z", audio_only=False):
    out = av.open(str(path), "w")
    if created:
        out.metadata["creation_time"] = created
    if audio_only:
        stream = out.add_stream("aac", rate=44100)
        frames = int(seconds * 44100 / 1024)
        for i in range(frames):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
    else:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(np.full((96, 160, 3), (i * 20) % 255, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path.read_bytes()


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_video_metadata_and_poster(account, tmp_path, suffix):
    data = _video(tmp_path / f"clip{suffix}", seconds=2.0, rotation=90)
    body, found = _process(account, f"clip{suffix}", data)
    assert found["video_metadata_extract"].status == "success"
    assert found["video_thumbnail_extract"].status == "success"
    assert body["mime_type"] in ("video/mp4", "video/quicktime")
    assert body["duration"] == pytest.approx(2.0, abs=0.15)
    assert (body["width"], body["height"]) == (96, 160)  # turned for display
    assert body["metadata"]["fps"] == 10.0
    assert body["local_datetime"] == "2021-05-06T07:08:09Z"
    assert set(body["asset_urls"]) == {"original", "thumbnail_image", "preview_image"}
    poster = _image(_fetch(body["asset_urls"]["preview_image"]["url"]).content)
    assert (poster.width, poster.height) == (96, 160)


# --- bad input ----------------------------------------------------------------------


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_bad_files_fail_their_own_tasks_and_the_worker_carries_on(account, tmp_path):
    good = pyvips.Image.black(300, 200).add([1, 2, 3]).cast("uchar").copy(interpretation="srgb").jpegsave_buffer()
    cases = {
        "truncated.jpg": good[: len(good) // 2],
        "zero.png": _png_header_only(0, 0),
        "bomb.png": _png_header_only(60000, 60000),
        "sound.mp4": _video(tmp_path / "sound.mp4", audio_only=True),
    }
    for name, data in cases.items():
        body, found = _process(account, name, data)
        step = found.get("thumbnail_generation") or found.get("video_thumbnail_extract")
        assert step.status == "failure" and step.error_message, (name, step)
        assert not {"thumbnail", "preview", "thumbnail_image"} & set(body["asset_urls"]), name
    # The lying extension is fixed by sniffing, and the worker still processes good files.
    body, found = _process(account, "really-a-png.jpg", png_bytes(4242, 64, 48))
    assert body["mime_type"] == "image/png"
    assert found["thumbnail_generation"].status == "success"


# --- serving, tasks, edits ---------------------------------------------------------------


def test_variant_urls_serve_like_a_cdn(account):
    image = pyvips.Image.black(800, 600).add([9, 99, 199]).cast("uchar").copy(interpretation="srgb")
    body, _ = _process(account, "cdn.jpg", image.jpegsave_buffer())
    url = body["asset_urls"]["preview"]["url"]
    full = _fetch(url)
    assert full.headers["content-type"] == "image/jpeg"
    assert full.headers["accept-ranges"] == "bytes" and "max-age=86400" in full.headers["cache-control"]
    assert "content-disposition" not in full.headers
    part = httpx.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == full.content[:100]
    assert httpx.get(url, headers={"If-None-Match": full.headers["etag"]}).status_code == 304
    # A signature for one variant does not open another.
    assert httpx.get(url.replace("/preview?", "/thumbnail?")).status_code == 403


def test_tasks_api(account, make_account):
    body, found = _process(account, "t.png", png_bytes(31337))
    task = found["metadata_extract"]
    assert task.id.startswith("btask_") and task.asset_id == body["id"] and task.completed_at
    assert account.client.tasks.get(task.id).status == "success"
    assert account.client.tasks.get(task.celery_task_id).id in {t.id for t in account.client.tasks.list_for_asset(body["id"])}
    listed = account.client.tasks.list(task_type="thumbnail_generation", status="success")
    assert body["id"] in {t.asset_id for t in listed}
    import gumnut

    other = make_account()
    with pytest.raises(gumnut.NotFoundError):
        other.client.tasks.get(task.id)
    with pytest.raises(gumnut.NotFoundError):
        other.client.tasks.list_for_asset(body["id"])


def test_setting_gps_refreshes_place_names(account):
    body, _ = _process(account, "paris.png", png_bytes(2024))
    assert body["metadata"] is None or body["metadata"]["city"] is None
    account.client.assets.update_asset(body["id"], latitude=48.8566, longitude=2.3522)
    import time

    deadline = time.time() + 60
    while time.time() < deadline:
        m = account.client.assets.retrieve(body["id"]).metadata
        if m and m.city:
            break
        time.sleep(0.3)
    assert (m.city, m.country_code, m.timezone) == ("Paris", "FR", "Europe/Paris")


def test_reprocess_is_idempotent(account, server):
    body, _ = _process(account, "again.png", png_bytes(555, 320, 200))
    from app.db import engine as db
    from tests.conftest import run

    def snapshot():
        return run(db.fetch(
            "SELECT a.kind, a.storage_key, a.width, a.height, a.size_bytes, a.checksum_sha1 FROM asset_files a"
            " JOIN assets s ON s.id = a.asset_id WHERE s.owner_id = $1 ORDER BY kind", account.user_id))

    before = snapshot()
    lib = account.client.libraries.list()[0].id
    for _ in range(2):
        done = server.cli("reprocess", "--library", lib, "--what", "all")
        assert done.returncode == 0, done.stderr
        assert "reprocessed 1 assets, 0 failed" in done.stderr
    assert snapshot() == before
    again = account.client.assets.retrieve(body["id"])
    assert again.thumbhash == body["thumbhash"] and again.local_datetime.isoformat() .startswith("2024-07-15")


def _dng(path, width=256, height=192):
    """A real DNG (Bayer CFA data) written with PiDNG, decoded by LibRaw on the server."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, Orientation, PhotometricInterpretation

    yy, xx = np.mgrid[0:height, 0:width]
    raw = ((xx * 4000 // width + yy * 3000 // height) % 4096).astype(np.uint16)
    tags = DNGTags()
    for tag, value in [
        (Tag.ImageWidth, width), (Tag.ImageLength, height), (Tag.TileWidth, width), (Tag.TileLength, height),
        (Tag.Orientation, Orientation.Horizontal),
        (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
        (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, 16), (Tag.CFARepeatPatternDim, [2, 2]),
        (Tag.CFAPattern, CFAPattern.RGGB), (Tag.BlackLevel, 0), (Tag.WhiteLevel, 4095),
        (Tag.ColorMatrix1, [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]),
        (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65), (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
        (Tag.Make, "PyTestCam"), (Tag.Model, "Bayer 1"), (Tag.DNGVersion, DNGVersion.V1_4),
        (Tag.DNGBackwardVersion, DNGVersion.V1_2),
    ]:
        tags.set(tag, value)
    converter = RAW2DNG()
    converter.options(tags, path=str(path.parent) + "/", compress=False)
    converter.convert(raw, filename=path.stem)
    return path.with_suffix(".dng").read_bytes()


def test_dng_raw(account, tmp_path):
    body, found = _process(account, "shot.dng", _dng(tmp_path / "shot"))
    assert found["thumbnail_generation"].status == "success", found["thumbnail_generation"].error_message
    assert body["mime_type"] == "image/x-adobe-dng"
    assert (body["metadata"]["make"], body["metadata"]["model"]) == ("PyTestCam", "Bayer 1")
    assert set(body["asset_urls"]) == {"original", "thumbnail", "preview", "fullsize"}
    full = _image(_fetch(body["asset_urls"]["fullsize"]["url"]).content)
    assert (full.width, full.height) == (body["width"], body["height"]) == (256, 192)
