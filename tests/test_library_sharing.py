"""Library sharing over the native API, driven through gumnut-sdk by several real accounts: an owner
invites, others preview and join, the owner changes roles and removes, members leave; and what an
owner alone does to a library (rename, trash, restore, delete)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import gumnut
import pytest
from gumnut import Gumnut

from tests.conftest import Account
from tests.helpers import session_token, upload
from tests.media import png_bytes

UTC = dt.timezone.utc


@dataclass
class Person:
    account: Account
    app: Gumnut  # the first-party session: sharing is managed from one, never with an API key

    @property
    def id(self) -> str:
        from app.api import ids

        return ids.encode(ids.USER, self.account.user_id)


@pytest.fixture
def person(make_account, server):
    def make() -> Person:
        account = make_account()
        return Person(account, Gumnut(api_key=session_token(account), base_url=server.base_url, max_retries=0))

    return make


def _soon(**delta) -> dt.datetime:
    return dt.datetime.now(UTC) + dt.timedelta(**(delta or {"days": 7}))


def _library(owner: Person, name: str = "Family") -> str:
    return owner.app.libraries.create(name=name).id


def _invite(owner: Person, library_id: str, role: str = "viewer", max_joiners: int = 5, **expiry):
    return owner.app.libraries.invitations.create(library_id=library_id, role=role, max_joiners=max_joiners,
                                                  expires_at=_soon(**expiry))


def _secret(link) -> str:
    return link.url.split("#", 1)[1]


def test_invite_preview_join_and_the_member_sees_the_library(person, server):
    owner, guest = person(), person()
    library_id = _library(owner)
    upload(owner.account, "shared.png", png_bytes(1), library_id=library_id)

    link = owner.app.libraries.invitations.with_raw_response.create(
        library_id=library_id, role="viewer", max_joiners=3, expires_at=_soon())
    assert link.status_code == 201
    link = link.parse()
    invitation = link.invitation
    assert invitation.id.startswith("libinv_") and invitation.library_id == library_id
    assert (invitation.state, invitation.role, invitation.joiner_count, invitation.remaining_places) == (
        "active", "viewer", 0, 3)
    assert invitation.created_by.id == owner.id
    assert link.url.startswith(f"{server.base_url}/invitations/{invitation.id}#")
    # The same policy again answers the same link.
    again = owner.app.libraries.invitations.with_raw_response.create(
        library_id=library_id, role="viewer", max_joiners=3, expires_at=invitation.expires_at)
    assert again.status_code == 200 and again.parse().url == link.url
    assert owner.app.libraries.invitations.link(invitation.id).url == link.url

    preview = guest.app.libraries.invitations.preview(invitation.id, secret=_secret(link))
    assert (preview.eligibility, preview.current_role, preview.offered_role) == ("joinable", None, "viewer")
    assert preview.library.id == library_id and preview.library.owner.id == owner.id
    assert library_id not in [lib.id for lib in guest.app.libraries.list()]  # preview admits nobody

    joined = guest.app.libraries.invitations.join(invitation.id, secret=_secret(link))
    assert joined.outcome == "joined" and joined.library.role == "viewer"
    assert joined.membership.id.startswith("libmem_") and joined.membership.state == "active"
    assert joined.membership.user.id == guest.id
    # Joining again changes nothing and takes no second place.
    again = guest.app.libraries.invitations.join(invitation.id, secret=_secret(link))
    assert again.outcome == "already_member" and again.membership.id == joined.membership.id
    assert owner.app.libraries.invitations.list(library_id=library_id).data[0].joiner_count == 1
    # The owner is already in: already_member, without a membership.
    own = owner.app.libraries.invitations.join(invitation.id, secret=_secret(link))
    assert own.outcome == "already_member" and own.membership is None and own.library.role == "owner"
    assert guest.app.libraries.invitations.preview(invitation.id, secret=_secret(link)).current_role == "viewer"

    shared = {lib.id: lib for lib in guest.account.client.libraries.list()}[library_id]
    assert shared.role == "viewer" and shared.owner.id == owner.id and shared.user_id == owner.id
    assert shared.asset_count == 1
    assert guest.account.client.libraries.retrieve(library_id).role == "viewer"
    assert owner.app.libraries.retrieve(library_id).role == "owner"
    names = [a.original_file_name for a in guest.account.client.assets.list(library_id=library_id)]
    assert names == ["shared.png"]
    # An unnamed request still means the member's own library, never the shared one.
    assert guest.account.client.assets.list().data == []

    members = owner.app.libraries.members.list(library_id)
    assert [(m.user.id, m.role, m.state) for m in members.data] == [(guest.id, "viewer", "active")]
    assert members.has_more is False


def test_role_change_remove_and_rejoin_cutoff(person):
    owner, guest = person(), person()
    library_id = _library(owner)
    link = _invite(owner, library_id)
    guest.app.libraries.invitations.join(link.invitation.id, secret=_secret(link))

    changed = owner.app.libraries.members.update(guest.id, library_id=library_id, role="collaborator")
    assert changed.role == "collaborator" and changed.state == "active"
    assert guest.app.libraries.retrieve(library_id).role == "collaborator"
    with pytest.raises(gumnut.ConflictError):  # the owner is not a member
        owner.app.libraries.members.update(owner.id, library_id=library_id, role="viewer")
    with pytest.raises(gumnut.PermissionDeniedError):  # a member cannot run the library
        guest.app.libraries.members.list(library_id)

    removed = owner.app.libraries.members.remove(guest.id, library_id=library_id)
    assert removed.state == "removed" and removed.ended_at is not None and removed.last_removed_at is not None
    assert owner.app.libraries.members.remove(guest.id, library_id=library_id).last_removed_at == removed.last_removed_at
    with pytest.raises(gumnut.NotFoundError):
        guest.app.libraries.retrieve(library_id)
    with pytest.raises(gumnut.NotFoundError):
        guest.account.client.assets.list(library_id=library_id)
    with pytest.raises(gumnut.ConflictError):  # only an active member's role changes
        owner.app.libraries.members.update(guest.id, library_id=library_id, role="viewer")
    assert owner.app.libraries.members.list(library_id).data == []
    assert [m.state for m in owner.app.libraries.members.list(library_id, state="removed").data] == ["removed"]

    # An invitation issued before the removal cannot bring the account back; a newer one can.
    preview = guest.app.libraries.invitations.preview(link.invitation.id, secret=_secret(link))
    assert preview.eligibility == "new_invitation_required"
    with pytest.raises(gumnut.ConflictError):
        guest.app.libraries.invitations.join(link.invitation.id, secret=_secret(link))
    fresh = _invite(owner, library_id, role="collaborator", days=8)
    rejoined = guest.app.libraries.invitations.join(fresh.invitation.id, secret=_secret(fresh))
    assert rejoined.outcome == "joined" and rejoined.membership.role == "collaborator"
    assert rejoined.membership.id == removed.id and rejoined.membership.last_removed_at is not None


def test_leave(person):
    owner, guest = person(), person()
    library_id = _library(owner)
    link = _invite(owner, library_id)
    guest.app.libraries.invitations.join(link.invitation.id, secret=_secret(link))

    left = guest.app.libraries.members.leave(library_id)
    assert left.state == "left" and left.ended_at is not None and left.last_removed_at is None
    assert guest.app.libraries.members.leave(library_id).ended_at == left.ended_at
    assert library_id not in [lib.id for lib in guest.app.libraries.list()]
    with pytest.raises(gumnut.ConflictError):
        owner.app.libraries.members.leave(library_id)
    with pytest.raises(gumnut.NotFoundError):  # never a member
        person().app.libraries.members.leave(library_id)
    # Coming back through the same invitation takes no second place.
    assert guest.app.libraries.invitations.join(link.invitation.id, secret=_secret(link)).outcome == "joined"
    assert owner.app.libraries.invitations.list(library_id=library_id).data[0].joiner_count == 1


def test_disable_expiry_exhaustion_and_wrong_secrets(person):
    owner, first, second = person(), person(), person()
    library_id = _library(owner)

    one_place = _invite(owner, library_id, max_joiners=1)
    first.app.libraries.invitations.join(one_place.invitation.id, secret=_secret(one_place))
    assert second.app.libraries.invitations.preview(
        one_place.invitation.id, secret=_secret(one_place)).eligibility == "exhausted"
    with pytest.raises(gumnut.ConflictError):
        second.app.libraries.invitations.join(one_place.invitation.id, secret=_secret(one_place))
    with pytest.raises(gumnut.ConflictError):  # no link for an inactive invitation
        owner.app.libraries.invitations.link(one_place.invitation.id)

    disabled = _invite(owner, library_id, days=9)
    done = owner.app.libraries.invitations.disable(disabled.invitation.id)
    assert done.state == "disabled" and done.disabled_at is not None
    assert owner.app.libraries.invitations.disable(disabled.invitation.id).disabled_at == done.disabled_at
    assert second.app.libraries.invitations.preview(
        disabled.invitation.id, secret=_secret(disabled)).eligibility == "disabled"
    with pytest.raises(gumnut.ConflictError):
        second.app.libraries.invitations.join(disabled.invitation.id, secret=_secret(disabled))
    with pytest.raises(gumnut.ConflictError):  # the same policy, now disabled
        owner.app.libraries.invitations.create(library_id=library_id, role="viewer", max_joiners=5,
                                               expires_at=disabled.invitation.expires_at)

    brief = _invite(owner, library_id, seconds=1.5)
    time.sleep(2)
    assert second.app.libraries.invitations.preview(brief.invitation.id, secret=_secret(brief)).eligibility == "expired"
    with pytest.raises(gumnut.ConflictError):
        second.app.libraries.invitations.join(brief.invitation.id, secret=_secret(brief))

    states = {i.id: i.state for i in owner.app.libraries.invitations.list().data}
    assert states == {one_place.invitation.id: "exhausted", disabled.invitation.id: "disabled",
                      brief.invitation.id: "expired"}
    assert [i.id for i in owner.app.libraries.invitations.list(state="expired").data] == [brief.invitation.id]
    page = owner.app.libraries.invitations.list(limit=2)
    assert page.has_more and [i.id for i in page.data] == [brief.invitation.id, disabled.invitation.id]
    rest = owner.app.libraries.invitations.list(limit=2, starting_after_id=page.data[-1].id)
    assert [i.id for i in rest.data] == [one_place.invitation.id] and not rest.has_more

    # A wrong, guessed or malformed secret answers like a missing invitation.
    live = _invite(owner, library_id, days=10)
    for secret in (_secret(one_place), "A" * 43, "not base64!", ""):
        with pytest.raises(gumnut.NotFoundError):
            second.app.libraries.invitations.preview(live.invitation.id, secret=secret)
        with pytest.raises(gumnut.NotFoundError):
            second.app.libraries.invitations.join(live.invitation.id, secret=secret)
    with pytest.raises(gumnut.NotFoundError):  # someone else's invitation
        second.app.libraries.invitations.link(live.invitation.id)


def test_invitation_input_is_checked(person):
    owner, stranger = person(), person()
    library_id = _library(owner)
    create = owner.app.libraries.invitations.create
    with pytest.raises(gumnut.UnprocessableEntityError):
        create(library_id=library_id, role="viewer", max_joiners=0, expires_at=_soon())
    with pytest.raises(gumnut.UnprocessableEntityError):
        create(library_id=library_id, role="viewer", max_joiners=1, expires_at=_soon(days=-1))
    with pytest.raises(gumnut.UnprocessableEntityError):
        create(library_id=library_id, role="viewer", max_joiners=1, expires_at="2999-01-01T00:00:00")
    with pytest.raises(gumnut.NotFoundError):
        stranger.app.libraries.invitations.create(library_id=library_id, role="viewer", max_joiners=1,
                                                  expires_at=_soon())


def test_api_keys_cannot_manage_sharing(person):
    owner = person()
    library_id = _library(owner)
    with pytest.raises(gumnut.PermissionDeniedError):
        owner.account.client.libraries.invitations.create(library_id=library_id, role="viewer", max_joiners=1,
                                                          expires_at=_soon())
    with pytest.raises(gumnut.PermissionDeniedError):
        owner.account.client.libraries.members.list(library_id)


def test_update_trash_restore_delete(person):
    owner, guest = person(), person()
    library_id = _library(owner, "Trip")
    upload(owner.account, "trip.png", png_bytes(2), library_id=library_id)
    link = _invite(owner, library_id, role="collaborator")
    guest.app.libraries.invitations.join(link.invitation.id, secret=_secret(link))

    renamed = owner.app.libraries.update(library_id, name="  Summer trip ", description="Sea")
    assert (renamed.name, renamed.description) == ("Summer trip", "Sea")
    assert owner.app.libraries.update(library_id, name=None).name == "Summer trip"  # null: unchanged
    with pytest.raises(gumnut.UnprocessableEntityError):
        owner.app.libraries.update(library_id, name="  ")
    other = _library(owner, "Other")
    with pytest.raises(gumnut.ConflictError):
        owner.app.libraries.update(other, name="summer TRIP")
    with pytest.raises(gumnut.PermissionDeniedError):  # a collaborator does not run the library
        guest.app.libraries.update(library_id, name="Mine now")
    with pytest.raises(gumnut.PermissionDeniedError):
        guest.app.libraries.trash(library_id)
    with pytest.raises(gumnut.ConflictError):  # not trashed yet
        owner.app.libraries.delete(library_id)

    trashed = owner.app.libraries.with_raw_response.trash(library_id)
    assert trashed.status_code == 200 and trashed.json() == {}
    owner.app.libraries.trash(library_id)  # again: nothing to do
    assert [lib.id for lib in owner.app.libraries.list(state="trashed")] == [library_id]
    assert owner.app.libraries.retrieve(library_id).id == library_id  # the owner still sees it
    # The member loses it at once.
    assert library_id not in [lib.id for lib in guest.app.libraries.list(state="all")]
    with pytest.raises(gumnut.NotFoundError):
        guest.account.client.libraries.retrieve(library_id)
    with pytest.raises(gumnut.NotFoundError):
        guest.account.client.assets.list(library_id=library_id)

    restored = owner.app.libraries.restore(library_id)
    assert restored.id == library_id and restored.asset_count == 1
    assert guest.app.libraries.retrieve(library_id).role == "collaborator"

    owner.app.libraries.trash(library_id)
    deleted = owner.app.libraries.with_raw_response.delete(library_id)
    assert deleted.status_code == 200 and deleted.json() == {}
    with pytest.raises(gumnut.NotFoundError):
        owner.app.libraries.retrieve(library_id)
    with pytest.raises(gumnut.NotFoundError):
        guest.app.libraries.members.leave(library_id)

    # Every owner keeps one live library.
    first, *others = [lib.id for lib in owner.app.libraries.list()]
    for library in others:
        owner.app.libraries.trash(library)
    with pytest.raises(gumnut.ConflictError):
        owner.app.libraries.trash(first)


def test_a_key_limited_to_some_libraries_runs_only_those(person, server):
    from app.api import ids
    from app.domain import users
    from tests.conftest import run

    owner = person()
    inside, outside = _library(owner, "Inside"), _library(owner, "Outside")
    _, secret = run(users.create_api_key(owner.account.user_id, "narrow",
                                         library_ids=[ids.decode(ids.LIBRARY, inside)]))
    narrow = Gumnut(api_key=secret, base_url=server.base_url, max_retries=0)
    assert [lib.id for lib in narrow.libraries.list(state="all")] == [inside]
    assert narrow.libraries.update(inside, description="reachable").description == "reachable"
    for call in (lambda: narrow.libraries.update(outside, name="Elsewhere"), lambda: narrow.libraries.trash(outside),
                 lambda: narrow.libraries.restore(outside), lambda: narrow.libraries.retrieve(outside)):
        with pytest.raises(gumnut.NotFoundError):
            call()


def test_library_changes_are_logged_but_not_in_the_native_feed(person):
    from tests.helpers import event_rows

    owner = person()
    library_id = _library(owner, "Logged")
    _library(owner, "Spare")
    owner.app.libraries.update(library_id, name="Logged still")
    owner.app.libraries.trash(library_id)
    owner.app.libraries.restore(library_id)
    kinds = [r["event_type"] for r in event_rows(owner.account.user_id) if r["entity_type"] == "library"]
    assert kinds[-3:] == ["library_updated", "library_trashed", "library_restored"]
    assert owner.app.events.get(library_id=library_id).data == []
    # Refusals name their reason the FastAPI way.
    with pytest.raises(gumnut.ConflictError) as err:
        owner.app.libraries.delete(library_id)  # not trashed
    assert "trash it first" in err.value.response.json()["detail"]
