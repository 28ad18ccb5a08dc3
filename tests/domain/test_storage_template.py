"""The storage template (app/domain/storage_template.py): rendering as Immich does, and moving
originals with real files so that an interruption at any step leaves a readable asset."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import datetime, timezone

import pytest

from app.db import engine as db
from app.domain import ingest, storage_moves as sm, system_config
from app.domain import storage_template as st
from app.domain.blob_locks import blob_lock
from app.domain.errors import Invalid
from app.storage.blobstore import BlobStore
from tests.domain import factories as f

ON = {**st.DEFAULTS, "enabled": True}


def subject(**overrides) -> st.Subject:
    values = dict(asset_id=uuid.UUID("d587e44b-f8c0-4832-9ba3-43268bbf5d4e"), media_type="image",
                  file_name="IMG_0042.HEIC", taken_at=datetime(2024, 3, 5, 14, 7, 9, 45000))
    values.update(overrides)
    return st.Subject(**values)


def test_date_tokens_are_luxons():
    values = st.date_values(datetime(2024, 3, 5, 14, 7, 9, 45000))
    assert values == {
        "y": "2024", "yy": "24", "M": "3", "MM": "03", "MMM": "Mar", "MMMM": "March", "W": "10", "WW": "10",
        "d": "5", "dd": "05", "h": "2", "hh": "02", "H": "14", "HH": "14", "m": "7", "mm": "07",
        "s": "9", "ss": "09", "SSS": "045",
    }
    assert st.date_values(datetime(2024, 1, 1, 0, 0))["h"] == "12"  # 12-hour clock
    # Every token Immich offers renders.
    assert {t for group in st.TOKENS.values() for t in group} == set(values)


def test_every_variable_renders():
    s = subject(album="Trip", album_start=datetime(2023, 12, 30), album_end=datetime(2024, 1, 2),
                make="FUJIFILM", model="X-T50", lens_model="XF27mm")
    template = ("{{filename}}|{{ext}}|{{filetype}}|{{filetypefull}}|{{assetId}}|{{assetIdShort}}|{{album}}|"
                "{{album-startDate-y}}|{{album-endDate-MM}}|{{make}}|{{model}}|{{lensModel}}|{{y}}{{MM}}{{dd}}")
    assert st.render(template, st.values_for(s, "heic")) == (
        "IMG_0042|heic|IMG|IMAGE|d587e44b-f8c0-4832-9ba3-43268bbf5d4e|43268bbf5d4e|Trip|2023|01|FUJIFILM|X-T50|"
        "XF27mm|20240305")
    assert st.render("{{filetype}}-{{filetypefull}}", st.values_for(subject(media_type="video"), "mp4")) == "VID-VIDEO"


def test_if_blocks_choose_by_album():
    preset = "{{y}}/{{#if album}}{{album}}{{else}}Other/{{MM}}{{/if}}/{{filename}}"
    assert st.relative_path(preset, subject(album="Summer"), "jpg") == "2024/Summer/IMG_0042"
    assert st.relative_path(preset, subject(), "jpg") == "2024/Other/03/IMG_0042"
    assert st.render("{{#unless album}}none{{/unless}}", st.values_for(subject(), "jpg")) == "none"


def test_sanitising_as_immich():
    assert st.sanitize('a/b\\c:d*e?f"g<h>i|j\x01k') == "abcdefghijk"
    assert st.sanitize("..") == "" and st.sanitize("CON.txt") == "" and st.sanitize("name. ") == "name"
    values = st.values_for(subject(file_name="we: two?.jpg", album="Tom & Jerry..."), "jpg")
    assert values["filename"] == "we two" and values["album"] == "Tom & Jerry"
    # Handlebars escapes HTML in {{value}} (so Immich's paths do); {{{value}}} does not.
    assert st.render("{{album}}/{{{album}}}", values) == "Tom &amp; Jerry/Tom & Jerry"
    assert st.render("{{y}}//{{MM}}///x", values) == "2024/03/x"


def test_paths_never_leave_the_owners_folder():
    assert st.relative_path("{{make}}/{{filename}}", subject(make="../../etc"), "jpg") is None
    assert st.relative_path("a/../../{{filename}}", subject(), "jpg") is None
    assert st.relative_path("/{{y}}/{{filename}}", subject(), "jpg") == "2024/IMG_0042"  # inside, as Immich
    assert st.relative_path("{{album}}", subject(), "jpg") is None  # names nothing
    assert sm.owner_folder(uuid.UUID(int=1), "../admin") == "templated/..admin"  # one harmless name
    assert sm.owner_folder(uuid.UUID(int=1), "..") == f"templated/{uuid.UUID(int=1)}"
    assert sm.owner_folder(uuid.UUID(int=1), None) == f"templated/{uuid.UUID(int=1)}"


@pytest.mark.parametrize("template", st.PRESETS + ["{{y}}/{{{album}}}/{{! note }}{{filename}}"])
def test_presets_validate(template):
    st.validate(template)


@pytest.mark.parametrize("template", [
    "{{foo}}/{{filename}}", "{{#each album}}x{{/each}}", "{{y}/{{filename}}", "{{y}}/{{filename",
    "{{#if album}}{{album}}", "{{else}}", "{{/if}}", "../{{filename}}", "{{y}}/../../{{filename}}", "",
    "{{lookup . 'y'}}",
])
def test_bad_templates_are_refused(template):
    with pytest.raises(Invalid):
        st.validate(template)


def test_options_are_immichs():
    assert st.DEFAULTS == system_config.defaults()["storageTemplate"]
    options = st.options()
    assert options["yearOptions"] == ["y", "yy"] and options["monthOptions"] == ["M", "MM", "MMM", "MMMM"]
    assert options["presetOptions"][0] == st.DEFAULTS["template"] == "{{y}}/{{y}}-{{MM}}-{{dd}}/{{filename}}"


# --- moves, with real files -----------------------------------------------------------------------

async def stored_asset(store: BlobStore, user, *, name="IMG_0001.jpg", data: bytes | None = None, ext=".jpg",
                       **overrides):
    """An asset whose original exists in the store at its upload key."""
    data = data if data is not None else os.urandom(2000)
    asset_id = uuid.uuid4()
    key = store.original_key(user["default_library_id"], asset_id, ext)
    store.path(key).parent.mkdir(parents=True, exist_ok=True)
    store.path(key).write_bytes(data)
    asset = await f.new_asset(user, id=asset_id, storage_key=key, original_file_name=name,
                              checksum_sha256=hashlib.sha256(data).digest(), file_size_bytes=len(data),
                              taken=datetime(2024, 7, 14, 12, 0, tzinfo=timezone.utc), **overrides)
    return asset, data


async def key_of(asset) -> str:
    return await db.fetchval("SELECT storage_key FROM assets WHERE id = $1", asset["id"])


def folder(asset_or_user, when=datetime(2024, 7, 14, 12, 0, tzinfo=timezone.utc), label=None) -> str:
    owner = asset_or_user["owner_id"] if "owner_id" in asset_or_user else asset_or_user["id"]
    local = when.astimezone()  # Immich renders dates in the server's zone
    return f"{sm.owner_folder(owner, label)}/{local:%Y}/{local:%Y-%m-%d}"


async def test_migration_moves_originals_and_the_bytes_stay(user, tmp_path):
    store = BlobStore(tmp_path)
    assets = [await stored_asset(store, user, name=f"IMG_{n}.jpeg") for n in range(3)]
    assert await sm.migrate_all(store, ON) >= 3
    for (asset, data), n in zip(assets, range(3)):
        key = await key_of(asset)
        assert key == f"{folder(asset)}/IMG_{n}.jpg"  # .jpeg is stored as .jpg, as Immich does
        assert store.path(key).read_bytes() == data
        assert not store.exists(asset["storage_key"])
    assert await db.fetchval("SELECT count(*) FROM storage_moves") == 0
    # Run again: everything is where it belongs.
    assert await sm.migrate_all(store, ON) == 0


async def test_disabled_template_moves_nothing(user, tmp_path):
    store = BlobStore(tmp_path)
    asset, _ = await stored_asset(store, user)
    assert await sm.migrate_all(store, st.DEFAULTS) == 0
    assert not await sm.apply(store, asset["id"], st.DEFAULTS)
    assert await key_of(asset) == asset["storage_key"]


async def test_collisions_get_plus_suffixes_and_stay_put(user, tmp_path):
    store = BlobStore(tmp_path)
    await db.execute("UPDATE users SET storage_label = 'ann' WHERE id = $1", user["id"])
    assets = [await stored_asset(store, user, name="IMG.jpg") for _ in range(3)]
    for asset, _ in assets:
        assert await sm.apply(store, asset["id"], ON)
    keys = [await key_of(a) for a, _ in assets]
    base = folder(user, label="ann")
    assert keys == [f"{base}/IMG.jpg", f"{base}/IMG+1.jpg", f"{base}/IMG+2.jpg"]
    for asset, _ in assets:  # a suffixed name counts as already in place
        assert not await sm.apply(store, asset["id"], ON)
    assert [await key_of(a) for a, _ in assets] == keys


async def test_a_file_nobody_owns_is_not_overwritten(user, tmp_path):
    store = BlobStore(tmp_path)
    asset, data = await stored_asset(store, user, name="X.jpg")
    squatter = store.path(f"{folder(asset)}/X.jpg")
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b"someone else's")
    assert await sm.apply(store, asset["id"], ON)
    assert await key_of(asset) == f"{folder(asset)}/X+1.jpg"
    assert squatter.read_bytes() == b"someone else's"


async def test_album_and_live_photo(user, tmp_path):
    store = BlobStore(tmp_path)
    video, video_bytes = await stored_asset(store, user, name="clip.mov", media_type="video", ext=".mov")
    still, _ = await stored_asset(store, user, name="IMG_7.HEIC", live_photo_video_id=video["id"])
    album = await f.new_album(user, name="Paris/Rome")
    await f.new_album_asset(album, still)
    config = {**ON, "template": "{{#if album}}{{album}}{{else}}none{{/if}}/{{filename}}"}
    assert await sm.apply(store, still["id"], config)
    owner = sm.owner_folder(user["id"], None)
    assert await key_of(still) == f"{owner}/ParisRome/IMG_7.jpg"
    # The motion part follows its still: same folder, the still's name, its own extension.
    assert await key_of(video) == f"{owner}/ParisRome/IMG_7.mov"
    assert store.path(await key_of(video)).read_bytes() == video_bytes


async def interrupted_move(store: BlobStore, asset, *, place: bool, switch: bool) -> str:
    """Run a move's steps up to a point, as a crash would leave them: the journal row, then
    (place) the new file, then (switch) the asset's key."""
    new = f"{folder(asset)}/interrupted.jpg"
    await db.execute("INSERT INTO storage_moves (asset_id, old_key, new_key) VALUES ($1, $2, $3)",
                     asset["id"], asset["storage_key"], new)
    if place:
        store.place_copy(asset["storage_key"], new)
    if switch:
        await db.execute("UPDATE assets SET storage_key = $2 WHERE id = $1", asset["id"], new)
    return new


@pytest.mark.parametrize("place, switch", [(False, False), (True, False), (True, True)])
async def test_an_interrupted_move_leaves_one_readable_file(user, tmp_path, place, switch):
    store = BlobStore(tmp_path)
    asset, data = await stored_asset(store, user)
    new = await interrupted_move(store, asset, place=place, switch=switch)
    # The start-up reconciliation settles it (and removes nothing the asset needs).
    await ingest.reconcile_orphans(store)
    kept = await key_of(asset)
    assert kept == (new if switch else asset["storage_key"])
    assert store.path(kept).read_bytes() == data
    gone = asset["storage_key"] if switch else new
    assert not store.exists(gone)
    assert await db.fetchval("SELECT count(*) FROM storage_moves WHERE asset_id = $1", asset["id"]) == 0
    # And the asset can be moved again afterwards.
    await sm.apply(store, asset["id"], ON)
    assert store.path(await key_of(asset)).read_bytes() == data


async def test_a_move_of_a_deleted_asset_leaves_no_file(user, tmp_path):
    store = BlobStore(tmp_path)
    asset, _ = await stored_asset(store, user)
    new = await interrupted_move(store, asset, place=True, switch=False)
    await db.execute("DELETE FROM assets WHERE id = $1", asset["id"])
    await sm.recover(store)
    assert not store.exists(new) and not store.exists(asset["storage_key"])


async def test_a_live_move_is_left_alone_by_the_reconciliation(user, tmp_path):
    store = BlobStore(tmp_path)
    asset, data = await stored_asset(store, user)
    new = await interrupted_move(store, asset, place=True, switch=False)
    lock = blob_lock(asset["id"])
    async with db.session_connection() as mover:  # a live mover holds the asset's blob lock
        await mover.execute("SELECT pg_advisory_lock($1, $2)", *lock)
        await sm.recover(store)
        assert store.exists(new) and store.exists(asset["storage_key"])
        assert await db.fetchval("SELECT 1 FROM storage_moves WHERE asset_id = $1", asset["id"])
        await mover.execute("SELECT pg_advisory_unlock($1, $2)", *lock)
    await sm.recover(store)
    assert not store.exists(new) and store.path(asset["storage_key"]).read_bytes() == data


async def test_templated_files_nobody_names_are_removed(user, tmp_path):
    store = BlobStore(tmp_path)
    asset, data = await stored_asset(store, user)
    assert await sm.apply(store, asset["id"], ON)
    stray = store.path(f"{folder(asset)}/left-by-a-purge.jpg")
    stray.write_bytes(b"x")
    assert await sm.recover(store) >= 1
    assert not stray.exists()
    assert store.path(await key_of(asset)).read_bytes() == data


async def test_a_missing_original_is_not_moved(user, tmp_path):
    store = BlobStore(tmp_path)
    asset, _ = await stored_asset(store, user)
    store.delete(asset["storage_key"])
    assert not await sm.apply(store, asset["id"], ON)
    assert await key_of(asset) == asset["storage_key"]


async def test_metadata_extraction_places_a_new_upload_when_the_config_says_so(user, tmp_path):
    """The step after metadata reads the stored system config (Immich's storageTemplate section)."""
    from app.domain import processing
    from tests.media import png_bytes

    store = BlobStore(tmp_path)
    data = png_bytes(7)
    asset, _ = await stored_asset(store, user, name="scan.png", data=data, ext=".png", mime_type="image/png")
    task = await f.new_task(asset, "metadata_extract")
    await db.execute("INSERT INTO system_metadata (key, value) VALUES ($1, $2::jsonb)", system_config.KEY,
                     '{"storageTemplate": {"enabled": true, "template": "{{filetype}}/{{filename}}"}}')
    system_config.invalidate()
    try:
        assert await processing.run_metadata(store, task["id"], None, chain=False) == "ok"
    finally:
        await db.execute("DELETE FROM system_metadata WHERE key = $1", system_config.KEY)
        system_config.invalidate()
    assert await key_of(asset) == f"{sm.owner_folder(user['id'], None)}/IMG/scan.png"
    assert store.path(await key_of(asset)).read_bytes() == data
