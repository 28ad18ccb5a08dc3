"""Account creation and lookups (app/domain/users.py)."""

from __future__ import annotations

import pytest

from app.db import engine as db
from app.domain import users
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.libraries import DEFAULT_LIBRARY_NAME
from tests.domain import factories as f


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """Argon2 at its smallest cost: the same algorithm and encoding (each hash names its own
    parameters), at a fraction of the time a real sign-in is meant to take."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


def address(tag: str) -> str:
    import uuid

    return f"{tag}-{uuid.uuid4().hex[:8]}@Example.com"


async def test_a_new_user_gets_a_default_library_and_a_hashed_password():
    email = address("ann")
    row = await users.create_user(f"  {email} ", "s3cret pass")
    assert row["email"] == email and row["name"] == email.split("@")[0] and not row["is_admin"]
    library = await db.fetchrow("SELECT * FROM libraries WHERE id = $1", row["default_library_id"])
    assert (library["owner_id"], library["name"]) == (row["id"], DEFAULT_LIBRARY_NAME)
    assert row["password_hash"] != "s3cret pass"
    assert users.verify_password(row["password_hash"], "s3cret pass")
    assert not users.verify_password(row["password_hash"], "wrong")
    assert not users.verify_password(None, "s3cret pass") and not users.verify_password("garbage", "x")
    created = await db.fetchval("SELECT count(*) FROM events WHERE entity_id = $1 AND event_type = 'library_created'",
                                library["id"])
    assert created == 1


async def test_admins_and_names():
    row = await users.create_user(address("boss"), "pw", name="The Boss", is_admin=True)
    assert (row["name"], row["is_admin"]) == ("The Boss", True)


async def test_one_account_per_address_whatever_its_case():
    email = address("dup")
    await users.create_user(email, "pw")
    with pytest.raises(Conflict):
        await users.create_user(email.upper(), "pw")


@pytest.mark.parametrize("email, password", [("no-at-sign", "pw"), ("   ", "pw"), ("ok@example.com", "")])
async def test_bad_input_is_invalid(email, password):
    with pytest.raises(Invalid):
        await users.create_user(email, password)


async def test_lookups():
    row = await users.create_user(address("find"), "pw")
    assert (await users.user_by_email(row["email"].upper()))["id"] == row["id"]
    fetched = await users.user_by_id(row["id"])
    assert fetched["storage_used_bytes"] == 0
    await f.new_asset(fetched, file_size_bytes=700)
    await f.new_asset(fetched, file_size_bytes=300, trashed_at=fetched["created_at"])  # trash still counts
    assert (await users.user_by_id(row["id"]))["storage_used_bytes"] == 1000
    with pytest.raises(NotFound):
        await users.user_by_email(address("nobody"))


async def test_deleted_users_are_not_found():
    row = await f.new_user(deleted_at=await db.fetchval("SELECT now()"))
    with pytest.raises(NotFound):
        await users.user_by_id(row["id"])
    with pytest.raises(NotFound):
        await users.user_by_email(row["email"])
    assert row["id"] not in {r["id"] for r in await users.list_users()}
    assert row["id"] in {r["id"] for r in await users.list_users(with_deleted=True)}


async def test_password_sign_in_through_the_factory(user):
    signed = await f.new_user(password="hunter2 hunter2")
    assert users.verify_password(signed["password_hash"], "hunter2 hunter2")
    assert user["password_hash"] is None
