"""Storage caps known before an upload's body arrives (app/domain/quotas.py)."""

from __future__ import annotations

import pytest

from app.domain import quotas
from app.domain.errors import InsufficientStorage
from tests.domain import factories as f


def test_an_allowance_checks_the_user_cap_first():
    allowance = quotas.Allowance(user_left=10, library_left=5)
    allowance.check(5)
    with pytest.raises(InsufficientStorage, match="Library storage limit exceeded"):
        allowance.check(6)
    with pytest.raises(InsufficientStorage, match="User storage limit exceeded"):
        allowance.check(11)
    quotas.UNLIMITED.check(10**15)


async def test_no_caps_no_limit(user, principal, library_id):
    await f.new_asset(user, file_size_bytes=10**9)
    assert await quotas.upload_allowance(principal, library_id) == quotas.UNLIMITED
    assert await quotas.upload_allowance(principal, None) == quotas.UNLIMITED


async def test_the_user_cap_less_what_the_user_stores():
    user = await f.new_user(storage_limit_bytes=5000)
    await f.new_asset(user, file_size_bytes=1200)
    await f.new_asset(user, library_id=(await f.new_library(user))["id"], file_size_bytes=800)
    allowance = await quotas.upload_allowance(f.principal_for(user), user["default_library_id"])
    assert allowance == quotas.Allowance(user_left=3000, library_left=None)


async def test_a_full_cap_leaves_nothing(user, library_id):
    user = await f.new_user(storage_limit_bytes=1000)
    await f.new_asset(user, file_size_bytes=1500)
    assert (await quotas.upload_allowance(f.principal_for(user), None)).user_left == 0


async def test_library_caps_per_library_and_the_most_generous_without_one(user, principal, library_id):
    small = await f.new_library(user, storage_limit_bytes=2000)
    large = await f.new_library(user, storage_limit_bytes=9000)
    await f.new_asset(user, library_id=small["id"], file_size_bytes=1500)
    await f.new_asset(user, library_id=large["id"], file_size_bytes=1000)
    assert await quotas.upload_allowance(principal, small["id"]) == quotas.Allowance(None, 500)
    assert await quotas.upload_allowance(principal, large["id"]) == quotas.Allowance(None, 8000)
    # No library named: the default library has no cap, so none applies yet.
    assert await quotas.upload_allowance(principal, None) == quotas.Allowance(None, None)
    scoped = f.principal_for(user, library_scope=frozenset({small["id"], large["id"]}))
    assert await quotas.upload_allowance(scoped, None) == quotas.Allowance(None, 8000)


async def test_someone_elses_library_sets_no_cap_here(principal):
    stranger = await f.new_user()
    theirs = await f.new_library(stranger, storage_limit_bytes=1)
    assert await quotas.upload_allowance(principal, theirs["id"]) == quotas.UNLIMITED
