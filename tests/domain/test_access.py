"""Scoped loading by UUID (app/domain/access.py): another user's object answers like a missing one."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from app.db import engine as db
from app.domain import access
from app.domain.errors import Forbidden, NotFound
from tests.domain import factories as f


async def test_own_asset_loads_and_others_are_not_found(user, principal):
    asset = await f.new_asset(user)
    assert (await access.load_asset(principal, asset["id"], access.READ))["id"] == asset["id"]
    stranger = await f.new_user()
    theirs = await f.new_asset(stranger)
    for missing in (theirs["id"], uuid.uuid4()):
        with pytest.raises(NotFound, match="Asset not found"):
            await access.load_asset(principal, missing, access.READ)


async def test_a_trashed_asset_still_loads(user, principal):
    asset = await f.new_asset(user, trashed_at=datetime.now(timezone.utc))
    assert (await access.load_asset(principal, asset["id"], access.WRITE))["trashed_at"] is not None


async def test_a_trashed_library_hides_its_objects(user, principal):
    library = await f.new_library(user)
    asset = await f.new_asset(user, library_id=library["id"])
    person = await f.new_person(user, library_id=library["id"])
    await db.execute("UPDATE libraries SET trashed_at = now() WHERE id = $1", library["id"])
    with pytest.raises(NotFound):
        await access.load_asset(principal, asset["id"], access.READ)
    with pytest.raises(NotFound):
        await access.load_person(principal, person["id"], access.READ)
    assert library["id"] not in await access.live_library_ids(principal)


async def test_a_scoped_credential_reaches_only_its_libraries(user):
    other_library = await f.new_library(user)
    inside = await f.new_asset(user)
    outside = await f.new_asset(user, library_id=other_library["id"])
    scoped = f.principal_for(user, library_scope=frozenset({user["default_library_id"]}))
    await access.load_asset(scoped, inside["id"], access.READ)
    with pytest.raises(NotFound):
        await access.load_asset(scoped, outside["id"], access.READ)
    assert await access.live_library_ids(scoped) == [user["default_library_id"]]
    assert set(await access.live_library_ids(f.principal_for(user))) == {user["default_library_id"],
                                                                         other_library["id"]}


async def test_a_credential_without_the_action_is_forbidden(user):
    asset = await f.new_asset(user)
    read_only = f.principal_for(user, actions=frozenset({access.READ}))
    await access.load_asset(read_only, asset["id"], access.READ)
    with pytest.raises(Forbidden):
        await access.load_asset(read_only, asset["id"], access.WRITE)


async def test_people(user, principal):
    person = await f.new_person(user)
    assert (await access.load_person(principal, person["id"], access.READ))["name"] == person["name"]
    with pytest.raises(NotFound, match="Person not found"):
        await access.load_person(principal, (await f.new_person(await f.new_user()))["id"], access.READ)


async def test_faces_hide_with_their_trashed_asset_and_may_be_pinned_to_a_library(user, principal, library_id):
    asset = await f.new_asset(user)
    face = await f.new_face(asset)
    assert (await access.load_face(principal, face["id"], access.READ))["asset_id"] == asset["id"]
    await access.load_face(principal, face["id"], access.READ, library_id)
    with pytest.raises(NotFound, match="Face not found"):
        await access.load_face(principal, face["id"], access.READ, (await f.new_library(user))["id"])
    await db.execute("UPDATE assets SET trashed_at = now() WHERE id = $1", asset["id"])
    with pytest.raises(NotFound):
        await access.load_face(principal, face["id"], access.READ)
    with pytest.raises(NotFound):
        await access.load_face(principal, (await f.new_face(await f.new_asset(await f.new_user())))["id"],
                               access.READ)
