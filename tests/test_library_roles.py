"""Members of a shared library, through the native API with the gumnut SDK.

Memberships are written straight to library_members (the invitation flow is not what is under
test here); each member then names the shared library (`library_id`) or an object in it, and gets
what its role allows: a viewer reads everything and changes nothing (403), a collaborator adds
and edits but never erases for good, a stranger gets 404 everywhere, and a removed member is a
stranger from its next request on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import gumnut
import pytest

from tests.conftest import Account, run
from tests.helpers import upload, wait_processed
from tests.media import png_bytes


@dataclass
class Shared:
    owner: Account
    library: str
    asset: str
    album: str
    person: str
    face: str


def _join(library: str, account: Account, role: str) -> None:
    from app.api import ids
    from app.db import engine as db

    run(db.execute("INSERT INTO library_members (library_id, user_id, role) VALUES ($1, $2, $3)",
                   ids.decode(ids.LIBRARY, library), account.user_id, role))


def _set_state(library: str, account: Account, state: str) -> None:
    from app.api import ids
    from app.db import engine as db

    run(db.execute("UPDATE library_members SET state = $3, ended_at = now() WHERE library_id = $1 AND user_id = $2",
                   ids.decode(ids.LIBRARY, library), account.user_id, state))


@pytest.fixture
def shared(make_account) -> Shared:
    """An owner's library holding one processed photo, in an album, with a drawn face of a named person."""
    owner = make_account()
    c = owner.client
    library = c.libraries.list()[0].id
    asset = upload(owner, "shared.png", png_bytes(7101, 64, 64)).parse().id
    wait_processed(owner, asset)
    album = c.albums.create(name="Shared album", library_id=library).id
    c.albums.assets_associations.add(album, asset_ids=[asset])
    person = c.people.create(name="Shared person", library_id=library).id
    face = c.faces.create(asset_id=asset, bounding_box={"x": 4, "y": 4, "w": 20, "h": 20}, person_id=person).id
    return Shared(owner, library, asset, album, person, face)


def _reads(s: Shared) -> dict[str, Callable[[gumnut.Gumnut], object]]:
    """Each read of the shared library, returning what it found of the shared objects."""
    lib = s.library
    return {
        "assets": lambda c: {a.id for a in c.assets.list(library_id=lib)},
        "asset": lambda c: c.assets.retrieve(s.asset).id,
        "albums": lambda c: {a.id for a in c.albums.list(library_id=lib)},
        "album": lambda c: c.albums.retrieve(s.album).id,
        "people": lambda c: {p.id for p in c.people.list(library_id=lib)},
        "person": lambda c: c.people.retrieve(s.person).id,
        "faces": lambda c: {f.id for f in c.faces.list(library_id=lib)},
        "face": lambda c: c.faces.retrieve(s.face).id,
        "search": lambda c: {r.asset.id for r in c.search.search(library_id=lib, media_type="image").data},
        "counts": lambda c: sum(b.count for b in c.assets.counts(library_id=lib, group_by="year").data),
        "events": lambda c: {e.entity_id for e in c.events.get(library_id=lib, limit=200).data},
    }


def _expected(s: Shared) -> dict[str, object]:
    return {
        "assets": {s.asset}, "asset": s.asset, "albums": {s.album}, "album": s.album, "people": {s.person},
        "person": s.person, "faces": {s.face}, "face": s.face, "search": {s.asset}, "counts": 1,
    }


def test_a_viewer_reads_the_shared_library_by_naming_it(shared, make_account):
    viewer = make_account()
    _join(shared.library, viewer, "viewer")
    found = {name: read(viewer.client) for name, read in _reads(shared).items()}
    events = found.pop("events")
    assert found == _expected(shared)
    assert {shared.asset, shared.album, shared.person, shared.face} <= events
    # An unnamed request still goes to the viewer's own library.
    assert list(viewer.client.assets.list()) == []


def test_a_viewer_changes_nothing(shared, make_account):
    viewer = make_account()
    _join(shared.library, viewer, "viewer")
    c, lib = viewer.client, shared.library
    refused = [
        lambda: c.assets.update_asset(shared.asset, rating=5),
        lambda: c.assets.trash(ids=[shared.asset], library_id=lib),
        lambda: c.assets.delete(shared.asset),
        lambda: c.assets.delete_list(ids=[shared.asset], library_id=lib),
        lambda: upload(viewer, "viewer.png", png_bytes(7102), library_id=lib),
        lambda: c.albums.create(name="Viewer's album", library_id=lib),
        lambda: c.albums.update(shared.album, name="Renamed by a viewer"),
        lambda: c.albums.delete(shared.album),
        lambda: c.people.update(shared.person, name="Renamed by a viewer"),
        lambda: c.faces.delete(shared.face),
    ]
    for n, call in enumerate(refused):
        with pytest.raises(gumnut.PermissionDeniedError):
            call()
            pytest.fail(f"call {n} was not refused")
    owner = shared.owner.client
    assert owner.assets.retrieve(shared.asset).metadata.rating is None
    assert owner.albums.retrieve(shared.album).name == "Shared album"
    assert [a.id for a in owner.assets.list()] == [shared.asset]


def test_a_collaborator_adds_and_edits_but_never_erases_for_good(shared, make_account):
    from app.db import engine as db

    collaborator = make_account()
    _join(shared.library, collaborator, "collaborator")
    c, lib = collaborator.client, shared.library
    album = c.albums.with_raw_response.create(name="Collaborator's album", library_id=lib)
    assert album.status_code == 201
    c.albums.assets_associations.add(album.parse().id, asset_ids=[shared.asset])
    assert c.assets.update_asset(shared.asset, rating=4).metadata.rating == 4
    uploaded = upload(collaborator, "collab.png", png_bytes(7103), library_id=lib)
    assert uploaded.status_code == 201
    for call in (lambda: c.assets.delete(shared.asset),
                 lambda: c.assets.delete_list(ids=[shared.asset], library_id=lib),
                 lambda: c.assets.empty_trash(library_id=lib)):
        with pytest.raises(gumnut.PermissionDeniedError):
            call()
    # Trashing is a delete a collaborator may do (and undo).
    c.assets.trash(ids=[shared.asset], library_id=lib)
    c.assets.restore(ids=[shared.asset], library_id=lib)
    owner = shared.owner.client
    assert owner.assets.retrieve(shared.asset).metadata.rating == 4
    assert {a.name for a in owner.albums.list()} == {"Shared album", "Collaborator's album"}
    # What the collaborator made is the library owner's (their storage, their account).
    from app.api import ids

    new_asset = ids.decode(ids.ASSET, uploaded.parse().id)
    new_album = ids.decode(ids.ALBUM, album.parse().id)
    assert run(db.fetchval("SELECT owner_id FROM assets WHERE id = $1", new_asset)) == shared.owner.user_id
    assert run(db.fetchval("SELECT owner_id FROM albums WHERE id = $1", new_album)) == shared.owner.user_id


def test_a_stranger_gets_404_everywhere(shared, make_account):
    stranger = make_account()
    for name, read in _reads(shared).items():
        with pytest.raises(gumnut.NotFoundError):
            read(stranger.client)
            pytest.fail(f"{name} was found")
    c = stranger.client
    for call in (lambda: c.assets.update_asset(shared.asset, rating=1),
                 lambda: c.assets.delete(shared.asset),
                 lambda: c.albums.create(name="Stranger's", library_id=shared.library),
                 lambda: upload(stranger, "stranger.png", png_bytes(7104), library_id=shared.library)):
        with pytest.raises(gumnut.NotFoundError):
            call()


@pytest.mark.parametrize("state", ["removed", "left"])
def test_a_member_who_is_removed_or_leaves_is_a_stranger_on_the_next_request(shared, make_account, state):
    member = make_account()
    _join(shared.library, member, "collaborator")
    reads = _reads(shared)
    assert reads["asset"](member.client) == shared.asset
    _set_state(shared.library, member, state)
    for name, read in reads.items():
        with pytest.raises(gumnut.NotFoundError):
            read(member.client)
            pytest.fail(f"{name} was still found")


def test_an_unknown_id_in_a_shared_library_is_still_404_for_a_member(shared, make_account):
    from app.api import ids

    viewer = make_account()
    _join(shared.library, viewer, "viewer")
    with pytest.raises(gumnut.NotFoundError):
        viewer.client.assets.retrieve(ids.encode(ids.ASSET, uuid.uuid4()))
