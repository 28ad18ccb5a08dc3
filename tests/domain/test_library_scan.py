"""Scanning external libraries (app/domain/library_scan.py) on real folder trees, and the pipeline's
first step for their files (app/domain/external_content.py)."""

from __future__ import annotations

import functools
import os
import time
import uuid
from pathlib import Path

import pytest

from app.db import engine as db
from app.domain import library_scan, processing, tasks
from app.storage.blobstore import BlobStore


@functools.cache
def jpeg(shade: int = 0, side: int = 1) -> bytes:
    """A small real JPEG, different for each shade (generated once per shade)."""
    import pyvips

    image = (pyvips.Image.black(side, side, bands=3) + shade).cast("uchar")
    return image.jpegsave_buffer(Q=90)


def put(path: Path, data: bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


async def new_external(user, paths: list[Path], exclusions: list[str] | None = None) -> uuid.UUID:
    return await db.fetchval(
        "INSERT INTO external_libraries (owner_id, library_id, name, import_paths, exclusion_patterns)"
        " VALUES ($1, $2, 'photos', $3, $4) RETURNING id",
        user["id"], user["default_library_id"], [str(p) for p in paths], exclusions or [],
    )


async def rows(lib_id) -> dict[str, dict]:
    found = await db.fetch("SELECT * FROM assets WHERE external_library_id = $1", lib_id)
    return {r["original_path"]: dict(r) for r in found}


async def run_pipeline(store: BlobStore, asset_id) -> list[dict]:
    """The asset's pending steps run here, in order (no worker), until none is left."""
    for _ in range(4):
        pending = await db.fetch("SELECT id, task_type FROM tasks WHERE asset_id = $1 AND status = 'pending'"
                                 " ORDER BY created_at", asset_id)
        if not pending:
            break
        for task in pending:
            if task["task_type"] in tasks.METADATA.values():
                await processing.run_metadata(store, task["id"], None)
            elif task["task_type"] in tasks.VARIANTS.values():
                await processing.run_variants(store, task["id"], 1, None, chain=False)
            else:
                await tasks.finish(task["id"], ok=True, result="not run in this test")
    return [dict(r) for r in await db.fetch("SELECT * FROM tasks WHERE asset_id = $1 ORDER BY created_at", asset_id)]


async def test_nested_folders_exclusions_sidecars_and_unsupported_files(user, tmp_path):
    root = tmp_path / "photos"
    put(root / "a.jpg", jpeg(1))
    put(root / "y" / "2024" / "b.JPG", jpeg(2))
    put(root / "y" / "2024" / "b.JPG.xmp", b"<x/>")
    put(root / "c.png", jpeg(3))
    put(root / "c.xmp", b"<x/>")
    put(root / "directoryA" / "skip.jpg", jpeg(4))
    put(root / "z" / "@eaDir" / "thumb.jpg", jpeg(5))
    put(root / ".hidden" / "h.jpg", jpeg(6))
    put(root / ".dot.jpg", jpeg(7))
    put(root / "notes.txt", b"hello")
    put(root / "empty.jpg", b"")
    lib = await new_external(user, [root], ["**/directoryA", "**/@eaDir/**"])

    summary = await library_scan.scan(lib)

    found = await rows(lib)
    assert sorted(found) == sorted(str(p) for p in (root / "a.jpg", root / "y/2024/b.JPG", root / "c.png"))
    assert summary.added == 3
    b = found[str(root / "y/2024/b.JPG")]
    assert b["sidecar_path"] == str(root / "y/2024/b.JPG.xmp")
    assert found[str(root / "c.png")]["sidecar_path"] == str(root / "c.xmp")
    assert b["checksum_source"] == "path" and b["device_id"] == "Library Import"
    assert b["library_id"] == user["default_library_id"] and b["owner_id"] == user["id"]
    assert b["storage_key"] == f"external/{b['id']}" and b["original_file_name"] == "b.JPG"
    assert b["file_size_bytes"] == len(jpeg(2))
    # Each new asset's first step is queued as a task; each creation is in the change log.
    assert await db.fetchval("SELECT count(*) FROM tasks WHERE asset_id = ANY($1::uuid[]) AND status = 'pending'",
                             [r["id"] for r in found.values()]) == 3
    assert await db.fetchval("SELECT count(*) FROM events WHERE entity_id = ANY($1::uuid[])"
                             " AND event_type = 'asset_created'", [r["id"] for r in found.values()]) == 3
    assert await db.fetchval("SELECT refreshed_at IS NOT NULL FROM external_libraries WHERE id = $1", lib)
    # A second scan with nothing changed writes nothing.
    again = await library_scan.scan(lib)
    assert (again.added, again.changed, again.offline, again.unchanged) == (0, 0, 0, 3)


async def test_a_file_added_changed_removed_and_brought_back(user, tmp_path):
    root = tmp_path / "lib"
    a = put(root / "a.jpg", jpeg(10), mtime=1_700_000_000)
    lib = await new_external(user, [root])
    await library_scan.scan(lib)
    first = (await rows(lib))[str(a)]
    store = BlobStore(tmp_path / "store")
    await run_pipeline(store, first["id"])

    b = put(root / "sub" / "b.jpg", jpeg(11))
    put(a, jpeg(12, side=2), mtime=1_700_000_100)
    summary = await library_scan.scan(lib)
    assert (summary.added, summary.changed) == (1, 1)
    now = await rows(lib)
    assert now[str(a)]["id"] == first["id"] and now[str(a)]["file_size_bytes"] == len(jpeg(12, side=2))
    assert await db.fetchval("SELECT count(*) FROM tasks WHERE asset_id = $1 AND status = 'pending'",
                             first["id"]) == 1
    # The changed file is read again and re-rendered, though its asset has been processed before.
    steps = await run_pipeline(store, first["id"])
    assert [t["task_type"] for t in steps if t["status"] == "success"].count("thumbnail_generation") == 2
    assert (await db.fetchrow("SELECT width FROM assets WHERE id = $1", first["id"]))["width"] == 2

    b.unlink()
    summary = await library_scan.scan(lib)
    assert summary.offline == 1
    gone = (await rows(lib))[str(b)]
    assert gone["is_offline"] and gone["trashed_at"] is not None

    put(b, jpeg(11))
    summary = await library_scan.scan(lib)
    assert summary.online == 1
    back = (await rows(lib))[str(b)]
    assert not back["is_offline"] and back["trashed_at"] is None and back["id"] == gone["id"]


async def test_a_rescan_tells_each_kind_of_difference_apart(user, tmp_path):
    """The re-scan compares whole libraries as sets: each kind of difference still lands in its place."""
    root = tmp_path / "lib"
    [put(root / f"same{i}.jpg", jpeg(i), mtime=1_700_000_000) for i in range(5)]
    touched = put(root / "touched.jpg", jpeg(20), mtime=1_700_000_000)
    with_sidecar = put(root / "sidecar.jpg", jpeg(21), mtime=1_700_000_000)
    returning = put(root / "returning.jpg", jpeg(22), mtime=1_700_000_000)
    leaving = put(root / "leaving.jpg", jpeg(23), mtime=1_700_000_000)
    lib = await new_external(user, [root])
    assert (await library_scan.scan(lib)).added == 9
    returning.unlink()
    assert (await library_scan.scan(lib)).offline == 1

    os.utime(touched, (1_700_000_050, 1_700_000_050))  # same size, new mtime
    put(Path(str(with_sidecar) + ".xmp"), b"<x:xmpmeta/>")  # a sidecar appears, the photo is untouched
    put(returning, jpeg(24, side=2), mtime=1_700_000_100)  # back, with other content
    leaving.unlink()
    new = put(root / "new.jpg", jpeg(25))
    summary = await library_scan.scan(lib)
    assert (summary.added, summary.changed, summary.offline, summary.online, summary.unchanged) == (1, 3, 1, 1, 5)
    now = await rows(lib)
    assert now[str(with_sidecar)]["sidecar_path"] == str(with_sidecar) + ".xmp"
    assert now[str(touched)]["file_mtime_ns"] == 1_700_000_050 * 10**9
    assert not now[str(returning)]["is_offline"]
    assert now[str(returning)]["file_size_bytes"] == len(jpeg(24, side=2))
    assert now[str(leaving)]["is_offline"] and str(new) in now
    again = await library_scan.scan(lib)
    assert (again.added, again.changed, again.offline, again.online, again.unchanged) == (0, 0, 0, 0, 9)


async def test_a_user_trash_stays_when_the_file_comes_back(user, tmp_path):
    root = tmp_path / "lib"
    a = put(root / "a.jpg", jpeg(13))
    lib = await new_external(user, [root])
    await library_scan.scan(lib)
    await db.execute("UPDATE assets SET trashed_at = now() - interval '1 day' WHERE original_path = $1", str(a))
    a.unlink()
    await library_scan.scan(lib)
    put(a, jpeg(13))
    await library_scan.scan(lib)
    row = (await rows(lib))[str(a)]
    assert not row["is_offline"] and row["trashed_at"] is not None


async def test_a_new_exclusion_or_a_removed_import_path_takes_files_offline(user, tmp_path):
    root, other = tmp_path / "one", tmp_path / "two"
    put(root / "raw" / "r.jpg", jpeg(14))
    put(other / "o.jpg", jpeg(15))
    lib = await new_external(user, [root, other])
    assert (await library_scan.scan(lib)).added == 2
    await db.execute("UPDATE external_libraries SET import_paths = $2, exclusion_patterns = $3 WHERE id = $1",
                     lib, [str(root)], ["**/raw/**"])
    assert (await library_scan.scan(lib)).offline == 2
    assert all(r["is_offline"] for r in (await rows(lib)).values())


async def test_the_first_step_hashes_sniffs_and_fails_a_file_that_is_not_media(user, tmp_path):
    root = tmp_path / "lib"
    good = put(root / "good.jpg", jpeg(16, side=8))
    fake = put(root / "fake.jpg", b"this is only text, not a photo" * 10)
    poison = put(root / "poison.jpg", jpeg(17, side=64)[:40] + b"\0" * 200)
    lib = await new_external(user, [root])
    await library_scan.scan(lib)
    found = await rows(lib)
    store = BlobStore(tmp_path / "store")

    steps = await run_pipeline(store, found[str(good)]["id"])
    assert [t["status"] for t in steps] == ["success", "success"]
    row = await db.fetchrow("SELECT * FROM assets WHERE id = $1", found[str(good)]["id"])
    import hashlib

    assert row["checksum_source"] == "content" and bytes(row["checksum_sha256"]) == hashlib.sha256(jpeg(16, side=8)).digest()
    assert row["width"] == 8
    # The file in place is never written.
    assert good.read_bytes() == jpeg(16, side=8)

    fake_steps = await run_pipeline(store, found[str(fake)]["id"])
    assert fake_steps[0]["status"] == "failure" and "not a recognised image" in fake_steps[0]["error_message"]
    assert (await db.fetchval("SELECT processing_error FROM assets WHERE id = $1", found[str(fake)]["id"]))

    poison_steps = await run_pipeline(store, found[str(poison)]["id"])
    assert "failure" in [t["status"] for t in poison_steps]


async def test_a_renamed_file_keeps_its_asset(user, tmp_path):
    root = tmp_path / "lib"
    old = put(root / "old" / "p.jpg", jpeg(18, side=4))
    lib = await new_external(user, [root])
    await library_scan.scan(lib)
    store = BlobStore(tmp_path / "store")
    original = (await rows(lib))[str(old)]
    await run_pipeline(store, original["id"])

    new = root / "new" / "q.jpg"
    new.parent.mkdir()
    old.rename(new)
    summary = await library_scan.scan(lib)
    assert (summary.added, summary.offline) == (1, 1)
    created = (await rows(lib))[str(new)]
    await run_pipeline(store, created["id"])

    after = await rows(lib)
    assert list(after) == [str(new)]
    moved = after[str(new)]
    assert moved["id"] == original["id"] and not moved["is_offline"] and moved["trashed_at"] is None
    assert moved["original_file_name"] == "q.jpg"
    assert await db.fetchval("SELECT count(*) FROM assets WHERE id = $1", created["id"]) == 0


async def test_sync_paths_sees_only_the_given_paths(user, tmp_path):
    root = tmp_path / "lib"
    a = put(root / "a.jpg", jpeg(19))
    lib = await new_external(user, [root], ["**/skip/**"])
    await library_scan.scan(lib)
    b = put(root / "b.jpg", jpeg(20))
    put(root / "skip" / "s.jpg", jpeg(21))
    a.unlink()
    summary = await library_scan.sync_paths(lib, [str(b), str(root / "skip" / "s.jpg")])
    assert (summary.added, summary.offline) == (1, 0)
    summary = await library_scan.sync_paths(lib, [str(a)])
    assert summary.offline == 1
    found = await rows(lib)
    assert sorted(found) == [str(a), str(b)] and found[str(a)]["is_offline"]


async def test_an_unreadable_folder_does_not_stop_the_scan(user, tmp_path):
    root = tmp_path / "lib"
    put(root / "ok.jpg", jpeg(22))
    locked = root / "locked"
    put(locked / "x.jpg", jpeg(23))
    locked.chmod(0)
    try:
        lib = await new_external(user, [root])
        summary = await library_scan.scan(lib)
        assert str(root / "ok.jpg") in await rows(lib)
        if os.geteuid() != 0:  # root reads any folder: the assertion would not test anything
            assert summary.unreadable == [str(locked)]
    finally:
        locked.chmod(0o755)


async def test_a_symlink_loop_is_walked_once(user, tmp_path):
    root = tmp_path / "lib"
    put(root / "d" / "a.jpg", jpeg(24))
    (root / "d" / "loop").symlink_to(root, target_is_directory=True)
    lib = await new_external(user, [root])
    summary = await library_scan.scan(lib)
    assert summary.added >= 1 and str(root / "d" / "a.jpg") in await rows(lib)


@pytest.mark.parametrize("count", [10_000])
async def test_ten_thousand_files_in_a_few_seconds(user, tmp_path, count):
    root = tmp_path / "big"
    data = jpeg(25)
    for i in range(count):
        put(root / f"d{i % 50:02d}" / f"e{i % 7}" / f"IMG_{i:05d}.jpg", data)
    lib = await new_external(user, [root])
    started = time.monotonic()
    summary = await library_scan.scan(lib)
    took = time.monotonic() - started
    assert summary.added == count
    assert took < 10, took
    started = time.monotonic()
    again = await library_scan.scan(lib)
    assert again.unchanged == count and time.monotonic() - started < 5


def test_cron_expressions():
    from datetime import datetime, timezone

    from app.jobs.worker import cron_due

    midnight = datetime(2026, 11, 29, 0, 0, tzinfo=timezone.utc)
    assert cron_due("0 0 * * *", midnight) and not cron_due("0 0 * * *", midnight.replace(minute=1))
    assert cron_due("*/15 * * * *", midnight.replace(minute=45)) and not cron_due("*/15 * * * *", midnight.replace(minute=44))
    assert cron_due("0 0 * * 0", midnight)  # a Sunday
    assert not cron_due("not a cron", midnight)


async def test_the_watcher_picks_up_a_new_file_and_a_deleted_one_goes_offline(user, tmp_path):
    import asyncio
    import json

    from app.domain import system_config
    from app.jobs import library_watch

    root = tmp_path / "watched"
    gone = put(root / "gone.jpg", jpeg(26))
    lib = await new_external(user, [root])
    await library_scan.scan(lib)
    saved = await db.fetchval("SELECT value::text FROM system_metadata WHERE key = $1", system_config.KEY)
    config = json.loads(saved) if saved else {}
    config["library"] = {"watch": {"enabled": True}}
    await db.execute("INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb)"
                     " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", system_config.KEY, json.dumps(config))
    system_config.invalidate()
    watcher = asyncio.create_task(library_watch.run(None))
    try:
        await asyncio.sleep(1.5)  # the watch is set up
        new = put(root / "sub" / "new.jpg", jpeg(27))
        gone.unlink()
        started = time.monotonic()
        while time.monotonic() - started < 5:
            found = await rows(lib)
            if str(new) in found and found[str(gone)]["is_offline"]:
                break
            await asyncio.sleep(0.2)
        found = await rows(lib)
        assert str(new) in found and found[str(gone)]["is_offline"]
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        if saved is None:
            await db.execute("DELETE FROM system_metadata WHERE key = $1", system_config.KEY)
        else:
            await db.execute("UPDATE system_metadata SET value = $2::jsonb WHERE key = $1", system_config.KEY, saved)
        system_config.invalidate()


async def test_a_changed_file_keeps_its_asset_even_when_an_offline_copy_has_its_content(user, tmp_path):
    """Only a newly found file can be a moved one: a file read again because it changed is the same
    asset, whatever offline twin shares its bytes (that twin is not resurrected in its place)."""
    root = tmp_path / "lib"
    a = put(root / "a.jpg", jpeg(40, side=4))
    twin = put(root / "bak" / "a.jpg", jpeg(40, side=4))
    lib = await new_external(user, [root])
    store = BlobStore(tmp_path / "store")
    await library_scan.scan(lib)
    first = await rows(lib)
    for row in first.values():
        await run_pipeline(store, row["id"])
    twin.unlink()
    await library_scan.scan(lib)
    os.utime(a, (time.time() + 60, time.time() + 60))
    summary = await library_scan.scan(lib)
    assert summary.changed == 1
    await run_pipeline(store, first[str(a)]["id"])
    after = await rows(lib)
    assert after[str(a)]["id"] == first[str(a)]["id"] and not after[str(a)]["is_offline"]
    assert after[str(twin)]["is_offline"] and after[str(twin)]["id"] == first[str(twin)]["id"]


async def test_a_name_that_is_not_utf8_is_left_out_and_the_scan_goes_on(user, tmp_path):
    root = tmp_path / "lib"
    good = put(root / "good.jpg", jpeg(41))
    (root / "caf\udce9.jpg").parent.mkdir(parents=True, exist_ok=True)
    with open(os.fsencode(str(root)) + b"/caf\xe9.jpg", "wb") as f:  # a Latin-1 name, as old NAS shares have
        f.write(jpeg(42))
    lib = await new_external(user, [root])
    summary = await library_scan.scan(lib)
    assert summary.added == 1 and list(await rows(lib)) == [str(good)]


async def test_the_servers_own_data_folder_is_never_scanned(user, tmp_path, monkeypatch):
    data = tmp_path / "data"
    put(data / "library" / "x" / "originals" / "ab" / "photo.jpg", jpeg(43))
    monkeypatch.setenv("DATA_DIR", str(data))
    lib = await new_external(user, [data])
    summary = await library_scan.scan(lib)
    assert summary.added == 0 and not await rows(lib)


def test_a_cron_step_of_zero_names_no_minute():
    from app.jobs.worker import cron_due

    assert not cron_due("*/0 * * * *")


async def test_a_scan_that_read_the_library_before_its_delete_adds_nothing_after_it(user, tmp_path):
    """A scan (or the watcher) holds the library it read at its start; if the library is deleted and
    purged meanwhile, the scan's later chunks must not bring rows back that nothing would remove."""
    from app.domain import external_libraries

    root = tmp_path / "lib"
    put(root / "a.jpg", jpeg(20))
    lib = await new_external(user, [root])
    stale = await library_scan._library(lib)
    await db.execute("UPDATE external_libraries SET deleted_at = now() WHERE id = $1", lib)
    assert await external_libraries.remove_deleted(BlobStore(tmp_path / "store"), lib) == 0

    found, _ = library_scan.walk(library_scan.Matcher([str(root)], []), [str(root)])
    await library_scan._apply(stale, {p: library_scan.seen_of(p, s) for p, s in found.items()}, {}, None)
    assert await db.fetchval("SELECT count(*) FROM assets WHERE external_library_id = $1", lib) == 0
    assert await db.fetchval("SELECT count(*) FROM external_libraries WHERE id = $1", lib) == 0


async def test_a_file_from_before_1970_or_with_nanoseconds_is_unchanged_on_a_rescan(user, tmp_path):
    """The re-scan compares each file's stamp as the walk prints it with the row's, written by SQL:
    the two must agree to the nanosecond on every side of the epoch, sidecar included."""
    root = tmp_path / "lib"
    times = {"1965.jpg": -157_766_399_500_000_000, "epoch.jpg": 0, "minus-one.jpg": -1,
             "ns.jpg": 1_577_836_800_123_456_789, "with-sidecar.jpg": 1_700_000_000_000_000_001,
             "last-ns.jpg": 1_700_000_000_999_999_999}
    for name, mtime_ns in times.items():
        put(root / name, jpeg(26))
        os.utime(root / name, ns=(mtime_ns, mtime_ns))
    put(root / "with-sidecar.jpg.xmp", b"<x:xmpmeta/>")
    lib = await new_external(user, [root])
    assert (await library_scan.scan(lib)).added == len(times)
    assert {Path(p).name: r["file_mtime_ns"] for p, r in (await rows(lib)).items()} == times
    found, _ = library_scan.walk(library_scan.Matcher([str(root)], []))
    assert await library_scan._online_files(lib) == found  # equal text: no file needs a second look
    again = await library_scan.scan(lib)
    assert (again.added, again.changed, again.unchanged) == (0, 0, len(times))
    # A nanosecond short of a second: the row's stamp must not round up to the next one, where a
    # file rewritten a second later would read as unchanged.
    later = times["last-ns.jpg"] + 1_000_000_000
    os.utime(root / "last-ns.jpg", ns=(later, later))
    third = await library_scan.scan(lib)
    assert (third.changed, third.unchanged) == (1, len(times) - 1)


async def test_a_find_that_fails_takes_nothing_offline(user, tmp_path, monkeypatch):
    root = tmp_path / "lib"
    put(root / "a.jpg", jpeg(27))
    put(root / "b.jpg", jpeg(28))
    lib = await new_external(user, [root])
    assert (await library_scan.scan(lib)).added == 2
    broken = tmp_path / "find"
    broken.write_text("#!/bin/sh\nkill -9 $$\n")  # killed before it wrote a thing
    broken.chmod(0o755)
    monkeypatch.setattr(library_scan, "_find", lambda: str(broken))
    with pytest.raises(RuntimeError, match="find stopped"):
        await library_scan.scan(lib)
    assert not any(r["is_offline"] for r in (await rows(lib)).values())


async def test_a_rows_stamp_is_what_find_prints_for_any_time():
    """The SQL of a row's stamp against find's %T@ (whole seconds floored, ten digits of fraction)
    for times around the epoch, the last nanosecond of a second and both ends of bigint."""
    times = [0, 1, -1, 999_999_999, -999_999_999, 1_000_000_000, -1_000_000_000, 1_700_000_000_999_999_999,
             -157_766_399_500_000_000, 2**63 - 1, -(2**63), -(2**63) + 500_000_000]
    stamp = library_scan._ROW_STAMP
    rows = await db.fetch(f"SELECT file_mtime_ns, {stamp} AS stamp FROM unnest($1::bigint[]) AS file_mtime_ns,"
                          " (VALUES (7::bigint, NULL::text)) AS r(file_size_bytes, sidecar_path)", times)
    assert {r["file_mtime_ns"]: r["stamp"] for r in rows} == {
        t: f"{t // 1_000_000_000}.{t % 1_000_000_000:09d}0 7" for t in times}
