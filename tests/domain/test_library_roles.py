"""Library members reach a shared library's content by their role (app/domain/access.py).

One library with its owner, a collaborator and a viewer, and a stranger: every object load answers
each of them by role and action (ROLE_ACTIONS), a stranger like a missing object (404), a member
whose role forbids the action with 403; a member who left or was removed, and everyone but the
owner once the library is trashed, like a stranger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest

from app.db import engine as db
from app.domain import access, albums, assets, people, quotas, stacks, tasks
from app.domain.errors import Forbidden, NotFound
from tests.domain import factories as f

ACTIONS = (access.READ, access.WRITE, access.DELETE, access.DELETE_PERMANENTLY)


@dataclass
class Shared:
    owner: asyncpg.Record
    library: asyncpg.Record
    collaborator: asyncpg.Record
    viewer: asyncpg.Record
    stranger: asyncpg.Record
    asset: asyncpg.Record
    album: asyncpg.Record
    link: asyncpg.Record
    stack: asyncpg.Record
    person: asyncpg.Record
    face: asyncpg.Record

    def as_role(self, role: str | None) -> access.Principal:
        user = {access.OWNER: self.owner, access.COLLABORATOR: self.collaborator, access.VIEWER: self.viewer,
                None: self.stranger}[role]
        return f.principal_for(user)


async def _shared() -> Shared:
    owner, collaborator, viewer, stranger = [await f.new_user() for _ in range(4)]
    library = await f.new_library(owner)
    await f.new_member(library, collaborator, access.COLLABORATOR)
    await f.new_member(library, viewer, access.VIEWER)
    lib = library["id"]
    asset, second = await f.new_asset(owner, library_id=lib), await f.new_asset(owner, library_id=lib)
    album = await f.new_album(owner, library_id=lib)
    person = await f.new_person(owner, library_id=lib)
    return Shared(
        owner=owner, library=library, collaborator=collaborator, viewer=viewer, stranger=stranger, asset=asset,
        album=album, link=await f.new_album_asset(album, asset), stack=await f.new_stack(owner, [asset, second]),
        person=person, face=await f.new_face(asset, person=person),
    )


@pytest.fixture
def shared(domain) -> Shared:
    return domain.run(_shared())


def _loaders(s: Shared):
    """Each object load of the domain, as (name, load(principal, action))."""
    return [
        ("asset", lambda p, a: access.load_asset(p, s.asset["id"], a)),
        ("album", lambda p, a: albums.get_album(p, s.album["id"], a)),
        ("stack", lambda p, a: stacks.get_stack(p, s.stack["id"], a)),
        ("person", lambda p, a: access.load_person(p, s.person["id"], a)),
        ("face", lambda p, a: access.load_face(p, s.face["id"], a)),
    ]


def _expected(role: str | None, action: str) -> str:
    if role is None:
        return "404"
    return "ok" if action in access.ROLE_ACTIONS[role] else "403"


async def test_every_load_answers_each_role_and_action_by_role_actions(shared):
    for role in (access.OWNER, access.COLLABORATOR, access.VIEWER, None):
        principal = shared.as_role(role)
        for name, load in _loaders(shared):
            for action in ACTIONS:
                got = await f.outcome(load(principal, action))
                assert got == _expected(role, action), (name, role, action)


async def test_a_members_loaded_row_is_the_object_asked_for(shared):
    viewer = shared.as_role(access.VIEWER)
    assert (await access.load_asset(viewer, shared.asset["id"], access.READ))["id"] == shared.asset["id"]
    album = await albums.get_album(viewer, shared.album["id"])
    assert (album["id"], album["asset_count"]) == (shared.album["id"], 1)
    assert (await albums.get_link(viewer, shared.link["id"]))["asset_id"] == shared.asset["id"]
    assert (await stacks.get_stack(viewer, shared.stack["id"]))["asset_count"] == 2
    with pytest.raises(NotFound):
        await albums.get_link(shared.as_role(None), shared.link["id"])


async def test_library_for_admits_a_named_shared_library_by_role(shared):
    for role in (access.OWNER, access.COLLABORATOR, access.VIEWER, None):
        for action in ACTIONS:
            got = await f.outcome(access.library_for(shared.as_role(role), shared.library["id"], action))
            assert got == _expected(role, action), (role, action)


async def test_an_unnamed_library_stays_the_members_own(shared):
    viewer = shared.as_role(access.VIEWER)
    assert await access.library_for(viewer, None, access.WRITE) == shared.viewer["default_library_id"]
    assert shared.library["id"] not in await access.live_library_ids(viewer)


@pytest.mark.parametrize("state", ["left", "removed"])
async def test_a_member_who_left_or_was_removed_loses_access_at_once(shared, state):
    viewer = shared.as_role(access.VIEWER)
    await access.load_asset(viewer, shared.asset["id"], access.READ)
    await db.execute("UPDATE library_members SET state = $3, ended_at = now() WHERE library_id = $1 AND user_id = $2",
                     shared.library["id"], shared.viewer["id"], state)
    assert await access.library_role(viewer, shared.library["id"]) is None
    for name, load in _loaders(shared):
        assert await f.outcome(load(viewer, access.READ)) == "404", name
    assert await f.outcome(access.library_for(viewer, shared.library["id"], access.READ)) == "404"


async def test_a_trashed_library_is_reached_by_nobody_but_its_owner_asking_for_trash(shared):
    await db.execute("UPDATE libraries SET trashed_at = now() WHERE id = $1", shared.library["id"])
    for role in (access.OWNER, access.COLLABORATOR, access.VIEWER, None):
        principal = shared.as_role(role)
        assert await access.library_role(principal, shared.library["id"]) is None
        for name, load in _loaders(shared):
            assert await f.outcome(load(principal, access.READ)) == "404", (name, role)
        assert await f.outcome(access.library_for(principal, shared.library["id"], access.READ)) == "404"
        trashed = await access.library_role(principal, shared.library["id"], include_trashed=True)
        assert trashed == (access.OWNER if role == access.OWNER else role)
        outcome = await f.outcome(access.owned_library(principal, shared.library["id"], access.WRITE,
                                                      include_trashed=True))
        assert outcome == {access.OWNER: "ok", None: "404"}.get(role, "403"), role


async def test_a_scoped_key_of_a_member_reaches_only_its_libraries(shared):
    own_only = f.principal_for(shared.viewer, library_scope=frozenset({shared.viewer["default_library_id"]}))
    assert await f.outcome(access.load_asset(own_only, shared.asset["id"], access.READ)) == "404"
    shared_only = f.principal_for(shared.viewer, library_scope=frozenset({shared.library["id"]}))
    assert await f.outcome(access.load_asset(shared_only, shared.asset["id"], access.READ)) == "ok"


async def test_a_face_named_with_another_library_is_not_found(shared):
    collaborator = shared.as_role(access.COLLABORATOR)
    own = shared.collaborator["default_library_id"]
    assert await f.outcome(access.load_face(collaborator, shared.face["id"], access.READ, own)) == "404"
    assert await f.outcome(access.load_face(collaborator, shared.face["id"], access.READ,
                                           shared.library["id"])) == "ok"


async def test_bulk_update_edits_for_a_collaborator_and_refuses_a_viewer(shared):
    item = [(shared.asset["id"], assets.AssetPatch(rating=4))]
    with pytest.raises(Forbidden):
        await assets.bulk_update(shared.as_role(access.VIEWER), item)
    with pytest.raises(NotFound):
        await assets.bulk_update(shared.as_role(None), item)
    await assets.bulk_update(shared.as_role(access.COLLABORATOR), item)
    assert await db.fetchval("SELECT rating FROM assets WHERE id = $1", shared.asset["id"]) == 4


async def test_what_a_collaborator_makes_belongs_to_the_library_owner(shared):
    collaborator = shared.as_role(access.COLLABORATOR)
    lib = shared.library["id"]
    album, created = await albums.create_album(collaborator, lib, "From a member", None)
    person, _ = await people.create_person(collaborator, lib, people.PersonPatch(name="Member's friend"))
    extra = [await f.new_asset(shared.owner, library_id=lib) for _ in range(2)]
    stack = await stacks.create_stack(collaborator, lib, [a["id"] for a in extra], None)
    assert created
    for row in (album, person, stack):
        assert (row["library_id"], row["owner_id"]) == (lib, shared.owner["id"])
    with pytest.raises(Forbidden):
        await albums.create_album(shared.as_role(access.VIEWER), lib, "Not from a viewer", None)


async def test_a_shared_librarys_tasks_are_read_by_its_members(shared):
    task = await f.new_task(shared.asset)
    viewer = shared.as_role(access.VIEWER)
    assert (await tasks.get_task(viewer, task["id"]))["id"] == task["id"]
    assert (await tasks.task_by_job_id(viewer, task["job_id"]))["id"] == task["id"]
    listed = await tasks.list_tasks(viewer, shared.library["id"], None, None, 10)
    assert [r["id"] for r in listed] == [task["id"]]
    assert await tasks.list_tasks(viewer, None, None, None, 10) == []  # unnamed: its own library
    stranger = shared.as_role(None)
    for coro in (tasks.get_task(stranger, task["id"]), tasks.task_by_job_id(stranger, task["job_id"])):
        assert await f.outcome(coro) == "404"


async def test_a_members_upload_allowance_is_the_library_owners(shared):
    await db.execute("UPDATE users SET storage_limit_bytes = 10 WHERE id = $1", shared.collaborator["id"])
    await db.execute("UPDATE libraries SET storage_limit_bytes = $2 WHERE id = $1",
                     shared.library["id"], 1_000_000)
    used = await db.fetchval("SELECT sum(file_size_bytes) FROM assets WHERE library_id = $1", shared.library["id"])
    allowance = await quotas.upload_allowance(shared.as_role(access.COLLABORATOR), shared.library["id"])
    assert allowance == quotas.Allowance(user_left=None, library_left=1_000_000 - used)
    # Someone else's library: nothing about its caps is read (the upload itself answers 404).
    assert await quotas.upload_allowance(shared.as_role(None), shared.library["id"]) == quotas.UNLIMITED


async def test_a_trashed_asset_in_a_shared_library_still_loads_for_a_member(shared):
    trashed = await f.new_asset(shared.owner, library_id=shared.library["id"], trashed_at=datetime.now(UTC))
    assert await f.outcome(access.load_asset(shared.as_role(access.VIEWER), trashed["id"], access.READ)) == "ok"
