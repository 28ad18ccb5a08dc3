"""Immich partners in the domain: who may create, change and end a partnership, and what it grants.

A partnership lets the receiver read (never change) the sharer's photos in the library the
sharer's Immich client sees; ending it ends the access at once.
"""

from __future__ import annotations

import uuid

import pytest

from app.db import engine as db
from app.domain import access, partners
from app.domain.errors import BadRequest, Forbidden, NotFound
from tests.domain import factories as f


async def test_create_list_update_and_remove():
    sharer, receiver = await f.new_user(), await f.new_user()
    row = await partners.create(f.principal_for(sharer), receiver["id"])
    assert (row["id"], row["in_timeline"]) == (receiver["id"], False)  # the other account's summary

    shared_by = await partners.list_partners(f.principal_for(sharer), partners.SHARED_BY)
    assert [r["id"] for r in shared_by] == [receiver["id"]]
    assert await partners.list_partners(f.principal_for(sharer), partners.SHARED_WITH) == []
    shared_with = await partners.list_partners(f.principal_for(receiver), partners.SHARED_WITH)
    assert [r["id"] for r in shared_with] == [sharer["id"]]

    updated = await partners.set_in_timeline(f.principal_for(receiver), sharer["id"], True)
    assert (updated["id"], updated["in_timeline"]) == (sharer["id"], True)

    await partners.remove(f.principal_for(sharer), receiver["id"])
    assert await partners.list_partners(f.principal_for(receiver), partners.SHARED_WITH) == []


async def test_refusals_follow_immich():
    sharer, receiver = await f.new_user(), await f.new_user()
    me = f.principal_for(sharer)
    with pytest.raises(BadRequest, match="own partner"):
        await partners.create(me, sharer["id"])
    with pytest.raises(BadRequest, match="Invalid user"):
        await partners.create(me, uuid.uuid4())
    await partners.create(me, receiver["id"])
    with pytest.raises(BadRequest, match="already exists"):
        await partners.create(me, receiver["id"])
    # Only the receiver sets in_timeline; only the sharer ends the partnership.
    with pytest.raises(NotFound):
        await partners.set_in_timeline(me, receiver["id"], True)
    with pytest.raises(NotFound):
        await partners.remove(f.principal_for(receiver), sharer["id"])
    with pytest.raises(BadRequest):
        await partners.list_partners(me, "sideways")
    # A key limited to some libraries cannot share all of its user's photos.
    other = await f.new_user()
    scoped = f.principal_for(sharer, library_scope=frozenset({sharer["default_library_id"]}))
    with pytest.raises(Forbidden):
        await partners.create(scoped, other["id"])
    with pytest.raises(Forbidden):
        await partners.create(f.principal_for(sharer, actions=frozenset({access.READ})), other["id"])


async def test_partner_reads_the_sharers_immich_library_only():
    sharer, receiver, stranger = await f.new_user(), await f.new_user(), await f.new_user()
    shared = await f.new_asset(sharer)  # the default library: what the sharer's Immich client sees
    elsewhere = await f.new_library(sharer)
    private = await f.new_asset(sharer, library_id=elsewhere["id"])
    mine = await f.new_asset(receiver)
    reader = f.principal_for(receiver)
    with pytest.raises(NotFound):
        await access.load_asset(reader, shared["id"], access.READ)

    await partners.create(f.principal_for(sharer), receiver["id"])
    row = await access.load_asset(reader, shared["id"], access.READ)
    assert row["id"] == shared["id"]
    for action in (access.WRITE, access.DELETE, access.DELETE_PERMANENTLY):
        with pytest.raises(Forbidden):
            await access.load_asset(reader, shared["id"], action)
    with pytest.raises(NotFound):  # another library of the sharer stays the sharer's
        await access.load_asset(reader, private["id"], access.READ)
    with pytest.raises(NotFound):  # one-way: the sharer does not reach the receiver's photos
        await access.load_asset(f.principal_for(sharer), mine["id"], access.READ)
    with pytest.raises(NotFound):
        await access.load_asset(f.principal_for(stranger), shared["id"], access.READ)
    with pytest.raises(NotFound):  # a key limited to the receiver's own library
        await access.load_asset(f.principal_for(receiver, library_scope=frozenset({receiver["default_library_id"]})),
                                shared["id"], access.READ)

    # Choosing another Immich library moves the grant with it.
    await db.execute("UPDATE users SET immich_library_id = $2 WHERE id = $1", sharer["id"], elsewhere["id"])
    assert (await access.load_asset(reader, private["id"], access.READ))["id"] == private["id"]
    with pytest.raises(NotFound):
        await access.load_asset(reader, shared["id"], access.READ)

    await partners.remove(f.principal_for(sharer), receiver["id"])
    with pytest.raises(NotFound):
        await access.load_asset(reader, private["id"], access.READ)


@pytest.mark.parametrize("ending", [
    "UPDATE libraries SET trashed_at = now() WHERE owner_id = $1",
    "UPDATE users SET deleted_at = now() WHERE id = $1",
], ids=["library trashed", "sharer deleted"])
async def test_nothing_is_shared_from_a_trashed_library_or_a_deleted_account(ending):
    sharer, receiver = await f.new_user(), await f.new_user()
    asset = await f.new_asset(sharer)
    await partners.create(f.principal_for(sharer), receiver["id"])
    await partners.set_in_timeline(f.principal_for(receiver), sharer["id"], True)
    await db.execute(ending, sharer["id"])
    with pytest.raises(NotFound):
        await access.load_asset(f.principal_for(receiver), asset["id"], access.READ)
    assert await access.partner_timeline_libraries(f.principal_for(receiver)) == []


async def test_timeline_libraries_are_the_partners_the_receiver_shows():
    first, second, receiver = await f.new_user(), await f.new_user(), await f.new_user()
    reader = f.principal_for(receiver)
    for sharer in (first, second):
        await partners.create(f.principal_for(sharer), receiver["id"])
    assert await access.partner_timeline_libraries(reader) == []
    await partners.set_in_timeline(reader, first["id"], True)
    assert await access.partner_timeline_libraries(reader) == [first["default_library_id"]]
    scoped = f.principal_for(receiver, library_scope=frozenset({receiver["default_library_id"]}))
    assert await access.partner_timeline_libraries(scoped) == []
