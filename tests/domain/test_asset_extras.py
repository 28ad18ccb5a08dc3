"""Asset extras: key/value metadata and its sync (app/domain/asset_metadata.py), copying an asset's
attachments (app/domain/asset_copy.py), per-asset jobs (app/domain/job_queues.py run_asset_step),
and the stack search and member removal (app/domain/stacks.py)."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from app.db import engine as db
from app.domain import asset_copy, asset_metadata, job_queues, shared_links, stacks, sync
from app.domain.errors import BadRequest, Forbidden, Invalid, NotFound
from compat import sync_mapping
from tests.domain import factories as f
from tests.domain.immich import conforms


async def _sync(kind, library_id, *, deletes=False, shows_locked=False):
    snap = await sync.snapshot(shows_locked=shows_locked)
    return [c async for c in snap.changes(kind, library_id, None, deletes=deletes)]


# --- metadata ----------------------------------------------------------------------------------


async def test_metadata_is_set_read_replaced_and_deleted(user):
    me = f.principal_for(user)
    asset = await f.new_asset(user)
    written = await asset_metadata.set_entries(me, asset["id"], [("mobile-app", {"iCloudId": "a"}), ("b", {})])
    assert [(e.key, e.value) for e in written] == [("mobile-app", {"iCloudId": "a"}), ("b", {})]
    await asset_metadata.set_entries(me, asset["id"], [("mobile-app", {"iCloudId": "z"})])
    assert [(e.key, e.value) for e in await asset_metadata.list_entries(me, asset["id"])] == [
        ("b", {}), ("mobile-app", {"iCloudId": "z"})]
    assert (await asset_metadata.get_entry(me, asset["id"], "b")).value == {}
    await asset_metadata.delete_entry(me, asset["id"], "b")
    await asset_metadata.delete_entry(me, asset["id"], "never-set")  # no error, as Immich
    with pytest.raises(NotFound) as missing:
        await asset_metadata.get_entry(me, asset["id"], "b")
    assert missing.value.kind is None and '"b"' in missing.value.detail


async def test_duplicate_keys_are_refused_before_anything_is_written(user):
    me = f.principal_for(user)
    one, two = await f.new_asset(user), await f.new_asset(user)
    with pytest.raises(Invalid, match='Duplicate items are not allowed: "k"'):
        await asset_metadata.set_entries(me, one["id"], [("k", {}), ("k", {"x": 1})])
    with pytest.raises(Invalid, match=f'"\\({two["id"]}, k\\)"'):
        await asset_metadata.set_many(me, [(one["id"], "k", {}), (two["id"], "k", {}), (two["id"], "k", {})])
    assert await db.fetchval("SELECT count(*) FROM asset_metadata WHERE asset_id = ANY($1::uuid[])",
                             [one["id"], two["id"]]) == 0


async def test_metadata_of_assets_the_caller_cannot_change_is_refused_whole(user):
    me, other = f.principal_for(user), await f.new_user()
    mine, theirs = await f.new_asset(user), await f.new_asset(other)
    with pytest.raises(NotFound):
        await asset_metadata.set_many(me, [(mine["id"], "k", {}), (theirs["id"], "k", {})])
    with pytest.raises(NotFound):
        await asset_metadata.list_entries(me, theirs["id"])
    viewer = await f.new_user()
    library = await db.fetchrow("SELECT * FROM libraries WHERE id = $1", user["default_library_id"])
    await f.new_member(library, viewer, "viewer")
    with pytest.raises(Forbidden):
        await asset_metadata.set_entries(f.principal_for(viewer), mine["id"], [("k", {})])
    assert await asset_metadata.list_entries(f.principal_for(viewer), mine["id"]) == []
    assert await db.fetchval("SELECT count(*) FROM asset_metadata WHERE asset_id = $1", mine["id"]) == 0


async def _mixed(user):
    """Own, a stranger's, a locked own and a missing asset id, in that order."""
    return [(await f.new_asset(user))["id"], (await f.new_asset(await f.new_user()))["id"],
            (await f.new_asset(user, visibility="locked"))["id"], uuid.uuid4()]


async def _first_refusal(call, asset_ids):
    with pytest.raises(NotFound) as refused:
        await call(asset_ids)
    return refused.value.ids


async def test_metadata_of_a_mixed_list_is_refused_for_its_first_unreachable_asset(user, library_id):
    me = f.principal_for(user)
    mine, theirs, locked, missing = await _mixed(user)
    set_many = lambda ids: asset_metadata.set_many(me, [(a, "k", {"v": 1}) for a in ids])  # noqa: E731
    delete_many = lambda ids: asset_metadata.delete_many(me, [(a, "k") for a in ids])  # noqa: E731
    for call in (set_many, delete_many):
        assert await _first_refusal(call, [mine, theirs, locked, missing]) == (theirs,)
        assert await _first_refusal(call, [mine, locked, missing, theirs]) == (locked,)
        assert await _first_refusal(call, [missing, mine]) == (missing,)
    assert await db.fetchval("SELECT count(*) FROM asset_metadata WHERE asset_id = $1", mine) == 0
    # An unlocked session reaches the locked one: every pair written, answered and logged in order.
    unlocked = dataclasses.replace(me, elevated=True)
    written = await asset_metadata.set_many(unlocked, [(locked, "b", {"v": 2}), (mine, "a", {}), (locked, "a", {})])
    assert [(e.asset_id, e.key, e.value) for e in written] == [(locked, "b", {"v": 2}), (mine, "a", {}), (locked, "a", {})]
    await asset_metadata.delete_many(unlocked, [(mine, "a"), (locked, "never-set"), (mine, "a"), (locked, "b")])
    logged = await db.fetch("SELECT event_type, payload, library_id, owner_id FROM events WHERE entity_type = $1"
                            " AND payload->>'asset_id' = ANY($2::text[]) ORDER BY id", asset_metadata.ENTITY,
                            [str(mine), str(locked)])
    assert [(r["event_type"], json.loads(r["payload"])) for r in logged] == [
        ("asset_metadata_updated", {"asset_id": str(locked), "key": "b"}),
        ("asset_metadata_updated", {"asset_id": str(mine), "key": "a"}),
        ("asset_metadata_updated", {"asset_id": str(locked), "key": "a"}),
        ("asset_metadata_deleted", {"asset_id": str(mine), "key": "a"}),
        ("asset_metadata_deleted", {"asset_id": str(locked), "key": "b"})]
    assert {(r["library_id"], r["owner_id"]) for r in logged} == {(library_id, user["id"])}
    assert [e.key for e in await asset_metadata.list_entries(unlocked, locked)] == ["a"]


async def test_metadata_syncs_as_upserts_and_deletes_by_pair(user, library_id):
    me = f.principal_for(user)
    asset = await f.new_asset(user)
    await asset_metadata.set_entries(me, asset["id"], [("kept", {"v": 1}), ("dropped", {}), ("again", {})])
    await asset_metadata.delete_many(me, [(asset["id"], "dropped"), (asset["id"], "again")])
    await asset_metadata.set_entries(me, asset["id"], [("again", {"v": 2})])  # deleted, then set anew
    upserts = await _sync("asset_metadata", library_id)
    lines = [conforms("SyncAssetMetadataV1", sync_mapping.asset_metadata_v1(c.row)) for c in upserts]
    assert sorted((line["key"], line["value"]["v"]) for line in lines) == [("again", 2), ("kept", 1)]
    assert {line["assetId"] for line in lines} == {str(asset["id"])}
    deletes = await _sync("asset_metadata", library_id, deletes=True)
    assert [sync.payload_of(c) for c in deletes] == [{"asset_id": str(asset["id"]), "key": "dropped"}]
    # The entity of a pair is stable, so only its newest event counts.
    assert deletes[0].entity_id == asset_metadata.entity_id(asset["id"], "dropped")


async def test_metadata_of_a_locked_asset_syncs_only_to_an_unlocked_session(user, library_id):
    me = f.principal_for(user)
    locked = await f.new_asset(user, visibility="locked")
    await db.execute("INSERT INTO asset_metadata (asset_id, key, value) VALUES ($1, 'k', '{}')", locked["id"])
    await f.record_event(asset_metadata.ENTITY, asset_metadata.entity_id(locked["id"], "k"), "asset_metadata_updated",
                         library_id=library_id, owner_id=user["id"],
                         payload={"asset_id": str(locked["id"]), "key": "k"})
    assert await _sync("asset_metadata", library_id) == []
    assert len(await _sync("asset_metadata", library_id, shows_locked=True)) == 1
    with pytest.raises(NotFound):  # and the routes do not show it without the PIN either
        await asset_metadata.list_entries(me, locked["id"])


# --- stacks ------------------------------------------------------------------------------------


async def test_a_member_leaves_its_stack_but_never_the_cover(user):
    me = f.principal_for(user)
    a, b, c = await f.new_asset(user), await f.new_asset(user), await f.new_asset(user)
    stack = await f.new_stack(user, [a, b, c])
    outsider = await f.new_asset(user)
    with pytest.raises(Invalid, match="Asset not in stack"):
        await stacks.remove_member(me, stack["id"], outsider["id"])
    with pytest.raises(Invalid, match="primary"):
        await stacks.remove_member(me, stack["id"], a["id"])
    await stacks.remove_member(me, stack["id"], c["id"])
    assert [r["id"] for r in await stacks.live_members(stack["id"])] == [a["id"], b["id"]]
    # The cover in effect of a stack with no pin is its first member.
    await db.execute("UPDATE stacks SET primary_asset_id = NULL WHERE id = $1", stack["id"])
    with pytest.raises(Invalid, match="primary"):
        await stacks.remove_member(me, stack["id"], a["id"])
    await stacks.remove_member(me, stack["id"], b["id"])  # one left: the stack dissolves
    assert await db.fetchval("SELECT count(*) FROM stacks WHERE id = $1", stack["id"]) == 0


async def test_stacks_are_listed_whole_or_by_cover(user, library_id):
    me = f.principal_for(user)
    a, b, c, d = [await f.new_asset(user) for _ in range(4)]
    one = await f.new_stack(user, [a, b])
    two = await f.new_stack(user, [c, d], primary_asset_id=None)
    await f.new_stack(await f.new_user(), [await f.new_asset(await f.new_user())])  # someone else's
    assert {s["id"] for s in await stacks.all_stacks(me, library_id)} == {one["id"], two["id"]}
    assert [s["id"] for s in await stacks.all_stacks(me, library_id, cover_id=a["id"])] == [one["id"]]
    assert [s["id"] for s in await stacks.all_stacks(me, library_id, cover_id=c["id"])] == [two["id"]]
    assert await stacks.all_stacks(me, library_id, cover_id=b["id"]) == []


# --- copy --------------------------------------------------------------------------------------


async def test_copy_moves_albums_links_stack_and_favorite_onto_the_target(user, tmp_path):
    from app.storage.blobstore import BlobStore

    me = f.principal_for(user)
    source = await f.new_asset(user, rating=5)
    partner = await f.new_asset(user)
    target = await f.new_asset(user)
    album = await f.new_album(user)
    await f.new_album_asset(album, source)
    stack = await f.new_stack(user, [source, partner])
    link = await shared_links.create_link(me, shared_links.INDIVIDUAL, shared_links.LinkSettings(),
                                          asset_ids=[source["id"]])
    source = await db.fetchrow("SELECT * FROM assets WHERE id = $1", source["id"])
    await asset_copy.copy(me, BlobStore(tmp_path), None, source["id"], target["id"], asset_copy.CopyParts())
    after = await db.fetchrow("SELECT * FROM assets WHERE id = $1", target["id"])
    assert after["stack_id"] == stack["id"] and after["effective_rating"] == 5
    assert await db.fetchval("SELECT count(*) FROM album_assets WHERE album_id = $1 AND asset_id = $2",
                             album["id"], target["id"]) == 1
    assert await db.fetchval("SELECT count(*) FROM shared_link_assets WHERE shared_link_id = $1 AND asset_id = $2",
                             link["id"], target["id"]) == 1
    events = {r["entity_type"] for r in await db.fetch(
        "SELECT entity_type FROM events WHERE entity_id = ANY($1::uuid[])",
        [target["id"], stack["id"], link["id"]])}
    assert {"asset", "stack", "shared_link"} <= events


async def test_copy_merges_stacks_and_honours_its_switches(user, tmp_path):
    from app.storage.blobstore import BlobStore

    me = f.principal_for(user)
    s1, s2, t1, t2 = [await f.new_asset(user) for _ in range(4)]
    source_stack = await f.new_stack(user, [s1, s2])
    target_stack = await f.new_stack(user, [t1, t2])
    album = await f.new_album(user)
    await f.new_album_asset(album, s1)
    await asset_copy.copy(me, BlobStore(tmp_path), None, s1["id"], t1["id"],
                          asset_copy.CopyParts(albums=False, favorite=False, sidecar=False, shared_links=False))
    members = {r["id"] for r in await stacks.live_members(target_stack["id"])}
    assert members == {s1["id"], s2["id"], t1["id"], t2["id"]}
    assert await db.fetchval("SELECT count(*) FROM stacks WHERE id = $1", source_stack["id"]) == 0
    assert await db.fetchval("SELECT count(*) FROM album_assets WHERE asset_id = $1", t1["id"]) == 0


async def test_copy_refuses_one_asset_and_foreign_assets(user, tmp_path):
    from app.storage.blobstore import BlobStore

    me, store = f.principal_for(user), BlobStore(tmp_path)
    mine, theirs = await f.new_asset(user), await f.new_asset(await f.new_user())
    with pytest.raises(BadRequest, match="distinct"):
        await asset_copy.copy(me, store, None, mine["id"], mine["id"], asset_copy.CopyParts())
    with pytest.raises(NotFound):
        await asset_copy.copy(me, store, None, mine["id"], theirs["id"], asset_copy.CopyParts())
    with pytest.raises(NotFound):
        await asset_copy.copy(me, store, None, uuid.uuid4(), mine["id"], asset_copy.CopyParts())


async def test_copy_leaves_album_links_of_another_library_alone(user, tmp_path):
    from app.storage.blobstore import BlobStore

    me = f.principal_for(user)
    second = await f.new_library(user)
    source = await f.new_asset(user)
    target = await f.new_asset(user, library_id=second["id"])
    album = await f.new_album(user)
    await f.new_album_asset(album, source)
    await asset_copy.copy(me, BlobStore(tmp_path), None, source["id"], target["id"], asset_copy.CopyParts())
    assert await db.fetchval("SELECT count(*) FROM album_assets WHERE asset_id = $1", target["id"]) == 0


# --- jobs --------------------------------------------------------------------------------------


class _Queue:
    """Records what would be enqueued (the real queue is Redis; its own tests cover it)."""

    def __init__(self):
        self.jobs = []

    async def enqueue(self, function, task_id, job_id):
        self.jobs.append((function, job_id))

    async def enqueue_many(self, jobs):
        self.jobs += [(function, job_id) for function, _, job_id in jobs]
        return len(jobs)


async def test_asset_jobs_queue_the_real_step_for_writable_assets_only(user):
    me = f.principal_for(user)
    photo, video = await f.new_asset(user), await f.new_asset(user, media_type="video")
    queue = _Queue()
    assert await job_queues.run_asset_step(me, queue, "thumbnails", [photo["id"], video["id"]]) == 2
    assert sorted(j for _, j in queue.jobs) == sorted(
        [f"thumbnail_generation:{photo['id']}", f"video_thumbnail_extract:{video['id']}"])
    # Already pending: left to that run.
    assert await job_queues.run_asset_step(me, queue, "thumbnails", [photo["id"]]) == 0
    assert await job_queues.run_asset_step(me, queue, "metadata", [photo["id"]]) == 1
    with pytest.raises(NotFound):
        await job_queues.run_asset_step(me, queue, "faces", [(await f.new_asset(await f.new_user()))["id"]])
    with pytest.raises(BadRequest):
        await job_queues.run_asset_step(me, None, "faces", [photo["id"]])


async def test_asset_jobs_of_a_mixed_list_are_refused_for_its_first_unreachable_asset(user):
    me = f.principal_for(user)
    mine, theirs, locked, missing = await _mixed(user)
    queue = _Queue()
    run = lambda ids: job_queues.run_asset_step(me, queue, "metadata", ids)  # noqa: E731
    assert await _first_refusal(run, [mine, theirs, locked, missing]) == (theirs,)
    assert await _first_refusal(run, [mine, mine, locked, theirs]) == (locked,)
    assert await _first_refusal(run, [missing, theirs]) == (missing,)
    assert queue.jobs == []
    assert await job_queues.run_asset_step(dataclasses.replace(me, elevated=True), queue, "metadata",
                                           [locked, mine, locked]) == 2
