"""Every source of access, with every kind of credential, against every object load and action (app/domain/access.py).

One owner's library holds an asset in an album, with a person on a face. It is reached seven ways:
its owner, a library collaborator and viewer, an album editor and viewer, a partner, and a stranger.
Each calls as a session, a full key, a read-only key and a key limited to a library of its own. One
table (ALLOWED) says which actions each source has on each object; everything else is refused: 404
when the caller cannot see the object at all, 403 when it can (a role or grant that forbids the
action), 403 before any lookup when the credential lacks the action, and 404 for a key limited to
other libraries. Revoking any grant ends it on the next call; a guessed id is refused exactly like
a random one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import pytest

from app.db import engine as db
from app.domain import access, album_sharing, albums, library_members, partners
from app.domain.errors import NotFound
from tests.domain import factories as f

R, W, D, DP = access.READ, access.WRITE, access.DELETE, access.DELETE_PERMANENTLY
ACTIONS = (R, W, D, DP)
OWNER, COLLABORATOR, VIEWER = "owner", "collaborator", "viewer"
ALBUM_EDITOR, ALBUM_VIEWER, PARTNER, STRANGER = "album editor", "album viewer", "partner", "stranger"
SOURCES = (OWNER, COLLABORATOR, VIEWER, ALBUM_EDITOR, ALBUM_VIEWER, PARTNER, STRANGER)
CREDENTIALS = ("session", "full key", "read key", "key limited to its own library")
OBJECTS = ("asset", "album", "person", "face", "library")

# The actions each source has on each object (absent: none, the object is invisible to it).
_ROLE = {OWNER: frozenset(ACTIONS), COLLABORATOR: frozenset({R, W, D}), VIEWER: frozenset({R})}
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    **{(source, obj): actions for source, actions in _ROLE.items() for obj in OBJECTS},
    (ALBUM_EDITOR, "asset"): frozenset({R}), (ALBUM_EDITOR, "album"): frozenset({R}),
    (ALBUM_VIEWER, "asset"): frozenset({R}), (ALBUM_VIEWER, "album"): frozenset({R}),
    (PARTNER, "asset"): frozenset({R}),
}
# An album user reaches an asset only through the album's read grant, never a role on the asset, so
# an action beyond reading finds nothing (404), as tests/domain/test_album_sharing.py decided.
NOT_FOUND_BEYOND_READ = {(ALBUM_EDITOR, "asset"), (ALBUM_VIEWER, "asset")}


@dataclass
class World:
    users: dict[str, asyncpg.Record]
    library: uuid.UUID
    asset: uuid.UUID
    album: uuid.UUID
    person: uuid.UUID
    face: uuid.UUID
    elsewhere: uuid.UUID  # the owner's other library

    def principal(self, source: str, credential: str) -> access.Principal:
        user = self.users[source]
        if credential == "session":
            return f.principal_for(user)
        if credential == "full key":
            return f.principal_for(user, api_key_id=uuid.uuid4())
        if credential == "read key":
            return f.principal_for(user, actions=frozenset({R}), api_key_id=uuid.uuid4())
        own = user["default_library_id"] if source != OWNER else self.elsewhere
        return f.principal_for(user, library_scope=frozenset({own}), api_key_id=uuid.uuid4())


async def _world() -> World:
    users = {source: await f.new_user() for source in SOURCES}
    owner = users[OWNER]
    library = await _library_row(owner["default_library_id"])  # also the one the owner's Immich client sees
    elsewhere = await f.new_library(owner)
    await f.new_member(library, users[COLLABORATOR], access.COLLABORATOR)
    await f.new_member(library, users[VIEWER], access.VIEWER)
    asset, album, person = await f.new_asset(owner), await f.new_album(owner), await f.new_person(owner)
    await f.new_album_asset(album, asset)
    face = await f.new_face(asset, person=person)
    await album_sharing.add_users(f.principal_for(owner), album["id"], [
        (users[ALBUM_EDITOR]["id"], access.ALBUM_EDITOR), (users[ALBUM_VIEWER]["id"], access.ALBUM_VIEWER)])
    await partners.create(f.principal_for(owner), users[PARTNER]["id"])
    return World(users, library["id"], asset["id"], album["id"], person["id"], face["id"], elsewhere["id"])


async def _library_row(library_id: uuid.UUID) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM libraries WHERE id = $1", library_id)


@pytest.fixture(scope="module")
def world(domain) -> World:
    return domain.run(_world())


def _load(w: World, obj: str, principal: access.Principal, action: str, object_id: uuid.UUID | None = None):
    object_id = object_id or getattr(w, obj)
    if obj == "asset":
        return access.load_asset(principal, object_id, action)
    if obj == "album":
        return albums.get_album(principal, object_id, action)
    if obj == "person":
        return access.load_person(principal, object_id, action)
    if obj == "face":
        return access.load_face(principal, object_id, action)
    return access.library_for(principal, object_id, action)


def _expected(source: str, credential: str, obj: str, action: str) -> str:
    if credential == "read key" and action != R:
        return "403"  # the credential lacks the action: refused before anything is looked up
    if credential == "key limited to its own library":
        return "404"  # the shared library is outside it, and a limited key reaches nothing through a share
    allowed = ALLOWED.get((source, obj))
    if allowed is None:
        return "404"
    if action in allowed:
        return "ok"
    return "404" if (source, obj) in NOT_FOUND_BEYOND_READ else "403"


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("source", SOURCES)
async def test_every_source_and_credential_against_every_load_and_action(world, source, credential):
    principal = world.principal(source, credential)
    got = {(obj, action): await f.outcome(_load(world, obj, principal, action)) for obj in OBJECTS for action in ACTIONS}
    assert got == {(obj, action): _expected(source, credential, obj, action) for obj in OBJECTS for action in ACTIONS}


@pytest.mark.parametrize("source", (ALBUM_EDITOR, ALBUM_VIEWER, PARTNER, STRANGER))
async def test_a_guessed_id_is_refused_exactly_like_a_random_one(world, source):
    principal = world.principal(source, "session")
    for obj in OBJECTS:
        if (source, obj) in ALLOWED:
            continue
        errors = []
        for object_id in (getattr(world, obj), uuid.uuid4()):
            with pytest.raises(NotFound) as caught:
                await _load(world, obj, principal, R, object_id)
            errors.append((type(caught.value), caught.value.detail, getattr(caught.value, "kind", None)))
        assert errors[0] == errors[1], obj


# --- revocation: each grant ends on the next call --------------------------------------------

async def _grant(w: World, kind: str):
    """A fresh user granted `kind`, and the call that revokes it (not yet awaited)."""
    user, owner = await f.new_user(), f.principal_for(w.users[OWNER])
    library = await _library_row(w.library)
    if kind == "member":
        await f.new_member(library, user, access.COLLABORATOR)
        return user, library_members.remove_member(owner, w.library, user["id"])
    if kind == "member leaves":
        await f.new_member(library, user, access.VIEWER)
        return user, library_members.leave(f.principal_for(user), w.library)
    if kind == "album user":
        await album_sharing.add_users(owner, w.album, [(user["id"], access.ALBUM_EDITOR)])
        return user, album_sharing.remove_user(owner, w.album, user["id"])
    if kind == "album user leaves":
        await album_sharing.add_users(owner, w.album, [(user["id"], access.ALBUM_VIEWER)])
        return user, album_sharing.remove_user(f.principal_for(user), w.album, user["id"])
    await partners.create(owner, user["id"])
    return user, partners.remove(owner, user["id"])


@pytest.mark.parametrize("kind", ["member", "member leaves", "album user", "album user leaves", "partner"])
async def test_revoking_a_grant_ends_it_on_the_next_call(world, kind):
    user, revoke = await _grant(world, kind)
    for credential in ("session", "full key"):
        principal = f.principal_for(user) if credential == "session" else f.principal_for(user, api_key_id=uuid.uuid4())
        assert await f.outcome(access.load_asset(principal, world.asset, R)) == "ok"
    await revoke
    for credential in ("session", "full key"):
        principal = f.principal_for(user) if credential == "session" else f.principal_for(user, api_key_id=uuid.uuid4())
        assert await f.outcome(access.load_asset(principal, world.asset, R)) == "404", credential
        assert await f.outcome(albums.get_album(principal, world.album)) == "404", credential


# --- widening: a grant never becomes more than it is ------------------------------------------

async def test_nobody_but_the_owner_shares_and_no_limited_credential_shares_at_all(world):
    newcomer = await f.new_user()
    for source in SOURCES:
        for credential in CREDENTIALS:
            if source == OWNER and credential in ("session", "full key"):
                continue
            principal = world.principal(source, credential)
            shared = await f.outcome(album_sharing.add_users(principal, world.album, [(newcomer["id"], "viewer")]))
            assert shared in ("403", "404"), (source, credential)
            role = await f.outcome(album_sharing.update_user(principal, world.album, world.users[ALBUM_VIEWER]["id"],
                                                            access.ALBUM_EDITOR))
            assert role in ("403", "404"), (source, credential)
        for credential in ("read key", "key limited to its own library"):
            made = await f.outcome(partners.create(world.principal(source, credential), newcomer["id"]))
            assert made == "403", (source, credential)
    assert await albums.shared_albums(f.principal_for(newcomer)) == []
    assert await partners.list_partners(f.principal_for(newcomer), partners.SHARED_WITH) == []


async def test_an_album_editor_links_only_what_it_has_a_role_for_never_what_a_share_lets_it_read(world):
    editor, owner = world.users[ALBUM_EDITOR], world.users[OWNER]
    outside = await f.new_asset(owner)  # the owner's, in the shared library, in no album
    sharer = await f.new_user()  # shares its photos with the editor as a partner
    await partners.create(f.principal_for(sharer), editor["id"])
    partners_photo = await f.new_asset(sharer)
    assert await f.outcome(access.load_asset(f.principal_for(editor), partners_photo["id"], R)) == "ok"
    result = await albums.add_assets(f.principal_for(editor), world.album, [outside["id"], partners_photo["id"]])
    assert (result.added, sorted(result.not_found)) == ([], sorted([outside["id"], partners_photo["id"]]))
    # a partner is not an album user: it links nothing, not even into an album holding photos it may read
    assert await f.outcome(albums.add_assets(f.principal_for(world.users[PARTNER]), world.album,
                                            [(await f.new_asset(world.users[PARTNER]))["id"]])) == "404"


async def test_a_limited_credential_reaches_nothing_through_a_partner_share(world):
    partner = world.users[PARTNER]
    limited = f.principal_for(partner, library_scope=frozenset({world.library}), api_key_id=uuid.uuid4())
    assert await f.outcome(access.load_asset(limited, world.asset, R)) == "404"
