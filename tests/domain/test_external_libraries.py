"""External libraries (app/domain/external_libraries.py): Immich's defaults, its import-path checks in
its order, statistics, and a delete that removes rows and derived files, never a file in place."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from msgspec import UNSET

from app.db import engine as db
from app.domain import external_libraries as x
from app.domain.errors import BadRequest, Forbidden, NotFound
from app.domain.originals import external_key
from app.storage.blobstore import BlobStore
from tests.domain import factories as f


@pytest.fixture
def admin(domain):
    return domain.run(f.new_user(is_admin=True))


@pytest.fixture
def boss(admin):
    return f.principal_for(admin)


async def external_asset(library: dict, path: str, **overrides):
    asset_id = uuid.uuid4()
    owner = await db.fetchrow("SELECT * FROM users WHERE id = $1", library["owner_id"])
    return await f.new_asset(owner, library_id=library["library_id"], id=asset_id, external_library_id=library["id"],
                             original_path=path, storage_key=external_key(asset_id), **overrides)


async def test_create_takes_immich_defaults_and_the_owners_immich_library(boss, user):
    row = await x.create(boss, user["id"])
    assert row["name"] == "New External Library"
    assert list(row["import_paths"]) == []
    assert list(row["exclusion_patterns"]) == ["**/@eaDir/**", "**/._*", "**/#recycle/**", "**/#snapshot/**"]
    assert row["library_id"] == user["default_library_id"] and row["owner_id"] == user["id"]
    assert row["refreshed_at"] is None and row["asset_count"] == 0
    # The paths are not checked on create (Immich's e2e creates one with /path/to/import).
    other = await x.create(boss, user["id"], name="Pictures", import_paths=["/path/to/import"], exclusion_patterns=[])
    assert (other["name"], list(other["import_paths"]), list(other["exclusion_patterns"])) == (
        "Pictures", ["/path/to/import"], [])
    events = await db.fetchval("SELECT count(*) FROM events WHERE entity_id = $1 AND event_type = 'external_library_created'",
                               row["id"])
    assert events == 1


async def test_only_an_administrator_runs_them_and_the_owner_must_exist(boss, user, principal):
    with pytest.raises(Forbidden):
        await x.create(principal, user["id"])
    with pytest.raises(Forbidden):
        await x.list_libraries(principal)
    with pytest.raises(BadRequest, match="User not found"):
        await x.create(boss, uuid.uuid4())


async def test_validate_says_the_first_problem_in_immichs_order(boss, domain, tmp_path):
    data_dir = Path(domain.data_dir)
    a_file = tmp_path / "photo.jpg"
    a_file.write_bytes(b"x")
    results = dict(x.validate(boss, [
        str(data_dir / "library"), "relative/dir", str(tmp_path / "missing"), str(a_file), str(tmp_path),
        str(data_dir),
    ], data_dir))
    assert results == {
        str(data_dir / "library"): "Cannot use media upload folder for external libraries",
        "relative/dir": f"Import path must be absolute, try {os.path.abspath('relative/dir')}",
        str(tmp_path / "missing"): "Path does not exist (ENOENT)",
        str(a_file): "Not a directory",
        str(tmp_path): None,
        str(data_dir): "Cannot use media upload folder for external libraries",
    }
    # A relative path into the media folder is refused for that first (Immich resolves it first).
    inside = os.path.relpath(data_dir, os.getcwd())
    assert x.import_path_problem(inside, data_dir) == "Cannot use media upload folder for external libraries"
    # A link into the media folder is still the media folder.
    link = tmp_path / "sneaky"
    link.symlink_to(data_dir)
    assert x.import_path_problem(str(link), data_dir) == "Cannot use media upload folder for external libraries"
    assert x.import_path_problem("/bad\x00path", data_dir) is not None


async def test_update_checks_new_import_paths(boss, user, domain, tmp_path):
    row = await x.create(boss, user["id"])
    with pytest.raises(BadRequest, match=r"^Invalid import path: Path does not exist \(ENOENT\)$"):
        await x.update(boss, row["id"], x.LibraryChange(import_paths=[str(tmp_path / "nope")]), domain.data_dir)
    changed = await x.update(boss, row["id"], x.LibraryChange(name="Renamed", import_paths=[str(tmp_path)]),
                             domain.data_dir)
    assert (changed["name"], list(changed["import_paths"])) == ("Renamed", [str(tmp_path)])
    assert changed["exclusion_patterns"] == row["exclusion_patterns"] and changed["updated_at"] > row["updated_at"]
    kept = await x.update(boss, row["id"], x.LibraryChange(exclusion_patterns=["**/raw/**"]), domain.data_dir)
    assert (kept["name"], list(kept["exclusion_patterns"])) == ("Renamed", ["**/raw/**"])
    assert x.LibraryChange().name is UNSET
    with pytest.raises(NotFound):
        await x.update(boss, uuid.uuid4(), x.LibraryChange(name="x"), domain.data_dir)


async def test_statistics_and_asset_count_cover_live_assets(boss, user):
    row = await x.create(boss, user["id"])
    await external_asset(row, "/pics/a.jpg", file_size_bytes=100)
    await external_asset(row, "/pics/b.mp4", media_type="video", file_size_bytes=250)
    await external_asset(row, "/pics/gone.jpg", file_size_bytes=999, is_offline=True,
                         trashed_at=await db.fetchval("SELECT now()"))
    await f.new_asset(user)  # an upload of the same library counts for nothing here
    stats = await x.statistics(boss, row["id"])
    assert dict(stats) == {"photos": 1, "videos": 1, "total": 2, "usage": 350}
    assert (await x.get(boss, row["id"]))["asset_count"] == 2


async def test_delete_hides_at_once_then_removes_rows_and_derived_files_never_the_file(boss, user, domain, tmp_path):
    store = BlobStore(Path(domain.data_dir))
    photo = tmp_path / "keep.jpg"
    photo.write_bytes(b"\xff\xd8 not really")
    row = await x.create(boss, user["id"], import_paths=[str(tmp_path)])
    asset = await external_asset(row, str(photo))
    derived = store.root / store.derived_prefix(asset["library_id"], asset["id"]) / "thumbnail.webp"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_bytes(b"thumb")

    await x.delete(boss, None, row["id"])
    assert row["id"] not in [r["id"] for r in await x.list_libraries(boss)]
    with pytest.raises(NotFound):
        await x.get(boss, row["id"])
    with pytest.raises(NotFound):
        await x.delete(boss, None, row["id"])

    assert await x.remove_deleted(store, row["id"]) == 1
    assert await db.fetchval("SELECT count(*) FROM assets WHERE id = $1", asset["id"]) == 0
    assert await db.fetchval("SELECT count(*) FROM external_libraries WHERE id = $1", row["id"]) == 0
    assert photo.read_bytes() == b"\xff\xd8 not really" and not derived.exists()
    deleted = await db.fetchval("SELECT count(*) FROM events WHERE entity_id = $1 AND event_type = 'asset_deleted'",
                                asset["id"])
    assert deleted == 1


async def test_a_delete_waits_for_the_inserts_in_flight_and_holds_back_later_ones(boss, user):
    """A scan's insert chunk shares the library's lock; a delete takes it alone. The delete waits for
    the chunk in flight, and a chunk that asks after the delete queues behind it (it must not keep the
    delete waiting) and then sees the library deleted."""
    import asyncio
    import contextvars

    # Each task in a fresh context: one made inside the `async with` would join its transaction.
    def apart(coro):
        return asyncio.create_task(coro, context=contextvars.Context())

    row = await x.create(boss, user["id"])
    async with db.transaction() as first:
        assert await x.hold_for_insert(first, row["id"])
        deleting = apart(x.delete(boss, None, row["id"]))
        await asyncio.sleep(0.3)
        assert not deleting.done()

        async def later_chunk():
            async with db.transaction() as conn:
                return await x.hold_for_insert(conn, row["id"])

        later = apart(later_chunk())
        await asyncio.sleep(0.3)
        assert not later.done()  # behind the waiting delete, not beside the first chunk
    await asyncio.wait_for(deleting, 10)
    assert await asyncio.wait_for(later, 10) is False
