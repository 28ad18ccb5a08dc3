"""Memories: the daily "on this day" job (which photos qualify), what a memory shows when read,
the owner's operations on its memories, and the cleanup."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from app.db import engine as db
from app.domain import job_queues, memories, partners
from app.domain.errors import Forbidden, NotFound
from app.domain.memories import MemoryFilter, MemoryPatch, NewMemory
from app.jobs.queue import JobQueue
from tests.domain import factories as f

TODAY = date(2026, 7, 15)
THREE_YEARS_AGO = datetime(2023, 7, 15, 9, 30)  # a wall clock: matched by its own date


async def _photo(user, taken=THREE_YEARS_AGO, *, preview=True, **overrides):
    row = await f.new_asset(user, taken=taken, **overrides)
    if preview:
        await f.new_asset_file(row, "preview")
    return row


async def _mine(principal, library_id, **flt):
    return await memories.search(principal, library_id, MemoryFilter(**flt))


async def test_a_photo_from_three_years_ago_today_makes_a_memory(user, principal, library_id):
    photo = await _photo(user)
    assert await memories.generate_for_user(user["id"], TODAY) == 1
    [memory] = await _mine(principal, library_id, on=TODAY)
    row = memory.row
    assert row["type"] == "on_this_day" and json.loads(row["data"]) == {"year": 2023}
    assert row["owner_id"] == user["id"] and row["is_saved"] is False
    assert row["memory_at"] == datetime(2023, 7, 15, tzinfo=timezone.utc)
    assert row["show_at"] == datetime(2026, 7, 15, tzinfo=timezone.utc)
    assert row["hide_at"] == datetime(2026, 7, 15, 23, 59, 59, 999000, tzinfo=timezone.utc)
    assert [a["id"] for a in memory.assets] == [photo["id"]]
    # Shown only on its day; a repeated run makes nothing twice.
    assert await _mine(principal, library_id, on=TODAY + timedelta(days=1)) == []
    assert await memories.generate_for_user(user["id"], TODAY) == 0
    # Made in one transaction with its events: the memory, then its link naming both ids.
    logged = await db.fetch("SELECT txid, entity_type, event_type, payload FROM events WHERE library_id = $1"
                            " AND entity_type LIKE 'memory%' ORDER BY id", library_id)
    assert [(e["entity_type"], e["event_type"]) for e in logged] == [("memory", "memory_created"),
                                                                     ("memory_asset", "memory_asset_added")]
    assert len({e["txid"] for e in logged}) == 1
    assert json.loads(logged[1]["payload"]) == {"memory_id": str(row["id"]), "asset_id": str(photo["id"])}


async def test_only_earlier_years_timeline_photos_with_a_preview_qualify(user, principal, library_id):
    kept = [await _photo(user, THREE_YEARS_AGO + timedelta(minutes=i)) for i in range(memories.ASSETS_PER_YEAR + 1)]
    left_out = [
        await _photo(user, trashed_at=datetime.now(timezone.utc)),
        await _photo(user, visibility="archive"),
        await _photo(user, visibility="locked"),
        await _photo(user, visibility="hidden"),
        await _photo(user, preview=False),
        await _photo(user, datetime(2026, 7, 15, 8, 0)),  # this year: not a memory yet
        await _photo(user, datetime(2023, 7, 16, 0, 30)),  # another day (shown in the 16th's memory)
    ]
    other_year = await _photo(user, datetime(2020, 7, 15, 23, 59))
    await memories.generate_for_user(user["id"], TODAY)
    found = await _mine(principal, library_id, on=TODAY)
    assert [json.loads(m.row["data"])["year"] for m in found] == [2023, 2020]  # newest memoryAt first
    shown = {a["id"] for m in found for a in m.assets}
    assert shown == {a["id"] for a in kept[:memories.ASSETS_PER_YEAR]} | {other_year["id"]}
    assert not shown & {a["id"] for a in left_out}
    assert [json.loads(m.row["data"])["year"] for m in await _mine(principal, library_id, order="asc")] == \
        [2020, 2023, 2023]


async def test_trashed_archived_or_locked_photos_leave_a_memory_when_read(user, principal, library_id):
    stays, changes = await _photo(user), await _photo(user, THREE_YEARS_AGO + timedelta(hours=1))
    await memories.generate_for_user(user["id"], TODAY)
    [memory] = await _mine(principal, library_id)

    async def shown():
        return [a["id"] for a in (await memories.get_memory(principal, memory.row["id"])).assets]

    assert await shown() == [stays["id"], changes["id"]]
    for change in ("visibility = 'archive'", "visibility = 'locked'", "visibility = 'hidden'",
                   "trashed_at = now()"):
        await db.execute(f"UPDATE assets SET {change} WHERE id = $1", changes["id"])
        assert await shown() == [stays["id"]], change
        await db.execute("UPDATE assets SET visibility = 'timeline', trashed_at = NULL WHERE id = $1", changes["id"])
    assert await shown() == [stays["id"], changes["id"]]
    # Locked stays out even for a session unlocked with the PIN, as in Immich.
    await db.execute("UPDATE assets SET visibility = 'locked' WHERE id = $1", changes["id"])
    unlocked = dataclasses.replace(principal, elevated=True)
    assert [a["id"] for a in (await memories.get_memory(unlocked, memory.row["id"])).assets] == [stays["id"]]


async def test_the_owner_creates_reads_changes_and_deletes_its_memories(user, principal, library_id):
    mine, theirs = await _photo(user), await f.new_asset(stranger := await f.new_user())
    created = await memories.create_memory(principal, library_id, NewMemory(
        type="on_this_day", data={"year": 2023}, memory_at=datetime(2023, 7, 15, tzinfo=timezone.utc),
        asset_ids=(mine["id"], theirs["id"])))
    memory_id = created.row["id"]
    assert [a["id"] for a in created.assets] == [mine["id"]]  # what it may not share is left out
    seen = datetime(2026, 7, 15, 10, tzinfo=timezone.utc)
    updated = await memories.update_memory(principal, memory_id, MemoryPatch(is_saved=True, seen_at=seen))
    assert updated.row["is_saved"] and updated.row["seen_at"] == seen
    assert updated.row["updated_at"] > created.row["updated_at"]
    assert await memories.statistics(principal, library_id, MemoryFilter(is_saved=True)) == 1
    assert await memories.statistics(principal, library_id, MemoryFilter(is_saved=False)) == 0
    assert await memories.statistics(principal, library_id, MemoryFilter(is_trashed=True)) == 0

    another = await _photo(user)
    added = await memories.add_assets(principal, memory_id, [mine["id"], another["id"], another["id"], theirs["id"]])
    assert [o.error for o in added] == ["duplicate", None, "duplicate", "no_permission"]
    removed = await memories.remove_assets(principal, memory_id, [mine["id"], mine["id"], theirs["id"]])
    assert [o.error for o in removed] == [None, "not_found", "not_found"]
    assert [a["id"] for a in (await memories.get_memory(principal, memory_id)).assets] == [another["id"]]

    # A partner's photo can be added by the one it is shared with.
    sharer = await f.new_user()
    await partners.create(f.principal_for(sharer), user["id"])
    shared = await f.new_asset(sharer)
    assert [o.error for o in await memories.add_assets(principal, memory_id, [shared["id"]])] == [None]

    # Nobody else reaches it, and a credential limited to another library does not either.
    other = f.principal_for(stranger)
    for call in (memories.get_memory(other, memory_id), memories.delete_memory(other, memory_id),
                 memories.update_memory(other, memory_id, MemoryPatch(is_saved=False)),
                 memories.add_assets(other, memory_id, [theirs["id"]])):
        with pytest.raises(NotFound):
            await call
    assert await _mine(other, stranger["default_library_id"]) == []
    elsewhere = await f.new_library(user)
    scoped = f.principal_for(user, library_scope=frozenset({elsewhere["id"]}))
    with pytest.raises(NotFound):
        await memories.get_memory(scoped, memory_id)
    read_only = f.principal_for(user, actions=frozenset({"read"}))
    with pytest.raises(Forbidden):
        await memories.delete_memory(read_only, memory_id)

    await memories.delete_memory(principal, memory_id)
    with pytest.raises(NotFound):
        await memories.get_memory(principal, memory_id)
    assert await db.fetchval("SELECT count(*) FROM memory_assets WHERE memory_id = $1", memory_id) == 0


async def test_the_job_does_each_day_once_and_the_cleanup_keeps_what_was_saved(user, principal, library_id):
    photo = await _photo(user)
    # The job's state is server-wide: start from a server whose job never ran.
    await db.execute("DELETE FROM system_metadata WHERE key = $1", memories.STATE_KEY)
    made = await memories.generate(TODAY)
    assert made >= 1 and await memories.generate(TODAY) == 0
    state = await db.fetchval("SELECT value FROM system_metadata WHERE key = $1", memories.STATE_KEY)
    assert json.loads(state)["lastOnThisDayDate"].startswith("2026-07-18")
    [memory] = await _mine(principal, library_id, on=TODAY)

    saved = await memories.create_memory(principal, library_id, NewMemory(
        type="on_this_day", data={"year": 2020}, memory_at=datetime(2020, 7, 15, tzinfo=timezone.utc), is_saved=True))
    await db.execute("UPDATE memories SET created_at = now() - interval '31 days' WHERE id = ANY($1::uuid[])",
                     [memory.row["id"], saved.row["id"]])
    await db.execute("UPDATE assets SET visibility = 'archive' WHERE id = $1", photo["id"])
    unlinked, removed = await memories.cleanup()
    assert unlinked >= 1 and removed >= 1
    assert [m.row["id"] for m in await _mine(principal, library_id)] == [saved.row["id"]]
    assert await db.fetchval("SELECT count(*) FROM memory_assets WHERE asset_id = $1", photo["id"]) == 0
    gone = await db.fetchval("SELECT count(*) FROM events WHERE entity_id = $1 AND event_type = 'memory_deleted'",
                             memory.row["id"])
    assert gone == 1


async def test_an_administrator_runs_both_jobs_on_demand(domain, user):
    admin = f.principal_for(await f.new_user(is_admin=True))
    queue = await JobQueue.connect(domain.redis_url)
    try:
        for name in ("memory-create", "memory-cleanup"):
            with pytest.raises(Forbidden):
                await job_queues.create_manual_job(f.principal_for(user), name, queue)
            await job_queues.create_manual_job(admin, name, queue)
        queued = {j.job_id for j in await queue.snapshot()}
        assert {"background:memory-create", "background:memory-cleanup"} <= queued
        views = await job_queues.list_jobs(admin, "backgroundTask", [], queue)
        assert {"MemoryGenerate", "MemoryCleanup"} <= {v.name for v in views}
        await queue.remove(["background:memory-create", "background:memory-cleanup"])
    finally:
        await queue.close()
    assert await job_queues.run_manual_job("memory-cleanup", None) >= 0
    assert await job_queues.run_manual_job("memory-create", None) >= 0


async def test_a_key_limited_to_one_library_sees_only_that_librarys_photos_in_a_memory(user, principal, library_id):
    other_library = await f.new_library(user)
    here, elsewhere = await _photo(user), await _photo(user, library_id=other_library["id"])
    created = await memories.create_memory(principal, library_id, NewMemory(
        type="on_this_day", data={"year": 2023}, memory_at=datetime(2023, 7, 15, tzinfo=timezone.utc),
        asset_ids=(here["id"], elsewhere["id"])))
    assert {a["id"] for a in created.assets} == {here["id"], elsewhere["id"]}
    keyed = f.principal_for(user, library_scope=frozenset({library_id}))
    assert [a["id"] for a in (await memories.get_memory(keyed, created.row["id"])).assets] == [here["id"]]


async def test_a_mixed_list_adds_just_what_the_caller_may_share(user, principal, library_id):
    from app.domain import access, album_sharing
    mine, locked = await _photo(user), await _photo(user, visibility="locked")
    theirs = await f.new_asset(stranger := await f.new_user())
    sharer = await f.new_user()
    await partners.create(f.principal_for(sharer), user["id"])
    partners_photo, partners_locked = await f.new_asset(sharer), await f.new_asset(sharer, visibility="locked")
    viewed_library = await f.new_library(stranger)
    await f.new_member(viewed_library, user, "viewer", state="active")
    viewed = await f.new_asset(stranger, library_id=viewed_library["id"])
    album = await f.new_album(stranger)
    in_album = await f.new_asset(stranger)  # readable through the album, not shareable
    await f.new_album_asset(album, in_album)
    await album_sharing.add_users(f.principal_for(stranger), album["id"], [(user["id"], access.ALBUM_VIEWER)])
    ids = [mine["id"], theirs["id"], locked["id"], uuid.uuid4(), partners_photo["id"], partners_locked["id"],
           in_album["id"], viewed["id"]]

    async def outcomes(caller):
        memory = await memories.create_memory(principal, library_id, NewMemory(
            type="on_this_day", data={"year": 2023}, memory_at=datetime(2023, 7, 15, tzinfo=timezone.utc)))
        return [o.error for o in await memories.add_assets(caller, memory.row["id"], ids)]

    no = "no_permission"
    assert await outcomes(principal) == [None, no, no, no, None, no, no, None]
    assert await outcomes(dataclasses.replace(principal, elevated=True)) == [None, no, None, no, None, no, no, None]
    # A credential that may change the memory but not read photos shares none of them.
    assert await outcomes(f.principal_for(user, actions=frozenset({access.WRITE}))) == [no] * len(ids)
    created = await memories.create_memory(principal, library_id, NewMemory(
        type="on_this_day", data={"year": 2023}, memory_at=datetime(2023, 7, 15, tzinfo=timezone.utc),
        asset_ids=tuple(ids)))
    assert {a["id"] for a in created.assets} == {mine["id"], partners_photo["id"], viewed["id"]}
