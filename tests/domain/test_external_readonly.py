"""External libraries' originals are read-only: every reader finds the file in its folder, and no
download, delete, purge, account removal, storage template move, library move, sidecar write or
version change creates, moves, rewrites or removes anything beside the user's files."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import pytest

from app.db import engine as db
from app.domain import (asset_move, asset_versions, assets, downloads, originals, search, storage_moves, tags,
                        users)
from app.domain import storage_template as st
from app.domain.asset_filters import AssetFilter
from app.media.metadata import with_tags_list
from app.storage.blobstore import BlobStore
from tests.domain import factories as f

PHOTO = Path("/work/shared/test-assets/formats/jpg/el_torcal_rocks.jpg")


@pytest.fixture
def store(tmp_path) -> BlobStore:
    return BlobStore(tmp_path / "store")


@pytest.fixture
def folder(tmp_path) -> Path:
    """The user's folder of an external library (outside the store), holding one photo."""
    path = tmp_path / "photos" / "2024"
    path.mkdir(parents=True)
    shutil.copyfile(PHOTO, path / "rocks.jpg")
    return path


def listing(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


async def external_asset(user, file: Path, **overrides):
    """An asset of an external library of `user`, as a scan makes it: in the owner's library, its
    file in place, a storage key that names no stored file, path checksums."""
    library_id = user["default_library_id"]
    external_id = await db.fetchval(
        "INSERT INTO external_libraries (owner_id, library_id, name, import_paths) VALUES ($1, $2, 'Photos', $3)"
        " RETURNING id", user["id"], library_id, [str(file.parent.parent)])
    asset_id = uuid.uuid4()
    path = str(file)
    overrides.setdefault("original_file_name", file.name)
    return await f.new_asset(
        user, id=asset_id, storage_key=originals.external_key(asset_id), external_library_id=external_id,
        original_path=path, checksum_source="path",
        checksum_sha1=hashlib.sha1(f"path:{path}".encode()).digest(),
        checksum_sha256=hashlib.sha256(f"path:{path}".encode()).digest(),
        file_size_bytes=file.stat().st_size, **overrides)


async def test_a_download_zips_the_file_in_place(user, store, folder):
    asset = await external_asset(user, folder / "rocks.jpg")
    [entry] = await downloads.archive_entries(f.principal_for(user), [asset["id"]])
    assert downloads.entry_file(store, entry).read_bytes() == PHOTO.read_bytes()
    assert await downloads.moved_key(entry) is None  # never moved by us: gone is gone
    row = await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset["id"])
    shown = await asset_versions.current_file(row)  # the native original URL and Immich's original
    assert asset_versions.file_path(store, shown) == folder / "rocks.jpg"


async def test_permanent_delete_and_trash_purge_leave_the_file(user, store, folder):
    before = listing(folder)
    one = await external_asset(user, folder / "rocks.jpg")
    await assets.delete_asset(f.principal_for(user), store, one["id"])
    assert await db.fetchval("SELECT count(*) FROM assets WHERE id = $1", one["id"]) == 0
    two = await external_asset(user, folder / "rocks.jpg", trashed_at=f._BASE_TIME)
    assert await assets.empty_trash(f.principal_for(user), store, user["default_library_id"]) == 1
    assert await db.fetchval("SELECT count(*) FROM assets WHERE id = $1", two["id"]) == 0
    assert listing(folder) == before


async def test_account_removal_leaves_the_file(store, folder):
    victim = await f.new_user()
    before = listing(folder)
    asset = await external_asset(victim, folder / "rocks.jpg")
    await db.execute("UPDATE users SET deleted_at = now() - interval '8 days' WHERE id = $1", victim["id"])
    assert await users.remove_user(store, victim["id"])
    assert await db.fetchval("SELECT count(*) FROM assets WHERE id = $1", asset["id"]) == 0
    assert listing(folder) == before


async def test_the_storage_template_skips_it(user, store, folder):
    before = listing(folder)
    asset = await external_asset(user, folder / "rocks.jpg")
    on = {**st.DEFAULTS, "enabled": True}
    assert await storage_moves.move_asset(store, asset["id"], on) is False
    await storage_moves.migrate_all(store, on)
    assert await db.fetchval("SELECT storage_key FROM assets WHERE id = $1", asset["id"]) == asset["storage_key"]
    assert listing(folder) == before


async def test_a_move_to_another_library_is_refused(user, store, folder):
    asset = await external_asset(user, folder / "rocks.jpg")
    other = await f.new_library(user)
    [result] = await asset_move.move_assets(f.principal_for(user), store, None, user["default_library_id"],
                                            other["id"], [asset["id"]])
    assert (result.outcome, result.failure) == (asset_move.FAILED, asset_move.EXTERNAL)
    assert await db.fetchval("SELECT library_id FROM assets WHERE id = $1", asset["id"]) == user["default_library_id"]


async def test_tag_sidecars_are_written_in_the_store_never_beside_the_file(user, store, folder):
    beside = with_tags_list(None, ["Mine"])
    (folder / "rocks.jpg.xmp").write_bytes(beside)
    before = listing(folder)
    asset = await external_asset(user, folder / "rocks.jpg", sidecar_path=str(folder / "rocks.jpg.xmp"))
    await tags.write_sidecars(store, [asset["id"]])
    assert listing(folder) == before
    key = await db.fetchval("SELECT storage_key FROM asset_files WHERE asset_id = $1 AND kind = 'sidecar'",
                            asset["id"])
    assert store.path(key).is_file()  # the store's copy, started from the one beside the file
    plain = await external_asset(user, folder / "rocks.jpg", original_file_name="again.jpg")
    await tags.write_sidecars(store, [plain["id"]])
    assert listing(folder) == before


async def test_the_folder_view_shows_the_files_own_folder(user, folder):
    asset = await external_asset(user, folder / "rocks.jpg")
    me = f.principal_for(user)
    timeline = AssetFilter(library_id=user["default_library_id"], visibility="timeline")
    assert str(folder) in await search.folders(me, timeline)
    assert [r["id"] for r in await search.folder_assets(me, timeline, str(folder))] == [asset["id"]]
