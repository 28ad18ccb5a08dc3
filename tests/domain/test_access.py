"""Scoped loading by UUID (app/domain/access.py): another user's object answers like a missing one."""

from __future__ import annotations

import dataclasses
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


async def _one_by_one(principal, asset_ids, action):
    """What load_asset answers for each id: the row's id and caller_role, or the refusal."""
    out = {}
    for asset_id in asset_ids:
        try:
            row = await access.load_asset(principal, asset_id, action)
            out[asset_id] = (row["id"], row["caller_role"])
        except Forbidden as exc:  # AccessRefused included
            out[asset_id] = (type(exc), str(exc), getattr(exc, "kind", None))
        except NotFound as exc:
            out[asset_id] = (type(exc), str(exc), exc.kind, exc.ids)
    return out


def _bulk_view(outcomes):
    return {a: (o["id"], o["caller_role"]) if not isinstance(o, Exception)
            else (type(o), str(o), getattr(o, "kind", None)) + ((o.ids,) if isinstance(o, NotFound) else ())
            for a, o in outcomes.items()}


async def test_asset_outcomes_answer_each_id_as_load_asset_does():
    from app.domain import album_sharing, partners, shared_links
    me, stranger, sharer, album_owner = [await f.new_user() for _ in range(4)]
    mine, my_locked = await f.new_asset(me), await f.new_asset(me, visibility="locked")
    theirs = await f.new_asset(stranger)
    # A library where `me` is a viewer: it reads there, may not change anything (403).
    shared_library = await f.new_library(stranger)
    await f.new_member(shared_library, me, "viewer", state="active")
    viewed, viewed_locked = (await f.new_asset(stranger, library_id=shared_library["id"]),
                             await f.new_asset(stranger, library_id=shared_library["id"], visibility="locked"))
    # A partner's photos (its locked one is never shared), and an album shared with `me`.
    await partners.create(f.principal_for(sharer), me["id"])
    partners_photo, partners_locked = await f.new_asset(sharer), await f.new_asset(sharer, visibility="locked")
    album = await f.new_album(album_owner)
    in_album = await f.new_asset(album_owner)
    await f.new_album_asset(album, in_album)
    await album_sharing.add_users(f.principal_for(album_owner), album["id"], [(me["id"], access.ALBUM_VIEWER)])
    link_row = await shared_links.create_link(f.principal_for(album_owner), shared_links.ALBUM,
                                              shared_links.LinkSettings(), album_id=album["id"])
    link = await shared_links.authenticate(key=shared_links.encode_key(link_row["key"]))
    ids = [mine["id"], theirs["id"], uuid.uuid4(), my_locked["id"], viewed["id"], viewed_locked["id"],
           partners_photo["id"], partners_locked["id"], in_album["id"]]
    me_p = f.principal_for(me)
    callers = [me_p, dataclasses.replace(me_p, elevated=True), f.principal_for(me, library_scope=frozenset()),
               f.principal_for(me, library_scope=frozenset({me["default_library_id"]})),
               f.principal_for(me, actions=frozenset({access.READ})), link]
    for caller in callers:
        for action in (access.READ, access.WRITE, access.DELETE_PERMANENTLY):
            try:
                bulk = _bulk_view(await access.asset_outcomes(caller, ids, action))
            except Forbidden as exc:  # the credential's action scope: load_asset refuses every id alike
                with pytest.raises(Forbidden, match=str(exc)):
                    await access.load_asset(caller, ids[0], action)
                continue
            assert bulk == await _one_by_one(caller, ids, action), (caller, action)
    # The spread the cases are meant to cover, for a plain session.
    read = await access.asset_outcomes(me_p, ids, access.READ)
    assert {a for a, o in read.items() if not isinstance(o, Exception)} == {
        mine["id"], viewed["id"], partners_photo["id"], in_album["id"]}
    assert isinstance((await access.asset_outcomes(me_p, ids, access.WRITE))[viewed["id"]], Forbidden)


async def test_load_assets_refuses_with_the_first_refusal_in_the_order_given(user, principal):
    mine, theirs = await f.new_asset(user), await f.new_asset(await f.new_user())
    gone = uuid.uuid4()
    assert list(await access.load_assets(principal, [mine["id"]], access.WRITE)) == [mine["id"]]
    for first in (theirs["id"], gone):
        with pytest.raises(NotFound) as refused:
            await access.load_assets(principal, [mine["id"], first, theirs["id"] if first == gone else gone], access.WRITE)
        assert refused.value.ids == (first,)
    # No ids: nothing checked, not even the credential's actions (as a loop of load_asset).
    assert await access.load_assets(f.principal_for(user, actions=frozenset()), [], access.WRITE) == {}


async def test_the_immich_library_is_the_chosen_live_one_in_scope_else_the_default_else_the_oldest():
    user = await f.new_user()
    default = user["default_library_id"]
    chosen = await f.new_library(user)
    third = await f.new_library(user)
    me = f.principal_for(user)
    assert await access.preferred_library(me) == default
    await db.execute("UPDATE users SET immich_library_id = $2 WHERE id = $1", user["id"], chosen["id"])
    assert await access.preferred_library(me) == chosen["id"]
    # a key scoped to other libraries: the first of them it may read, oldest first
    assert await access.preferred_library(f.principal_for(user, library_scope=frozenset({third["id"]}))) == third["id"]
    await db.execute("UPDATE libraries SET trashed_at = now() WHERE id = $1", chosen["id"])
    assert await access.preferred_library(me) == default


async def test_a_credential_carries_the_library_choices_and_they_pick_as_the_query_does():
    from app.domain import authentication

    user = await f.new_user()
    chosen = await f.new_library(user)
    third = await f.new_library(user)
    await db.execute("UPDATE users SET immich_library_id = $2 WHERE id = $1", user["id"], chosen["id"])
    _, secret = await f.new_api_key(user)
    _, token = await f.new_session(user)
    _, scoped_secret = await f.new_api_key(user, library_scope_mode="selected_libraries", library_ids=[third["id"]])
    by_key = await authentication.authenticate_api_key(secret)
    by_session, _ = await authentication.authenticate_session(token)
    scoped = await authentication.authenticate_api_key(scoped_secret)
    for principal in (by_key, by_session, scoped):
        assert principal.libraries is not None
        assert principal.libraries.live == (user["default_library_id"], chosen["id"], third["id"])
    assert await access.preferred_library(by_key) == chosen["id"] == await access.preferred_library(f.principal_for(user))
    assert await access.preferred_library(by_session) == chosen["id"]
    assert await access.preferred_library(scoped) == third["id"]
    # The choices are those of when the credential was checked; the next request reads them again.
    await db.execute("UPDATE libraries SET trashed_at = now() WHERE id = $1", chosen["id"])
    again = await authentication.authenticate_api_key(secret)
    assert await access.preferred_library(again) == user["default_library_id"]
