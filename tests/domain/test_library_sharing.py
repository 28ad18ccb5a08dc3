"""Invitations under contention, in process: places are never overspent and an account counts once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from app.domain import access, library_invitations, library_members
from app.domain.errors import Conflict, Forbidden, NotFound
from tests.domain import factories as f


async def _invitation(owner, max_joiners: int):
    library = await f.new_library(owner)
    row, created = await library_invitations.create_invitation(
        f.principal_for(owner), library["id"], role="viewer", max_joiners=max_joiners,
        expires_at=datetime.now(timezone.utc) + timedelta(days=1),
    )
    assert created
    return row, library_invitations.secret_text(row["secret"])


async def _count(invitation_id: uuid.UUID) -> int:
    from app.db import engine as db

    return await db.fetchval("SELECT joiner_count FROM library_invitations WHERE id = $1", invitation_id)


async def test_concurrent_joiners_never_exceed_the_places(user):
    invitation, secret = await _invitation(user, max_joiners=2)
    joiners = [f.principal_for(await f.new_user()) for _ in range(5)]

    async def attempt(principal):
        try:
            return (await library_invitations.join(principal, invitation["id"], secret)).outcome
        except Conflict:
            return "refused"

    outcomes = await asyncio.gather(*(attempt(p) for p in joiners))
    assert sorted(outcomes) == ["joined", "joined", "refused", "refused", "refused"]
    assert await _count(invitation["id"]) == 2


async def test_one_account_joining_twice_at_once_takes_one_place(user):
    invitation, secret = await _invitation(user, max_joiners=3)
    joiner = f.principal_for(await f.new_user())
    results = await asyncio.gather(*(library_invitations.join(joiner, invitation["id"], secret) for _ in range(3)))
    assert sorted(r.outcome for r in results) == ["already_member", "already_member", "joined"]
    assert len({r.membership["id"] for r in results}) == 1
    assert await _count(invitation["id"]) == 1


async def test_secrets_open_only_their_own_invitation(user):
    first, first_secret = await _invitation(user, max_joiners=1)
    second, second_secret = await _invitation(user, max_joiners=1)
    stranger = f.principal_for(await f.new_user())
    spellings = (first_secret + "=", first_secret + "!", f"{first_secret[:10]}\n{first_secret[10:]}")
    cases = [(first["id"], second_secret), (uuid.uuid4(), first_secret), (second["id"], "%%")]
    for invitation_id, secret in [*cases, *((first["id"], s) for s in spellings)]:
        with pytest.raises(NotFound, match="Invitation not found"):
            await library_invitations.preview_invitation(stranger, invitation_id, secret)


async def test_api_keys_are_refused(user):
    invitation, secret = await _invitation(user, max_joiners=1)
    keyed = f.principal_for(await f.new_user(), api_key_id=uuid.uuid4())
    with pytest.raises(Forbidden):
        await library_invitations.join(keyed, invitation["id"], secret)
    with pytest.raises(Forbidden):
        await library_members.list_members(f.principal_for(user, api_key_id=uuid.uuid4()), invitation["library_id"],
                                           state="all", limit=10)


async def test_a_joined_member_has_the_offered_role(user):
    invitation, secret = await _invitation(user, max_joiners=1)
    joiner = f.principal_for(await f.new_user())
    await library_invitations.join(joiner, invitation["id"], secret)
    assert await access.library_role(joiner, invitation["library_id"]) == access.VIEWER
