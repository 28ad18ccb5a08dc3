"""Account creation and lookups (app/domain/users.py)."""

from __future__ import annotations

import uuid

import pytest

from app.db import engine as db
from app.domain import users
from app.domain.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from app.domain.libraries import DEFAULT_LIBRARY_NAME
from tests.domain import factories as f


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """Argon2 at its smallest cost: the same algorithm and encoding (each hash names its own
    parameters), at a fraction of the time a real sign-in is meant to take."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


def address(tag: str) -> str:
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


# --- the account's own settings, onboarding and profile image ------------------------------------


async def test_a_new_password_ends_a_required_password_change(user):
    await db.execute("UPDATE users SET should_change_password = true WHERE id = $1", user["id"])
    me = f.principal_for(user)
    renamed = await users.update_account(me, users.AccountPatch(name="Ann", avatar_color="pink"))
    assert (renamed["name"], renamed["avatar_color"], renamed["should_change_password"]) == ("Ann", "pink", True)
    changed = await users.update_account(me, users.AccountPatch(password="new secret"))
    assert changed["should_change_password"] is False and users.verify_password(changed["password_hash"], "new secret")
    reset = await users.update_account(me, users.AccountPatch(avatar_color=None))
    assert reset["avatar_color"] is None


async def test_account_changes_are_checked(user):
    other = await f.new_user()
    me = f.principal_for(user)
    with pytest.raises(Invalid, match="Email already in use"):
        await users.update_account(me, users.AccountPatch(email=other["email"].upper()))
    with pytest.raises(Invalid):
        await users.update_account(me, users.AccountPatch(avatar_color="chartreuse"))
    with pytest.raises(Invalid):
        await users.update_account(me, users.AccountPatch(name="  "))
    with pytest.raises(Forbidden):  # a read-only key changes nothing
        await users.update_account(f.principal_for(user, actions=frozenset({"read"})), users.AccountPatch(name="x"))
    assert (await users.user_by_id(user["id"]))["name"] == user["name"]


async def test_onboarding_is_remembered_per_user(user):
    me, other = f.principal_for(user), f.principal_for(await f.new_user())
    assert await users.is_onboarded(me) is False
    assert await users.set_onboarded(me, True) is True
    assert await users.is_onboarded(me) is True and await users.is_onboarded(other) is False
    await users.reset_onboarding(me)
    assert await users.is_onboarded(me) is False


def _staged(store, data: bytes):
    staged = store.stage()
    staged.write(data)
    staged.finish(durable=False)
    return staged


async def test_profile_image_is_stored_replaced_and_removed(user, tmp_path):
    from app.domain import profile_images
    from app.storage.blobstore import BlobStore
    from tests.media import png_bytes

    store = BlobStore(tmp_path)
    me = f.principal_for(user)
    first = await profile_images.set_profile_image(me, store, _staged(store, png_bytes(1)), "me.png")
    assert first["profile_image_key"].startswith(f"profile/{user['id']}/")
    assert first["profile_changed_at"] > user["profile_changed_at"]
    path, mime = await profile_images.profile_image(f.principal_for(await f.new_user()), store, user["id"])
    assert mime == "image/png" and path.read_bytes() == png_bytes(1)
    second = await profile_images.set_profile_image(me, store, _staged(store, png_bytes(2)), "me.png")
    assert not store.exists(first["profile_image_key"])  # the replaced picture is gone
    await profile_images.delete_profile_image(me, store)
    assert not store.exists(second["profile_image_key"])
    assert (await users.user_by_id(user["id"]))["profile_image_key"] is None
    with pytest.raises(NotFound):
        await profile_images.profile_image(me, store, user["id"])
    with pytest.raises(BadRequest):
        await profile_images.delete_profile_image(me, store)
    assert list((tmp_path / "tmp").iterdir()) == []  # no staged upload left behind


@pytest.mark.parametrize("filename, data", [
    ("me.png", b"this is not a picture at all, just text"),
    ("me.txt", b"\x89PNG\r\n\x1a\n"),
    ("me.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64),  # a PNG signature, no picture behind it
])
async def test_a_profile_image_must_be_a_readable_picture(user, tmp_path, filename, data):
    from app.domain import profile_images
    from app.storage.blobstore import BlobStore

    store = BlobStore(tmp_path)
    with pytest.raises(BadRequest):
        await profile_images.set_profile_image(f.principal_for(user), store, _staged(store, data), filename)
    assert (await users.user_by_id(user["id"]))["profile_image_key"] is None
    assert not (tmp_path / "profile").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


# --- administration ---------------------------------------------------------------------------


async def test_admin_changes_follow_immichs_rules(user):
    admin = await f.new_user(is_admin=True)
    boss = f.principal_for(admin)
    other = await f.new_user()
    with pytest.raises(Invalid, match="Email already in use"):
        await users.admin_update_user(boss, user["id"], users.UserAdminPatch(email=other["email"]))
    await users.admin_update_user(boss, other["id"], users.UserAdminPatch(storage_label=f"lbl-{other['id'].hex}"))
    with pytest.raises(Invalid, match="Storage label already in use"):
        await users.admin_update_user(boss, user["id"], users.UserAdminPatch(storage_label=f"lbl-{other['id'].hex}"))
    cleared = await users.admin_update_user(boss, other["id"], users.UserAdminPatch(storage_label="", avatar_color="red"))
    assert (cleared["storage_label"], cleared["avatar_color"]) == (None, "red")
    with pytest.raises(Invalid, match="another admin"):
        await users.admin_update_user(boss, admin["id"], users.UserAdminPatch(is_admin=False))
    with pytest.raises(Forbidden):
        await users.admin_delete_user(boss, admin["id"])


async def test_a_deleted_account_is_restored(user):
    boss = f.principal_for(await f.new_user(is_admin=True))
    await users.admin_delete_user(boss, user["id"])
    with pytest.raises(NotFound):
        await users.user_by_id(user["id"])
    assert (await users.any_user_by_id(user["id"]))["deleted_at"] is not None
    restored = await users.admin_restore_user(boss, user["id"])
    assert restored["deleted_at"] is None and (await users.user_by_id(user["id"]))["id"] == user["id"]
    with pytest.raises(NotFound):
        await users.admin_restore_user(boss, uuid.uuid4())
    with pytest.raises(Forbidden):
        await users.admin_restore_user(f.principal_for(user), user["id"])


async def test_admin_statistics_count_the_users_photos(user):
    boss = f.principal_for(await f.new_user(is_admin=True))
    await f.new_asset(user)
    await f.new_asset(user, media_type="video")
    await f.new_asset(user, trashed_at=user["created_at"])
    stats = await users.admin_user_statistics(boss, user["id"])
    assert (stats["images"], stats["videos"], stats["total"]) == (1, 1, 2)
    trashed = await users.admin_user_statistics(boss, user["id"], trashed=True)
    assert trashed["total"] == 1
    with pytest.raises(Forbidden):
        await users.admin_user_statistics(f.principal_for(user), user["id"])
