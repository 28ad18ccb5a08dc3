"""The version chain (app/domain/asset_versions.py): native renderings and Immich edits as one concept."""

from __future__ import annotations

import uuid

import pytest
import pyvips

from app.db import engine as db
from app.domain import asset_versions as av
from app.domain.errors import AccessRefused, BadRequest, Conflict, Invalid, NotFound
from app.storage.blobstore import BlobStore
from tests.domain import factories


def _jpeg(width: int, height: int) -> bytes:
    return pyvips.Image.black(width, height).add([40, 120, 200]).cast("uchar").copy(
        interpretation="srgb").jpegsave_buffer()


async def stored_photo(store: BlobStore, user, width: int = 400, height: int = 300, **overrides):
    data = _jpeg(width, height)
    key = f"tests/{uuid.uuid4().hex}.jpg"
    store.path(key).parent.mkdir(parents=True, exist_ok=True)
    store.path(key).write_bytes(data)
    asset = await factories.new_asset(user, storage_key=key, width=width, height=height,
                                      file_size_bytes=len(data), **overrides)
    return asset, data


def rendering(store: BlobStore, data: bytes, kind: str = "edit", params: dict | None = None) -> av.NewRendering:
    staged = store.stage()
    staged.write(data)
    staged.finish()
    return av.NewRendering(staged, kind, params or {}, "image/jpeg")


async def _asset(asset_id):
    return await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)


async def _events(asset_id) -> int:
    return await db.fetchval("SELECT count(*) FROM events WHERE entity_id = $1 AND event_type = 'asset_updated'",
                             asset_id)


async def _renders(asset_id) -> int:
    return await db.fetchval("SELECT count(*) FROM tasks WHERE asset_id = $1 AND task_type = 'thumbnail_generation'",
                             asset_id)


async def test_immich_edits_render_the_original_into_a_version(user, principal, tmp_path):
    store = BlobStore(tmp_path)
    asset, original = await stored_photo(store, user)
    items = [{"action": "crop", "parameters": {"x": 50, "y": 40, "width": 200, "height": 100}},
             {"action": "rotate", "parameters": {"angle": 270}}]
    applied = await av.set_edits(principal, store, None, asset["id"], items)
    assert [(e["action"], e["parameters"]) for e in applied] == [(e["action"], e["parameters"]) for e in items]
    assert all(uuid.UUID(e["id"]).version == 4 for e in applied)
    row = await _asset(asset["id"])
    assert (row["width"], row["height"]) == (100, 200) and row["current_version_id"] is not None
    assert await _events(asset["id"]) == 1 and await _renders(asset["id"]) == 1  # seen, and re-rendered
    chain = await av.list_versions(principal, asset["id"])
    assert [(v.position, v.kind) for v in chain] == [(0, "original"), (1, av.IMMICH_KIND)]
    assert store.path(chain[1].storage_key).exists()
    assert store.path(asset["storage_key"]).read_bytes() == original  # never changed
    assert await av.edits(principal, asset["id"]) == applied

    # A second PUT replaces the edit (rendered from the original again), it does not stack.
    again = await av.set_edits(principal, store, None, asset["id"], items[:1])
    chain2 = await av.list_versions(principal, asset["id"])
    assert [v.position for v in chain2] == [0, 1] and chain2[1].id != chain[1].id
    assert not store.path(chain[1].storage_key).exists()
    assert (chain2[1].width, chain2[1].height) == (200, 100) and await av.edits(principal, asset["id"]) == again

    await av.remove_edits(principal, store, None, asset["id"])
    row = await _asset(asset["id"])
    assert (row["width"], row["height"], row["current_version_id"]) == (400, 300, None)
    assert await av.edits(principal, asset["id"]) == []
    assert not store.path(chain2[1].storage_key).exists()


@pytest.mark.parametrize("items, message", [
    ([{"action": "crop", "parameters": {"x": 300, "y": 0, "width": 101, "height": 10}}],
     "Crop parameters are out of bounds"),
    ([{"action": "mirror", "parameters": {"axis": "vertical"}},
      {"action": "crop", "parameters": {"x": 0, "y": 0, "width": 10, "height": 10}}],
     "Crop action must be the first edit action"),
    ([{"action": "rotate", "parameters": {"angle": 45}}], "Rotation angle must be a multiple of 90"),
])
async def test_edits_follow_immichs_rules(user, principal, tmp_path, items, message):
    store = BlobStore(tmp_path)
    asset, _ = await stored_photo(store, user)
    with pytest.raises(BadRequest, match=message):
        await av.set_edits(principal, store, None, asset["id"], items)
    assert (await _asset(asset["id"]))["current_version_id"] is None


async def test_videos_are_not_edited(user, principal, tmp_path):
    video = await factories.new_asset(user, media_type="video")
    with pytest.raises(BadRequest, match="Only images can be edited"):
        await av.set_edits(principal, BlobStore(tmp_path), None, video["id"],
                           [{"action": "rotate", "parameters": {"angle": 90}}])


async def test_the_chain_append_replace_revert_delete(user, principal, tmp_path):
    store = BlobStore(tmp_path)
    asset, original = await stored_photo(store, user, exif={"raw_width": 400, "raw_height": 300, "orientation": 1})
    first = await av.append(principal, store, None, asset["id"], rendering(store, _jpeg(120, 80), params={"a": 1}))
    assert (first.position, first.width, first.height, first.params) == (1, 120, 80, {"a": 1})
    with pytest.raises(Conflict):
        await av.append(principal, store, None, asset["id"], rendering(store, _jpeg(10, 10)))
    with pytest.raises(Invalid):
        await av.replace(principal, store, None, asset["id"], asset["original_version_id"],
                         rendering(store, _jpeg(10, 10)))
    same = await av.replace(principal, store, None, asset["id"], first.id, rendering(store, _jpeg(120, 80), params={"a": 1}))
    assert same.id == first.id  # an exact duplicate stores nothing
    second = await av.replace(principal, store, None, asset["id"], first.id, rendering(store, _jpeg(60, 90)))
    assert second.position == 1 and not store.path(first.storage_key).exists()
    chain = await av.list_versions(principal, asset["id"])
    # The original's size comes from its file's metadata while a version is shown.
    assert [(v.width, v.height) for v in chain] == [(400, 300), (60, 90)]
    assert (await av.current_file(await _asset(asset["id"]))).checksum_sha256 == second.checksum_sha256

    with pytest.raises(Invalid):
        await av.delete(principal, store, None, asset["id"], asset["original_version_id"])
    with pytest.raises(NotFound):
        await av.delete(principal, store, None, asset["id"], uuid.uuid4())
    await av.delete(principal, store, None, asset["id"], second.id)
    row = await _asset(asset["id"])
    assert (row["current_version_id"], row["width"], row["height"]) == (None, 400, 300)
    assert (await av.current_file(row)).storage_key == asset["storage_key"]

    third = await av.append(principal, store, None, asset["id"], rendering(store, _jpeg(30, 30)))
    renders = await _renders(asset["id"])
    await av.revert(principal, store, None, asset["id"], third.id)  # already current: nothing happens
    assert await _renders(asset["id"]) == renders
    await av.revert(principal, store, None, asset["id"], asset["original_version_id"])
    assert [v.kind for v in await av.list_versions(principal, asset["id"])] == ["original"]
    assert not store.path(third.storage_key).exists() and store.path(asset["storage_key"]).read_bytes() == original


async def test_bad_renderings_and_readers(user, principal, tmp_path):
    store = BlobStore(tmp_path)
    asset, _ = await stored_photo(store, user)
    with pytest.raises(Invalid, match="JPEG or PNG"):
        await av.append(principal, store, None, asset["id"], rendering(store, b"GIF89a" + bytes(64)))
    with pytest.raises(Invalid):
        av.parse_params("[]")
    for reserved in ("original", av.IMMICH_KIND):
        with pytest.raises(Invalid):
            av.check_kind(reserved)
    assert av.check_kind("external:lightroom") == "external:lightroom"

    viewer = await factories.new_user()
    await factories.new_member(await db.fetchrow("SELECT * FROM libraries WHERE id = $1", asset["library_id"]),
                               viewer, role="viewer")
    reader = factories.principal_for(viewer)
    assert [v.kind for v in await av.list_versions(reader, asset["id"])] == ["original"]
    with pytest.raises(AccessRefused):
        await av.append(reader, store, None, asset["id"], rendering(store, _jpeg(10, 10)))
    assert await db.fetchval("SELECT count(*) FROM asset_versions WHERE asset_id = $1", asset["id"]) == 0


async def test_an_unreadable_original_is_refused_not_crashed_on(user, principal, tmp_path):
    store = BlobStore(tmp_path)
    asset, _ = await stored_photo(store, user)
    store.path(asset["storage_key"]).write_bytes(b"\xff\xd8\xff" + bytes(100))  # a JPEG in name only
    with pytest.raises(BadRequest):
        await av.set_edits(principal, store, None, asset["id"], [{"action": "rotate", "parameters": {"angle": 90}}])
    assert (await _asset(asset["id"]))["current_version_id"] is None


def _solid(width: int, height: int, rgb: list[int]) -> pyvips.Image:
    return pyvips.Image.black(width, height).add(rgb).cast("uchar").copy(interpretation="srgb")


async def test_face_crops_of_an_edited_asset_come_from_the_upload(user, principal, tmp_path):
    from app.domain import faces

    store = BlobStore(tmp_path)
    # The upload: red on the left, blue on the right; its boxes are in this picture's pixels.
    upload = _solid(200, 300, [220, 20, 20]).join(_solid(200, 300, [20, 20, 220]), "horizontal").jpegsave_buffer()
    asset, _ = await stored_photo(store, user)
    store.path(asset["storage_key"]).write_bytes(upload)
    preview_key = f"tests/{uuid.uuid4().hex}.jpg"
    store.path(preview_key).write_bytes(_solid(400, 300, [220, 20, 20]).jpegsave_buffer())
    await factories.new_asset_file(asset, "preview", storage_key=preview_key, width=400, height=300)
    face = await factories.new_face(asset, box_x=250, box_y=100, box_w=60, box_h=60, image_width=400, image_height=300)
    # Edited: the preview now shows the edit (all green here), so it cannot be the crop's source.
    await av.append(principal, store, None, asset["id"], rendering(store, _jpeg(50, 50)))
    store.path(preview_key).write_bytes(_solid(400, 300, [20, 220, 20]).jpegsave_buffer())

    key = await faces.thumbnail_file(store, face["id"])
    stats = pyvips.Image.new_from_file(str(store.path(key))).stats()
    red, green, blue = (stats(4, band)[0] for band in (1, 2, 3))  # each band's mean
    assert blue > 150 and red < 80 and green < 80  # the face's part of the upload
